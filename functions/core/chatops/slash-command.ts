/**
 * `/conntrack-responder breaker [status | reset <reason> | open <reason>]`: the fleet circuit
 * breaker from Slack (issue 6: "a person resets it, from Slack or the CLI"). Slack posts slash
 * commands to the same Request URL as button clicks, signed the same way; the same checks apply
 * (signature and timestamp, workspace and app, approvers only). The answer is Slack's immediate
 * response: private (ephemeral) for status, help and refusals, in the channel for a reset or an
 * opening, so that everyone sees who changed the breaker and why.
 *
 * Refusals of a person (not an approver) are answered 200 with a private explanation: for a slash
 * command Slack shows any other status only as an opaque failure. Nothing changes either way.
 */

import { z } from 'zod';
import { formatIssues } from '../zod-issues.js';
import {
  type ApproverRules,
  authorizeApprover,
  type GroupMembers,
  type SlackAppIdentity,
} from './authorize.js';
import { escapeMrkdwn, truncate } from './block-kit.js';
import { type FunctionUrlResult, jsonResult, type RawRequest } from './http.js';
import { mention } from './messages.js';
import { verifySlackRequest } from './signature.js';

export const SLASH_COMMAND = '/conntrack-responder';

export interface BreakerState {
  readonly open: boolean;
  /** The fleet view as text (what the escalation said, as it stands now). */
  readonly text: string;
}

/** The breaker, as functions/adapters/breaker-control.ts offers it. */
export interface BreakerPort {
  status(now: Date): Promise<BreakerState>;
  reset(
    by: string,
    reason: string,
    now: Date,
  ): Promise<{ readonly changed: boolean; readonly state: BreakerState }>;
  open(
    by: string,
    reason: string,
    now: Date,
  ): Promise<{ readonly changed: boolean; readonly state: BreakerState }>;
}

export interface SlashCommandPorts {
  readonly signingSecrets: () => Promise<readonly string[]>;
  readonly groupMembers: GroupMembers;
  readonly now: () => Date;
  /** Null where the guardrails are not deployed with this endpoint. */
  readonly breaker: BreakerPort | null;
}

export interface SlashCommandConfig {
  readonly app: SlackAppIdentity;
  readonly approvers: ApproverRules;
}

export type SlashCommandResult =
  | 'bad-signature'
  | 'bad-request'
  | 'foreign-origin'
  | 'not-allowed'
  | 'unavailable'
  | 'help'
  | 'breaker-status'
  | 'breaker-reset'
  | 'breaker-opened'
  | 'breaker-unchanged'
  | 'breaker-error';

export interface SlashCommandOutcome {
  readonly result: SlashCommandResult;
  readonly detail: string;
  readonly response: FunctionUrlResult;
  readonly userId?: string;
}

const CommandSchema = z.looseObject({
  command: z.string(),
  text: z.string().default(''),
  user_id: z.string().min(1),
  user_name: z.string().optional(),
  team_id: z.string(),
  api_app_id: z.string(),
  channel_id: z.string().optional(),
});

/** True when a form body is a slash command (it has `command`) rather than an interaction (`payload`). */
export function isSlashCommandBody(body: Buffer): boolean {
  const form = new URLSearchParams(body.toString('utf8'));
  return form.has('command') && !form.has('payload');
}

const USAGE = [
  `*${SLASH_COMMAND} breaker* — the fleet circuit breaker (approvers only):`,
  `• \`${SLASH_COMMAND} breaker status\` — is it open, and the fleet view`,
  `• \`${SLASH_COMMAND} breaker reset <why it is safe again>\` — close it: automatic changes resume`,
  `• \`${SLASH_COMMAND} breaker open <why>\` — open it by hand: every automatic change waits for approval`,
].join('\n');

function reply(visibility: 'ephemeral' | 'in_channel', text: string): FunctionUrlResult {
  return jsonResult(200, { response_type: visibility, text: truncate(text, 3000) });
}

function refusal(status: number, result: SlashCommandResult, detail: string): SlashCommandOutcome {
  return { result, detail, response: jsonResult(status, { error: result, detail }) };
}

function fleetText(state: BreakerState): string {
  return `The fleet breaker is *${state.open ? 'open' : 'closed'}*.\n\`\`\`${escapeMrkdwn(truncate(state.text, 2800)).replace(/```/g, 'ˋˋˋ')}\`\`\``;
}

