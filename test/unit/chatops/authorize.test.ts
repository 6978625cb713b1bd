import { describe, expect, it } from 'vitest';
import {
  authorizeApprover,
  checkOrigin,
  GroupMembershipCache,
} from '../../../functions/core/chatops/authorize.js';
import { BlockActionsPayloadSchema } from '../../../functions/core/chatops/interaction.js';
import { blockActionsPayload, SLACK } from '../../support/slack-payloads.js';

const APPROVAL_ID = '6f1c2f9e-5a7d-4a3c-9a55-6d1f7f0e8b21';
const identity = { teamId: SLACK.teamId, appId: SLACK.appId };
const payload = (options: Parameters<typeof blockActionsPayload>[0]) =>
  BlockActionsPayloadSchema.parse(blockActionsPayload(options));

describe('origin of a click', () => {
  it('accepts our app in our workspace', () => {
    expect(checkOrigin(payload({ approvalId: APPROVAL_ID }), identity)).toEqual({ ok: true });
  });
  it('refuses another workspace', () => {
    expect(
      checkOrigin(payload({ approvalId: APPROVAL_ID, teamId: SLACK.foreignTeamId }), identity),
    ).toMatchObject({
      ok: false,
      reason: 'foreign-team',
    });
  });
  it('refuses a user of another org clicking in a shared channel', () => {
    const shared = blockActionsPayload({ approvalId: APPROVAL_ID });
    (shared.user as { team_id: string }).team_id = SLACK.foreignTeamId;
    expect(checkOrigin(BlockActionsPayloadSchema.parse(shared), identity)).toMatchObject({
      reason: 'foreign-team',
    });
  });
  it('refuses another app', () => {
    expect(checkOrigin(payload({ approvalId: APPROVAL_ID, appId: 'A0OTHERAPP' }), identity)).toMatchObject({
      reason: 'foreign-app',
    });
  });
});

describe('approvers', () => {
  const noGroup = async () => {
    throw new Error('must not be asked');
  };

  it('allows a user on the allowlist without reading the group', async () => {
    const rules = { userIds: [SLACK.approver], userGroupId: SLACK.userGroupId };
    expect(await authorizeApprover(SLACK.approver, rules, noGroup)).toEqual({ ok: true, basis: 'allowlist' });
  });

  it('allows a member of the approvers group', async () => {
    const rules = { userIds: [], userGroupId: SLACK.userGroupId };
    const members = async () => new Set([SLACK.groupMember]);
    expect(await authorizeApprover(SLACK.groupMember, rules, members)).toEqual({
      ok: true,
      basis: 'user-group',
    });
    expect(await authorizeApprover(SLACK.bystander, rules, members)).toMatchObject({
      ok: false,
      status: 403,
    });
  });

  it('denies everyone when nobody is configured', async () => {
    const result = await authorizeApprover(SLACK.approver, { userIds: [], userGroupId: null }, noGroup);
    expect(result).toMatchObject({ ok: false, status: 403 });
    expect(result.ok ? '' : result.detail).toContain('no approvers are configured');
  });

  it('answers 503, not 403 and not yes, when the group cannot be read', async () => {
    const rules = { userIds: [], userGroupId: SLACK.userGroupId };
    const failing = async () => {
      throw new Error('ratelimited');
    };
    expect(await authorizeApprover(SLACK.groupMember, rules, failing)).toMatchObject({
      ok: false,
      status: 503,
    });
  });
});

describe('the group membership cache', () => {
  it('reads once for concurrent and repeated lookups within its lifetime, again after it, never caching failures', async () => {
    let clock = 0;
    let calls = 0;
    let fail = false;
    const cache = new GroupMembershipCache(
      async () => {
        calls += 1;
        await new Promise((resolve) => setTimeout(resolve, 5));
        if (fail) throw new Error('down');
        return [SLACK.groupMember];
      },
      60_000,
      () => clock,
    );
    const results = await Promise.all(Array.from({ length: 5 }, () => cache.members(SLACK.userGroupId)));
    expect(results.every((members) => members.has(SLACK.groupMember))).toBe(true);
    expect(calls).toBe(1);
    clock = 59_999;
    await cache.members(SLACK.userGroupId);
    expect(calls).toBe(1);
    clock = 60_000;
    fail = true;
    await expect(cache.members(SLACK.userGroupId)).rejects.toThrow('down');
    fail = false;
    await cache.members(SLACK.userGroupId);
    expect(calls).toBe(3);
  });
});
