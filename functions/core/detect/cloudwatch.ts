import { LogInputError } from './errors.js';

/** A log event as CloudWatch Logs delivers it to a subscription. */
export interface CloudWatchLogEvent {
  id: string;
  /** Milliseconds since the epoch. */
  timestamp: number;
  message: string;
}

/** The decoded `awslogs.data` of a subscription delivery. */
export interface CloudWatchLogsData {
  messageType: string;
  owner: string;
  logGroup: string;
  logStream: string;
  subscriptionFilters: string[];
  logEvents: CloudWatchLogEvent[];
}

/** The Lambda event of a subscription: `data` is base64(gzip(JSON of CloudWatchLogsData)). */
export interface AwsLogsEnvelope {
  awslogs: { data: string };
}

/** EC2 instance ids as the CloudWatch agent's `{instance_id}` writes them into stream names. */
export const DEFAULT_INSTANCE_ID_PATTERN: RegExp = /i-[0-9a-f]{8,17}/;

/**
 * The host a log stream stands for: what `pattern` matches in the stream name (its first capture
 * group when it has one), else the stream name itself.
 */
export function hostForLogStream(logStream: string, pattern: RegExp = DEFAULT_INSTANCE_ID_PATTERN): string {
  // A copy without g/y: those flags would make exec() depend on the previous call.
  const stateless =
    pattern.global || pattern.sticky
      ? new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''))
      : pattern;
  const match = stateless.exec(logStream);
  if (match === null) return logStream;
  return match[1] ?? match[0];
}

export function isAwsLogsEnvelope(value: object): value is AwsLogsEnvelope {
  return 'awslogs' in value;
}

export function isCloudWatchLogsData(value: object): boolean {
  return 'logEvents' in value && 'messageType' in value;
}

function field<T>(
  record: Record<string, unknown>,
  name: string,
  check: (value: unknown) => boolean,
  what: string,
): T {
  const value = record[name];
  if (!check(value)) throw new LogInputError(`CloudWatch Logs payload: ${name} is not ${what}`);
  return value as T;
}

const isString = (value: unknown) => typeof value === 'string';

/** A log event of a payload that was set aside because it is not a valid event. */
export interface RefusedLogEvent {
  /** `logEvents[N]`, with the event's id when it has a readable one. */
  readonly where: string;
  readonly reason: string;
  /** The event as JSON, so the caller can count the drop text it carried. */
  readonly text: string;
}

/** A payload whose valid events are kept, and whose malformed ones are set aside with the reason. */
export interface CloudWatchLogsReading {
  readonly data: CloudWatchLogsData;
  readonly refused: RefusedLogEvent[];
}

/** Checks the payload's own fields (everything but the events): without them no event can be placed. */
function payloadFields(value: unknown): Omit<CloudWatchLogsData, 'logEvents'> & { logEvents: unknown[] } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new LogInputError('CloudWatch Logs payload is not a JSON object');
  }
  const record = value as Record<string, unknown>;
  const events = field<unknown[]>(record, 'logEvents', Array.isArray, 'an array');
  return {
    messageType: field(record, 'messageType', isString, 'a string'),
    owner: field(record, 'owner', isString, 'a string'),
    logGroup: field(record, 'logGroup', isString, 'a string'),
    logStream: field(record, 'logStream', isString, 'a string'),
    subscriptionFilters: field(
      record,
      'subscriptionFilters',
      (filters) => Array.isArray(filters) && filters.every(isString),
      'an array of strings',
    ),
    logEvents: events,
  };
}

function logEvent(event: unknown, index: number): CloudWatchLogEvent {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw new LogInputError(`CloudWatch Logs payload: logEvents[${index}] is not an object`);
  }
  const item = event as Record<string, unknown>;
  return {
    id: field(item, 'id', isString, `a string (logEvents[${index}])`),
    timestamp: field(item, 'timestamp', Number.isFinite, `a number (logEvents[${index}])`),
    message: field(item, 'message', isString, `a string (logEvents[${index}])`),
  };
}

/** Validates a decoded subscription payload (what the Powertools parser schema also checks). */
export function parseCloudWatchLogsData(value: unknown): CloudWatchLogsData {
  const payload = payloadFields(value);
  return { ...payload, logEvents: payload.logEvents.map(logEvent) };
}

/**
 * Reads a decoded subscription payload as parseCloudWatchLogsData does, except that a malformed
 * event costs only itself: it is set aside with the reason, and the events beside it are kept.
 * The payload's own fields must be valid (they name the stream every event belongs to).
 */
export function readCloudWatchLogsData(value: unknown): CloudWatchLogsReading {
  const payload = payloadFields(value);
  const logEvents: CloudWatchLogEvent[] = [];
  const refused: RefusedLogEvent[] = [];
  for (const [index, event] of payload.logEvents.entries()) {
    try {
      logEvents.push(logEvent(event, index));
    } catch (error) {
      if (!(error instanceof LogInputError)) throw error;
      const id = (event as { id?: unknown } | null)?.id;
      refused.push({
        where:
          typeof id === 'string'
            ? `logEvents[${index}] (id ${JSON.stringify(id.slice(0, 64))})`
            : `logEvents[${index}]`,
        reason: error.message
          .replace(`CloudWatch Logs payload: logEvents[${index}] is`, 'the event is')
          .replace('CloudWatch Logs payload: ', '')
          .replace(` (logEvents[${index}])`, ''),
        text: JSON.stringify(event) ?? '',
      });
    }
  }
  return { data: { ...payload, logEvents }, refused };
}