export async function handleSlashCommand(
  request: RawRequest,
  config: SlashCommandConfig,
  ports: SlashCommandPorts,
): Promise<SlashCommandOutcome> {
  if (request.method !== 'POST') return refusal(405, 'bad-request', `method ${request.method} is not POST`);
  const now = ports.now();
  const signature = verifySlackRequest(request, await ports.signingSecrets(), now);
  if (!signature.ok) return refusal(401, 'bad-signature', `${signature.reason}: ${signature.detail}`);

  const parsed = CommandSchema.safeParse(
    Object.fromEntries(new URLSearchParams(request.body.toString('utf8'))),
  );
  if (!parsed.success) {
    return refusal(
      400,
      'bad-request',
      `the slash command is invalid (${formatIssues(parsed.error, { limit: 1, root: '' })})`,
    );
  }
  const command = parsed.data;
  if (command.api_app_id !== config.app.appId) {
    return refusal(
      403,
      'foreign-origin',
      `foreign-app: app ${command.api_app_id} is not ${config.app.appId}`,
    );
  }
  if (command.team_id !== config.app.teamId) {
    return refusal(
      403,
      'foreign-origin',
      `foreign-team: workspace ${command.team_id} is not ${config.app.teamId}`,
    );
  }
  const userId = command.user_id;
  const outcome = (result: SlashCommandResult, detail: string, response: FunctionUrlResult) => ({
    result,
    detail,
    response,
    userId,
  });

  const [subject = '', verb = 'status', ...rest] = command.text.trim().split(/\s+/);
  const reason = rest.join(' ').trim();
  if (subject.toLowerCase() !== 'breaker' || !['status', 'reset', 'open'].includes(verb.toLowerCase())) {
    return outcome('help', `usage shown for '${truncate(command.text, 80)}'`, reply('ephemeral', USAGE));
  }

  const authorization = await authorizeApprover(userId, config.approvers, ports.groupMembers);
  if (!authorization.ok) {
    return outcome(
      authorization.status === 403 ? 'not-allowed' : 'unavailable',
      authorization.detail,
      reply(
        'ephemeral',
        authorization.status === 403
          ? ':lock: Only the approvers of conntrack-responder may use the fleet breaker; nothing changed.'
          : ':warning: The approvers user group could not be read just now; nothing changed. Try again in a minute.',
      ),
    );
  }
  if (ports.breaker === null) {
    return outcome(
      'unavailable',
      'no breaker is configured with this endpoint',
      reply('ephemeral', 'The fleet breaker is not deployed with this Slack endpoint.'),
    );
  }

  const action = verb.toLowerCase();
  try {
    if (action === 'status') {
      const state = await ports.breaker.status(now);
      return outcome(
        'breaker-status',
        `breaker ${state.open ? 'open' : 'closed'}`,
        reply('ephemeral', fleetText(state)),
      );
    }
    if (reason === '') {
      return outcome(
        'help',
        `${action} without a reason`,
        reply('ephemeral', `Say why: \`${SLASH_COMMAND} breaker ${action} <reason>\`. Nothing changed.`),
      );
    }
    // The guardrails' audit record names the Slack user; the name is only what Slack calls them now.
    const by = `slack:${userId}${command.user_name ? ` (${command.user_name})` : ''}`;
    const done =
      action === 'reset'
        ? await ports.breaker.reset(by, reason, now)
        : await ports.breaker.open(by, reason, now);
    if (!done.changed) {
      return outcome(
        'breaker-unchanged',
        `breaker ${action}: it was already ${done.state.open ? 'open' : 'closed'}`,
        reply(
          'ephemeral',
          `The fleet breaker was already ${done.state.open ? 'open' : 'closed'}; nothing changed.`,
        ),
      );
    }
    const said =
      action === 'reset'
        ? `:white_check_mark: ${mention(userId)} *reset* the fleet breaker: automatic changes resume. Reason: ${escapeMrkdwn(reason)}`
        : `:octagonal_sign: ${mention(userId)} *opened* the fleet breaker: every automatic change now waits for approval. Reason: ${escapeMrkdwn(reason)}`;
    return outcome(
      action === 'reset' ? 'breaker-reset' : 'breaker-opened',
      `breaker ${action} by ${userId}`,
      reply('in_channel', said),
    );
  } catch (error) {
    return outcome(
      'breaker-error',
      `breaker ${action} failed: ${(error as Error).message}`,
      reply(
        'ephemeral',
        `:x: The breaker command failed: ${escapeMrkdwn((error as Error).message)}. See \`${SLASH_COMMAND} breaker status\`.`,
      ),
    );
  }
}
