import { describe, expect, it } from 'vitest';
import {
  decisionFor,
  isExpired,
  newApprovalRecord,
  saferAlternativeOf,
  taskOutputOf,
} from '../../../functions/core/chatops/approval.js';

const action = (id: string, kind: string, requires: string[] = []) => ({ id, kind, title: id, requires });

describe('the safer alternative', () => {
  it.each([
    [
      'raise + NOTRACK → raise limits only',
      [action('limits', 'raise-limits'), action('n', 'notrack-ports')],
      'Raise limits only',
      ['limits'],
    ],
    [
      'raise + timeouts (which needs the raise) → raise limits only',
      [action('limits', 'raise-limits'), action('timeouts', 'shorten-timeouts', ['limits'])],
      'Raise limits only',
      ['limits'],
    ],
    [
      'timeouts + NOTRACK, no raise → shorten timeouts only',
      [action('timeouts', 'shorten-timeouts'), action('n', 'notrack-ports')],
      'Shorten timeouts only',
      ['timeouts'],
    ],
  ])('%s', (_label, actions, label, ids) => {
    expect(saferAlternativeOf(actions)).toMatchObject({ label, actionIds: ids });
  });

  it.each([
    ['a single change', [action('limits', 'raise-limits')]],
    ['only NOTRACK changes', [action('a', 'notrack-ports'), action('b', 'notrack-ports')]],
    [
      'timeouts that need a raise that is not offered',
      [action('timeouts', 'shorten-timeouts', ['limits']), action('n', 'notrack-ports')],
    ],
  ])('none for %s', (_label, actions) => {
    expect(saferAlternativeOf(actions)).toBeNull();
  });
});

describe('decisions', () => {
  const record = newApprovalRecord({
    approvalId: '6f1c2f9e-5a7d-4a3c-9a55-6d1f7f0e8b21',
    incidentId: 'inc-1',
    instanceId: 'i-0abc',
    executionId: 'arn:exec',
    now: new Date('2026-11-21T10:00:00Z'),
    timeoutSeconds: 600,
    actions: [
      { id: 'limits', title: 'Raise' },
      { id: 'n', title: 'NOTRACK' },
    ],
    alternative: { label: 'Raise limits only', actionIds: ['limits'], why: 'safer' },
  });
  const approver = {
    id: 'U0APPROVER',
    name: 'alice',
    teamId: 'T0TEAM',
    via: 'slack' as const,
    basis: 'allowlist' as const,
  };
  const at = new Date('2026-11-21T10:05:00Z');

  it('expires at the timeout', () => {
    expect(isExpired(record, new Date('2026-11-21T10:09:59.999Z'))).toBe(false);
    expect(isExpired(record, new Date('2026-11-21T10:10:00.000Z'))).toBe(true);
  });

  it('an alternative approves only its subset; the task output carries the Slack identity', () => {
    const decision = decisionFor(record, 'alternative', approver, at, 'attempt-1');
    expect(decision).toMatchObject({ decision: 'approved', actionIds: ['limits'] });
    expect(taskOutputOf(record, decision)).toEqual({
      decision: 'approved',
      actionIds: ['limits'],
      approver: { id: 'U0APPROVER', name: 'alice', via: 'slack', teamId: 'T0TEAM', basis: 'allowlist' },
      decidedAt: '2026-11-21T10:05:00.000Z',
      approvalId: record.approvalId,
      choice: 'alternative',
    });
  });

  it('approve covers every action; reject is a decision (the gate ends the incident "rejected")', () => {
    expect(taskOutputOf(record, decisionFor(record, 'approve', approver, at, 'a'))).not.toHaveProperty(
      'actionIds',
    );
    expect(taskOutputOf(record, decisionFor(record, 'reject', approver, at, 'a'))).toMatchObject({
      decision: 'rejected',
    });
  });

  it('an unknown name is left out rather than sent as null (the gate schema wants a string)', () => {
    const output = taskOutputOf(record, decisionFor(record, 'approve', { ...approver, name: null }, at, 'a'));
    expect(output.approver).not.toHaveProperty('name');
  });
});
