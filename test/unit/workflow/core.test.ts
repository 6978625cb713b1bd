import { describe, expect, it } from 'vitest';
import { ENV_VAR_MIN_AGENT_VERSION, MANUAL_RUNBOOK } from '../../../functions/core/guardrails/settings.js';
import { resolvePolicy, withMode } from '../../../functions/core/plan/index.js';
import { approvalRequestFrom, approvalText } from '../../../functions/core/workflow/approval.js';
import { type Assessment, assessIncident } from '../../../functions/core/workflow/assess.js';
import { type GateDecision, gateIncident } from '../../../functions/core/workflow/gate.js';
import { incidentNotification } from '../../../functions/core/workflow/notify.js';
import { OUTCOMES } from '../../../functions/core/workflow/outcome.js';
import { type WorkflowSettings, workflowSettingsFrom } from '../../../functions/core/workflow/settings.js';
import { verifyFix } from '../../../functions/core/workflow/verify.js';
import { ReportBuilder } from '../../support/report-builder.js';

/** Seed 003: a full table whose churn sits on one served port; TIME_WAIT was already shortened. */
const seed003 = () =>
  ReportBuilder.healthy()
    .table({ max: 262_144, count: 262_144 })
    .sysctl('tcp_timeout_time_wait', 30)
    .states({ 'tcp TIME_WAIT': 200_000, 'tcp ESTABLISHED': 62_144 })
    .localPort('tcp', 8080, 210_000, 198_000)
    .localPort('tcp', 22, 40, 0)
    .listener('tcp', 8080, 'nginx')
    .drops(2_500);

const incident = (changes: Record<string, unknown> = {}) => ({
  incidentId: 'i-0abc-full-20261121T1000Z',
  host: 'i-0abc12345678',
  instanceId: 'i-0abc12345678',
  kind: 'table-full',
  mode: 'auto',
  trigger: { netns: '4026532177', dropLines: 12, suppressed: 300, events: [] },
  ...changes,
});

const commandOutput = (report: unknown, commandId = 'cmd-1') => ({
  commandId,
  status: 'Success',
  stdout: typeof report === 'string' ? report : JSON.stringify(report),
  stderr: '',
});

const settings = (policy = resolvePolicy({})): WorkflowSettings => ({ policy, soakSeconds: 30 });

function assess(
  report = seed003(),
  policySettings = settings(),
  changes: Record<string, unknown> = {},
): Assessment {
  return assessIncident(
    { incident: incident(changes), diagnostics: commandOutput(report.build()) },
    policySettings,
  );
}

describe('assess: confirm the drops and plan', () => {
  it('confirms a table-full alert from the counters and plans the seed 003 fix', () => {
    const assessment = assess();
    expect(assessment).toMatchObject({ confirmed: true, classification: 'table-full' });
    expect(assessment.plan.actions.map((action) => [action.id, action.mode])).toEqual([
      ['limits', 'auto'],
      ['notrack-tcp-inbound', 'approve'],
    ]);
    expect(assessment.plan.actions[0]?.parameters.ChangeId).toBe('i-0abc-full-20261121T1000Z-limits');
  });

  it('does not confirm when the kernel named another namespace', () => {
    const assessment = assess(seed003(), settings(), {
      trigger: { netns: '4026530000', dropLines: 1, suppressed: 0 },
    });
    expect(assessment.confirmed).toBe(false);
    expect(assessment.plan.actions).toEqual([]);
  });

  it('says which command printed something that is not a report', () => {
    const run = () =>
      assessIncident(
        { incident: incident(), diagnostics: commandOutput('bash: oops', 'cmd-42') },
        settings(),
      );
    expect(run).toThrow(
      expect.objectContaining({ name: 'DiagnosticsUnreadable', message: expect.stringContaining('cmd-42') }),
    );
    const wrongShape = () =>
      assessIncident({ incident: incident(), diagnostics: commandOutput({ schemaVersion: 1 }) }, settings());
    expect(wrongShape).toThrow(/do not follow the report contract/);
  });

  it('refuses an incident whose fields are wrong, naming them', () => {
    const run = () =>
      assessIncident(
        { incident: incident({ kind: 'weird' }), diagnostics: commandOutput(seed003().build()) },
        settings(),
      );
    expect(run).toThrow(
      expect.objectContaining({ name: 'WorkflowInputError', message: expect.stringContaining('kind') }),
    );
  });
});

