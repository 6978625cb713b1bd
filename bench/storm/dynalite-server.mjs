// A dynalite server (in memory) on a loopback port, in its own process so that the storm bench
// measures the detect handler's memory and CPU, not the database's. It prints its port as one
// JSON line and exits when its parent closes stdin (the parent died or finished): it never
// outlives the bench.
import dynalite from 'dynalite';

const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
