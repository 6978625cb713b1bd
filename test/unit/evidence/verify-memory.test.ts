import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEvidenceBundle } from '../../../functions/core/evidence/bundle.js';
import { writeEvidenceBundle } from '../../../functions/local/evidence-writer.js';
import { remediatedIncident } from '../../support/evidence-builder.js';
import { endOfArchive, header } from '../../support/hostile-tar.js';
import { runCliProcess } from '../support/cli-process.js';

/**
 * Memory stays flat whatever `bundle verify` is given: the real CLI runs in a child process with a
 * bounded heap (--max-old-space-size=64) and reports its peak resident set size (getrusage
 * ru_maxrss). No timing is asserted. The inputs are generated here: /dev/zero, gzip bombs (a
 * .tar.gz of one member of zeros: 512 MiB in 0.5 MB, which took 1.65 GB before streaming), and
 * large members in a plain tar and in a folder (sparse files).
 *
 * Inputs refused early must cost no more than the genuine bundle (the baseline, measured in the
 * same run). Inputs read to the end (limits raised) must be flat: the peak for a large input is
 * within a few MiB of the peak for one three or four times smaller, and far below the input's
 * size. (The peak first rises by some 30 MiB, the Buffers V8 lets accumulate before collecting
 * them, then stays there: measured 96, 111, 111 MiB for 50, 200 and 800 MiB.)
 */

const MIB = 1024 * 1024;
/** What refusing early may add to the baseline. */
const EARLY_ALLOWANCE_MIB = 16;
/** How much the peak may grow when a streamed input grows three- or fourfold. */
const FLAT_ALLOWANCE_MIB = 16;
/** Any streamed input stays below this, whatever its size. */
const STREAMED_CEILING_MIB = 160;

interface Run {
  readonly code: number | null;
  readonly peakMiB: number;
  /** stdout and stderr together. */
  readonly output: string;
}

async function verify(args: string[]): Promise<Run> {
  const run = await runCliProcess(['bundle', 'verify', ...args], undefined, {
    node: ['--max-old-space-size=64'],
  });
  return { code: run.code, peakMiB: run.maxRssKiB / 1024, output: run.stdout + run.stderr };
}

async function writeZeros(stream: NodeJS.WritableStream, bytes: number): Promise<void> {
  const zeros = Buffer.alloc(MIB);
  for (let left = bytes; left > 0; left -= MIB) {
    if (!stream.write(left >= MIB ? zeros : zeros.subarray(0, left))) {
      await new Promise((resolve) => stream.once('drain', resolve));
    }
  }
}

/** A tar of one member of `bytes` zeros, written sparse: the file takes no disk space. */
async function sparseTar(path: string, bytes: number): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.write(header({ path: 'inc/huge.bin', size: bytes }), 0, 512, 0);
    const end = 512 + bytes;
    const trailer = endOfArchive(end);
    await handle.write(trailer, 0, trailer.length, end);
  } finally {
    await handle.close();
  }
}

/** A folder holding one sparse file of `bytes` zeros and a manifest that lists nothing. */
async function sparseFolder(path: string, bytes: number): Promise<void> {
  await mkdir(path);
  const handle = await open(join(path, 'huge.bin'), 'w');
  await handle.truncate(bytes);
  await handle.close();
  await writeFile(join(path, 'manifest.json'), '{}');
}

/** A .tar.gz of one member of `bytes` zeros: about 1000:1. */
async function gzipBomb(path: string, bytes: number): Promise<void> {
  const gzip = createGzip({ level: 9 });
  const out = createWriteStream(path);
  const written = new Promise<void>((resolve, reject) =>
    out.on('finish', () => resolve()).on('error', reject),
  );
  gzip.pipe(out);
  gzip.write(header({ path: 'inc/bomb.bin', size: bytes }));
  await writeZeros(gzip, bytes);
  gzip.end(endOfArchive(512 + bytes));
  await written;
}

describe('bundle verify memory, whatever the input', () => {
  let work: string;
  let baseline: Run;
  const raised = ['--max-member-mib', '1024', '--max-total-mib', '1024', '--max-ratio', '5000'];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'ctr-verify-memory-'));
    await writeEvidenceBundle(work, buildEvidenceBundle(remediatedIncident()));
    for (const mib of [128, 512]) await gzipBomb(join(work, `bomb-${mib}.tar.gz`), mib * MIB);
    for (const mib of [128, 384]) await sparseTar(join(work, `huge-${mib}.tar`), mib * MIB);
    for (const mib of [128, 384]) await sparseFolder(join(work, `folder-${mib}`), mib * MIB);
    baseline = await verify([join(work, 'inc-42.tar.gz')]);
  }, 120_000);

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('the baseline: a genuine bundle verifies in the child', () => {
    expect(baseline.code, baseline.output).toBe(0);
    expect(baseline.peakMiB).toBeGreaterThan(10);
  });

  it.each([
    ['/dev/zero', () => ['/dev/zero'], 1, /not a tar archive/],
    [
      'a gzip bomb (512 MiB of zeros in 0.5 MB)',
      () => [join(work, 'bomb-512.tar.gz')],
      3,
      /\[maxMemberBytes\]/,
    ],
    [
      'a gzip bomb with a member under the limit',
      () => [join(work, 'bomb-512.tar.gz'), '--max-member-mib', '1024', '--max-total-mib', '1024'],
      3,
      /\[maxCompressionRatio\]/,
    ],
    ['a 384 MiB member in a plain tar', () => [join(work, 'huge-384.tar')], 3, /\[maxMemberBytes\]/],
    ['a 384 MiB file in a folder', () => [join(work, 'folder-384')], 3, /\[maxMemberBytes\]/],
  ])(
    'refused early: %s',
    async (_name, args, code, message) => {
      const run = await verify(args());
      expect(run.code, run.output).toBe(code);
      expect(run.output).toMatch(message);
      expect(
        run.peakMiB,
        `peak ${run.peakMiB.toFixed(0)} MiB, baseline ${baseline.peakMiB.toFixed(0)} MiB`,
      ).toBeLessThan(baseline.peakMiB + EARLY_ALLOWANCE_MIB);
    },
    120_000,
  );

  it.each([
    ['a gzip bomb', 'bomb-128.tar.gz', 'bomb-512.tar.gz', /\[manifest-missing\]/],
    ['a member of a plain tar', 'huge-128.tar', 'huge-384.tar', /\[manifest-missing\]/],
    ['a file in a folder', 'folder-128', 'folder-384', /\[manifest-format\]/],
  ])(
    'read to the end, flat: %s, small and large',
    async (_name, small, large, message) => {
      const smaller = await verify([join(work, small), ...raised]);
      const larger = await verify([join(work, large), ...raised]);
      for (const run of [smaller, larger]) {
        expect(run.code, run.output).toBe(1);
        expect(run.output).toMatch(message);
      }
      const figures = `peaks ${smaller.peakMiB.toFixed(0)} and ${larger.peakMiB.toFixed(0)} MiB`;
      expect(larger.peakMiB - smaller.peakMiB, figures).toBeLessThan(FLAT_ALLOWANCE_MIB);
      expect(larger.peakMiB, figures).toBeLessThan(STREAMED_CEILING_MIB);
    },
    120_000,
  );
});
