// A TCP service for lab namespaces: `tcp-service.mjs <address> <port> <close|line|hold>`.
// `close` accepts and closes each connection; `line` answers one line ("ok\n") first; `hold`
// keeps each connection open until the client closes it (then closes its side).
// Prints "listening" once bound, exits on SIGTERM/SIGINT.
import { createServer, isIP } from 'node:net';

const [address, portText, mode = 'close'] = process.argv.slice(2);
const port = Number(portText);
if (isIP(address ?? '') === 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write(`usage: tcp-service.mjs <ip-address> <port 1-65535> [close|line|hold]\n`);
  process.exit(2);
}
if (mode !== 'close' && mode !== 'line' && mode !== 'hold') {
  process.stderr.write(`tcp-service.mjs: unknown mode '${mode}' (expected close, line or hold)\n`);
  process.exit(2);
}

const server = createServer((socket) => {
  socket.on('error', () => {}); // a client that resets is normal under churn
  if (mode === 'hold') socket.on('end', () => socket.end());
  else socket.end(mode === 'line' ? 'ok\n' : undefined);
});
server.on('error', (error) => {
  process.stderr.write(`tcp-service.mjs: ${error.message}\n`);
  process.exit(1);
});
server.listen({ host: address, port, backlog: 1024 }, () => process.stdout.write('listening\n'));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
