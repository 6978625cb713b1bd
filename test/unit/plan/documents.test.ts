import { describe, expect, it } from 'vitest';
import { CONTRACT_PARAMETERS } from '../../../functions/core/plan/parameters.js';
import { planRemediation } from '../../../functions/core/plan/plan.js';
import { resolvePolicy } from '../../../functions/core/plan/policy.js';
import type { PlannedAction } from '../../../functions/core/plan/types.js';
import { validateParameters } from '../../../functions/core/runbook/document.js';
import { loadRunbook } from '../../../functions/local/runbooks.js';
import { ReportBuilder } from '../../support/report-builder.js';

/**
 * The planner's own copy of the parameter contract is only a guard: what SSM and the local
 * executor enforce is the documents' YAML. Every kind of action the planner emits must pass the
 * real documents' validation, persist variant included.
 */

const alert = { kind: 'table-full' as const, netns: null, dropLines: 1, suppressed: 0 };
const scenarios = {
  'raise with a hash resize and shorter timeouts': ReportBuilder.healthy()
    .table({ max: 262_144, count: 262_144, buckets: 16_384 })
    .states({ 'tcp TIME_WAIT': 230_000, 'tcp ESTABLISHED': 32_144 })
    .drops(10),
  'NOTRACK of a served TCP port': ReportBuilder.healthy()
    .table({ max: 262_144, count: 262_144 })
    .sysctl('tcp_timeout_time_wait', 30)
    .states({ 'tcp TIME_WAIT': 200_000, 'tcp ESTABLISHED': 62_144 })
    .localPort('tcp', 8080, 210_000, 198_000)
    .listener('tcp', 8080)
    .drops(10),
  'NOTRACK of remote UDP and TCP ports': ReportBuilder.healthy()
    .table({ max: 262_144, count: 262_144 })
    .sysctl('tcp_timeout_time_wait', 30)
    .sysctl('udp_timeout', 10)
    .states({ 'udp UNREPLIED': 120_000, 'tcp TIME_WAIT': 100_000, 'tcp ESTABLISHED': 42_144 })
    .remotePort('udp', 8125, 120_000, 120_000)
    .remotePort('tcp', 11211, 100_000, 100_000)
    .drops(10),
  'hash resize for long chains': ReportBuilder.healthy()
    .table({ max: 262_143, count: 100_000, buckets: 16_384 })
    .stat('chaintoolong', 0, 9)
    .insertFailed(9)
    .drops(9),
};

const plans = Object.entries(scenarios).map(([name, report]) => ({
  name,
  actions: planRemediation({
    before: report.build(),
    alert,
    policy: resolvePolicy(),
    changeIdPrefix: 'inc-doc-1',
  }).actions,
}));

describe('planned actions against the real runbook documents', () => {
  it('covers every action kind and both directions', () => {
    const all = plans.flatMap((plan) => plan.actions);
    expect(new Set(all.map((action) => action.kind))).toEqual(
      new Set(['raise-limits', 'shorten-timeouts', 'notrack-ports']),
    );
    expect(new Set(all.map((action) => action.parameters.Direction).filter(Boolean))).toEqual(
      new Set(['inbound', 'outbound']),
    );
    expect(all.map((action) => action.id)).toContain('hash-size');
  });

  it.each(plans)('$name: every action and its persist variant pass the document', async ({ actions }) => {
    expect(actions.length).toBeGreaterThan(0);
    for (const action of actions as PlannedAction[]) {
      const { document } = await loadRunbook(action.document);
      expect(() => validateParameters(document, action.parameters), `${action.id}`).not.toThrow();
      if (action.persistParameters) {
        expect(() => validateParameters(document, action.persistParameters ?? {})).not.toThrow();
      }
    }
  });

  it.each(['raise-limits', 'notrack-ports'] as const)(
    '%s declares exactly the parameters the planner sends',
    async (name) => {
      const { document } = await loadRunbook(name);
      expect(Object.keys(document.parameters ?? {}).sort()).toEqual([...CONTRACT_PARAMETERS[name]].sort());
    },
  );
});
