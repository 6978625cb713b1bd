import { type DetectionReport, DropAggregator } from './aggregate.js';
import {
  type CloudWatchLogEvent,
  type CloudWatchLogsData,
  DEFAULT_INSTANCE_ID_PATTERN,
  hostForLogStream,
  isAwsLogsEnvelope,
  isCloudWatchLogsData,
  parseCloudWatchLogsData,
} from './cloudwatch.js';
import { LogInputError } from './errors.js';
import { isJournalEntry, parseJournalEntry } from './journald.js';
import { classifyKernelMessage, mentionsKernelPhrase } from './messages.js';
import { type LogLine, parseTextLine, type TextLineContext } from './text-line.js';

export interface SessionOptions {
  /** Host for lines whose format names none (dmesg, a bare `kernel:` line). @default 'localhost' */
  readonly defaultHost?: string;
  /** "Now", for year-less syslog timestamps. @default new Date() */
  readonly now?: Date;
  /** Finds the host in a CloudWatch log stream name. @default DEFAULT_INSTANCE_ID_PATTERN */
  readonly instanceIdPattern?: RegExp;
  /**
   * Turns `awslogs.data` (base64 of gzip of JSON) into the parsed JSON. Decompression is I/O-free
   * but not this module's business: callers pass `decodeAwsLogsData` from `./awslogs-decode.js`.
   * Without it an envelope is refused with a clear error.
   */
  readonly decodeAwsLogsData?: (data: string) => unknown;
  /** Keep up to this many CloudWatch events per group (the evidence bundle). @default 0 */
  readonly evidenceLimit?: number;
}

/** What a text line turned out to be, for callers that report unusable lines. */
export type TextLineOutcome = 'used' | 'irrelevant' | 'unrecognised-drop-text';

/**
 * One detection run over any mix of inputs. Feed it text lines, JSON values (journald entries,
 * CloudWatch payloads) or decoded subscription payloads in input order, then ask for the report.
 * Attribution state per host carries over from one input to the next, so rotated files given
 * oldest first read as one log.
 */
export class DetectionSession {
  readonly aggregator: DropAggregator<CloudWatchLogEvent>;
  private readonly defaultHost: string;
  private readonly context: TextLineContext;
  private readonly instanceIdPattern: RegExp;
  private readonly decodeAwsLogsData: ((data: string) => unknown) | undefined;

  constructor(options: SessionOptions = {}) {
    this.defaultHost = options.defaultHost ?? 'localhost';
    this.context = { referenceTimeMs: (options.now ?? new Date()).getTime() };
    this.instanceIdPattern = options.instanceIdPattern ?? DEFAULT_INSTANCE_ID_PATTERN;
    this.decodeAwsLogsData = options.decodeAwsLogsData;
    this.aggregator = new DropAggregator(options.evidenceLimit ?? 0);
  }

  /**
   * One line of a text log (no line terminator). A line in no known format is irrelevant unless
   * it carries a drop or suppression phrase: then nobody can tell whether the kernel wrote it, and
   * the caller should report it.
   */
  textLine(line: string): TextLineOutcome {
    const parsed = parseTextLine(line, this.context);
    if (parsed === null) return mentionsKernelPhrase(line) ? 'unrecognised-drop-text' : 'irrelevant';
    this.logLine(parsed, parsed.host ?? this.defaultHost, parsed.timeMs);
    return 'used';
  }

  /**
   * One parsed JSON value: a journald entry (`journalctl -o json`), a CloudWatch subscription
   * payload (decoded, or the Lambda event `{"awslogs":{"data":…}}`), or an array of those.
   * Throws LogInputError for anything else.
   */
  jsonValue(value: unknown): void {
    if (Array.isArray(value)) {
      for (const item of value) this.jsonValue(item);
      return;
    }
    if (typeof value !== 'object' || value === null) {
      throw new LogInputError(`expected a JSON object, found ${value === null ? 'null' : typeof value}`);
    }
    if (isAwsLogsEnvelope(value)) {
      const data = (value.awslogs as { data?: unknown } | null)?.data;
      if (typeof data !== 'string') throw new LogInputError('awslogs.data is not a string');
      if (this.decodeAwsLogsData === undefined) {
        throw new LogInputError('a CloudWatch Logs Lambda event needs a decoder for awslogs.data');
      }
      this.subscription(parseCloudWatchLogsData(this.decodeAwsLogsData(data)));
    } else if (isCloudWatchLogsData(value)) {
      this.subscription(parseCloudWatchLogsData(value));
    } else if (isJournalEntry(value)) {
      const line = parseJournalEntry(value);
      this.logLine(line, line.host ?? this.defaultHost, line.timeMs);
    } else {
      throw new LogInputError(
        'JSON object is neither a journald entry (journalctl -o json) nor a CloudWatch Logs subscription payload',
      );
    }
  }

  /**
   * A decoded subscription payload. The host is the instance id in the stream name (else the
   * stream name), whatever the lines say; a line's own time wins over the event's timestamp.
   * CONTROL_MESSAGE deliveries carry no log lines and are skipped.
   */
  subscription(data: CloudWatchLogsData): void {
    if (data.messageType !== 'DATA_MESSAGE') return;
    const host = hostForLogStream(data.logStream, this.instanceIdPattern);
    for (const event of data.logEvents) {
      const context = event.timestamp > 0 ? { referenceTimeMs: event.timestamp } : this.context;
      for (const text of event.message.split('\n')) {
        const line = text.endsWith('\r') ? text.slice(0, -1) : text;
        if (line.trim() === '') continue;
        const parsed = line.startsWith('{') ? this.journalLineIn(line) : parseTextLine(line, context);
        if (parsed === null) {
          // A bare message can be anyone's: without a header the kernel cannot be told apart.
          if (mentionsKernelPhrase(line)) this.aggregator.notKernelLine();
          continue;
        }
        this.logLine(parsed, host, parsed.timeMs ?? event.timestamp, event);
      }
    }
  }

  report(): DetectionReport {
    const { groups, ignored } = this.aggregator.finish();
    return { groups, ignored };
  }

  private journalLineIn(text: string): LogLine | null {
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value === 'object' && value !== null && isJournalEntry(value))
        return parseJournalEntry(value);
    } catch {
      // not JSON after all: treated as a line in no known format
    }
    return null;
  }

  private logLine(line: LogLine, host: string, timeMs: number | null, evidence?: CloudWatchLogEvent): void {
    if (!line.kernel) {
      if (mentionsKernelPhrase(line.message)) this.aggregator.notKernelLine();
      return;
    }
    this.aggregator.kernelLine(host, classifyKernelMessage(line.message), timeMs, evidence);
  }
}
