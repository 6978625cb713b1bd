import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { parseArgs } from 'node:util';
import { DEFAULT_FORECAST_SETTINGS, formatDuration } from '../../functions/core/forecast/index.js';
import { RAMP_CONNTRACK_MAX, type RampLabResult, runRampLab } from '../../functions/local/lab/ramp.js';
import { restoreCrashedConntrackMax } from '../../functions/local/netns.js';
import { synthesizedWorkflowDefinition } from '../../functions/local/twin/synth.js';

/**
 * bench/ramp: gradual fills at several steady rates, slow to fast, each to twice the limit, with
 * `watch` sampling the namespace every second and the default forecast settings (30 min horizon,
 * 90 %), in the lab. For each rate: the kernel's drops and the failed connections, the usage and the
 * predicted time to full when the fix landed, and the lead time (how long before the table would
 * have been full at that rate the fix landed). The fastest rate with zero drops is the figure the
 * README quotes.
 *
 * Baseline, measured in the same run: the reactive responder (kernel log only, no sampler) at the
 * slowest rate, the best case for it: what acting on the first drop line costs.
 *
 * Run as root, under the lab lock: `npm run bench:ramp [-- --rates 50,100,200 --interval 1]`.
 */

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    rates: { type: 'string', default: '50,100,150,200,300' },
    interval: { type: 'string', default: '1' },
    'no-baseline': { type: 'boolean', default: false },
  },
});
const rates = values.rates.split(',').map((text) => Number(text.trim()));
if (
  rates.length === 0 ||
  rates.length > 12 ||
  rates.some((rate) => !Number.isInteger(rate) || rate < 1 || rate > 5000)
) {
  throw new Error('--rates must be 1 to 12 comma-separated whole numbers of connections a second, 1..5000');
}
rates.sort((a, b) => a - b);
const interval = Number(values.interval);
if (!(interval >= 0.1 && interval <= 10)) throw new Error('--interval must be seconds from 0.1 to 10');

interface Row {
  readonly rate: number;
  readonly fillSeconds: number;
  readonly result: RampLabResult;
}

const seconds = (ms: number | null) => (ms === null ? 'n/a' : `${(ms / 1000).toFixed(1)} s`);

function describe(row: Row): string {
  const { result } = row;
  const drops = result.dropsAfter - result.dropsBefore;
  const atFix = result.forecastAtFix;
  return [
    `${String(row.rate).padStart(5)}/s`,
    `full in ${row.fillSeconds.toFixed(1)} s`.padEnd(17),
    (result.incident.trigger.kind ?? 'table-full').padEnd(10),
    `${String(drops).padStart(5)} drops`,
    `${String(result.ramp.failed).padStart(5)} failed`,
    `usage at fix ${atFix ? `${(atFix.usage * 100).toFixed(0)} %` : 'n/a'}`.padEnd(18),
    `predicted full in ${atFix?.secondsToFull == null ? 'n/a' : formatDuration(atFix.secondsToFull)}`.padEnd(
      24,
    ),
    `lead ${seconds(result.leadTimeMs)}`.padEnd(12),
    result.incident.result.outcome?.status ?? 'unknown',
  ].join('  ');
}

async function once(
  rate: number,
  forecast: boolean,
  definition: Awaited<ReturnType<typeof synthesizedWorkflowDefinition>>,
  outRoot: string,
) {
  const result = await runRampLab({
    perSecond: rate,
    mode: 'auto',
    approval: 'reject',
    outRoot,
    soakSeconds: 2,
    backend: 'iptables-nft',
    sampleIntervalSeconds: interval,
    forecast,
    stdin: new PassThrough(),
    stdout: new PassThrough(),
    definition,
    progress: false,
  });
  return { rate, fillSeconds: RAMP_CONNTRACK_MAX / rate, result };
}

await restoreCrashedConntrackMax();
const outRoot = await mkdtemp(join(tmpdir(), 'bench-ramp-'));
try {
  process.stdout.write(
    `bench/ramp: fills of ${2 * RAMP_CONNTRACK_MAX} connections (2 × nf_conntrack_max ${RAMP_CONNTRACK_MAX}) at ${rates.join(', ')} per second; ` +
      `sampling every ${interval} s, horizon ${DEFAULT_FORECAST_SETTINGS.horizonSeconds / 60} min, usage ${DEFAULT_FORECAST_SETTINGS.usageThreshold * 100} %, ${DEFAULT_FORECAST_SETTINGS.minSamples} samples for a trend\n`,
  );
  const definition = await synthesizedWorkflowDefinition();
  const rows: Row[] = [];
  for (const rate of rates) {
    const row = await once(rate, true, definition, outRoot);
    rows.push(row);
    process.stdout.write(`  ${describe(row)}\n`);
  }
  let baseline: Row | null = null;
  if (!values['no-baseline']) {
    baseline = await once(rates[0] as number, false, definition, outRoot);
    process.stdout.write(`  baseline, kernel log only: ${describe(baseline)}\n`);
  }
  const clean = rows.filter(
    (row) => row.result.dropsAfter === row.result.dropsBefore && row.result.ramp.failed === 0,
  );
  // The fastest rate such that it and every slower rate reached zero drops.
  let fastestClean: Row | null = null;
  for (const row of rows) {
    if (!clean.includes(row)) break;
    fastestClean = row;
  }
  process.stdout.write('\nbench/ramp results\n');
  process.stdout.write(
    `  zero drops and zero failed connections at ${clean.length} of ${rows.length} rates; fastest with every slower rate clean: ${fastestClean ? `${fastestClean.rate}/s (table full in ${fastestClean.fillSeconds.toFixed(1)} s untouched, lead ${seconds(fastestClean.result.leadTimeMs)})` : 'none'}\n`,
  );
  if (baseline) {
    const drops = baseline.result.dropsAfter - baseline.result.dropsBefore;
    const ours = rows[0] as Row;
    process.stdout.write(
      `  baseline at ${baseline.rate}/s (reactive: first drop line): ${drops} drops, ${baseline.result.ramp.failed} failed connections; ` +
        `with the forecast: ${ours.result.dropsAfter - ours.result.dropsBefore} drops, ${ours.result.ramp.failed} failed\n`,
    );
  }
} finally {
  await rm(outRoot, { recursive: true, force: true });
}
