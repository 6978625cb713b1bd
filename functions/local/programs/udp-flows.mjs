// Creates many distinct UDP flows fast (one datagram each), to fill a lab namespace's conntrack
// table in seconds: `udp-flows.mjs <count> <first-address> <addresses> <first-port> <ports>`.
// Flow i goes to address first+(i mod addresses), port first+(floor(i/addresses) mod ports); each
// socket (source ports 1024, 1025, ...) carries addresses×ports flows, then the next one. Nothing
// needs to answer: the sender's own conntrack creates an [UNREPLIED] entry per flow.
// Prints {"sent":N,"failed":N,"errors":{"EPERM":N,...},"sockets":N,"elapsedMs":N}.
import { createSocket } from 'node:dgram';
import { isIPv4 } from 'node:net';

const [countText, firstAddress, addressesText, firstPortText, portsText] = process.argv.slice(2);
const [count, addresses, firstPort, ports] = [countText, addressesText, firstPortText, portsText].map(Number);
const valid =
  isIPv4(firstAddress ?? '') &&
  Number.isInteger(count) &&
  count >= 0 &&
  count <= 4_000_000 &&
  Number.isInteger(addresses) &&
  addresses >= 1 &&
  addresses <= 16_777_216 &&
  Number.isInteger(firstPort) &&
  Number.isInteger(ports) &&
  firstPort >= 1 &&
  ports >= 1 &&
  firstPort + ports - 1 <= 65535;
if (!valid) {
  process.stderr.write(
    'usage: udp-flows.mjs <count 0-4000000> <first-ipv4-address> <addresses> <first-port> <ports>\n',
  );
  process.exit(2);
}

const base = firstAddress.split('.').reduce((value, octet) => value * 256 + Number(octet), 0);
function address(index) {
  const value = base + (index % addresses);
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

const FIRST_SOURCE_PORT = 1024;
const started = performance.now();
const payload = Buffer.from('x');
const perSocket = addresses * ports;
const result = { sent: 0, failed: 0, errors: {}, sockets: 0, elapsedMs: 0 };
let next = 0;
while (next < count) {
  const socket = createSocket('udp4');
  socket.on('error', () => {});
  // Sequential source ports: an ephemeral port picked by the kernel may repeat a closed socket's
  // port, and its flows would fold into existing entries.
  const sourcePort = FIRST_SOURCE_PORT + result.sockets;
  await new Promise((resolve) => socket.bind(sourcePort <= 65535 ? sourcePort : 0, resolve));
  result.sockets += 1;
  const end = Math.min(count, next + perSocket);
  await new Promise((resolve) => {
    let inFlight = 0;
    const pump = () => {
      while (next < end && inFlight < 256) {
        const flow = next % perSocket;
        inFlight += 1;
        next += 1;
        socket.send(payload, firstPort + (Math.floor(flow / addresses) % ports), address(flow), (error) => {
          inFlight -= 1;
          if (error) {
            result.failed += 1;
            result.errors[error.code ?? 'ERROR'] = (result.errors[error.code ?? 'ERROR'] ?? 0) + 1;
          } else result.sent += 1;
          if (next < end) pump();
          else if (inFlight === 0) resolve();
        });
      }
    };
    pump();
  });
  socket.close();
}
result.elapsedMs = Math.round(performance.now() - started);
process.stdout.write(`${JSON.stringify(result)}\n`);
