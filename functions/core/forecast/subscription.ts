import type { CloudWatchLogsData } from '../detect/cloudwatch.js';
import { hostForLogStream } from '../detect/cloudwatch.js';
import { isJournalEntry, parseJournalEntry } from '../detect/journald.js';
import { type HostSample, parseSampleText } from './sample-line.js';

/**
 * The host sampler's lines in one CloudWatch Logs subscription delivery, grouped per host and
 * network namespace. An event is a syslog line (files), a `journalctl -o json` object or the
 * CloudWatch agent's journald event (the journal fields in `body`); the detect core reads the
 * journal forms, this module only looks for the sample in the message. Pure.
 *
 * Bounded whatever arrives: at most MAX_SAMPLES_PER_GROUP samples per group are kept (the latest),
 * and a rejected line only adds to a count by reason (its content is never kept or logged).
 */

export const MAX_SAMPLES_PER_GROUP = 256;
/** Log events kept per group, for the incident's evidence (as for drop lines). */
export const MAX_EVENTS_PER_GROUP = 20;

export interface SampleGroup {
  readonly host: string;
  /** The namespace inode the sampler reported; null when it could not tell. */
  readonly netns: string | null;
  /** In the order the delivery carried them. */
  readonly samples: readonly HostSample[];
  /** The log events of the last samples (id, timestamp, message), for the evidence. */
  readonly events: readonly { readonly id: string; readonly timestamp: number; readonly message: string }[];
}

export interface SubscriptionSamples {
  readonly groups: readonly SampleGroup[];
  /** Lines that carried the sample tag but could not be read, by reason. */
  readonly rejected: Readonly<Record<string, number>>;
}

/** The message an event carries: the journal MESSAGE of a JSON journal entry, else the event text. */
export function eventMessage(message: string): string {
  const trimmed = message.trimStart();
  if (!trimmed.startsWith('{')) return message;
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return message;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !isJournalEntry(value)) {
    return message;
  }
  try {
    return parseJournalEntry(value).message;
  } catch {
    return message;
  }
}

export function samplesInSubscription(
  data: Pick<CloudWatchLogsData, 'logStream' | 'logEvents'>,
  options: { readonly instanceIdPattern?: RegExp } = {},
): SubscriptionSamples {
  const host = hostForLogStream(data.logStream, options.instanceIdPattern);
  const groups = new Map<
    string,
    { netns: string | null; samples: HostSample[]; events: SampleGroup['events'][number][] }
  >();
  const rejected: Record<string, number> = {};
  for (const event of data.logEvents) {
    const parsed = parseSampleText(eventMessage(event.message));
    if (parsed === null) continue;
    if (!parsed.ok) {
      rejected[parsed.reason] = (rejected[parsed.reason] ?? 0) + 1;
      continue;
    }
    const key = parsed.sample.netns ?? '';
    let group = groups.get(key);
    if (group === undefined) {
      group = { netns: parsed.sample.netns, samples: [], events: [] };
      groups.set(key, group);
    }
    group.samples.push(parsed.sample);
    if (group.samples.length > MAX_SAMPLES_PER_GROUP) group.samples.shift();
    group.events.push({ id: event.id, timestamp: event.timestamp, message: event.message.slice(0, 2000) });
    if (group.events.length > MAX_EVENTS_PER_GROUP) group.events.shift();
  }
  return {
    groups: [...groups.values()].map((group) => ({ host, ...group })),
    rejected,
  };
}
