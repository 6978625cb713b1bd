// Opens short TCP connections at a steady rate: `tcp-ramp.mjs <address> <port> <count> <perSecond> <timeoutMs>`.
// Connection i starts at i / perSecond seconds after the start (whatever the others are doing), so
// the instance's conntrack table grows at a known, steady rate: each connection connects, sends
// FIN and waits for the peer's close, ending in TIME_WAIT (a conntrack entry that lives 120 s).
// A connection that does not complete within timeoutMs fails (a SYN dropped by a full table is
// retransmitted only after 1 s). Prints one JSON object:
// {"attempted":N,"succeeded":N,"failed":N,"errors":{"ETIMEDOUT":N,...},"elapsedMs":N,"lateMs":N,"startedAtMs":N}
// (lateMs: how far behind its schedule the latest connection started; startedAtMs: wall-clock time
// of the first connection).
import { connect, isIP } from 'node:net';

const [address, ...numbers] = process.argv.slice(2);
const [port, count, perSecond, timeoutMs] = numbers.map(Number);
const valid =
  isIP(address ?? '') !== 0 &&
  Number.isInteger(port) &&
  port >= 1 &&
  port <= 65535 &&
  Number.isInteger(count) &&
  count >= 0 &&
  count <= 100_000 &&
  Number.isInteger(perSecond) &&
  perSecond >= 1 &&
  perSecond <= 5000 &&
  Number.isInteger(timeoutMs) &&
  timeoutMs >= 10 &&
  timeoutMs <= 60_000;
if (!valid) {
  process.stderr.write(
    'usage: tcp-ramp.mjs <ip-address> <port> <count 0-100000> <perSecond 1-5000> <timeoutMs 10-60000>\n',
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
const result = {
  attempted: 0,
  succeeded: 0,
  failed: 0,
  errors: {},
  elapsedMs: 0,
  lateMs: 0,
  startedAtMs: Date.now(),
};
const pending = [];
await new Promise((resolve) => {
  const tick = () => {
    const elapsed = performance.now() - started;
    const due = Math.min(count, Math.floor((elapsed * perSecond) / 1000) + 1);
    while (result.attempted < due) {
      result.lateMs = Math.max(0, Math.round(elapsed - (result.attempted * 1000) / perSecond));
      result.attempted += 1;
      pending.push(
        once().then((error) => {
          if (error === null) result.succeeded += 1;
          else {
            result.failed += 1;
            result.errors[error] = (result.errors[error] ?? 0) + 1;
          }
        }),
      );
    }
    if (result.attempted >= count) return resolve();
    const next = (result.attempted * 1000) / perSecond;
    setTimeout(tick, Math.max(0, next - (performance.now() - started)));
  };
  tick();
});
await Promise.all(pending);
result.elapsedMs = Math.round(performance.now() - started);
process.stdout.write(`${JSON.stringify(result)}\n`);
