// Opens and closes short TCP connections: `tcp-churn.mjs <address> <port> <count> <concurrency> <timeoutMs>`.
// Each connection connects, sends FIN, and waits for the peer's close, so that it ends in
// TIME_WAIT (a conntrack entry that lives 120 s). Prints one JSON object:
// {"attempted":N,"succeeded":N,"failed":N,"errors":{"ETIMEDOUT":N,...},"elapsedMs":N}
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
    'usage: tcp-churn.mjs <ip-address> <port> <count 0-100000> <concurrency 1-1024> <timeoutMs 10-60000>\n',
  );
  process.exit(2);
}

function once() {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    let settled = false;
    const finish = (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(error);
    };
    const timer = setTimeout(() => finish('ETIMEDOUT'), timeoutMs);
    socket.on('connect', () => socket.end());
    socket.on('data', () => {});
    socket.on('error', (error) => finish(error.code ?? 'ERROR'));
    socket.on('close', () => finish(null));
  });
}

const started = performance.now();
const result = { attempted: 0, succeeded: 0, failed: 0, errors: {}, elapsedMs: 0 };
async function worker() {
  while (result.attempted < count) {
    result.attempted += 1;
    const error = await once();
    if (error === null) result.succeeded += 1;
    else {
      result.failed += 1;
      result.errors[error] = (result.errors[error] ?? 0) + 1;
    }
  }
}
await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(count, 1)) }, worker));
result.elapsedMs = Math.round(performance.now() - started);
process.stdout.write(`${JSON.stringify(result)}\n`);
