import { describe, expect, it } from 'vitest';
import {
  EVENT_SOURCE,
  eventsAfterApply,
  eventsAfterApprovalRequest,
  eventsAfterAssess,
  eventsAfterPolicyGate,
  eventsAfterVerify,
  eventsAtClose,
  eventsAtOpening,
  LIFECYCLE_DETAIL_TYPES,
  LIFECYCLE_SCHEMA_VERSION,
  type LifecycleEvent,
} from '../../../functions/core/events/lifecycle.js';
import { OUTCOMES } from '../../../functions/core/workflow/outcome.js';

const NOW = new Date('2026-12-06T02:00:00.000Z');
const DIGEST = 'a'.repeat(64);
const EXECUTION =
  'arn:aws:states:eu-west-1:123456789012:execution:responder:i-0abc1234def567890-full-20261206T0200Z';

const incident = {
  incidentId: 'i-0abc1234def567890-full-20261206T0200Z',
  host: 'i-0abc1234def567890',
  instanceId: 'i-0abc1234def567890',
  kind: 'table-full',
  mode: 'approve',
  openedAt: '2026-12-06T01:59:58.000Z',
  trigger: {
    owner: '123456789012',
    logGroup: '/conntrack-responder/kernel',
    logStream: 'i-0abc1234def567890',
    netns: null,
    dropLines: 42,
    suppressed: 3,
    firstSeen: '2026-12-06T01:59:50.000Z',
    lastSeen: '2026-12-06T01:59:57.000Z',
    events: [{ id: '1', timestamp: 1, message: 'nf_conntrack: table full, dropping packet' }],
    eventsOmitted: 0,
  },
};
const state = { incident, execution: { id: EXECUTION, name: incident.incidentId, startedAt: '' } };

const states = (events: LifecycleEvent[]) => events.map((event) => event.detail.state);

