import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { parseArgs } from 'node:util';
import { applyHostFirewall } from '../../functions/local/firewall.js';
import {
  clientsRecovered,
  LAB_CONNTRACK_MAX,
  LAB_SERVICE_PORT,
  runLab,
} from '../../functions/local/lab/lab.js';
import { createLabHosts, withConntrackMax } from '../../functions/local/netns.js';
import { runDocument } from '../../functions/local/ssm-executor.js';
import { reproduceTableFull, startTcpService } from '../../functions/local/traffic.js';
import { synthesizedWorkflowDefinition } from '../../functions/local/twin/synth.js';
import { followKernelLog } from '../../functions/local/twin/watch.js';

/**
 * bench/ttm: time to mitigate, from the first kernel drop line of the instance's namespace to
 * clients succeeding again (a round of 5 new connections all served), in the lab, over several
 * runs. The soak period is not part of it: clients recover when the change lands, before the soak.
 *
 * Baseline, measured in the same run: the floor any responder has — on the first drop line,
 * raise-limits runs at once with a fixed value (no diagnostics, no plan, no workflow). The ratio
 * says what detection-to-decision costs on top of that floor.
 *
 * Run as root, under the lab lock: `npm run bench:ttm [-- --runs N --baseline-runs M]`.
 */

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { runs: { type: 'string', default: '5' }, 'baseline-runs': { type: 'string', default: '3' } },
});
const runs = Number(values.runs);
const baselineRuns = Number(values['baseline-runs']);
if (
  !Number.isInteger(runs) ||
  runs < 1 ||
  runs > 50 ||
  !Number.isInteger(baselineRuns) ||
  baselineRuns < 0 ||
  baselineRuns > 50
) {
  throw new Error('--runs must be 1..50 and --baseline-runs 0..50');
}

interface Sample {
  readonly ttdMs: number;
  readonly ttmMs: number | null;
  readonly outcome: string;
}

function stats(values: readonly number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const median =
    sorted.length % 2 === 1
      ? (sorted[(sorted.length - 1) / 2] as number)
      : ((sorted[sorted.length / 2 - 1] as number) + (sorted[sorted.length / 2] as number)) / 2;
  return { min: sorted[0] as number, median, max: sorted.at(-1) as number };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function responderRun(
  definition: Awaited<ReturnType<typeof synthesizedWorkflowDefinition>>,
  outRoot: string,
): Promise<Sample> {
  const result = await runLab({
    mode: 'auto',
    approval: 'reject',
    outRoot,
    soakSeconds: 0,
    backend: 'iptables-nft',
    stdin: new PassThrough(),
    stdout: new PassThrough(),
    definition,
    progress: false,
  });
  return {
    ttdMs: result.timeToDetectMs,
    ttmMs: result.timeToMitigateMs,
    outcome: result.result.outcome?.status ?? 'unknown',
  };
}

/** The floor: raise the limit the moment the first drop line appears. */
async function baselineRun(stateDir: string): Promise<Sample> {
  const hosts = await createLabHosts('ttm');
  const service = await (async () => {
    await applyHostFirewall(hosts.instance, 'iptables-nft', { servicePorts: [LAB_SERVICE_PORT] });
    return startTcpService(hosts.instance, hosts.instanceAddress, LAB_SERVICE_PORT);
  })().catch(async (error) => {
    await hosts.destroy();
    throw error;
  });
  try {
    return await withConntrackMax(LAB_CONNTRACK_MAX, async () => {
      const follower = await followKernelLog({ netns: hosts.instance, gatherMs: 0 });
      const stop = new AbortController();
      try {
        const fix = follower.drops.then(async (trigger) => {
          const detected = Date.now();
          await runDocument({
            name: 'raise-limits',
            netns: hosts.instance,
            parameters: {
              ChangeId: `ttm-baseline-${Date.now()}`,
              MaxEntries: String(LAB_CONNTRACK_MAX * 4),
              HashSize: '',
              Timeouts: '',
              MemoryBudgetPercent: '5',
              Persist: 'false',
            },
            env: {
              CONNTRACK_RESPONDER_STATE_DIR: stateDir,
              CONNTRACK_RESPONDER_ROOT: join(stateDir, 'root'),
            },
          });
          return { trigger, detected };
        });
        await reproduceTableFull({ hosts, port: LAB_SERVICE_PORT, until: 'first-failure' });
        const { trigger, detected } = await fix;
        const recovered = await clientsRecovered(hosts, stop.signal);
        const first = Date.parse(trigger.firstSeen ?? new Date(detected).toISOString());
        return {
          ttdMs: detected - first,
          ttmMs: recovered === null ? null : Date.parse(recovered) - first,
          outcome: 'raised',
        };
      } finally {
        stop.abort();
        follower.stop();
      }
    });
  } finally {
    await service.stop();
    await hosts.destroy();
  }
}

const outRoot = await mkdtemp(join(tmpdir(), 'bench-ttm-'));
try {
  process.stdout.write(
    `bench/ttm: ${runs} responder run(s), ${baselineRuns} baseline run(s); nf_conntrack_max ${LAB_CONNTRACK_MAX} during each\n`,
  );
  const definition = await synthesizedWorkflowDefinition();
  const responder: Sample[] = [];
  for (let run = 1; run <= runs; run++) {
    const sample = await responderRun(definition, outRoot);
    responder.push(sample);
    process.stdout.write(
      `  responder run ${run}: ${sample.outcome}, time to detect ${seconds(sample.ttdMs)}, time to mitigate ${sample.ttmMs === null ? 'clients did not recover' : seconds(sample.ttmMs)}\n`,
    );
  }
  const baseline: Sample[] = [];
  for (let run = 1; run <= baselineRuns; run++) {
    const sample = await baselineRun(join(outRoot, `baseline-${run}`));
    baseline.push(sample);
    process.stdout.write(
      `  baseline run ${run}: time to detect ${seconds(sample.ttdMs)}, time to mitigate ${sample.ttmMs === null ? 'clients did not recover' : seconds(sample.ttmMs)}\n`,
    );
  }
  const ttm = responder.flatMap((sample) => (sample.ttmMs === null ? [] : [sample.ttmMs]));
  const ttd = responder.map((sample) => sample.ttdMs);
  if (ttm.length === 0) throw new Error('no responder run saw the clients recover');
  const t = stats(ttm);
  const d = stats(ttd);
  process.stdout.write(
    '\nbench/ttm results (first kernel drop line → clients served again; soak excluded)\n',
  );
  process.stdout.write(
    `  responder time to mitigate  min ${seconds(t.min)}  median ${seconds(t.median)}  max ${seconds(t.max)}  (${ttm.length}/${runs} runs recovered; target < 10 s)\n`,
  );
  process.stdout.write(
    `  responder time to detect    min ${seconds(d.min)}  median ${seconds(d.median)}  max ${seconds(d.max)}\n`,
  );
  const floor = baseline.flatMap((sample) => (sample.ttmMs === null ? [] : [sample.ttmMs]));
  if (floor.length > 0) {
    const b = stats(floor);
    process.stdout.write(
      `  baseline (raise at first drop) min ${seconds(b.min)}  median ${seconds(b.median)}  max ${seconds(b.max)}\n`,
    );
    process.stdout.write(`  ratio responder/baseline (medians): ${(t.median / b.median).toFixed(2)}\n`);
  }
  process.stdout.write(`  target met: ${t.max < 10_000 ? 'yes' : 'no'} (max ${seconds(t.max)})\n`);
} finally {
  await rm(outRoot, { recursive: true, force: true });
}
