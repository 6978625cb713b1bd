import type { BlockActionsPayload } from './interaction.js';

/**
 * Who may decide. Slack cannot restrict who clicks a button in a channel, so every click is checked
 * here: it must come from our workspace and our app, and the user must be on the allowlist or in
 * the approvers' user group. Anything not configured denies (fail closed).
 */

export interface SlackAppIdentity {
  /** The workspace (T…) the app is installed in. */
  readonly teamId: string;
  /** The app (A…) whose buttons these are. */
  readonly appId: string;
}

export interface ApproverRules {
  /** Slack user ids (U…/W…) allowed to decide. */
  readonly userIds: readonly string[];
  /** A user group (S…) whose members may decide; membership is read through the Web API. */
  readonly userGroupId: string | null;
}

export const USER_ID_PATTERN = /^[UW][A-Z0-9]{2,}$/;
export const USER_GROUP_ID_PATTERN = /^S[A-Z0-9]{2,}$/;
export const TEAM_ID_PATTERN = /^[TE][A-Z0-9]{2,}$/;
export const APP_ID_PATTERN = /^A[A-Z0-9]{2,}$/;
export const CHANNEL_ID_PATTERN = /^[CGD][A-Z0-9]{2,}$/;

export type OriginCheck =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: 'foreign-team' | 'foreign-app'; readonly detail: string };

/** The click came from our app in our workspace (a user of another org in a shared channel is foreign). */
export function checkOrigin(payload: BlockActionsPayload, identity: SlackAppIdentity): OriginCheck {
  if (payload.api_app_id !== identity.appId) {
    return { ok: false, reason: 'foreign-app', detail: `app ${payload.api_app_id} is not ${identity.appId}` };
  }
  const teamId = payload.team?.id ?? null;
  if (teamId !== identity.teamId) {
    return {
      ok: false,
      reason: 'foreign-team',
      detail: `workspace ${teamId ?? '(none)'} is not ${identity.teamId}`,
    };
  }
  const userTeam = payload.user.team_id;
  if (userTeam !== undefined && userTeam !== identity.teamId) {
    return {
      ok: false,
      reason: 'foreign-team',
      detail: `user ${payload.user.id} belongs to workspace ${userTeam}, not ${identity.teamId}`,
    };
  }
  return { ok: true };
}

export type Authorization =
  | { readonly ok: true; readonly basis: 'allowlist' | 'user-group' }
  | { readonly ok: false; readonly status: 403; readonly reason: 'not-an-approver'; readonly detail: string }
  | {
      readonly ok: false;
      readonly status: 503;
      readonly reason: 'membership-unavailable';
      readonly detail: string;
    };

/** Reads a user group's members (the Slack adapter, through the cache below). */
export type GroupMembers = (groupId: string) => Promise<ReadonlySet<string>>;

export async function authorizeApprover(
  userId: string,
  rules: ApproverRules,
  groupMembers: GroupMembers,
): Promise<Authorization> {
  if (rules.userIds.includes(userId)) return { ok: true, basis: 'allowlist' };
  if (rules.userGroupId !== null) {
    let members: ReadonlySet<string>;
    try {
      members = await groupMembers(rules.userGroupId);
    } catch (error) {
      return {
        ok: false,
        status: 503,
        reason: 'membership-unavailable',
        detail: `could not read the members of user group ${rules.userGroupId}: ${(error as Error).message}`,
      };
    }
    if (members.has(userId)) return { ok: true, basis: 'user-group' };
  }
  const configured =
    rules.userIds.length === 0 && rules.userGroupId === null
      ? 'no approvers are configured'
      : 'not on the approver allowlist or in the approvers user group';
  return { ok: false, status: 403, reason: 'not-an-approver', detail: `user ${userId} is ${configured}` };
}

/**
 * A user group's members, cached briefly: usergroups.users.list is rate limited (Tier 2) and a
 * burst of clicks must not each cost a call, while a removed approver must lose the right soon.
 * Concurrent lookups share one request; failures are not cached.
 */
export class GroupMembershipCache {
  private readonly entries = new Map<string, { members: ReadonlySet<string>; fetchedAt: number }>();
  private readonly inFlight = new Map<string, Promise<ReadonlySet<string>>>();

  constructor(
    private readonly fetchMembers: (groupId: string) => Promise<readonly string[]>,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  readonly members: GroupMembers = async (groupId) => {
    const cached = this.entries.get(groupId);
    if (cached !== undefined && this.now() - cached.fetchedAt < this.ttlMs) return cached.members;
    const pending = this.inFlight.get(groupId);
    if (pending !== undefined) return pending;
    const request = (async () => {
      try {
        const members = new Set(await this.fetchMembers(groupId));
        this.entries.set(groupId, { members, fetchedAt: this.now() });
        return members;
      } finally {
        this.inFlight.delete(groupId);
      }
    })();
    this.inFlight.set(groupId, request);
    return request;
  };
}
