/**
 * Benchmark: `conntrack-responder detect --json FILE` against `grep -c 'table full' FILE` on the
 * same generated 1,000,000-line syslog file, in the same run, for two mixes: an incident (1 %
 * conntrack lines, 8 % other kernel lines) and a busy node's kernel log (about a fifth of the
 * lines unrelated kernel messages). Both programs write to a pipe: GNU grep stops at the first
 * match when its output is /dev/null, which would be no baseline. Wall time of the real CLI process
 * (start-up included), several alternating runs, medians. Target: ratio <= 3.
 *
 *   npm run bench:detect [-- --lines N --runs N]
 */
import { spawn } from 'node:child_process';
import { constants, createWriteStream } from 'node:fs';
import { access, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type GeneratedLog, generateLog } from './generate.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const cli = join(root, 'bin/conntrack-responder.mjs');

interface Timed {
  readonly ms: number;
  /** User + system CPU time of the process, when GNU time is available to measure it. */
  readonly cpuMs: number | null;
  readonly stdout: string;
  readonly code: number;
}

const GNU_TIME = '/usr/bin/time';
const hasGnuTime = await access(GNU_TIME, constants.X_OK).then(
  () => true,
  () => false,
);

/** Runs a program (argument vector, no shell) and measures its wall time, and its CPU time when possible. */
async function timed(file: string, args: string[], scratch: string): Promise<Timed> {
  const cpuFile = join(scratch, 'cpu');
  const [command, commandArgs] = hasGnuTime
    ? [GNU_TIME, ['-f', '%U %S', '-o', cpuFile, file, ...args]]
    : [file, args];
  const result = await new Promise<Omit<Timed, 'cpuMs'>>((resolvePromise, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'inherit'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      resolvePromise({ ms, stdout: Buffer.concat(out).toString('utf8'), code: code ?? -1 });
    });
  });
  let cpuMs: number | null = null;
  if (hasGnuTime) {
    const [user, system] =
      (await readFile(cpuFile, 'utf8')).trim().split('\n').pop()?.split(' ').map(Number) ?? [];
    if (Number.isFinite(user) && Number.isFinite(system))
      cpuMs = ((user as number) + (system as number)) * 1000;
  }
  return { ...result, cpuMs };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

