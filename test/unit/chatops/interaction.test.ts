import { describe, expect, it } from 'vitest';
import {
  approvalClickOf,
  buttonValue,
  parseButtonValue,
  parseInteractionBody,
} from '../../../functions/core/chatops/interaction.js';
import { blockActionsPayload, formBody, SLACK } from '../../support/slack-payloads.js';

const APPROVAL_ID = '6f1c2f9e-5a7d-4a3c-9a55-6d1f7f0e8b21';
const FORM = 'application/x-www-form-urlencoded';

describe('the interactivity payload', () => {
  it('parses a button click into the approval id, the decision and who clicked', () => {
    const parsed = parseInteractionBody(
      formBody(blockActionsPayload({ approvalId: APPROVAL_ID, decision: 'reject' })),
      FORM,
    );
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(approvalClickOf(parsed.payload)).toEqual({
      ok: true,
      click: {
        decision: 'reject',
        approvalId: APPROVAL_ID,
        userId: SLACK.approver,
        userName: 'alice',
        teamId: SLACK.teamId,
        channelId: SLACK.channelId,
        messageTs: '1700000000.000200',
      },
    });
  });

  it.each([
    ['not a form', Buffer.from('{}'), 'application/json', /x-www-form-urlencoded/],
    ['no payload field', Buffer.from('a=b'), FORM, /no payload field/],
    ['payload not JSON', Buffer.from('payload=%7Bnope'), FORM, /not JSON/],
    ['another interaction type', formBody({ type: 'view_submission' }), FORM, /view_submission/],
    [
      'no user',
      formBody({ ...blockActionsPayload({ approvalId: APPROVAL_ID }), user: undefined }),
      FORM,
      /user/,
    ],
  ])('refuses %s, saying what is wrong', (_label, body, type, message) => {
    const parsed = parseInteractionBody(body, type);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.detail).toMatch(message);
  });

  it.each([
    ['a forged value', 'approve:../../etc'],
    ['a task token in the value', `approve:${'A'.repeat(36)}`],
    ['a value that names another decision than its action', buttonValue('reject', APPROVAL_ID)],
  ])('refuses %s', (_label, value) => {
    const parsed = parseInteractionBody(
      formBody(blockActionsPayload({ approvalId: APPROVAL_ID, value })),
      FORM,
    );
    if (!parsed.ok) throw new Error(parsed.detail);
    expect(approvalClickOf(parsed.payload).ok).toBe(false);
  });

  it('button values carry only the decision and a UUID', () => {
    expect(buttonValue('approve', APPROVAL_ID)).toBe(`approve:${APPROVAL_ID}`);
    expect(() => buttonValue('approve', 'not-a-uuid')).toThrow();
    expect(parseButtonValue(`alternative:${APPROVAL_ID}`)).toEqual({
      decision: 'alternative',
      approvalId: APPROVAL_ID,
    });
    expect(parseButtonValue(`approve:${APPROVAL_ID}:extra`)).toBeNull();
  });
});
