import { describe, expect, it } from 'vitest';
import {
  type AllowanceSample,
  allowanceFindings,
  allowanceRates,
} from '../../../functions/core/allowance/counters.js';

const at = (seconds: number, exceeded: number | null, available: number | null = null, name = 'ens5') =>
  ({ at: seconds * 1000, interfaces: [{ name, exceeded, available }] }) satisfies AllowanceSample;

/** A small deterministic generator (mulberry32), so a failing case can be replayed. */
function random(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

describe('allowanceRates', () => {
  it('takes the first sample as a baseline: one sample gives no rate, whatever its value', () => {
    const [ens5] = allowanceRates([at(0, 123_456, 900)]);
    expect(ens5).toMatchObject({
      exceededIncrease: 0,
      coveredSeconds: 0,
      exceededPerSecond: null,
      available: 900,
    });
  });

  it('measures the rise over the whole window, in samples given in any order', () => {
    const [ens5] = allowanceRates([at(60, 160), at(0, 100), at(120, 220), at(30, 130)]);
    expect(ens5).toMatchObject({
      exceededIncrease: 120,
      coveredSeconds: 120,
      exceededPerSecond: 1,
      resets: 0,
    });
  });

  it('counts a driver reset from zero (the counter restarts), not as a negative rise', () => {
    // 500 → 700 (+200), reset, 40 (+40 since the reset), 90 (+50).
    const [ens5] = allowanceRates([at(0, 500), at(10, 700), at(20, 40), at(30, 90)]);
    expect(ens5).toMatchObject({ exceededIncrease: 290, coveredSeconds: 30, resets: 1 });
  });

  it('does not compare across a gap longer than maxGapMs: the later sample is a new baseline', () => {
    const [ens5] = allowanceRates([at(0, 10), at(60, 20), at(3600, 5000), at(3660, 5000)], {
      maxGapMs: 300_000,
    });
    expect(ens5).toMatchObject({ exceededIncrease: 10, coveredSeconds: 120 });
  });

  it('skips samples without the counter and keeps the newest available reading', () => {
    const rates = allowanceRates([at(0, 1, 5000), at(10, null, 4000), at(20, 3, null)]);
    expect(rates[0]).toMatchObject({ exceededIncrease: 2, coveredSeconds: 20, available: 4000 });
  });

  it('ignores values no counter can hold (negative, fractional, unsafe)', () => {
    const rates = allowanceRates([
      at(0, 5),
      at(10, -3),
      at(20, 2.5),
      at(30, Number.MAX_SAFE_INTEGER + 2),
      at(40, 9),
    ]);
    expect(rates[0]).toMatchObject({ exceededIncrease: 4, coveredSeconds: 40, resets: 0 });
  });

  it('keeps interfaces apart', () => {
    const rates = allowanceRates([
      {
        at: 0,
        interfaces: [
          { name: 'ens5', exceeded: 0, available: null },
          { name: 'ens6', exceeded: 7, available: 10 },
        ],
      },
      {
        at: 5000,
        interfaces: [
          { name: 'ens5', exceeded: 50, available: null },
          { name: 'ens6', exceeded: 7, available: 10 },
        ],
      },
    ]);
    expect(rates.map((rate) => [rate.name, rate.exceededIncrease])).toEqual([
      ['ens5', 50],
      ['ens6', 0],
    ]);
  });

  it('property: the increase is never negative, equals last − first when the counter never falls, and stays finite', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const next = random(seed);
      const samples: AllowanceSample[] = [];
      let value = Math.floor(next() * 1e9);
      let monotonic = true;
      const first = value;
      let time = 0;
      for (let i = 0; i < 2 + Math.floor(next() * 40); i++) {
        if (next() < 0.1) {
          value = Math.floor(next() * 100);
          monotonic = false;
        } else {
          value += Math.floor(next() * 1000);
        }
        time += 1 + Math.floor(next() * 120);
        samples.push(at(time, value));
      }
      samples.unshift(at(0, first));
      const [rate] = allowanceRates(samples);
      expect(rate?.exceededIncrease, `seed ${seed}`).toBeGreaterThanOrEqual(0);
      expect(Number.isFinite(rate?.exceededPerSecond ?? 0), `seed ${seed}`).toBe(true);
      if (monotonic) expect(rate?.exceededIncrease, `seed ${seed}`).toBe(value - first);
    }
  });
});

describe('allowanceFindings', () => {
  it('finds an exhausted allowance by a rising counter and a low one by the available count', () => {
    const rates = allowanceRates([
      {
        at: 0,
        interfaces: [
          { name: 'ens5', exceeded: 10, available: 50_000 },
          { name: 'ens6', exceeded: 0, available: 800 },
        ],
      },
      {
        at: 3000,
        interfaces: [
          { name: 'ens5', exceeded: 310, available: 0 },
          { name: 'ens6', exceeded: 0, available: 700 },
        ],
      },
    ]);
    const findings = allowanceFindings(rates, { lowAvailable: 1000, maxExceededPerSecond: 0 });
    expect(findings.map((finding) => [finding.name, finding.exhausted, finding.low])).toEqual([
      ['ens5', true, true],
      ['ens6', false, true],
    ]);
    expect(findings[0]?.detail).toBe(
      'ens5: conntrack_allowance_exceeded rose by 300 in 3 s (100.0/s); conntrack_allowance_available is 0 (at or below 1000)',
    );
  });

  it('finds nothing on quiet counters, nor on a single baseline sample however large', () => {
    expect(allowanceFindings(allowanceRates([at(0, 999_999, 90_000), at(3, 999_999, 90_000)]))).toEqual([]);
    expect(allowanceFindings(allowanceRates([at(0, 999_999)]))).toEqual([]);
  });
});
