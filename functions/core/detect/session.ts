import { type DetectionReport, DropAggregator } from './aggregate.js';
import {
  type CloudWatchLogEvent,
  type CloudWatchLogsData,
  DEFAULT_INSTANCE_ID_PATTERN,
  hostForLogStream,
  isAwsLogsEnvelope,
  isCloudWatchLogsData,
  type RefusedLogEvent,
  readCloudWatchLogsData,
} from './cloudwatch.js';
import { LogInputError } from './errors.js';
import { isJournalEntry, parseJournalEntry } from './journald.js';
import {
  classifyKernelMessage,
  countKernelPhrases,
  type KernelMessage,
  mentionsKernelPhrase,
} from './messages.js';
import { isPlausibleTimeMs, type LogLine, parseTextLine, type TextLineContext } from './text-line.js';

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

/** Why a line or value was not used, for callers that name it (FILE:LINE). */
export type LineProblem = string;

const NO_HEADER_IN_SYSLOG =
  'a drop or suppression message without a log header in a log whose lines name their writer: cannot tell whether the kernel wrote it';
const UNKNOWN_WORDING =
  'a kernel line with drop or suppression text in a wording detect does not know (cut short, or another kernel spelling)';

/** A line as far as phrases go: a no-break space copied from a web page reads as a space. */
function phraseText(text: string): string {
  return text.includes('\u00a0') ? text.replaceAll('\u00a0', ' ') : text;
}

/** `text.trim() === ''`, without building the trimmed copy for the usual line that starts with a visible character. */
function isBlank(text: string): boolean {
  const first = text.charCodeAt(0);
  // Every character String.prototype.trim removes is <= U+0020, U+00A0, or >= U+1680.
  if (first > 0x20 && first !== 0xa0 && first < 0x1680) return false;
  return text.trim() === '';
}

