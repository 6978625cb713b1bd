// Opens TCP connections and keeps them open: `tcp-hold.mjs <address> <port> <count> <concurrency> <timeoutMs>`.
// Each connection that connects stays open (an ESTABLISHED conntrack entry on both sides) until
// this process ends (SIGTERM/SIGINT, or stdin closing), which closes them all. Prints one JSON
// object once every attempt has settled:
// {"attempted":N,"opened":N,"failed":N,"errors":{"ETIMEDOUT":N,...},"elapsedMs":N}
import { connect, isIP } from 'node:net';

const [address, ...numbers] = process.argv.slice(2);
const [port, count, concurrency, timeoutMs] = numbers.map(Number);
const valid =
  isIP(address ?? '') !== 0 &&
  Number.isInteger(port) &&
  port >= 1 &&
  port <= 65535 &&
  Number.isInteger(count) &&
  count >= 0 &&
  count <= 100_000 &&
  Number.isInteger(concurrency) &&
  concurrency >= 1 &&
  concurrency <= 1024 &&
  Number.isInteger(timeoutMs) &&
  timeoutMs >= 10 &&
  timeoutMs <= 60_000;
if (!valid) {
  process.stderr.write(
    'usage: tcp-hold.mjs <ip-address> <port> <count 0-100000> <concurrency 1-1024> <timeoutMs 10-60000>\n',
  );
  process.exit(2);
}

const held = [];
function open() {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    let settled = false;
    const finish = (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error === null) held.push(socket);
      else socket.destroy();
      resolve(error);
    };
    const timer = setTimeout(() => finish('ETIMEDOUT'), timeoutMs);
    socket.on('connect', () => finish(null));
    socket.on('data', () => {});
    socket.on('error', (error) => finish(error.code ?? 'ERROR'));
    socket.on('close', () => finish('ECLOSED'));
  });
}

const started = performance.now();
const result = { attempted: 0, opened: 0, failed: 0, errors: {}, elapsedMs: 0 };
async function worker() {
  while (result.attempted < count) {
    result.attempted += 1;
    const error = await open();
    if (error === null) result.opened += 1;
    else {
      result.failed += 1;
      result.errors[error] = (result.errors[error] ?? 0) + 1;
    }
  }
}
await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(count, 1)) }, worker));
result.elapsedMs = Math.round(performance.now() - started);
process.stdout.write(`${JSON.stringify(result)}\n`);

// Exiting closes every held socket (a FIN each): the owner ends the hold by ending this process.
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
