/**
 * bench/sampler: what does one sample of the host sampler cost?
 *
 * The sampler is the host-sampler document's script (composed as SSM runs it, the copy that gets
 * installed) running `run`: one resident bash loop of builtins. Measured in the same run, on the
 * same counter sources:
 *   - the resident loop, CONNTRACK_SAMPLER_SAMPLES samples with no pause between them: CPU (user +
 *     system, from the shell's `times`) divided by the samples;
 *   - baseline "a process per sample", what a timer-started sampler pays at least: `host-sampler.sh
 *     once` started once per sample (bash start-up included, systemd's own unit start not);
 *   - baseline "cat": `cat /proc/net/stat/nf_conntrack` started once per sample, the cheapest
 *     possible process per sample.
 * Sources: this machine's /proc, and fake /proc trees (CONNTRACK_RESPONDER_PROC) with 64 and 192
 * CPUs, since /proc/net/stat/nf_conntrack has one line per CPU. Read-only: no lab lock needed.
 * Target (issue 13): well under 1 ms of CPU per sample.
 *
 * Usage: npm run bench:sampler [-- --samples 20000 --spawned 300 --runs 3]
 */

import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execFile } from '../../functions/local/exec.js';
import { loadRunbook } from '../../functions/local/runbooks.js';

const HEADER =
  'entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart';

async function fakeProc(root: string, cpuCount: number): Promise<string> {
  const proc = join(root, `proc-${cpuCount}`);
  await mkdir(join(proc, 'sys/net/netfilter'), { recursive: true });
  await mkdir(join(proc, 'net/stat'), { recursive: true });
  await mkdir(join(proc, 'sys/kernel/random'), { recursive: true });
  await mkdir(join(proc, 'self/ns'), { recursive: true });
  await writeFile(join(proc, 'sys/net/netfilter/nf_conntrack_count'), '123456\n');
  await writeFile(join(proc, 'sys/net/netfilter/nf_conntrack_max'), '262144\n');
  await writeFile(join(proc, 'sys/kernel/random/boot_id'), '1f0e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\n');
  await symlink('net:[4026531840]', join(proc, 'self/ns/net'));
  const line = (cpu: number) =>
    HEADER.split(/\s+/)
      .map((_, column) => ((cpu * 31 + column * 7) % 4096).toString(16).padStart(8, '0'))
      .join(' ');
  const lines = [HEADER, ...Array.from({ length: cpuCount }, (_, cpu) => line(cpu))];
  await writeFile(join(proc, 'net/stat/nf_conntrack'), `${lines.join('\n')}\n`);
  return proc;
}

/** Children's user + system seconds as bash's `times` prints them (its second line). */
function childCpuSeconds(timesOutput: string): number {
  const lines = timesOutput.trim().split('\n');
  const children = lines.at(-1) ?? '';
  const values = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map(
    (match) => Number(match[1]) * 60 + Number(match[2]),
  );
  if (values.length !== 2) throw new Error(`unexpected output of times: ${JSON.stringify(timesOutput)}`);
  return (values[0] ?? 0) + (values[1] ?? 0);
}

async function cpuOf(
  shellText: string,
  args: readonly string[],
  env: Record<string, string>,
): Promise<number> {
  const { stdout } = await execFile('bash', ['-c', `${shellText}\ntimes`, 'bench', ...args], { env });
  return childCpuSeconds(stdout);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      samples: { type: 'string', default: '20000' },
      spawned: { type: 'string', default: '300' },
      runs: { type: 'string', default: '3' },
    },
  });
  const samples = Number(values.samples);
  const spawned = Number(values.spawned);
  const runs = Number(values.runs);
  const work = await mkdtemp(join(tmpdir(), 'ctr-bench-sampler-'));
  try {
    const { document } = await loadRunbook('host-sampler');
    const script = join(work, 'host-sampler');
    await writeFile(script, `${document.mainSteps[0].inputs.runCommand.join('\n')}\n`, { mode: 0o755 });
    const sources = [
      { label: `this host's /proc (${cpus().length} CPUs)`, proc: '/proc' },
      { label: 'fake /proc, 64 CPUs', proc: await fakeProc(work, 64) },
      { label: 'fake /proc, 192 CPUs', proc: await fakeProc(work, 192) },
    ];
    process.stdout.write(
      `bench/sampler: ${samples} samples per resident run, ${spawned} processes per baseline, median of ${runs} runs\n\n`,
    );
    const rows: string[] = [];
    for (const source of sources) {
      const env = { CONNTRACK_RESPONDER_PROC: source.proc };
      const resident: number[] = [];
      const perProcess: number[] = [];
      const cat: number[] = [];
      for (let run = 0; run < runs; run++) {
        const residentSeconds = await cpuOf('bash "$1" run >/dev/null', [script], {
          ...env,
          CONNTRACK_SAMPLER_INTERVAL: '0',
          CONNTRACK_SAMPLER_SAMPLES: String(samples),
        });
        resident.push((residentSeconds / samples) * 1000);
        const processSeconds = await cpuOf(
          'for ((i = 0; i < $2; i++)); do bash "$1" once >/dev/null; done',
          [script, String(spawned)],
          env,
        );
        perProcess.push((processSeconds / spawned) * 1000);
        const catSeconds = await cpuOf(
          'for ((i = 0; i < $2; i++)); do cat "$1" >/dev/null; done',
          [join(source.proc, 'net/stat/nf_conntrack'), String(spawned)],
          env,
        );
        cat.push((catSeconds / spawned) * 1000);
      }
      const r = median(resident);
      const p = median(perProcess);
      const c = median(cat);
      rows.push(
        `| ${source.label} | **${r.toFixed(3)} ms** | ${p.toFixed(2)} ms | ${c.toFixed(2)} ms | ${(p / r).toFixed(0)}× | ${(c / r).toFixed(1)}× |`,
      );
    }
    process.stdout.write(
      [
        '| counter source | resident loop, CPU per sample | a process per sample (`once`) | `cat` per sample | process / loop | cat / loop |',
        '| --- | --- | --- | --- | --- | --- |',
        ...rows,
        '',
      ].join('\n'),
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench/sampler: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
