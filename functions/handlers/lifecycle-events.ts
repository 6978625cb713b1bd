/**
 * The handlers' side of the lifecycle events: put them on the default bus, log and count what
 * EventBridge did not take, and go on. Never throws, so an event can never fail a workflow step or
 * a detect delivery (README "Lifecycle events").
 */

import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { eventBridgeSink, LIFECYCLE_EVENT_METRICS } from '../adapters/lifecycle-events.js';
import type { LifecycleEvent } from '../core/events/lifecycle.js';
import { logger, metrics, tracer } from './powertools.js';

let sink: ReturnType<typeof eventBridgeSink> | undefined;

export async function putLifecycleEvents(events: readonly LifecycleEvent[]): Promise<{
  readonly sent: number;
  readonly failed: number;
}> {
  if (events.length === 0) return { sent: 0, failed: 0 };
  try {
    sink ??= eventBridgeSink(tracer.captureAWSv3Client(new EventBridgeClient({})));
    const result = await sink(events);
    if (result.sent > 0) metrics.addMetric(LIFECYCLE_EVENT_METRICS.sent, MetricUnit.Count, result.sent);
    if (result.failed.length > 0) {
      metrics.addMetric(LIFECYCLE_EVENT_METRICS.failed, MetricUnit.Count, result.failed.length);
      logger.error('Lifecycle events not put on the event bus', { failed: result.failed });
    }
    return { sent: result.sent, failed: result.failed.length };
  } catch (error) {
    // The sink reports instead of throwing; this is for a client that could not even be made.
    metrics.addMetric(LIFECYCLE_EVENT_METRICS.failed, MetricUnit.Count, events.length);
    logger.error('Lifecycle events not put on the event bus', { error: (error as Error).message });
    return { sent: 0, failed: events.length };
  }
}
