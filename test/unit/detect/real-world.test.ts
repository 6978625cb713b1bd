import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../../functions/cli/main.js';
import { captureIo } from '../support/capture-io.js';
import { READ_AT, REAL_WORLD_SAMPLES, type RealWorldSample } from './real-world.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'detect-real-world-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs the sample, verbatim, through `conntrack-responder detect --json` as a file. */
async function detectSample(sample: RealWorldSample, index: number) {
  const file = join(dir, `sample-${index}.log`);
  await writeFile(file, sample.text);
  const captured = captureIo();
  const args = ['detect', '--json', '--now', READ_AT, ...(sample.host ? ['--host', sample.host] : []), file];
  await main(args, captured.io);
  const named = [...captured.stderr().matchAll(new RegExp(`${file}:(\\d+):`, 'g'))].map((match) =>
    Number(match[1]),
  );
  return { report: JSON.parse(captured.stdout()), named };
}

describe('real kernel logs pasted by strangers, verbatim', () => {
  it.each(REAL_WORLD_SAMPLES.map((sample, index) => [sample.name, sample, index] as const))(
    '%s',
    async (_name, sample, index) => {
      const { report, named } = await detectSample(sample, index);
      expect(
        report.groups.map((group: Record<string, unknown>) => [
          group.host,
          group.netns,
          group.kind,
          group.dropLines,
          group.suppressed,
        ]),
      ).toEqual(sample.expected.groups);
      expect(report.ignored['not-kernel']).toBe(sample.expected.notKernel ?? 0);
      expect(report.ignored.unrelated).toBe(sample.expected.unrelated ?? 0);
      expect(named).toEqual(sample.expected.named ?? []);
      if (sample.expected.span !== undefined) {
        expect([report.groups[0]?.firstSeen, report.groups[0]?.lastSeen]).toEqual(sample.expected.span);
      }
    },
  );
});