describe('policy gate', () => {
  const gate = (
    assessment: Assessment,
    incidentChanges: Record<string, unknown> = {},
    approval?: unknown,
  ): GateDecision => gateIncident({ incident: incident(incidentChanges), assessment, approval }, settings());
  const approvalBy = (decision: 'approved' | 'rejected', actionIds?: string[]) => ({
    decision,
    ...(actionIds ? { actionIds } : {}),
    approver: { id: 'U123', name: 'dana', via: 'slack' },
    decidedAt: '2026-11-21T10:05:00.000Z',
  });

  it('holds the whole plan for a person when one action needs approval (safe defaults)', () => {
    const decision = gate(assess());
    expect(decision.decision).toBe('approve');
    expect(decision.toApply).toEqual([]);
    expect(decision.awaitingApproval.map((action) => action.id)).toEqual(['limits', 'notrack-tcp-inbound']);
  });

  it('applies everything in auto mode, with SSM parameter lists, rollback newest first, and persistence', () => {
    const decision = gate(assess(seed003(), settings(withMode(resolvePolicy({}), 'auto'))));
    expect(decision.decision).toBe('apply');
    expect(decision.toApply.map((action) => action.document)).toEqual(['raise-limits', 'notrack-ports']);
    expect(decision.toApply[1]?.parameters).toMatchObject({
      Ports: ['8080'],
      Direction: ['inbound'],
      Persist: ['false'],
    });
    expect(decision.rollback.map((step) => step.parameters.ChangeId[0])).toEqual([
      'i-0abc-full-20261121T1000Z-notrack-tcp-inbound',
      'i-0abc-full-20261121T1000Z-limits',
    ]);
    expect(decision.toPersist.map((action) => action.parameters.Persist)).toEqual([['true'], ['true']]);
    expect(decision.soakSeconds).toBe(30);
  });

  it("lets the incident's mode cap the policy, never loosen it", () => {
    const autoPlan = assess(seed003(), settings(withMode(resolvePolicy({}), 'auto')));
    expect(gate(autoPlan, { mode: 'approve' }).decision).toBe('approve');
    const dry = gate(autoPlan, { mode: 'dry-run' });
    expect(dry.decision).toBe('dry-run');
    expect(dry.notApplied.map((entry) => entry.why)).toEqual([
      'dry-run: recorded, never applied',
      'dry-run: recorded, never applied',
    ]);
    const approvePlan = assess();
    expect(gate(approvePlan, { mode: 'auto' }).decision).toBe('approve');
  });

  it.each([
    // incident mode, guardrails' mode, decision: the guardrails' verdict is the ceiling
    ['approve', 'auto', 'apply'],
    ['auto', 'approve', 'approve'],
    ['auto', 'dry-run', 'dry-run'],
    ['auto', undefined, 'apply'],
  ] as const)(
    'takes the ceiling from the guardrails when they ran (incident %s, guardrails %s → %s)',
    (incidentMode, guardrailMode, expected) => {
      const autoPlan = assess(seed003(), settings(withMode(resolvePolicy({}), 'auto')));
      const decision = gateIncident(
        {
          incident: incident({ mode: incidentMode }),
          assessment: autoPlan,
          ...(guardrailMode === undefined ? {} : { guardrails: { mode: guardrailMode, decisions: [] } }),
        },
        settings(),
      );
      expect(decision.decision).toBe(expected);
      expect(decision.incidentMode).toBe(guardrailMode ?? incidentMode);
      if (guardrailMode === 'approve')
        expect(decision.reasons[0]).toMatch(/the guardrails allow at most approve/);
    },
  );

  it('applies what was approved, only that, and nothing once rejected', () => {
    const assessment = assess();
    expect(gate(assessment, {}, approvalBy('approved')).toApply.map((action) => action.id)).toEqual([
      'limits',
      'notrack-tcp-inbound',
    ]);
    const raiseOnly = gate(assessment, {}, approvalBy('approved', ['limits']));
    expect(raiseOnly.decision).toBe('apply');
    expect(raiseOnly.toApply.map((action) => action.id)).toEqual(['limits']);
    expect(raiseOnly.notApplied).toContainEqual(
      expect.objectContaining({ id: 'notrack-tcp-inbound', why: 'not approved' }),
    );
    const rejected = gate(assessment, {}, approvalBy('rejected'));
    expect(rejected).toMatchObject({ decision: 'rejected', toApply: [], rollback: [] });
  });

  it('never applies an action without the actions it requires', () => {
    const timeoutsPlan = assess(
      ReportBuilder.healthy()
        .table({ max: 262_144, count: 262_144 })
        .states({ 'tcp TIME_WAIT': 250_000, 'tcp ESTABLISHED': 12_144 })
        .drops(3_000),
    );
    const requiring = timeoutsPlan.plan.actions.find((action) => action.requires.length > 0);
    expect(requiring, 'the plan has an action that requires another').toBeDefined();
    const decision = gate(timeoutsPlan, {}, approvalBy('approved', [requiring?.id ?? '']));
    expect(decision.decision).toBe('rejected');
    expect(decision.notApplied).toContainEqual(
      expect.objectContaining({ id: requiring?.id, why: expect.stringContaining('needs') }),
    );
  });

  it('has nothing to do when the plan changes nothing on the host', () => {
    const allowance = assess(
      ReportBuilder.healthy().table({ max: 262_144, count: 30_000 }).enaExceeded('ens5', 1_200),
    );
    expect(allowance.plan.actions).toEqual([]);
    expect(gate(allowance).decision).toBe('nothing');
  });

  it('refuses a malformed approval, naming the field', () => {
    expect(() => gate(assess(), {}, { decision: 'maybe' })).toThrow(/the approval is invalid: decision/);
  });
});

