import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  RAMP_CONNTRACK_MAX,
  RAMP_DEFAULT_PER_SECOND,
  type RampLabResult,
  runRampLab,
} from '../../functions/local/lab/ramp.js';
import { readConntrackBuckets, withConntrackBucketsRestored } from './support/global-settings.js';
import { labUnavailable } from './support/prerequisites.js';

/**
 * Issue 13 on the real kernel: a namespace filled at a steady connection rate until it was asked
 * to hold twice its limit, with `watch` sampling it through the host-sampler document's script and
 * the detect function's forecast. The responder must act before the first drop: the kernel's own
 * drop counter for the namespace never rises, and every connection of the fill succeeds.
 */

const MAX_PATH = '/proc/sys/net/netfilter/nf_conntrack_max';

async function globalMax(): Promise<number> {
  return Number.parseInt((await readFile(MAX_PATH, 'utf8')).trim(), 10);
}

describe.skipIf(labUnavailable)('a gradual fill is fixed before the first drop (real kernel)', () => {
  let result: RampLabResult;
  let outRoot: string;
  let maxBefore: number;
  let bucketsBefore: number;
  let limitDuringRun: number;
  let output = '';

  beforeAll(async () => {
    outRoot = await mkdtemp(join(tmpdir(), 'lab-ramp-'));
    maxBefore = await globalMax();
    bucketsBefore = await readConntrackBuckets();
    const stdout = new PassThrough();
    stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    // The workflow raises the global limit (and could resize the hash): both are put back.
    result = await withConntrackBucketsRestored(() =>
      runRampLab({
        perSecond: RAMP_DEFAULT_PER_SECOND,
        mode: 'auto',
        approval: 'reject',
        outRoot,
        soakSeconds: 2,
        backend: 'iptables-nft',
        stdin: new PassThrough(),
        stdout,
        beforeRestore: async () => {
          limitDuringRun = await globalMax();
        },
      }),
    );
  }, 240_000);
  afterAll(async () => {
    if (outRoot) await rm(outRoot, { recursive: true, force: true });
  });

  it('fills at a steady rate to twice the limit', () => {
    expect(result.ramp.attempted).toBe(2 * RAMP_CONNTRACK_MAX);
    // The generator kept its schedule: the fill really was steady, not a late burst.
    expect(result.ramp.lateMs).toBeLessThan(1000);
    expect(result.ramp.elapsedMs).toBeGreaterThanOrEqual(
      ((2 * RAMP_CONNTRACK_MAX - 1) / RAMP_DEFAULT_PER_SECOND) * 1000,
    );
  });

  it('opens a near-full incident from the samples and remediates it', () => {
    expect(result.incident.trigger.kind).toBe('near-full');
    expect(result.incident.result.outcome?.status).toBe('remediated');
    expect(result.incident.result.state?.verification).toMatchObject({ held: true });
    expect(result.fixLandedAt).not.toBeNull();
    // Before the table would have been full at the fill's rate.
    expect(result.leadTimeMs).toBeGreaterThan(0);
    expect(output).toContain('near-full forecast');
  });

  it('never lets the kernel drop a packet, and every connection succeeds', () => {
    expect(result.dropsAfter).toBe(result.dropsBefore);
    expect(result.ramp.failed).toBe(0);
    expect(result.ramp.succeeded).toBe(result.ramp.attempted);
    expect(result.finalProbe).toEqual(expect.objectContaining({ attempted: 5, succeeded: 5 }));
  });

  it('holds more entries than the old limit at the end: the demand really passed it', () => {
    expect(limitDuringRun).toBeGreaterThan(RAMP_CONNTRACK_MAX);
    expect(result.countAfter).toBeGreaterThan(RAMP_CONNTRACK_MAX);
  });

  it('writes a near-full evidence bundle that tells the story ahead of the outage', async () => {
    const bundle = result.incident.result.bundle;
    expect(bundle).not.toBeNull();
    const postmortem = await readFile(join(bundle?.directory ?? '', 'postmortem.md'), 'utf8');
    expect(postmortem).toContain('Ahead of the outage');
    const forecast = JSON.parse(await readFile(join(bundle?.directory ?? '', 'forecast.json'), 'utf8'));
    expect(forecast.samples.length).toBeGreaterThanOrEqual(5);
  });

  it('puts every global setting back', async () => {
    expect(await globalMax()).toBe(maxBefore);
    expect(await readConntrackBuckets()).toBe(bucketsBefore);
  });
});
