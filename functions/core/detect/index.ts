/**
 * Detection core: recognises conntrack drop messages in kernel logs of every format a fleet
 * produces and groups them per host, network namespace and kind. Pure: no file system, no AWS.
 *
 * - `DetectionSession` — feed text lines, JSON values or subscription payloads in input order,
 *   then `report()`.
 * - `TextLogScanner` — feeds a text log to a session from Buffers, parsing only the lines that can
 *   matter (the fast path of `conntrack-responder detect`).
 * - `detectInSubscription` — what the `detect` Lambda calls with a decoded subscription payload.
 * - `CONNTRACK_FILTER_PATTERN` — the subscription filter pattern for the CDK stack.
 *
 * Decoding the Lambda event's `awslogs.data` (gzip) lives in `./awslogs-decode.ts`, apart from
 * this pure core.
 */
import type { DetectionReport } from './aggregate.js';
import type { CloudWatchLogsData, RefusedLogEvent } from './cloudwatch.js';
import { DetectionSession } from './session.js';

export type { DetectionReport, DropGroup } from './aggregate.js';
export { DropAggregator } from './aggregate.js';
export type {
  AwsLogsEnvelope,
  CloudWatchLogEvent,
  CloudWatchLogsData,
  CloudWatchLogsReading,
  RefusedLogEvent,
} from './cloudwatch.js';
export {
  DEFAULT_INSTANCE_ID_PATTERN,
  hostForLogStream,
  parseCloudWatchLogsData,
  readCloudWatchLogsData,
} from './cloudwatch.js';
export { LogInputError } from './errors.js';
export { CONNTRACK_FILTER_PATTERN } from './filter-pattern.js';
export { isJournalEntry, parseJournalEntry } from './journald.js';
export { type JsonPiece, JsonValueSplitter } from './json-values.js';
export type { DropKind, KernelMessage } from './messages.js';
export { classifyKernelMessage } from './messages.js';
export { DetectionSession, type LineProblem, type SessionOptions } from './session.js';
export type { LogLine, TextFormat } from './text-line.js';
export { parseTextLine } from './text-line.js';
export { type ScannerProblem, TextLogScanner } from './text-scanner.js';

/** At most this many log events are kept per group for the evidence bundle. */
export const EVIDENCE_EVENTS_PER_GROUP = 20;

export interface SubscriptionDetection extends DetectionReport {
  /** Per group (same index), the matching log events, at most 20 each, for the evidence bundle. */
  events: { id: string; timestamp: number; message: string }[][];
  /** Why events or lines were refused (event id and reason, never the line). */
  problems: string[];
}

/**
 * Detects conntrack drops in one decoded CloudWatch Logs subscription payload.
 *
 * `host` is the EC2 instance id found in the log stream name by `instanceIdPattern` (default
 * `DEFAULT_INSTANCE_ID_PATTERN`; its first capture group when it has one), else the stream name.
 * A line's own time wins over the event timestamp; year-less syslog times take the year of the
 * event's timestamp. `now` is only the fallback reference for events without a usable timestamp.
 * A CONTROL_MESSAGE yields no groups. Lines without a syslog/journald header cannot be attributed
 * to the kernel and count as `not-kernel`. An event whose timestamp is not a real time is refused
 * (its drop text counts as `unreadable`), never the delivery. `refused` are the payload's malformed
 * events (readCloudWatchLogsData sets them aside): named in `problems`, their drop text counted as
 * `unreadable`, the events beside them read as usual.
 */
export function detectInSubscription(
  data: CloudWatchLogsData,
  options: { instanceIdPattern?: RegExp; now?: Date } = {},
  refused: readonly RefusedLogEvent[] = [],
): SubscriptionDetection {
  const session = new DetectionSession({
    ...(options.instanceIdPattern === undefined ? {} : { instanceIdPattern: options.instanceIdPattern }),
    ...(options.now === undefined ? {} : { now: options.now }),
    evidenceLimit: EVIDENCE_EVENTS_PER_GROUP,
  });
  const problems = [...session.refusedEvents(refused), ...session.subscription(data)];
  const { groups, ignored, evidence } = session.aggregator.finish();
  return { groups, ignored, events: evidence, problems };
}