describe('approval request', () => {
  const payload = () => {
    const assessment = assess();
    return {
      taskToken: 'AQCEAAAAKgAAAAMAAAAAAAAAAS-secret-token',
      timeoutSeconds: 1800,
      execution: { id: 'arn:aws:states:eu-west-1:111122223333:execution:wf:inc' },
      incident: incident(),
      assessment,
      gate: gateIncident({ incident: incident(), assessment }, settings()),
    };
  };

  it('keeps the task token out of everything a person or a message sees', () => {
    const pending = approvalRequestFrom(payload(), new Date('2026-11-21T10:00:00Z'), 'appr-1');
    expect(pending.taskToken).toBe('AQCEAAAAKgAAAAMAAAAAAAAAAS-secret-token');
    expect(JSON.stringify(pending.request)).not.toContain('secret-token');
    expect(approvalText(pending.request)).not.toContain('secret-token');
    expect(pending.request.expiresAt).toBe('2026-11-21T10:30:00.000Z');
  });

  it('shows the exact change for every action', () => {
    const text = approvalText(approvalRequestFrom(payload(), new Date(), 'appr-2').request);
    expect(text).toContain('[notrack-tcp-inbound]');
    expect(text).toContain('Ports=8080');
    expect(text).toContain('MaxEntries=524288');
    expect(text).toContain('no decision = no change');
  });
});

describe('verify', () => {
  it('holds when drops stopped and usage fell; fails with the reasons otherwise', () => {
    const assessment = assess();
    const before = commandOutput(seed003().build(), 'before');
    const healthy = commandOutput(
      seed003()
        .table({ max: 524_288, count: 100_000 })
        .drops(0)
        .collectedAt('2026-11-21T10:03:00.000Z')
        .build(),
      'after',
    );
    expect(verifyFix({ assessment, before, after: healthy }).held).toBe(true);
    const still = commandOutput(seed003().collectedAt('2026-11-21T10:03:00.000Z').build(), 'after');
    const failed = verifyFix({ assessment, before, after: still });
    expect(failed.held).toBe(false);
    expect(failed.reasons.join(' ')).toMatch(/still dropped/);
  });
});

