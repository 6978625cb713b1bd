import type { ApprovalRecord, Approver } from './approval.js';
import {
  type ApproverRules,
  authorizeApprover,
  checkOrigin,
  type GroupMembers,
  type SlackAppIdentity,
} from './authorize.js';
import { type DecidePorts, decideAndResume } from './decide.js';
import { emptyOk, type FunctionUrlResult, jsonResult, type RawRequest } from './http.js';
import { approvalClickOf, parseInteractionBody } from './interaction.js';
import { mention, slackDate } from './messages.js';
import { verifySlackRequest } from './signature.js';

/**
 * What happens when someone clicks an approval button, from the raw HTTP request to the answer
 * Slack waits for (3 seconds at most). The order is the security argument: nothing is read from
 * the body before its signature and timestamp are verified; nothing is looked up before the team,
 * the app and the user are known to be allowed; and the decision is one conditional write, so that
 * only one click ever gets the task token. Refusals change nothing.
 *
 * The work that talks to Slack (updating the message, telling a user why not) is returned as a
 * follow-up that runs after the answer (an asynchronous invocation on AWS, the next tick locally).
 */

export interface InteractivityConfig {
  readonly app: SlackAppIdentity;
  readonly approvers: ApproverRules;
  /** When set, a click counts only in this channel. */
  readonly channelId: string | null;
}

export interface InteractivityPorts extends DecidePorts {
  readonly signingSecrets: () => Promise<readonly string[]>;
  readonly groupMembers: GroupMembers;
  readonly now: () => Date;
}

export type FollowUp =
  /** Update the approval message (decided or expired) and say so in the thread. */
  | { readonly kind: 'settle-approval'; readonly approvalId: string }
  /** Tell one user, privately, why their click did nothing. */
  | {
      readonly kind: 'tell-user';
      readonly channelId: string;
      readonly userId: string;
      readonly text: string;
    };

export type InteractionResult =
  | 'decided'
  | 'method-not-allowed'
  | 'bad-signature'
  | 'bad-request'
  | 'foreign-origin'
  | 'wrong-place'
  | 'not-allowed'
  | 'unknown-approval'
  | 'already-decided'
  | 'expired'
  | 'unavailable';

export interface InteractionOutcome {
  readonly result: InteractionResult;
  /** For the log: what was decided or why nothing was (never the task token). */
  readonly detail: string;
  readonly response: FunctionUrlResult;
  readonly followUp: FollowUp | null;
  readonly approvalId?: string;
  readonly userId?: string;
}

function refuse(
  status: number,
  result: InteractionResult,
  detail: string,
  extra: Partial<InteractionOutcome> = {},
): InteractionOutcome {
  return {
    result,
    detail,
    response: jsonResult(status, { error: result, detail }),
    followUp: null,
    ...extra,
  };
}

function whoDecided(record: ApprovalRecord): string {
  const decision = record.decision;
  if (decision === null) return 'someone';
  return `${mention(decision.approver.id, decision.approver.name)} (${decision.decision}, ${slackDate(decision.decidedAt)})`;
}

export async function handleInteraction(
  request: RawRequest,
  config: InteractivityConfig,
  ports: InteractivityPorts,
): Promise<InteractionOutcome> {
  if (request.method !== 'POST')
    return refuse(405, 'method-not-allowed', `method ${request.method} is not POST`);

  const now = ports.now();
  const signature = verifySlackRequest(request, await ports.signingSecrets(), now);
  if (!signature.ok) return refuse(401, 'bad-signature', `${signature.reason}: ${signature.detail}`);

  const parsed = parseInteractionBody(request.body, request.headers['content-type']);
  if (!parsed.ok) return refuse(400, 'bad-request', parsed.detail);
  const { payload } = parsed;

  const origin = checkOrigin(payload, config.app);
  if (!origin.ok) return refuse(403, 'foreign-origin', `${origin.reason}: ${origin.detail}`);

  const found = approvalClickOf(payload);
  if (!found.ok) return refuse(400, 'bad-request', found.detail);
  const { click } = found;
  const ids = { approvalId: click.approvalId, userId: click.userId };

  const tell = (text: string) =>
    click.channelId === null
      ? null
      : ({ kind: 'tell-user', channelId: click.channelId, userId: click.userId, text } as const);

  if (config.channelId !== null && click.channelId !== config.channelId) {
    return refuse(
      403,
      'wrong-place',
      `the click came from channel ${click.channelId ?? '(none)'}, not ${config.channelId}`,
      ids,
    );
  }

  const authorization = await authorizeApprover(click.userId, config.approvers, ports.groupMembers);
  if (!authorization.ok) {
    const outcome = refuse(
      authorization.status,
      authorization.status === 403 ? 'not-allowed' : 'unavailable',
      authorization.detail,
      ids,
    );
    return {
      ...outcome,
      followUp: tell(
        authorization.status === 403
          ? ':lock: You are not on the list of approvers for conntrack-responder, so your click changed nothing. Ask one of the approvers.'
          : ':warning: Your click changed nothing: the approvers user group could not be read just now. Try again in a minute.',
      ),
    };
  }

  const record = await ports.store.get(click.approvalId);
  if (record === undefined)
    return refuse(404, 'unknown-approval', `approval ${click.approvalId} does not exist`, ids);
  if (
    record.message !== null &&
    (click.channelId !== record.message.channel || click.messageTs !== record.message.ts)
  ) {
    return refuse(403, 'wrong-place', `the button is not on approval ${record.approvalId}'s message`, ids);
  }
  if (click.decision === 'alternative' && record.alternative === null) {
    return refuse(400, 'bad-request', `approval ${record.approvalId} offers no alternative`, ids);
  }

  const approver: Approver = {
    id: click.userId,
    name: click.userName,
    teamId: click.teamId,
    via: 'slack',
    basis: authorization.basis,
  };
  const outcome = await decideAndResume(record, click.decision, approver, now, ports);
  switch (outcome.result) {
    case 'not-found':
      return refuse(404, 'unknown-approval', `approval ${click.approvalId} does not exist`, ids);
    case 'already-decided':
      return {
        ...refuse(403, 'already-decided', `approval ${record.approvalId} was already decided`, ids),
        followUp: tell(
          `This approval was already decided by ${whoDecided(outcome.record)}; your click changed nothing.`,
        ),
      };
    case 'expired':
      // Expired before the click (tell the user), or the workflow stopped waiting meanwhile (settle
      // the message: the decision was closed as expired).
      if (outcome.stoppedWaiting) {
        return {
          ...refuse(403, 'expired', outcome.detail, ids),
          followUp: { kind: 'settle-approval', approvalId: record.approvalId },
        };
      }
      return {
        ...refuse(403, 'expired', outcome.detail, ids),
        followUp: tell(
          `This approval expired ${slackDate(outcome.record.expiresAt)}; your click changed nothing. The incident was escalated without a change.`,
        ),
      };
    case 'unavailable':
      return refuse(503, 'unavailable', outcome.detail, ids);
    case 'decided':
      break;
  }
  const { decision } = outcome;
  return {
    result: 'decided',
    detail: `approval ${record.approvalId}: ${decision.decision} (${decision.choice}) by ${approver.id} (${approver.basis})`,
    response: emptyOk(),
    followUp: { kind: 'settle-approval', approvalId: record.approvalId },
    ...ids,
  };
}
