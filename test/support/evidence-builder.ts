import type { CommandRecord, IncidentEvidence } from '../../functions/core/evidence/incident.js';
import { planRemediation } from '../../functions/core/plan/plan.js';
import { resolvePolicy } from '../../functions/core/plan/policy.js';
import { verifyRemediation } from '../../functions/core/plan/verify.js';
import { OUTCOMES } from '../../functions/core/workflow/outcome.js';
import { ReportBuilder } from './report-builder.js';

const T0 = Date.parse('2026-11-21T10:00:00.000Z');
export const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();

/**
 * A complete remediated incident, built by running the real planner and verifier on report
 * fixtures: first drop at T+0, detected T+4, diagnosed T+10..13, timeouts approved T+40,
 * applied T+42..45, verified T+120..123, closed T+125.
 */
export function remediatedIncident(): IncidentEvidence {
  const before = ReportBuilder.healthy()
    .collectedAt(at(10))
    .table({ max: 262_144, count: 262_144 })
    .states({ 'tcp TIME_WAIT': 230_000, 'tcp ESTABLISHED': 32_144 })
    .localPort('tcp', 8080, 240_000, 229_000)
    .listener('tcp', 8080, 'nginx')
    .stat('drop', 50_000, 56_000)
    .build();
  const after = ReportBuilder.healthy()
    .collectedAt(at(120))
    .table({ max: 524_288, count: 180_000 })
    .stat('drop', 71_000, 71_000)
    .listener('tcp', 8080, 'nginx')
    .build();
  const policy = resolvePolicy();
  const alert = { kind: 'table-full' as const, netns: '4026532177', dropLines: 12, suppressed: 4_000 };
  const plan = planRemediation({ before, alert, policy, changeIdPrefix: 'inc-42' });
  const verification = verifyRemediation(before, after, policy);
  const command = (
    overrides: Partial<CommandRecord> & Pick<CommandRecord, 'step' | 'document'>,
  ): CommandRecord => ({
    actionId: null,
    parameters: {},
    commandId: `cmd-${overrides.step}-${overrides.actionId ?? 'none'}`,
    startedAt: null,
    finishedAt: null,
    status: 'Success',
    exitCode: 0,
    stdout: '',
    stderr: '',
    ...overrides,
  });
  const [limits, timeouts] = plan.actions;
  if (!limits || !timeouts) throw new Error('fixture: expected a raise and a timeouts action');
  return {
    incidentId: 'inc-42',
    instanceId: 'i-0123456789abcdef0',
    alert,
    detectedAt: at(4),
    closedAt: at(125),
    outcome: OUTCOMES.remediated,
    logEvents: [
      {
        timestamp: at(2),
        message: 'kernel: nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet',
        source: 'dmesg',
      },
      {
        timestamp: at(0),
        message: 'kernel: nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet',
        source: 'dmesg',
      },
      { timestamp: at(1), message: 'kernel: net_ratelimit: 4000 callbacks suppressed', source: 'dmesg' },
    ],
    before,
    after,
    plan,
    approvals: [
      { decision: 'approved', actionIds: [timeouts.id], by: 'alice', at: at(40), channel: 'terminal' },
    ],
    commands: [
      command({
        step: 'collect-before',
        document: 'collect-diagnostics',
        parameters: { SampleSeconds: '3', TopN: '10' },
        startedAt: at(9),
        finishedAt: at(13),
        stdout: JSON.stringify(before),
      }),
      command({
        step: 'apply',
        document: 'raise-limits',
        actionId: limits.id,
        parameters: limits.parameters,
        startedAt: at(41),
        finishedAt: at(42),
        stdout: '{"document":"raise-limits","status":"applied"}',
      }),
      command({
        step: 'apply',
        document: 'raise-limits',
        actionId: timeouts.id,
        parameters: timeouts.parameters,
        startedAt: at(43),
        finishedAt: at(45),
        stdout: '{"document":"raise-limits","status":"applied"}',
      }),
      command({
        step: 'collect-after',
        document: 'collect-diagnostics',
        parameters: { SampleSeconds: '3', TopN: '10' },
        startedAt: at(119),
        finishedAt: at(123),
        stdout: JSON.stringify(after),
      }),
    ],
    verification,
    executionHistory: [
      { id: 1, type: 'ExecutionStarted', timestamp: at(4) },
      { id: 2, type: 'TaskStateEntered', name: 'Collect diagnostics', timestamp: at(9) },
      { id: 3, type: 'ExecutionSucceeded', timestamp: at(125) },
    ],
  };
}
