import { describe, expect, it } from 'vitest';
import { decisionFor, newApprovalRecord, taskOutputOf } from '../../../functions/core/chatops/approval.js';
import { buildEvidenceBundle } from '../../../functions/core/evidence/bundle.js';
import { evidenceFromWorkflow } from '../../../functions/core/evidence/from-workflow.js';
import { resolvePolicy } from '../../../functions/core/plan/policy.js';
import { gateIncident } from '../../../functions/core/workflow/gate.js';
import { OUTCOMES } from '../../../functions/core/workflow/outcome.js';
import { approvalTaskPayload } from '../../support/approval-task.js';
import { SLACK } from '../../support/slack-payloads.js';

/**
 * The Slack identity of whoever decided travels from the click to the evidence bundle: the task
 * output (SendTaskSuccess) carries the user id, the workspace and the name; the policy gate accepts
 * it; the bundle's approvals.json records all of it, not only the name shown.
 */
describe("the approver's Slack identity", () => {
  const payload = approvalTaskPayload({ incidentId: 'inc-identity-1' });
  const record = newApprovalRecord({
    approvalId: '6f1c2f9e-5a7d-4a3c-9a55-6d1f7f0e8b21',
    incidentId: 'inc-identity-1',
    instanceId: 'i-0abc1234def567890',
    executionId: 'arn:exec',
    now: new Date('2026-11-21T10:01:00Z'),
    timeoutSeconds: 1800,
    actions: [{ id: 'limits', title: 'Raise' }],
    alternative: { label: 'Raise limits only', actionIds: ['limits'], why: 'safer' },
  });
  const decision = decisionFor(
    record,
    'alternative',
    { id: SLACK.approver, name: 'alice', teamId: SLACK.teamId, via: 'slack', basis: 'user-group' },
    new Date('2026-11-21T10:05:00Z'),
    'attempt-1',
  );
  const output = taskOutputOf(record, decision);

  it('is accepted by the policy gate, which applies only the approved subset', () => {
    const gate = gateIncident(
      { incident: payload.incident, assessment: payload.assessment, approval: output },
      { policy: resolvePolicy({}), soakSeconds: 60 },
    );
    expect(gate.decision).toBe('apply');
    expect(gate.toApply.map((action) => action.id)).toEqual(['limits']);
    expect(gate.reasons.join(' ')).toContain('approved by alice via slack');
  });

  it('is recorded in the evidence bundle with the user and workspace ids', () => {
    const evidence = evidenceFromWorkflow({
      state: {
        incident: payload.incident,
        execution: payload.execution,
        assessment: payload.assessment,
        gate: payload.gate,
        approval: output,
        outcome: OUTCOMES.rejected,
      },
      history: [],
      closedAt: '2026-11-21T10:10:00.000Z',
    });
    expect(evidence.approvals).toEqual([
      expect.objectContaining({
        decision: 'approved',
        actionIds: ['limits'],
        by: 'alice',
        channel: 'slack',
        approver: {
          id: SLACK.approver,
          name: 'alice',
          teamId: SLACK.teamId,
          via: 'slack',
          basis: 'user-group',
        },
      }),
    ]);
    const approvals = JSON.parse(String(buildEvidenceBundle(evidence).files.get('approvals.json')));
    expect(approvals[0].approver).toMatchObject({ id: SLACK.approver, teamId: SLACK.teamId });
  });
});