/** What the previous line of the current text input was, for syslogd's `last message repeated N times`. */
interface PreviousLine {
  readonly host: string;
  readonly kernel: boolean;
  readonly message: KernelMessage | null;
  readonly timeMs: number | null;
}

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
  /**
   * Whether the current text input's lines name their writer (decided by its first line): then a
   * line without any header is damage; otherwise (dmesg -t, journalctl -k -o cat) it is the kernel's.
   */
  private inputTagged: boolean | null = null;
  private previous: PreviousLine | null = null;

  constructor(options: SessionOptions = {}) {
    this.defaultHost = options.defaultHost ?? 'localhost';
    this.context = { referenceTimeMs: (options.now ?? new Date()).getTime() };
    this.instanceIdPattern = options.instanceIdPattern ?? DEFAULT_INSTANCE_ID_PATTERN;
    this.decodeAwsLogsData = options.decodeAwsLogsData;
    this.aggregator = new DropAggregator(options.evidenceLimit ?? 0);
  }

  /** The host lines without one are attributed to. */
  get hostForBareLines(): string {
    return this.defaultHost;
  }

  /** True once the current text input's first line has said what a line without a header is. */
  get inputFormatKnown(): boolean {
    return this.inputTagged !== null;
  }

  /** True when, in the current text input, a line without any header is a kernel line. */
  get bareLinesAreKernel(): boolean {
    return this.inputTagged === false;
  }

  /** A new text input starts: its first line decides what a line without a header is. */
  beginInput(): void {
    this.inputTagged = null;
    this.previous = null;
  }

  /** Lines of the current input were skipped unread: the next line has no known predecessor. */
  skipped(): void {
    this.previous = null;
  }

  /**
   * One line of a text log (no line terminator). Returns why the line could not be used when it
   * carries drop or suppression text that counts nowhere else (the caller names it), else null.
   */
  textLine(text: string): LineProblem | null {
    if (isBlank(text)) {
      this.previous = null;
      return null;
    }
    const parsed = parseTextLine(text, this.context);
    // journalctl's `-- Logs begin at …` / `-- Boot …` lines say nothing about the format.
    if (this.inputTagged === null && !parsed.message.startsWith('-- ')) this.inputTagged = parsed.tagged;
    const host = parsed.host ?? this.defaultHost;
    if (parsed.repeatsPrevious !== null) {
      if (parsed.refused !== null) return this.refusedRepeat(host, parsed.refused);
      this.repeatPrevious(host, parsed.repeatsPrevious, parsed.timeMs);
      return null;
    }
    const kernel = parsed.format === 'bare' ? this.inputTagged === false : parsed.kernel;
    if (parsed.format === 'bare' && !kernel) {
      this.previous = null;
      if (!mentionsKernelPhrase(parsed.message)) return null;
      this.aggregator.unreadableLine();
      return NO_HEADER_IN_SYSLOG;
    }
    return this.logLine(
      parsed.kernel === kernel ? parsed : { ...parsed, kernel },
      host,
      parsed.timeMs,
      undefined,
      text,
    );
  }

  /**
   * One parsed JSON value: a journald entry (`journalctl -o json`, the CloudWatch agent's
   * `{"body":{…}}`), a CloudWatch subscription payload (decoded, or the Lambda event
   * `{"awslogs":{"data":…}}`), or an array of those. Returns why parts of it could not be used;
   * one bad entry of an array never costs the others.
   */
  jsonValue(value: unknown): LineProblem[] {
    this.previous = null;
    if (Array.isArray(value)) {
      const problems: LineProblem[] = [];
      for (const [index, item] of value.entries()) {
        if (Array.isArray(item)) {
          problems.push(`item ${index}: an array inside an array is neither a journald entry nor a payload`);
          continue;
        }
        problems.push(...this.jsonValue(item).map((problem) => `item ${index}: ${problem}`));
      }
      return problems;
    }
    try {
      return this.jsonObject(value);
    } catch (error) {
      if (!(error instanceof LogInputError)) throw error;
      // Refused whole (a journald field of the wrong type, a payload that breaks its schema):
      // the drop and suppression text in it counts as unreadable, as the caller names it.
      const phrases = countKernelPhrases(phraseText(JSON.stringify(value) ?? ''));
      for (let count = 0; count < phrases; count++) this.aggregator.unreadableLine();
      return [error.message];
    }
  }

  /**
   * A decoded subscription payload. The host is the instance id in the stream name (else the
   * stream name), whatever the lines say; a line's own time wins over the event's timestamp.
   * CONTROL_MESSAGE deliveries carry no log lines and are skipped. An event whose timestamp is
   * not a real time is refused (its drop and suppression lines count as unreadable), never the
   * delivery. Returns why events or lines were refused.
   */
  subscription(data: CloudWatchLogsData): LineProblem[] {
    const problems: LineProblem[] = [];
    if (data.messageType !== 'DATA_MESSAGE') return problems;
    const host = hostForLogStream(data.logStream, this.instanceIdPattern);
    for (const event of data.logEvents) {
      // Lines of one event are adjacent; events are not (the filter forwards only some lines).
      this.previous = null;
      const lines = event.message.split('\n');
      if (!isPlausibleTimeMs(event.timestamp)) {
        const phrases = lines.filter((line) => mentionsKernelPhrase(phraseText(line))).length;
        for (let count = 0; count < phrases; count++) this.aggregator.unreadableLine();
        problems.push(
          `event ${event.id}: its timestamp ${event.timestamp} is not a time between 1970 and 9999`,
        );
        continue;
      }
      const context = event.timestamp > 0 ? { referenceTimeMs: event.timestamp } : this.context;
      for (const text of lines) {
        const trimmed = text.endsWith('\r') ? text.slice(0, -1) : text;
        if (trimmed.trim() === '') continue;
        const parsed = trimmed.trimStart().startsWith('{')
          ? this.journalLineIn(trimmed)
          : parseTextLine(trimmed, context);
        if (parsed === null || parsed.format === 'bare') {
          // A bare message can be anyone's: without a header the kernel cannot be told apart.
          if (mentionsKernelPhrase(phraseText(trimmed))) this.aggregator.notKernelLine();
          continue;
        }
        // Repeat lines are not applied here: the previous line of the file may not have been forwarded.
        if (parsed.repeatsPrevious !== null) continue;
        const problem = this.logLine(
          parsed,
          host,
          parsed.timeMs ?? event.timestamp,
          event,
          parsed.format === 'journald-json' ? parsed.message : trimmed,
        );
        if (problem !== null) problems.push(`event ${event.id}: ${problem}`);
      }
    }
    this.previous = null;
    return problems;
  }

  report(): DetectionReport {
    const { groups, ignored } = this.aggregator.finish();
    return { groups, ignored };
  }

  private jsonObject(value: unknown): LineProblem[] {
    if (typeof value !== 'object' || value === null) {
      throw new LogInputError(`expected a JSON object, found ${value === null ? 'null' : typeof value}`);
    }
    if (isAwsLogsEnvelope(value)) {
      const data = (value.awslogs as { data?: unknown } | null)?.data;
      if (typeof data !== 'string') throw new LogInputError('awslogs.data is not a string');
      if (this.decodeAwsLogsData === undefined) {
        throw new LogInputError('a CloudWatch Logs Lambda event needs a decoder for awslogs.data');
      }
      return this.subscriptionValue(this.decodeAwsLogsData(data));
    }
    if (isCloudWatchLogsData(value)) return this.subscriptionValue(value);
    if (isJournalEntry(value)) {
      const line = parseJournalEntry(value);
      const problem = this.logLine(line, line.host ?? this.defaultHost, line.timeMs);
      return problem === null ? [] : [problem];
    }
    throw new LogInputError(
      'JSON object is neither a journald entry (journalctl -o json) nor a CloudWatch Logs subscription payload',
    );
  }

  /**
   * A decoded payload not validated yet: a malformed event is named and its drop and suppression
   * text counts as unreadable; the events beside it are read.
   */
  private subscriptionValue(value: unknown): LineProblem[] {
    const { data, refused } = readCloudWatchLogsData(value);
    return [...this.refusedEvents(refused), ...this.subscription(data)];
  }

  /**
   * Malformed events of a payload (see readCloudWatchLogsData): their drop and suppression text
   * counts as unreadable. Returns why each one was refused.
   */
  refusedEvents(refused: readonly RefusedLogEvent[]): LineProblem[] {
    return refused.map((event) => {
      const phrases = countKernelPhrases(phraseText(event.text));
      for (let count = 0; count < phrases; count++) this.aggregator.unreadableLine();
      return `${event.where}: ${event.reason}`;
    });
  }

  private journalLineIn(text: string): LogLine | null {
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value === 'object' && value !== null && isJournalEntry(value))
        return parseJournalEntry(value);
    } catch {
      // not JSON after all (or a journald field of the wrong type): a line in no known format
    }
    return null;
  }

  /**
   * A parsed line with a known origin; returns why it was refused, if it was. `wholeText` is the
   * line with its header: a program's copy of the kernel's words may start in its tag
   * (`ip_conntrack: VPS …` read as the tag `ip_conntrack`), and it still counts as not-kernel.
   */
  private logLine(
    line: LogLine,
    host: string,
    timeMs: number | null,
    evidence?: CloudWatchLogEvent,
    wholeText: string = line.message,
  ): LineProblem | null {
    // Only lines that are not counted as a drop or a suppression need the phrase test.
    const phrase = () => mentionsKernelPhrase(phraseText(wholeText));
    if (line.refused !== null) {
      this.previous = null;
      if (phrase()) {
        this.aggregator.unreadableLine();
        return `refused: ${line.refused}`;
      }
      // Every JSON entry is read, so each refused one is named. A text line without drop text is
      // named when it matters to the report (a kernel line that would have settled its host's
      // attribution): the text scanner reads only those, and naming others would depend on
      // whether the scanner happened to read them.
      const named = line.format === 'journald-json' || (line.kernel && this.aggregator.isActive(host));
      return named ? `refused: ${line.refused}` : null;
    }
    if (!line.kernel) {
      this.previous = { host, kernel: false, message: null, timeMs };
      if (phrase()) this.aggregator.notKernelLine();
      return null;
    }
    const message = classifyKernelMessage(line.message);
    this.aggregator.kernelLine(host, message, timeMs, evidence, line.times);
    if (message === null && phrase()) {
      // Still a kernel line for the attribution of its neighbours; its own count is unknown.
      this.previous = null;
      this.aggregator.unreadableLine();
      return UNKNOWN_WORDING;
    }
    this.previous = { host, kernel: true, message, timeMs };
    return null;
  }

  /**
   * A `last message repeated N times` line whose own timestamp is not a real time: refused, like
   * any such line. It is named (and counted as unreadable when the repeated line carried drop or
   * suppression text) when repeating would have changed the report.
   */
  private refusedRepeat(host: string, reason: string): LineProblem | null {
    const previous = this.previous;
    this.previous = null;
    if (previous === null || previous.host !== host || !previous.kernel) return null;
    if (previous.message !== null) this.aggregator.unreadableLine();
    else if (!this.aggregator.isActive(host)) return null;
    return `refused: ${reason}`;
  }

  /** syslogd's `last message repeated N times`: N more of the host's previous line. */
  private repeatPrevious(host: string, times: number, timeMs: number | null): void {
    const previous = this.previous;
    // The repeated line was skipped unread, belongs to another host, or was not the kernel's:
    // repeating it changes nothing.
    if (previous === null || previous.host !== host || !previous.kernel || !Number.isSafeInteger(times))
      return;
    if (times < 1) return;
    this.aggregator.kernelLine(host, previous.message, timeMs ?? previous.timeMs, undefined, times);
  }
}
