import { z } from 'zod';
import { formatIssues } from '../zod-issues.js';

/**
 * Slack's interactivity request: `application/x-www-form-urlencoded` with one `payload` field
 * holding JSON (https://docs.slack.dev/reference/interaction-payloads/block_actions-payload).
 * Only a verified request gets here, but its content is still untrusted text: it is parsed with a
 * schema, and only an approval id and a decision are taken from the button.
 */

/** action_id prefix of the approval buttons; other apps' or other messages' actions are not ours. */
export const APPROVAL_ACTION_PREFIX = 'conntrack-responder.approval.';

export const BUTTON_DECISIONS = ['approve', 'alternative', 'reject'] as const;
export type ButtonDecision = (typeof BUTTON_DECISIONS)[number];

/** Approval ids are random UUIDs: nothing else is accepted, so a value cannot smuggle anything. */
export const APPROVAL_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const VALUE_PATTERN = /^(approve|alternative|reject):([0-9a-f-]{36})$/;

/** The button value: only the decision and the approval id (never the task token). */
export function buttonValue(decision: ButtonDecision, approvalId: string): string {
  if (!APPROVAL_ID_PATTERN.test(approvalId)) throw new Error(`'${approvalId}' is not an approval id`);
  return `${decision}:${approvalId}`;
}

export function actionIdFor(decision: ButtonDecision): string {
  return `${APPROVAL_ACTION_PREFIX}${decision}`;
}

export function parseButtonValue(value: string): { decision: ButtonDecision; approvalId: string } | null {
  const match = VALUE_PATTERN.exec(value);
  if (!match) return null;
  const [, decision, approvalId] = match;
  if (approvalId === undefined || !APPROVAL_ID_PATTERN.test(approvalId)) return null;
  return { decision: decision as ButtonDecision, approvalId };
}

const ActionSchema = z.looseObject({
  type: z.string().optional(),
  action_id: z.string(),
  block_id: z.string().optional(),
  value: z.string().optional(),
  action_ts: z.string().optional(),
});

export const BlockActionsPayloadSchema = z.looseObject({
  type: z.literal('block_actions'),
  team: z.looseObject({ id: z.string(), domain: z.string().optional() }).nullable(),
  user: z.looseObject({
    id: z.string().min(1),
    username: z.string().optional(),
    name: z.string().optional(),
    team_id: z.string().optional(),
  }),
  api_app_id: z.string(),
  enterprise: z.looseObject({ id: z.string() }).nullable().optional(),
  channel: z.looseObject({ id: z.string(), name: z.string().optional() }).optional(),
  container: z
    .looseObject({
      type: z.string(),
      message_ts: z.string().optional(),
      channel_id: z.string().optional(),
    })
    .optional(),
  message: z.looseObject({ ts: z.string(), thread_ts: z.string().optional() }).optional(),
  trigger_id: z.string().optional(),
  actions: z.array(ActionSchema).min(1),
});

export type BlockActionsPayload = z.infer<typeof BlockActionsPayloadSchema>;

export type ParsedInteraction =
  | { readonly ok: true; readonly payload: BlockActionsPayload }
  | { readonly ok: false; readonly detail: string };

/** The block_actions payload out of the form body, or what is wrong with it. */
export function parseInteractionBody(body: Buffer, contentType: string | undefined): ParsedInteraction {
  if (!/^application\/x-www-form-urlencoded\b/i.test(contentType ?? '')) {
    return { ok: false, detail: `expected application/x-www-form-urlencoded, got '${contentType ?? ''}'` };
  }
  const form = new URLSearchParams(body.toString('utf8'));
  const payloadText = form.get('payload');
  if (payloadText === null) return { ok: false, detail: 'the form has no payload field' };
  let json: unknown;
  try {
    json = JSON.parse(payloadText);
  } catch {
    return { ok: false, detail: 'the payload field is not JSON' };
  }
  const type = (json as { type?: unknown } | null)?.type;
  if (type !== 'block_actions') {
    return { ok: false, detail: `interaction type '${String(type)}' is not handled (only block_actions)` };
  }
  const parsed = BlockActionsPayloadSchema.safeParse(json);
  if (!parsed.success) {
    return {
      ok: false,
      detail: `the block_actions payload is invalid: ${formatIssues(parsed.error, { limit: 5 })}`,
    };
  }
  return { ok: true, payload: parsed.data };
}

export interface ApprovalClick {
  readonly decision: ButtonDecision;
  readonly approvalId: string;
  readonly userId: string;
  readonly userName: string | null;
  readonly teamId: string | null;
  readonly channelId: string | null;
  readonly messageTs: string | null;
}

/** The approval button in the payload (exactly one of ours), or why there is none. */
export function approvalClickOf(
  payload: BlockActionsPayload,
): { ok: true; click: ApprovalClick } | { ok: false; detail: string } {
  const ours = payload.actions.filter((action) => action.action_id.startsWith(APPROVAL_ACTION_PREFIX));
  if (ours.length !== 1) {
    return { ok: false, detail: `expected one conntrack-responder approval action, found ${ours.length}` };
  }
  const [action] = ours;
  const parsed = parseButtonValue(action?.value ?? '');
  if (action === undefined || parsed === null) {
    return { ok: false, detail: 'the button value is not <decision>:<approval id>' };
  }
  if (action.action_id !== actionIdFor(parsed.decision)) {
    return { ok: false, detail: `action ${action.action_id} does not match its value's decision` };
  }
  return {
    ok: true,
    click: {
      ...parsed,
      userId: payload.user.id,
      userName: payload.user.username ?? payload.user.name ?? null,
      teamId: payload.user.team_id ?? payload.team?.id ?? null,
      channelId: payload.channel?.id ?? payload.container?.channel_id ?? null,
      messageTs: payload.container?.message_ts ?? payload.message?.ts ?? null,
    },
  };
}
