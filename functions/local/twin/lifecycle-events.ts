import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LifecycleEvent } from '../../core/events/lifecycle.js';

/**
 * The twin's event bus: the lifecycle events the Lambda handlers put on EventBridge, one JSON line
 * each in `events.jsonl` under the run's output folder, shaped as a rule sees them (`source`,
 * `detail-type`, `time`, `detail`), so that the lab shows them and a rule's pattern can be tried
 * on them.
 */

export const EVENTS_FILE = 'events.jsonl';

export type LocalEventBus = (events: readonly LifecycleEvent[]) => Promise<void>;

export function eventsFileBus(outDir: string): LocalEventBus {
  const path = join(outDir, EVENTS_FILE);
  return async (events) => {
    if (events.length === 0) return;
    await appendFile(path, events.map((event) => `${JSON.stringify(asDelivered(event))}\n`).join(''));
  };
}

/** An event as EventBridge delivers it to a rule's target (the envelope fields the twin can know). */
export function asDelivered(event: LifecycleEvent) {
  return { source: event.source, 'detail-type': event.detailType, time: event.time, detail: event.detail };
}
