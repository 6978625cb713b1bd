/**
 * Puts lifecycle events (functions/core/events/lifecycle.ts) on the account's default event bus.
 * Never throws: an event that EventBridge did not take is logged and counted, and the incident goes
 * on (the SNS notification and the evidence bundle do not depend on it).
 *
 * PutEvents takes at most 10 entries per call and answers a partial failure with
 * FailedEntryCount > 0 and, entry by entry in request order, an ErrorCode and ErrorMessage instead
 * of an EventId, not with an error
 * (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html).
 */

import {
  type EventBridgeClient,
  PutEventsCommand,
  type PutEventsRequestEntry,
} from '@aws-sdk/client-eventbridge';
import type { LifecycleEvent } from '../core/events/lifecycle.js';

/** Entries per PutEvents call (the API's limit). */
export const PUT_EVENTS_BATCH = 10;

/** Metric names, counted by the handlers that put events. */
export const LIFECYCLE_EVENT_METRICS = {
  sent: 'LifecycleEventsSent',
  failed: 'LifecycleEventsFailed',
} as const;

export interface LifecycleEventFailure {
  readonly detailType: string;
  readonly eventKey: string;
  /** EventBridge's ErrorCode for the entry, or the error the call failed with. */
  readonly error: string;
}

export interface PutLifecycleEventsResult {
  readonly sent: number;
  readonly failed: readonly LifecycleEventFailure[];
}

/** The PutEvents entry of an event; no EventBusName: the account's default bus. */
export function putEventsEntryOf(event: LifecycleEvent): PutEventsRequestEntry {
  return {
    Source: event.source,
    DetailType: event.detailType,
    Detail: JSON.stringify(event.detail),
    Time: new Date(event.time),
  };
}

export type LifecycleEventSink = (events: readonly LifecycleEvent[]) => Promise<PutLifecycleEventsResult>;

/** A sink that puts events with this client, in batches, reporting instead of throwing. */
export function eventBridgeSink(client: EventBridgeClient): LifecycleEventSink {
  return async (events) => {
    let sent = 0;
    const failed: LifecycleEventFailure[] = [];
    for (let start = 0; start < events.length; start += PUT_EVENTS_BATCH) {
      const batch = events.slice(start, start + PUT_EVENTS_BATCH);
      try {
        const answer = await client.send(new PutEventsCommand({ Entries: batch.map(putEventsEntryOf) }));
        const entries = answer.Entries ?? [];
        batch.forEach((event, index) => {
          const entry = entries[index];
          if (entry?.EventId && !entry.ErrorCode) {
            sent += 1;
            return;
          }
          failed.push({
            detailType: event.detailType,
            eventKey: event.detail.eventKey,
            error: entry?.ErrorCode
              ? `${entry.ErrorCode}${entry.ErrorMessage ? `: ${entry.ErrorMessage}` : ''}`
              : 'no EventId in the PutEvents answer',
          });
        });
      } catch (error) {
        for (const event of batch) {
          failed.push({
            detailType: event.detailType,
            eventKey: event.detail.eventKey,
            error: `${(error as Error).name}: ${(error as Error).message}`,
          });
        }
      }
    }
    return { sent, failed };
  };
}