describe('notification', () => {
  it('keeps the subject ASCII and under 100 characters whatever the host is called', () => {
    const notification = incidentNotification({
      incident: { incidentId: 'x'.repeat(80), host: 'hôte-été-✓', instanceId: null },
      outcome: OUTCOMES.failedBeforeChange,
    });
    expect(notification.subject.length).toBeLessThan(100);
    expect(notification.subject).toMatch(/^[\x20-\x7e]+$/);
    expect(notification.attributes).toMatchObject({
      severity: 'critical',
      outcome: 'failed',
      action: 'none',
    });
  });

  it('tells what happened, what failed and what was rolled back', () => {
    const notification = incidentNotification({
      incident: { incidentId: 'inc-1', instanceId: 'i-0abc12345678' },
      outcome: OUTCOMES.rolledBack,
      applied: [
        {
          request: { id: 'limits', title: 'Raise nf_conntrack_max to 524288' },
          invocation: { status: 'Success' },
        },
      ],
      error: { Error: 'SsmCommandTimedOut', Cause: 'Collect diagnostics after the soak did not finish' },
      rollback: [{ request: { changeId: 'inc-1-limits' }, invocation: { status: 'Success' } }],
    });
    expect(notification.text).toContain('Incident inc-1 on i-0abc12345678: rolled-back.');
    expect(notification.text).toContain('Raise nf_conntrack_max to 524288');
    expect(notification.text).toContain('Failure: SsmCommandTimedOut');
    expect(notification.text).toContain('Rolled back: inc-1-limits');
    expect(notification.summary).toMatchObject({
      outcome: 'rolled-back',
      hostChanged: true,
      applied: ['Raise nf_conntrack_max to 524288'],
    });
  });

  it('the not-managed outcome names the SSM Agent version and runbook the guardrails use', () => {
    expect(OUTCOMES.notManaged.summary).toContain(`an SSM Agent older than ${ENV_VAR_MIN_AGENT_VERSION})`);
    expect(OUTCOMES.notManaged.summary).toContain(`follow ${MANUAL_RUNBOOK}.`);
    expect(ENV_VAR_MIN_AGENT_VERSION).toBe('3.3.2746.0');
  });

  it('says why the guardrails stopped the responder, and which runbook to follow', () => {
    const notification = incidentNotification({
      incident: { incidentId: 'inc-2', instanceId: 'i-0abc12345678' },
      outcome: OUTCOMES.notManaged,
      guardrails: {
        mode: 'approve',
        escalation: {
          reasons: ['SSM Agent 3.2.1.0 is older than 3.3.2746.0'],
          runbook: 'runbooks/conntrack-table-full.md',
        },
        decisions: [
          { guardrail: 'instance-policy', effect: 'pass', detail: 'no tag' },
          { guardrail: 'change-calendar', effect: 'cap-mode', detail: 'change calendar prod is CLOSED' },
        ],
      },
    });
    expect(notification.text).toContain(
      'Why the responder did not act:\n  - SSM Agent 3.2.1.0 is older than 3.3.2746.0',
    );
    expect(notification.text).toContain('Follow the manual runbook: runbooks/conntrack-table-full.md');
    expect(notification.text).toContain('Guardrails:\n  - change-calendar: change calendar prod is CLOSED');
    expect(notification.text).not.toContain('no tag');
  });

  it('says, when nobody decided in time, how an approval is decided without Slack', () => {
    const url = 'https://abcdef0123456789.lambda-url.eu-west-1.on.aws/';
    const timedOut = {
      incident: { incidentId: 'inc-3', instanceId: 'i-0abc12345678' },
      gate: { decision: 'approve' },
      outcome: OUTCOMES.approvalTimedOut,
      error: { Error: 'States.Timeout', Cause: '' },
    };
    const notification = incidentNotification(timedOut, { approvalUrl: url });
    expect(notification.text).toContain(`  npx conntrack-responder approve INCIDENT_ID --url ${url}`);
    expect(notification.text).toContain(`  npx conntrack-responder reject INCIDENT_ID --url ${url}`);
    expect(notification.text).toContain('{"outcome": ["approval-needed"]}');
    // Without a URL that is a function URL, nothing but the placeholder is printed into the command.
    const other = incidentNotification(timedOut, { approvalUrl: 'https://evil.example/$(id)' });
    expect(other.text).toContain('--url <stack output ApprovalUrl>');
    expect(other.text).not.toContain('evil');
    // Other escalations do not talk about approvals.
    expect(
      incidentNotification(
        { ...timedOut, outcome: OUTCOMES.noRemediationSlot, gate: { decision: 'apply' } },
        { approvalUrl: url },
      ).text,
    ).not.toContain('conntrack-responder approve');
  });
});

describe('workflow settings', () => {
  it('reads the policy and the soak period from the environment, naming a bad value', () => {
    const parsed = workflowSettingsFrom({
      RESPONDER_POLICY: '{"memoryBudgetPercent": 3}',
      SOAK_SECONDS: '45',
    });
    expect(parsed.policy.memoryBudgetPercent).toBe(3);
    expect(parsed.soakSeconds).toBe(45);
    expect(workflowSettingsFrom({}).soakSeconds).toBe(120);
    expect(() => workflowSettingsFrom({ SOAK_SECONDS: '1.5' })).toThrow(
      /environment variable SOAK_SECONDS must be a whole number from 0 to 86400, got '1.5'/,
    );
    expect(() => workflowSettingsFrom({ RESPONDER_POLICY: '{' })).toThrow(
      /environment variable RESPONDER_POLICY must be JSON, got '\{'/,
    );
    expect(() => workflowSettingsFrom({ RESPONDER_POLICY: '{"bogus": 1}' })).toThrow(/invalid policy/);
  });
});
