import { z } from 'zod';
import { ResponderError, TASK_ERROR } from '../errors.js';
import { IncidentSchema, incidentViewOf } from './approval-task.js';
import type { IncidentChat } from './incident-chat.js';
import type { IncidentView, ResultView } from './messages.js';
import {
  type NotificationContent,
  type NotificationContext,
  type SnsMessage,
  snsMessage,
} from './notification.js';

/**
 * "Notify": every incident's outcome goes to SNS and to its Slack thread. SNS goes first and does
 * not depend on Slack, so that a Slack outage (or a rate limit that outlasts the retries) never
 * keeps the outcome from the people subscribed to the topic. When the approval wait timed out,
 * the approval message is closed too (a late click is then refused) and the thread says that
 * nothing changed and the incident is escalated.
 */

export interface OutcomePorts {
  readonly publish: (message: SnsMessage) => Promise<{ readonly messageId: string }>;
  /** Null when no Slack workspace is configured. */
  readonly chat: IncidentChat | null;
}

export interface OutcomeDelivery {
  readonly sns: { readonly messageId: string; readonly subject: string } | { readonly error: string };
  readonly slack: 'posted' | 'not-configured' | { readonly error: string };
}

/** The failure the notify step reports when SNS did not take the message (Slack may still have). */
export class NotificationNotPublishedError extends ResponderError {
  override readonly name = TASK_ERROR.notificationNotPublished;
}

const StateSchema = z.looseObject({
  incident: z.unknown().optional(),
  execution: z.looseObject({ id: z.string().optional() }).optional(),
  outcome: z
    .looseObject({
      status: z.string().optional(),
      hostChanged: z.boolean().optional(),
      summary: z.string().optional(),
    })
    .optional(),
  gate: z.looseObject({ decision: z.string().optional() }).optional(),
  error: z.looseObject({ Error: z.string().optional(), Cause: z.string().optional() }).optional(),
});

const ESCALATING = new Set(['escalated', 'rollback-failed', 'failed', 'unknown']);

function incidentOf(state: z.infer<typeof StateSchema>): IncidentView | null {
  const parsed = IncidentSchema.safeParse(state.incident);
  return parsed.success ? incidentViewOf(parsed.data, state.execution?.id ?? null) : null;
}

/** True when the workflow ended because nobody decided in time (the wait's States.Timeout). */
export function approvalTimedOut(state: unknown): boolean {
  const parsed = StateSchema.safeParse(state);
  return (
    parsed.success &&
    parsed.data.error?.Error === 'States.Timeout' &&
    parsed.data.gate?.decision === 'approve'
  );
}

export async function notifyOutcome(
  state: unknown,
  content: NotificationContent,
  context: NotificationContext,
  ports: OutcomePorts,
): Promise<OutcomeDelivery> {
  const parsed = StateSchema.safeParse(state);
  const fields = parsed.success ? parsed.data : {};
  const message = snsMessage(content, context);
  let sns: OutcomeDelivery['sns'];
  try {
    const published = await ports.publish(message);
    sns = { messageId: published.messageId, subject: message.Subject };
  } catch (error) {
    sns = { error: (error as Error).message };
  }

  let slack: OutcomeDelivery['slack'] = 'not-configured';
  const incident = parsed.success ? incidentOf(parsed.data) : null;
  if (ports.chat !== null) {
    try {
      if (incident === null) throw new Error('the state has no usable incident to find its thread');
      if (approvalTimedOut(state)) {
        await ports.chat.approvalTimedOut(incident.incidentId, 'The approval wait timed out.');
      }
      const status = fields.outcome?.status ?? 'unknown';
      const result: ResultView = {
        outcome: status,
        headline: fields.outcome?.summary ?? 'The workflow recorded no outcome.',
        text: content.text,
        hostChanged: fields.outcome?.hostChanged ?? null,
        evidence: context.evidence,
        escalated: ESCALATING.has(status),
      };
      await ports.chat.result(incident, result);
      slack = 'posted';
    } catch (error) {
      slack = { error: (error as Error).message };
    }
  }
  if ('error' in sns) {
    throw new NotificationNotPublishedError(
      `SNS did not take the notification (${sns.error}); Slack: ${typeof slack === 'string' ? slack : slack.error}`,
    );
  }
  return { sns, slack };
}
