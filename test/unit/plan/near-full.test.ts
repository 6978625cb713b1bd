import { describe, expect, it } from 'vitest';
import { assertDocumentParameters } from '../../../functions/core/plan/parameters.js';
import { planRemediation } from '../../../functions/core/plan/plan.js';
import { type PolicyOverrides, resolvePolicy } from '../../../functions/core/plan/policy.js';
import type { Alert, Plan } from '../../../functions/core/plan/types.js';
import { ReportBuilder } from '../../support/report-builder.js';

/**
 * The planner on a `near-full` incident (issue 13): opened by the host sampler's lines, confirmed
 * only by the host's own counters (rising usage, not drops), sized for the demand predicted over
 * the horizon, NOTRACK never automatic before a drop.
 */

const MAX = 262_144;
const nearFullAlert: Alert = {
  kind: 'near-full',
  netns: '4026532177',
  dropLines: 0,
  suppressed: 0,
  forecast: { horizonSeconds: 1800, secondsToFull: 600, usage: 0.76, growthPerSecond: 100 },
};

/** ESTABLISHED entries at `count`, rising by `rise` over the report's 3 s, no drops. */
const filling = (count: number, rise: number) =>
  ReportBuilder.healthy()
    .table({ max: MAX, count })
    .stat('entries', count - rise, count)
    .states({ 'tcp ESTABLISHED': count })
    .drops(0);

function plan(report: ReportBuilder, alert: Partial<Alert> = {}, policy: PolicyOverrides = {}): Plan {
  const result = planRemediation({
    before: report.build(),
    alert: { ...nearFullAlert, ...alert },
    policy: resolvePolicy(policy),
  });
  for (const action of result.actions) {
    expect(() => assertDocumentParameters(action.document, action.parameters)).not.toThrow();
  }
  return result;
}

describe('planner: near-full', () => {
  it('confirms a table rising on the host and sizes the raise for the demand predicted over the horizon', () => {
    // 200 000 of 262 144, +900 in 3 s = 300/s: full in about 3.4 min; 740 000 expected in 30 min.
    const result = plan(filling(200_000, 900));
    expect(result.classification).toBe('near-full');
    expect(result.confirmed).toBe(true);
    expect(result.confirmation.join(' ')).toMatch(/growing on the host: \+900 entries in 3 s/);
    expect(result.summary).toMatch(/nothing is dropped yet/);
    const raise = result.actions.find((action) => action.kind === 'raise-limits');
    expect(raise?.mode).toBe('auto');
    // At least the predicted demand over the verification ceiling (740 000 / 0.8 = 925 000).
    expect(Number(raise?.parameters.MaxEntries)).toBeGreaterThanOrEqual(925_000);
    expect(result.sizing?.explanation.join(' ')).toMatch(/predicted demand 740000/);
    expect(raise?.reason).toMatch(/filling towards its limit/);
  });

  it('stays within the memory budget whatever the predicted demand', () => {
    const result = plan(filling(200_000, 30_000).host({ memTotalBytes: 2 * 1024 ** 3 }));
    const raise = result.actions.find((action) => action.kind === 'raise-limits');
    const perEntry = 256 + 128 + 8;
    expect(Number(raise?.parameters.MaxEntries)).toBeLessThanOrEqual((0.05 * 2 * 1024 ** 3) / perEntry);
    expect(result.sizing?.limitedBy).toBe('memory-budget');
  });

  it('does not confirm a flat table, whatever the sample lines claimed', () => {
    const result = plan(filling(190_000, 0), {
      forecast: { horizonSeconds: 1800, secondsToFull: 30, predictedFullAt: '2026-11-21T10:00:30Z' },
    });
    expect(result.classification).toBe('not-confirmed');
    expect(result.actions).toEqual([]);
    expect(result.summary).toMatch(/not filling on the host/);
    expect(result.summary).toMatch(/a claim only/);
  });

  it('does not confirm growth that fills the table only beyond the horizon', () => {
    // +30 in 3 s = 10/s with 62 144 free: 1.7 h, beyond 30 min.
    const result = plan(filling(200_000, 30));
    expect(result.classification).toBe('not-confirmed');
    expect(result.actions).toEqual([]);
  });

  it('takes the horizon from the incident within bounds: a longer horizon confirms slower growth', () => {
    const result = plan(filling(200_000, 30), { forecast: { horizonSeconds: 3 * 3600 } });
    expect(result.classification).toBe('near-full');
  });

  it('confirms a table at or above the near-full ratio even when flat', () => {
    const result = plan(filling(240_000, 0));
    expect(result.classification).toBe('near-full');
    expect(result.confirmation.join(' ')).toMatch(/at or above 90%/);
  });

  it('plans the reactive response when the host already counts drops', () => {
    const result = plan(filling(262_144, 0).drops(500));
    expect(result.classification).toBe('table-full');
  });

  it('never plans NOTRACK to run on its own before a drop, even when the policy says auto', () => {
    const churn = ReportBuilder.healthy()
      .table({ max: MAX, count: 200_000 })
      .stat('entries', 199_000, 200_000)
      .sysctl('tcp_timeout_time_wait', 30)
      .states({ 'tcp TIME_WAIT': 150_000, 'tcp ESTABLISHED': 50_000 })
      .localPort('tcp', 8080, 160_000, 150_000)
      .listener('tcp', 8080, 'nginx')
      .drops(0);
    const auto = plan(churn, {}, { modes: { 'notrack-ports': 'auto' } });
    expect(auto.classification).toBe('near-full');
    expect(
      auto.actions.filter((action) => action.kind === 'notrack-ports' && action.mode === 'auto'),
    ).toEqual([]);
    // The raise runs on its own, so NOTRACK is for a person: a recommendation with its parameters.
    const firewall = auto.recommendations.filter((recommendation) => recommendation.scope === 'firewall');
    expect(firewall).toHaveLength(1);
    expect(firewall[0]?.snippet).toMatch(/Ports=8080/);
    expect(auto.refusals.map((refusal) => refusal.reason).join(' ')).toMatch(/not before a drop/);

    // When the plan waits for a person anyway, NOTRACK is one of its actions, for approval.
    const approve = plan(churn, {}, { modes: { 'notrack-ports': 'auto', 'raise-limits': 'approve' } });
    const notrack = approve.actions.filter((action) => action.kind === 'notrack-ports');
    expect(notrack.length).toBeGreaterThan(0);
    expect(notrack.every((action) => action.mode === 'approve')).toBe(true);
  });

  it('prefers shorter timeouts where short-lived states dominate: no raise when they keep the demand under the ceiling', () => {
    // 200 000 entries, 85 % TIME_WAIT at the default 120 s, rising 100/s.
    const timeWait = ReportBuilder.healthy()
      .table({ max: MAX, count: 200_000 })
      .stat('entries', 199_700, 200_000)
      .states({ 'tcp TIME_WAIT': 170_000, 'tcp ESTABLISHED': 30_000 })
      .drops(0);
    const result = plan(timeWait, {}, { modes: { 'shorten-timeouts': 'auto' } });
    expect(result.classification).toBe('near-full');
    expect(result.actions.map((action) => action.kind)).toEqual(['shorten-timeouts']);
    expect(result.refusals.map((refusal) => refusal.reason).join(' ')).toMatch(
      /not needed: with the shorter timeouts the predicted demand/,
    );

    // With timeouts waiting for approval, the raise is still planned to run on its own.
    const approve = plan(timeWait);
    expect(approve.actions.map((action) => [action.kind, action.mode])).toEqual([
      ['raise-limits', 'auto'],
      ['shorten-timeouts', 'approve'],
    ]);
  });
});
