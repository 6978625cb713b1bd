import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { fleetEscalation } from '../core/guardrails/breaker.js';
import type { GuardrailStore } from './guardrail-store.js';

/**
 * Sends the fleet breaker's one escalation: whoever claims it first (a conditional write) builds
 * the fleet view and publishes it to the notification topic. A failed publish gives the claim
 * back and fails the caller, whose retry (or the next held delivery) sends it; so the escalation
 * is never lost, and only a publish that succeeded but could not be marked can repeat.
 */

/** Separates the readable text from the machine summary, as in every other notification. */
export const SUMMARY_MARKER = '--- JSON summary ---';

export interface EscalationTarget {
  readonly sns: SNSClient;
  readonly topicArn: string;
  /** The incidents table, named in the commands the message tells a person to run. */
  readonly tableName: string;
  readonly region: string | undefined;
}

export function breakerCommands(tableName: string, region: string | undefined) {
  const where = `--table ${tableName}${region ? ` --region ${region}` : ''}`;
  return {
    status: `npx conntrack-responder breaker status ${where}`,
    reset: `npx conntrack-responder breaker reset ${where} --by <your name> --reason <why it is safe again>`,
  };
}

export interface EscalationAttempt {
  readonly sent: boolean;
  readonly messageId: string | null;
  /**
   * When the episode whose escalation is settled tripped (sent by someone, or nothing to send
   * because the breaker closed): a caller need not try again for incidents held in it. Null while
   * another sender holds the claim, which its own retry completes if it fails.
   */
  readonly settledTrippedAt: string | null;
}

export async function escalateBreakerOnce(
  store: GuardrailStore,
  target: EscalationTarget,
  now: Date,
): Promise<EscalationAttempt> {
  if (!(await store.claimEscalation(now))) {
    const breaker = await store.getBreaker();
    const settled = breaker.status === 'closed' || breaker.escalation.status === 'sent';
    return { sent: false, messageId: null, settledTrippedAt: settled ? breaker.trippedAt : null };
  }
  try {
    const view = await store.fleetView(now);
    const message = fleetEscalation(view, breakerCommands(target.tableName, target.region));
    const published = await target.sns.send(
      new PublishCommand({
        TopicArn: target.topicArn,
        Subject: message.subject,
        Message: `${message.text}\n\n${SUMMARY_MARKER}\n${JSON.stringify(message.summary)}`,
        MessageAttributes: Object.fromEntries(
          Object.entries(message.attributes).map(([name, value]) => [
            name,
            { DataType: 'String', StringValue: value },
          ]),
        ),
      }),
    );
    const messageId = published.MessageId ?? null;
    await store.markEscalationSent(now, messageId);
    const breaker = await store.getBreaker();
    return { sent: true, messageId, settledTrippedAt: breaker.trippedAt };
  } catch (error) {
    await store.releaseEscalationClaim().catch(() => undefined);
    throw error;
  }
}
