/**
 * Benchmark: an alert storm against the real `detect` handler and a DynamoDB-compatible server
 * (dynalite, child process, loopback). For each breaker setting and each scale (100, 1,000 and
 * 10,000 subscription log events from 10, 100 and 1,000 instances, 10 events each), one fresh
 * process runs bench/storm/storm.ts and reports: incidents opened (must be exactly one per
 * instance), executions started (exactly one per admitted incident; none past the breaker),
 * events per second, and the handler process's memory. Ratios are against the 100-event run of
 * the same setting, in the same run.
 *
 *   npm run bench:storm [-- --scales 100,1000,10000 --breakers 10,0 --concurrency 50]
 *
 * Bounded and self-stopping: every storm has a deadline (and takes its dynalite with it); the
 * whole bench has one too. Loopback only.
 */
import { spawn } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const { values } = parseArgs({
  options: {
    scales: { type: 'string', default: '100,1000,10000' },
    breakers: { type: 'string', default: '10,0' },
    concurrency: { type: 'string', default: '50' },
    'per-instance': { type: 'string', default: '10' },
    'storm-deadline-seconds': { type: 'string', default: '900' },
    'deadline-seconds': { type: 'string', default: '2400' },
  },
});
const scales = values.scales.split(',').map(Number);
const breakers = values.breakers.split(',').map(Number);
for (const value of [...scales, ...breakers]) {
  if (!Number.isInteger(value) || value < 0) throw new Error(`not a whole number: ${value}`);
}

interface StormResult {
  readonly events: number;
  readonly instances: number;
  readonly deliveries: number;
  readonly duplicateDeliveries: number;
  readonly breakerMaxInstances: number;
  readonly wallMs: number;
  readonly eventsPerSecond: number;
  readonly deliveriesPerSecond: number;
  readonly cpuMs: number;
  readonly incidentsOpened: number;
  readonly executionsStarted: number;
  readonly startExecutionCalls: number;
  readonly incidentsHeld: number;
  readonly escalations: number;
  readonly dropLinesRecorded: number;
  readonly failedInvocations: number;
  readonly memory: {
    rssLoadedMB: number;
    rssPeakMB: number;
    heapLoadedMB: number;
    heapPeakMB: number;
    heapAfterGcMB: number;
  };
  readonly checks: { ok: boolean; problems: string[] };
}

let current: ReturnType<typeof spawn> | undefined;
const overall = setTimeout(() => {
  process.stderr.write('bench:storm: overall deadline reached, stopping\n');
  current?.kill('SIGTERM');
  process.exit(3);
}, Number(values['deadline-seconds']) * 1000);
overall.unref();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    current?.kill('SIGTERM');
    process.exit(130);
  });
}

async function storm(events: number, breaker: number): Promise<StormResult> {
  const args = [
    '--expose-gc',
    '--import',
    'tsx',
    join(root, 'bench/storm/storm.ts'),
    '--events',
    String(events),
    '--breaker',
    String(breaker),
    '--concurrency',
    values.concurrency,
    '--per-instance',
    values['per-instance'],
    '--deadline-seconds',
    values['storm-deadline-seconds'],
  ];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    current = child;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      // Powertools prints a notice per invocation when metrics are off; the result is the JSON line.
      const line = Buffer.concat(out)
        .toString('utf8')
        .split('\n')
        .filter((each) => each.startsWith('{'))
        .pop();
      if (line === undefined) {
        reject(
          new Error(
            `storm of ${events} events exited ${code}: ${Buffer.concat(err).toString('utf8').slice(-2000)}`,
          ),
        );
        return;
      }
      resolvePromise(JSON.parse(line) as StormResult);
    });
  });
}

const ratio = (value: number, base: number) => (base > 0 ? `${(value / base).toFixed(2)}×` : 'n/a');
const pad = (text: string | number, width: number) => String(text).padStart(width);

const [load1, load5] = loadavg();
console.log(
  `bench:storm — ${availableParallelism()} CPUs, load average ${load1?.toFixed(1)} / ${load5?.toFixed(1)} (1 / 5 min), concurrency ${values.concurrency}, ${values['per-instance']} events per instance, delivered in batches of 1–4 events with 5 % redelivered`,
);
let failed = false;
for (const breaker of breakers) {
  console.log('');
  console.log(breaker === 0 ? 'Fleet breaker off:' : `Fleet breaker at ${breaker} instances (the default):`);
  console.log(
    `${pad('events', 7)} ${pad('instances', 9)} ${pad('deliveries', 10)} ${pad('incidents', 9)} ${pad('executions', 10)} ${pad('StartExec', 9)} ${pad('held', 5)} ${pad('escalations', 11)} ${pad('events/s', 8)} ${pad('wall s', 7)} ${pad('CPU s', 6)} ${pad('RSS MB', 13)} ${pad('heap MB', 18)}  checks`,
  );
  const results: StormResult[] = [];
  for (const events of scales) {
    const result = await storm(events, breaker);
    results.push(result);
    const { memory } = result;
    console.log(
      `${pad(result.events, 7)} ${pad(result.instances, 9)} ${pad(result.deliveries, 10)} ${pad(result.incidentsOpened, 9)} ${pad(result.executionsStarted, 10)} ${pad(result.startExecutionCalls, 9)} ${pad(result.incidentsHeld, 5)} ${pad(result.escalations, 11)} ${pad(result.eventsPerSecond, 8)} ${pad((result.wallMs / 1000).toFixed(1), 7)} ${pad((result.cpuMs / 1000).toFixed(1), 6)} ${pad(`${memory.rssLoadedMB}→${memory.rssPeakMB}`, 13)} ${pad(`${memory.heapLoadedMB}→${memory.heapPeakMB}→${memory.heapAfterGcMB}`, 18)}  ${result.checks.ok ? 'ok' : `FAILED: ${result.checks.problems.join('; ')}`}`,
    );
    if (!result.checks.ok) failed = true;
  }
  const [base] = results;
  if (base !== undefined && results.length > 1) {
    for (const result of results.slice(1)) {
      console.log(
        `  ${result.events} vs ${base.events} events: ${ratio(result.events, base.events)} the events, events/s ${ratio(result.eventsPerSecond, base.eventsPerSecond)}, CPU per event ${ratio(result.cpuMs / result.events, base.cpuMs / base.events)}, peak RSS ${ratio(result.memory.rssPeakMB, base.memory.rssPeakMB)}, peak heap ${ratio(result.memory.heapPeakMB, base.memory.heapPeakMB)}`,
      );
    }
  }
}
console.log('');
console.log(
  "incidents: exactly one per instance; executions: exactly one per admitted incident (StartExec = calls made); held: incidents past the breaker (no workflow, no message of their own); escalations: the breaker's one message. RSS: the handler process after loading → peak during the storm; heap: after loading → peak → after a full GC once the storm is over (dynalite runs in its own process).",
);
process.exit(failed ? 1 : 0);
