import { describe, expect, it } from 'vitest';
import {
  kubeProxyConntrackMax,
  type SizingInput,
  sizeConntrackTable,
} from '../../../functions/core/plan/sizing.js';

const GIB = 1024 ** 3;
const base: SizingInput = {
  observedCount: 262_144,
  currentMax: 262_144,
  currentBuckets: 262_144,
  cpuCount: 4,
  memTotalBytes: 16 * GIB,
  entryBytes: 256,
  memoryBudgetPercent: 5,
  maxRaiseFactor: 4,
  maxEntriesCeiling: 4_194_304,
};

describe('kubeProxyConntrackMax', () => {
  it.each([
    [1, 131_072],
    [4, 131_072],
    [8, 262_144],
    [64, 2_097_152],
  ])('%i CPUs → %i (max(32768 × CPUs, 131072))', (cpus, expected) => {
    expect(kubeProxyConntrackMax(cpus)).toBe(expected);
  });
});

describe('sizeConntrackTable', () => {
  it.each([
    {
      name: 'doubles a full default table on a 16 GiB host',
      input: {},
      newMax: 524_288,
      newBuckets: null,
      limitedBy: 'wanted',
    },
    {
      name: 'uses the observed count when it exceeds the limit read at another moment',
      input: { observedCount: 300_000 },
      newMax: 655_360,
      newBuckets: null,
      limitedBy: 'wanted',
    },
    {
      name: 'lifts to the kube-proxy floor on a many-core host',
      input: { cpuCount: 32, currentMax: 262_144, observedCount: 200_000 },
      newMax: 1_048_576,
      // exactly 4 entries per bucket: still acceptable, no resize stall
      newBuckets: null,
      limitedBy: 'wanted',
    },
    {
      name: 'stops at the memory budget (5% of 4 GiB / 392 B = 547,827 → 547,840 rounded down to 1024 is 546,816)',
      input: { memTotalBytes: 4 * GIB, currentMax: 262_144, observedCount: 262_144, cpuCount: 64 },
      newMax: 546_816,
      newBuckets: null,
      limitedBy: 'memory-budget',
    },
    {
      name: 'assumes a 384-byte slab object when slabinfo was unreadable',
      input: { entryBytes: null, memTotalBytes: 4 * GIB, cpuCount: 64 },
      // 214,748,364 B / (384 + 128 + 8) = 412,977 → 412,672
      newMax: 412_672,
      newBuckets: null,
      limitedBy: 'memory-budget',
    },
    {
      name: 'stops at the policy ceiling',
      input: { maxEntriesCeiling: 300_000 },
      newMax: 299_008,
      newBuckets: null,
      limitedBy: 'ceiling',
    },
    {
      name: 'resizes the hash table 1:1 when the ratio would pass 4',
      input: { currentBuckets: 65_536 },
      newMax: 524_288,
      newBuckets: 524_288,
      limitedBy: 'wanted',
    },
    {
      name: 'resizes to the budget-limited maximum, not to the wanted one',
      input: { memTotalBytes: 4 * GIB, currentBuckets: 16_384, cpuCount: 64 },
      newMax: 546_816,
      newBuckets: 546_816,
      limitedBy: 'memory-budget',
    },
    {
      name: 'refuses when the budget is already spent',
      input: { memTotalBytes: 1 * GIB },
      newMax: null,
      newBuckets: null,
      limitedBy: 'memory-budget',
    },
  ])('$name', ({ input, newMax, newBuckets, limitedBy }) => {
    const result = sizeConntrackTable({ ...base, ...input });
    expect(result.newMax).toBe(newMax);
    expect(result.newBuckets).toBe(newBuckets);
    expect(result.limitedBy).toBe(limitedBy);
    if (result.newMax !== null) {
      expect(result.totalBytesIfFull).toBeLessThanOrEqual(result.budgetBytes);
      expect(result.newMax).toBeGreaterThan(input.currentMax ?? base.currentMax);
    }
  });

  it('counts the added entries at slab + extension and the added buckets at 8 bytes', () => {
    const result = sizeConntrackTable({ ...base, currentBuckets: 65_536 });
    expect(result.addedBytesIfFull).toBe(262_144 * (256 + 128) + (524_288 - 65_536) * 8);
  });
});
