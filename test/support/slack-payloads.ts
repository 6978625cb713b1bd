import { actionIdFor, type ButtonDecision, buttonValue } from '../../functions/core/chatops/interaction.js';
import { signSlackRequest } from '../../functions/core/chatops/signature.js';

/** The Slack workspace, app, channel and people the tests use. */
export const SLACK = {
  teamId: 'T0TESTTEAM',
  foreignTeamId: 'T0OTHERORG',
  appId: 'A0TESTAPP1',
  channelId: 'C0INCIDENTS',
  approver: 'U0APPROVER',
  secondApprover: 'U0SECONDAPR',
  groupMember: 'U0GROUPMEMB',
  bystander: 'U0BYSTANDER',
  userGroupId: 'S0ONCALL01',
  signingSecret: 'test-signing-secret-0123456789abcdef',
  botToken: 'xoxb-test-token',
} as const;

export interface ClickOptions {
  readonly approvalId: string;
  readonly decision?: ButtonDecision;
  readonly userId?: string;
  readonly userName?: string;
  readonly teamId?: string;
  readonly appId?: string;
  readonly channelId?: string;
  readonly messageTs?: string;
  /** Overrides the button's value (e.g. a forged one). */
  readonly value?: string;
}

/** A block_actions payload as Slack sends it when a button of ours is clicked. */
export function blockActionsPayload(options: ClickOptions): Record<string, unknown> {
  const decision = options.decision ?? 'approve';
  const teamId = options.teamId ?? SLACK.teamId;
  const channelId = options.channelId ?? SLACK.channelId;
  const messageTs = options.messageTs ?? '1700000000.000200';
  return {
    type: 'block_actions',
    user: {
      id: options.userId ?? SLACK.approver,
      username: options.userName ?? 'alice',
      name: options.userName ?? 'alice',
      team_id: teamId,
    },
    api_app_id: options.appId ?? SLACK.appId,
    token: 'deprecated-verification-token',
    container: { type: 'message', message_ts: messageTs, channel_id: channelId, is_ephemeral: false },
    trigger_id: '1234567890.1234567890.abcdef',
    team: { id: teamId, domain: 'test' },
    enterprise: null,
    is_enterprise_install: false,
    channel: { id: channelId, name: 'incidents' },
    message: { type: 'message', ts: messageTs, thread_ts: '1700000000.000100', text: 'Approval needed' },
    response_url: 'https://hooks.slack.com/actions/T0TESTTEAM/1/abc',
    actions: [
      {
        type: 'button',
        action_id: actionIdFor(decision),
        block_id: 'conntrack-responder-approval-buttons',
        text: { type: 'plain_text', text: 'Approve', emoji: true },
        value: options.value ?? buttonValue(decision, options.approvalId),
        action_ts: '1700000001.000300',
      },
    ],
  };
}

/** The form body Slack posts: payload=<url-encoded JSON>. */
export function formBody(payload: unknown): Buffer {
  return Buffer.from(new URLSearchParams({ payload: JSON.stringify(payload) }).toString(), 'utf8');
}

export interface SignedRequestParts {
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

/** A request signed with `secret` at `timestampSeconds`, as Slack would send it. */
export function signedForm(
  payload: unknown,
  options: { secret?: string; timestampSeconds: number },
): SignedRequestParts {
  const body = formBody(payload);
  return {
    body,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...signSlackRequest(options.secret ?? SLACK.signingSecret, body, options.timestampSeconds),
    },
  };
}

/** A slash command as Slack posts it (form fields, no JSON payload). */
export function slashCommandBody(options: {
  text: string;
  userId?: string;
  userName?: string;
  teamId?: string;
  appId?: string;
}): Record<string, string> {
  return {
    token: 'deprecated-verification-token',
    team_id: options.teamId ?? SLACK.teamId,
    team_domain: 'test',
    channel_id: SLACK.channelId,
    channel_name: 'incidents',
    user_id: options.userId ?? SLACK.approver,
    user_name: options.userName ?? 'alice',
    command: '/conntrack-responder',
    text: options.text,
    api_app_id: options.appId ?? SLACK.appId,
    is_enterprise_install: 'false',
    response_url: 'https://hooks.slack.com/commands/T0TESTTEAM/1/abc',
    trigger_id: '1234567890.1234567890.abcdef',
  };
}

/** A form signed as Slack signs it. */
export function signedFields(
  fields: Record<string, string>,
  options: { secret?: string; timestampSeconds: number },
) {
  const body = Buffer.from(new URLSearchParams(fields).toString(), 'utf8');
  return {
    body,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...signSlackRequest(options.secret ?? SLACK.signingSecret, body, options.timestampSeconds),
    },
  };
}