describe('lifecycle events (schema version 1)', () => {
  it('gives every event the source, its detail-type, the version, the incident and the time', () => {
    const [opened] = eventsAtOpening(incident, { decision: 'admit' }, NOW);
    expect(opened).toEqual({
      source: EVENT_SOURCE,
      detailType: 'Incident Opened',
      time: NOW.toISOString(),
      detail: {
        schemaVersion: LIFECYCLE_SCHEMA_VERSION,
        state: 'opened',
        eventKey: `${incident.incidentId}:opened`,
        incidentId: incident.incidentId,
        instanceId: 'i-0abc1234def567890',
        host: 'i-0abc1234def567890',
        kind: 'table-full',
        mode: 'approve',
        occurredAt: NOW.toISOString(),
        executionId: null,
        outcome: null,
        evidence: null,
        facts: {
          openedAt: incident.openedAt,
          dropLines: 42,
          suppressed: 3,
          firstSeen: incident.trigger.firstSeen,
          netns: null,
        },
      },
    });
    // Never the kernel's lines themselves.
    expect(JSON.stringify(opened)).not.toContain('dropping packet');
  });

  it('has one detail-type per state the issue names', () => {
    expect(Object.keys(LIFECYCLE_DETAIL_TYPES)).toEqual([
      'opened',
      'held',
      'diagnosed',
      'planned',
      'awaiting-approval',
      'decided',
      'applied',
      'verified',
      'rolled-back',
      'escalated',
      'closed',
    ]);
    expect(new Set(Object.values(LIFECYCLE_DETAIL_TYPES)).size).toBe(11);
  });

  it('adds held when the fleet breaker holds the incident, with its reason', () => {
    const events = eventsAtOpening(incident, { decision: 'hold', detail: 'the breaker is open' }, NOW);
    expect(states(events)).toEqual(['opened', 'held']);
    expect(events[1]?.detail.facts).toEqual({ reason: 'the breaker is open' });
  });

  it('carries the near-full forecast and the kind of a near-full incident', () => {
    const nearFull = {
      ...incident,
      incidentId: 'i-0abc1234def567890-near-20261206T0200Z',
      kind: 'near-full',
      trigger: {
        ...incident.trigger,
        forecast: { predictedFullAt: '2026-12-06T02:10:00.000Z', secondsToFull: 600, samples: [1, 2, 3] },
      },
    };
    const [opened] = eventsAtOpening(nearFull, null, NOW);
    expect(opened?.detail.kind).toBe('near-full');
    expect(opened?.detail.facts.forecast).toEqual({
      predictedFullAt: '2026-12-06T02:10:00.000Z',
      secondsToFull: 600,
    });
  });

  it('builds nothing for a state without a usable incident id (an event must name its incident)', () => {
    expect(eventsAtOpening({ ...incident, incidentId: 'a b;rm -rf' }, null, NOW)).toEqual([]);
    expect(eventsAfterAssess({}, { confirmed: true }, NOW)).toEqual([]);
    expect(eventsAtClose(null, NOW)).toEqual([]);
    expect(eventsAfterApply('text', NOW)).toEqual([]);
  });

  it('diagnosed, and planned only when the drops are confirmed', () => {
    const assessment = {
      confirmed: true,
      classification: 'table-too-small',
      summary: 'The table is full.',
      plan: {
        actions: [{ id: 'raise-limits', kind: 'raise-limits', mode: 'approve', parameters: { X: '1' } }],
        recommendations: [{}, {}],
      },
    };
    const input = { incident, diagnostics: {} };
    const confirmed = eventsAfterAssess(input, assessment, NOW);
    expect(states(confirmed)).toEqual(['diagnosed', 'planned']);
    expect(confirmed[0]?.detail.facts).toEqual({
      confirmed: true,
      classification: 'table-too-small',
      summary: 'The table is full.',
    });
    expect(confirmed[1]?.detail.facts).toEqual({
      actions: [{ id: 'raise-limits', kind: 'raise-limits', mode: 'approve' }],
      recommendations: 2,
    });
    expect(states(eventsAfterAssess(input, { ...assessment, confirmed: false }, NOW))).toEqual(['diagnosed']);
  });

  it('decided once the decision is final, not when the policy asks a person', () => {
    const input = { incident, assessment: {}, guardrails: {} };
    expect(eventsAfterPolicyGate(input, { decision: 'approve', toApply: [] }, NOW)).toEqual([]);
    const [byPolicy] = eventsAfterPolicyGate(
      input,
      { decision: 'apply', toApply: [{ id: 'raise-limits' }], notApplied: [], reasons: ['auto mode'] },
      NOW,
    );
    expect(byPolicy?.detail.eventKey).toBe(`${incident.incidentId}:decided:policy:apply`);
    expect(byPolicy?.detail.facts).toMatchObject({
      decision: 'apply',
      toApply: ['raise-limits'],
      approval: null,
    });

    const approval = {
      decision: 'approved',
      approver: { id: 'arn:aws:sts::123456789012:assumed-role/oncall/alice', name: 'alice', via: 'iam' },
      decidedAt: '2026-12-06T02:01:00.000Z',
      approvalId: 'appr-1',
    };
    const [byPerson] = eventsAfterPolicyGate(
      { ...input, approval },
      { decision: 'apply', toApply: [{ id: 'raise-limits' }] },
      NOW,
    );
    expect(byPerson?.detail.eventKey).toBe(`${incident.incidentId}:decided:appr-1`);
    expect(byPerson?.detail.facts.approval).toEqual({
      decision: 'approved',
      approver: 'alice',
      via: 'iam',
      decidedAt: '2026-12-06T02:01:00.000Z',
    });
  });

  it('awaiting approval with the approval id, its expiry and the actions waiting', () => {
    const [event] = eventsAfterApprovalRequest(
      { ...state, gate: { awaitingApproval: [{ id: 'raise-limits' }, { id: 'notrack-ports' }] } },
      {
        approvalId: 'appr-1',
        expiresAt: '2026-12-06T02:30:00.000Z',
        announced: 'sns',
        slack: 'not-configured',
      },
      NOW,
    );
    expect(event?.detailType).toBe('Incident Awaiting Approval');
    expect(event?.detail.executionId).toBe(EXECUTION);
    expect(event?.detail.facts).toEqual({
      approvalId: 'appr-1',
      expiresAt: '2026-12-06T02:30:00.000Z',
      actions: ['raise-limits', 'notrack-ports'],
    });
  });

  it('applied with the actions, the command ids and the soak', () => {
    const [event] = eventsAfterApply(
      {
        ...state,
        gate: { toApply: [{ id: 'raise-limits' }], soakSeconds: 120 },
        applied: [{ command: { commandId: 'cmd-1' }, invocation: { status: 'Success' } }],
      },
      NOW,
    );
    expect(event?.detail.facts).toEqual({ actions: ['raise-limits'], commands: ['cmd-1'], soakSeconds: 120 });
  });

  it('verified says whether the fix held', () => {
    const [held] = eventsAfterVerify(state, { held: true, reasons: [], checks: [] }, NOW);
    expect(held?.detail.facts).toEqual({ held: true, reasons: [] });
    const [failed] = eventsAfterVerify(state, { held: false, reasons: ['drops went on'] }, NOW);
    expect(failed?.detail.facts).toEqual({ held: false, reasons: ['drops went on'] });
  });

  describe('at the close', () => {
    const evidence = {
      location: 's3://evidence/incidents/x/',
      archive: 's3://evidence/incidents/x.tar.gz',
      manifestSha256: DIGEST,
      signature: null,
    };

    it('closed with the outcome and the evidence bundle location and digest', () => {
      const events = eventsAtClose({ ...state, outcome: OUTCOMES.remediated, evidence }, NOW);
      expect(states(events)).toEqual(['closed']);
      expect(events[0]?.detail.outcome).toEqual(OUTCOMES.remediated);
      expect(events[0]?.detail.evidence).toEqual({
        location: evidence.location,
        archive: evidence.archive,
        manifestSha256: DIGEST,
        signedBy: null,
      });
    });

    it('rolled back, then closed', () => {
      const events = eventsAtClose(
        { ...state, outcome: OUTCOMES.rolledBack, verification: { held: false } },
        NOW,
      );
      expect(states(events)).toEqual(['rolled-back', 'closed']);
      expect(events[0]?.detail.facts).toEqual({ why: 'not-held' });
    });

    it.each([
      ['notManaged', OUTCOMES.notManaged],
      ['approvalTimedOut', OUTCOMES.approvalTimedOut],
      ['noRemediationSlot', OUTCOMES.noRemediationSlot],
      ['rollbackFailed', OUTCOMES.rollbackFailed],
    ])('escalated, then closed (%s)', (_name, outcome) => {
      const events = eventsAtClose({ ...state, outcome, evidence }, NOW);
      expect(states(events)).toEqual(['escalated', 'closed']);
      expect(events[0]?.detail.facts.reason).toBe(outcome.summary);
      expect(events[0]?.detail.evidence?.manifestSha256).toBe(DIGEST);
    });

    it.each([
      OUTCOMES.remediated,
      OUTCOMES.dryRun,
      OUTCOMES.rejected,
      OUTCOMES.notConfirmed,
      OUTCOMES.failedBeforeChange,
    ])('only closed for $status', (outcome) => {
      expect(states(eventsAtClose({ ...state, outcome }, NOW))).toEqual(['closed']);
    });

    it('closed without evidence when the bundle was not written, saying why', () => {
      const [closed] = eventsAtClose(
        { ...state, outcome: OUTCOMES.remediated, evidenceError: { Error: 'AccessDenied', Cause: '...' } },
        NOW,
      );
      expect(closed?.detail.evidence).toBeNull();
      expect(closed?.detail.facts).toEqual({ evidenceError: 'AccessDenied' });
    });
  });

  it('keeps text bounded whatever a host or a step put in it', () => {
    const long = 'x'.repeat(10_000);
    const [event] = eventsAfterVerify(state, { held: false, reasons: Array(100).fill(long) }, NOW);
    const reasons = event?.detail.facts.reasons as string[];
    expect(reasons).toHaveLength(5);
    expect(reasons.every((reason) => reason.length <= 300)).toBe(true);
    expect(JSON.stringify(event).length).toBeLessThan(4_000);
  });
});
