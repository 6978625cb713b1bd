import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY, resolvePolicy, withMode } from '../../../functions/core/plan/policy.js';

describe('resolvePolicy', () => {
  it('gives the safe defaults: raises automatic, timeouts, NOTRACK and ENI timeouts need approval', () => {
    const policy = resolvePolicy();
    expect(policy.modes).toEqual({
      'raise-limits': 'auto',
      'shorten-timeouts': 'approve',
      'notrack-ports': 'approve',
      'eni-timeouts': 'approve',
    });
    expect(policy.allowance.lowAvailable).toBe(1000);
    expect(policy.verify.maxAllowanceExceededPerSecond).toBe(0);
    expect(policy.memoryBudgetPercent).toBe(5);
    expect(policy.notrack.protectedPorts.map((rule) => rule.port)).toEqual([22, 443, 53]);
  });

  it('keeps every default it is not told to change, at every depth', () => {
    const policy = resolvePolicy({ modes: { 'notrack-ports': 'dry-run' }, notrack: { maxPorts: 2 } });
    expect(policy.modes['raise-limits']).toBe('auto');
    expect(policy.modes['notrack-ports']).toBe('dry-run');
    expect(policy.notrack.maxPorts).toBe(2);
    expect(policy.notrack.protectedPorts).toEqual(DEFAULT_POLICY.notrack.protectedPorts);
  });

  it.each([
    [{ memoryBudgetPercent: 80 }, /memoryBudgetPercent/],
    [{ modes: { 'raise-limits': 'yolo' } }, /modes\.raise-limits/],
    [{ notrack: { maxPorts: 16 } }, /notrack\.maxPorts/],
    [{ nearFullRatio: 1.5 }, /nearFullRatio/],
    [{ surprise: true }, /surprise|Unrecognized/],
    [{ verify: { maxUsageRatio: 0.95 } }, /must not exceed nearFullRatio/],
  ])('names the offending field of %j', (overrides, message) => {
    expect(() => resolvePolicy(overrides)).toThrow(message);
  });
});

describe('a resolved policy', () => {
  it('resolves to itself after a trip through JSON (the workflow re-reads the plan’s policy to verify)', () => {
    const policy = resolvePolicy({
      memoryBudgetPercent: 7,
      modes: { 'notrack-ports': 'auto' },
      notrack: { maxPorts: 2 },
    });
    expect(resolvePolicy(JSON.parse(JSON.stringify(policy)))).toEqual(policy);
  });
});

describe('withMode', () => {
  it('sets one mode for every action kind and leaves the rest alone', () => {
    const policy = withMode(resolvePolicy({ memoryBudgetPercent: 7 }), 'dry-run');
    expect(Object.values(policy.modes)).toEqual(['dry-run', 'dry-run', 'dry-run', 'dry-run']);
    expect(policy.memoryBudgetPercent).toBe(7);
  });
});