async function writeLines(path: string, lines: string[]): Promise<void> {
  const stream = createWriteStream(path);
  const batch = 10_000;
  for (let index = 0; index < lines.length; index += batch) {
    const ok = stream.write(`${lines.slice(index, index + batch).join('\n')}\n`);
    if (!ok) await new Promise<void>((resolveDrain) => stream.once('drain', () => resolveDrain()));
  }
  await new Promise<void>((resolveEnd, reject) =>
    stream.end((error?: Error | null) => (error ? reject(error) : resolveEnd())),
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { lines: { type: 'string', default: '1000000' }, runs: { type: 'string', default: '5' } },
  });
  const lineCount = Number(values.lines);
  const runs = Number(values.runs);
  if (!Number.isInteger(lineCount) || lineCount < 10_000)
    throw new Error('--lines must be an integer >= 10000');
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');

  const dir = await mkdtemp(join(tmpdir(), 'bench-detect-'));
  try {
    const empty = join(dir, 'empty');
    await writeFile(empty, '');
    // Yesterday: year-less syslog times then resolve to the real date whatever today is.
    const day = new Date(Date.now() - 86_400_000);
    const ratios: string[] = [];
    for (const mix of ['incident', 'kernel-mix'] as const) {
      const log = generateLog(lineCount, day, { mix });
      const file = join(dir, mix);
      await writeLines(file, log.text);
      const ratio = await measure(mix, log, file, empty, dir, lineCount, runs);
      ratios.push(`${mix} ${ratio.toFixed(2)}`);
      await rm(file);
    }
    console.log(
      `\nload average at the end: ${loadavg()
        .map((value) => value.toFixed(2))
        .join(' ')} on ${availableParallelism()} CPUs; ratios: ${ratios.join(', ')}`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Times detect and the grep baseline on one file, alternating; prints the figures, returns the ratio of medians. */
async function measure(
  mix: string,
  log: GeneratedLog,
  file: string,
  empty: string,
  dir: string,
  lineCount: number,
  runs: number,
): Promise<number> {
  const bytes = (await stat(file)).size;
  const kernelLines = log.text.filter((line) => line.includes(' kernel: ')).length;
  console.log(
    `\n${mix}: ${lineCount.toLocaleString('en')} lines, ${(bytes / 1e6).toFixed(1)} MB, ${log.tableFullLines} "table full" lines, ${((100 * kernelLines) / lineCount).toFixed(1)} % kernel lines`,
  );

  // Warm-up: page cache, the cached detect bundle.
  await timed('grep', ['-c', 'table full', file], dir);
  const warm = await timed(process.execPath, [cli, 'detect', '--json', file], dir);
  const report = JSON.parse(warm.stdout);
  if (warm.code !== 0 || JSON.stringify(report) !== JSON.stringify(log.expected)) {
    console.error('detect output:', warm.stdout);
    console.error('expected:     ', JSON.stringify(log.expected));
    throw new Error('detect did not produce the expected report: the timing would be meaningless');
  }

  const grepRuns: Timed[] = [];
  const detectRuns: Timed[] = [];
  const startupRuns: Timed[] = [];
  for (let run = 0; run < runs; run++) {
    const grep = await timed('grep', ['-c', 'table full', file], dir);
    if (grep.stdout.trim() !== String(log.tableFullLines))
      throw new Error(`grep counted ${grep.stdout.trim()}`);
    grepRuns.push(grep);
    const detect = await timed(process.execPath, [cli, 'detect', '--json', file], dir);
    if (detect.code !== 0) throw new Error(`detect exited ${detect.code}`);
    detectRuns.push(detect);
    startupRuns.push(await timed(process.execPath, [cli, 'detect', '--json', empty], dir));
  }
  const detectMs = detectRuns.map((run) => run.ms);
  const grepMs = grepRuns.map((run) => run.ms);
  const startupMs = startupRuns.map((run) => run.ms);
  const detectMedian = median(detectMs);
  const grepMedian = median(grepMs);
  const startupMedian = median(startupMs);
  const perSecond = (ms: number) => lineCount / (ms / 1000);
  const megabytesPerSecond = (ms: number) => bytes / 1e6 / (ms / 1000);
  const format = (value: number) => Math.round(value).toLocaleString('en');
  console.log(`runs: ${runs} (medians; all detect runs ms: ${detectMs.map(format).join(', ')})`);
  console.log(
    `detect --json: ${format(detectMedian)} ms  ${format(perSecond(detectMedian))} lines/s  ${megabytesPerSecond(detectMedian).toFixed(0)} MB/s`,
  );
  console.log(
    `grep -c:       ${format(grepMedian)} ms  ${format(perSecond(grepMedian))} lines/s  ${megabytesPerSecond(grepMedian).toFixed(0)} MB/s`,
  );
  console.log(
    `detect start-up (empty file): ${format(startupMedian)} ms; scanning: ${format(detectMedian - startupMedian)} ms`,
  );
  const cpu = (list: Timed[]) =>
    list.every((run) => run.cpuMs !== null) ? median(list.map((run) => run.cpuMs as number)) : null;
  const [detectCpu, grepCpu, startupCpu] = [cpu(detectRuns), cpu(grepRuns), cpu(startupRuns)];
  if (detectCpu !== null && grepCpu !== null && startupCpu !== null) {
    console.log(
      `CPU time (user+sys, medians): detect ${format(detectCpu)} ms (start-up ${format(startupCpu)} ms), grep ${format(grepCpu)} ms, ratio ${(detectCpu / grepCpu).toFixed(2)}`,
    );
  }
  // On a shared machine contention only ever adds time: the fastest run is the least disturbed.
  const fastest = (list: Timed[]) => Math.min(...list.map((run) => run.ms));
  console.log(
    `fastest runs: detect ${format(fastest(detectRuns))} ms, grep ${format(fastest(grepRuns))} ms, ratio ${(fastest(detectRuns) / fastest(grepRuns)).toFixed(2)}`,
  );
  const ratio = detectMedian / grepMedian;
  console.log(`ratio detect/grep: ${ratio.toFixed(2)} (target <= 3: ${ratio <= 3 ? 'met' : 'missed'})`);
  return ratio;
}

await main();
