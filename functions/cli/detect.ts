import { closeSync, openSync, readSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { parseArgs } from 'node:util';
import { decodeAwsLogsData } from '../core/detect/awslogs-decode.js';
import { DEFAULT_INSTANCE_ID_PATTERN } from '../core/detect/cloudwatch.js';
import type { DetectionReport } from '../core/detect/index.js';
import { type JsonPiece, JsonValueSplitter } from '../core/detect/json-values.js';
import { mentionsKernelPhrase } from '../core/detect/messages.js';
import { DetectionSession } from '../core/detect/session.js';
import { isPlausibleTimeMs } from '../core/detect/text-line.js';
import { TextLogScanner } from '../core/detect/text-scanner.js';
import { ResponderError } from '../core/errors.js';
import { GzipError, gunzipMembers } from './gunzip.js';
import { type CliIo, type Command, UsageError } from './io.js';
import { hasUnsafeCharacters, printable, terminalSafeJson } from './printable.js';

const HELP = `usage: conntrack-responder detect [FILE…|-] [--host NAME] [--json] [--strict]
                                   [--instance-id-pattern RE] [--now TIME]

Finds conntrack drop messages ("nf_conntrack: table full, dropping packet" in every kernel's
spelling, "expectation table full", and the rate-limit lines that count suppressed repeats) in
kernel logs, and groups them per host, network namespace and kind.

Inputs (any mix; "-" or no FILE reads standard input; gzip-compressed input is decompressed):
  syslog files (RFC 3164 with or without a host, rsyslog's high-precision format, RFC 5424,
  busybox syslogd), OpenWrt logread, journalctl -o short / short-precise / short-iso /
  short-full / short-unix / short-monotonic / cat, Ubuntu's /var/log/dmesg, dmesg output (raw
  [seconds], none, -T, --time-format iso, -x, -r), journalctl -o json / json-pretty, the
  CloudWatch agent's journald events ({"body":{…}}), CloudWatch Logs subscription payloads
  (decoded JSON, or the Lambda event {"awslogs":{"data":…}}).
  A file is read as JSON when its first character is "{" (or "[" then "{"), else as text lines.
  Only lines the kernel wrote count: the same words from another program are "not-kernel". A
  line without any header counts as the kernel's only in an input whose first line has none
  either (dmesg -t, journalctl -k -o cat); in a syslog file it is named, as below.

Options:
  --host NAME                 host name for lines that carry none (dmesg, bare "kernel:" lines);
                              default: localhost
  --json                      print exactly one JSON object: {"groups":[…],"ignored":{…}}
  --strict                    lines that cannot be used make the exit status 2 (see below)
  --instance-id-pattern RE    regular expression that finds the host (EC2 instance id) in a
                              CloudWatch log stream name; default: ${DEFAULT_INSTANCE_ID_PATTERN.source}
  --now TIME                  reference time (ISO 8601) for syslog timestamps without a year;
                              default: the current time
  -h, --help                  show this help

Lines with drop or suppression text that cannot be used (no header where one is needed, a kernel
wording detect does not know, a timestamp that is not a real time, broken JSON) are named as
FILE:LINE on standard error and counted in "unreadable"; the rest of the input is still read.

Exit status, as grep's:
  0  conntrack drops were found (at least one group), and every input was read
  1  no drops were found, and every input was read
  2  an input could not be read, or only in part (missing file, corrupt or truncated gzip,
     trailing garbage, compressed with xz, bzip2, zstd or lz4, a binary journald file, UTF-16
     text), or a usage error; with --strict also when a line was named as above.
     The report still covers everything that was read.
  141  standard output was closed early (| head): the command stops without a message
`;

/** Bytes per read: large enough that per-read overhead vanishes, small enough to stream. */
const CHUNK_BYTES = 1 << 20;
/** Problems printed per input; the rest are counted. */
const PROBLEMS_SHOWN = 10;
/** Characters of a host or namespace shown in the table (JSON has them whole). */
const CELL_CHARS = 64;
const GZIP_MAGIC = [0x1f, 0x8b];

/**
 * Inputs detect cannot read, by their first bytes: read as UTF-8 text they would hide every line
 * (exit 1, "no drops"), so they are refused as unreadable instead (exit 2). Rotated logs are
 * compressed with xz, bzip2 or zstd where logrotate's compresscmd says so, and journald's own
 * files are binary (`journalctl --file F -o json` reads them).
 */
const UNREADABLE_FORMATS: readonly { readonly magic: readonly number[]; readonly what: string }[] = [
  {
    magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
    what: 'xz-compressed: decompress it first (xz -dc FILE | detect)',
  },
  { magic: [0x28, 0xb5, 0x2f, 0xfd], what: 'zstd-compressed: decompress it first (zstd -dc FILE | detect)' },
  { magic: [0x04, 0x22, 0x4d, 0x18], what: 'lz4-compressed: decompress it first (lz4 -dc FILE | detect)' },
  // "BZh", the block size digit, then the first block's magic (pi) or the end of stream (sqrt(pi)).
  ...['1', '2', '3', '4', '5', '6', '7', '8', '9'].flatMap((digit) =>
    [
      [0x31, 0x41, 0x59, 0x26, 0x53, 0x59],
      [0x17, 0x72, 0x45, 0x38, 0x50, 0x90],
    ].map((block) => ({
      magic: [0x42, 0x5a, 0x68, digit.charCodeAt(0), ...block],
      what: 'bzip2-compressed: decompress it first (bzip2 -dc FILE | detect)',
    })),
  ),
  // A log saved by a Windows tool (PowerShell 5's `>`) is UTF-16 with a byte-order mark.
  { magic: [0xff, 0xfe], what: 'UTF-16 text: convert it first (iconv -f UTF-16 -t UTF-8 FILE | detect)' },
  { magic: [0xfe, 0xff], what: 'UTF-16 text: convert it first (iconv -f UTF-16 -t UTF-8 FILE | detect)' },
  {
    magic: [...Buffer.from('LPKSHHRH')],
    what: 'a binary journald file: read it with journalctl --file FILE -o json | detect',
  },
];

class UnreadableInputError extends ResponderError {
  override readonly name = 'UnreadableInputError';
}

/** Refuses an input whose first bytes say it is in a format detect cannot read. */
function refuseUnreadableFormat(first: Buffer): void {
  const known = UNREADABLE_FORMATS.find(
    ({ magic }) => first.length >= magic.length && magic.every((byte, index) => first[index] === byte),
  );
  if (known !== undefined) throw new UnreadableInputError(`the input is ${known.what}`);
}

interface Problem {
  line: number | null;
  offset: number | null;
  reason: string;
  text?: string;
}

interface InputOutcome {
  readonly name: string;
  /** The first lines that could not be used (a warning each), up to PROBLEMS_SHOWN. */
  readonly problems: Problem[];
  /** How many there were in all. */
  problemCount: number;
  /** Set when the input could not be read at all, or only in part. */
  error: string | null;
}

interface Options {
  readonly files: string[];
  /** No FILE was given: standard input is read by default. */
  readonly stdinByDefault: boolean;
  readonly json: boolean;
  readonly strict: boolean;
  readonly session: DetectionSession;
}

function parseOptions(args: string[]): Options | 'help' {
  let parsed: ReturnType<
    typeof parseArgs<{
      options: {
        host: { type: 'string' };
        json: { type: 'boolean' };
        strict: { type: 'boolean' };
        'instance-id-pattern': { type: 'string' };
        now: { type: 'string' };
        help: { type: 'boolean'; short: 'h' };
      };
      allowPositionals: true;
    }>
  >;
  try {
    parsed = parseArgs({
      args,
      options: {
        host: { type: 'string' },
        json: { type: 'boolean' },
        strict: { type: 'boolean' },
        'instance-id-pattern': { type: 'string' },
        now: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(
      `${printable((error as Error).message)}\nRun 'conntrack-responder detect --help' for usage.`,
    );
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (values.host !== undefined && (!/^\S+$/.test(values.host) || hasUnsafeCharacters(values.host))) {
    throw new UsageError('--host must be a non-empty name without spaces or control characters');
  }
  let instanceIdPattern = DEFAULT_INSTANCE_ID_PATTERN;
  if (values['instance-id-pattern'] !== undefined) {
    try {
      instanceIdPattern = new RegExp(values['instance-id-pattern']);
    } catch (error) {
      throw new UsageError(
        `--instance-id-pattern is not a regular expression: ${printable((error as Error).message)}`,
      );
    }
  }
  let now = new Date();
  if (values.now !== undefined) {
    now = new Date(values.now);
    if (!isPlausibleTimeMs(now.getTime())) {
      throw new UsageError(`--now is not a date between 1970 and 9999: ${printable(values.now, 80)}`);
    }
  }
  const session = new DetectionSession({
    defaultHost: values.host ?? 'localhost',
    now,
    instanceIdPattern,
    decodeAwsLogsData,
  });
  const stdinByDefault = positionals.length === 0;
  return {
    files: stdinByDefault ? ['-'] : positionals,
    stdinByDefault,
    json: values.json ?? false,
    strict: values.strict ?? false,
    session,
  };
}

/**
 * Reads a file descriptor chunk by chunk. Synchronous reads: a command reads one file at a time,
 * and a read on the libuv thread pool costs a thread hand-off per chunk (several times the copy
 * itself on a busy machine).
 */
async function* readDescriptor(fd: number): AsyncGenerator<Buffer> {
  // One buffer for the whole file: consumers finish with a chunk before asking for the next.
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  for (;;) {
    const bytesRead = readSync(fd, buffer, 0, CHUNK_BYTES, null);
    if (bytesRead === 0) return;
    yield buffer.subarray(0, bytesRead);
  }
}

async function* readStream(stream: Readable): AsyncGenerator<Buffer> {
  for await (const chunk of stream) yield typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
}

/** Yields `first` and the rest of `source`, decompressed when the input starts with the gzip magic. */
async function* maybeGunzip(first: Buffer, source: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  async function* whole(): AsyncGenerator<Buffer> {
    yield first;
    for (let next = await source.next(); !next.done; next = await source.next()) yield next.value;
  }
  if (first[0] !== GZIP_MAGIC[0] || first[1] !== GZIP_MAGIC[1]) {
    yield* whole();
    return;
  }
  // Copies: the file reader reuses its buffer while the inflater may still hold the previous chunk.
  async function* copies(): AsyncGenerator<Buffer> {
    for await (const chunk of whole()) yield Buffer.from(chunk);
  }
  yield* gunzipMembers(copies());
}

const BLANK = new Set([0x20, 0x09, 0x0a, 0x0d, 0x1e]);
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
/** Blanks after a leading `[` looked through before calling the input text. */
const MAX_BRACKET_LOOKAHEAD = 1 << 20;

/**
 * Decides, byte by byte and holding nothing but a leading `[` and the blanks after it, whether an
 * input is JSON (its first non-blank character opens an object, or an array of objects) or text
 * lines. Leading blanks are only counted, so a blank-only input costs linear time and no memory.
 */
class ModeSniffer {
  mode: 'text' | 'json' | null = null;
  /** Leading blank bytes dropped, and the newlines among them. */
  skippedBytes = 0;
  skippedNewlines = 0;
  private bom = 0;
  private held: Buffer[] = [];
  private heldBytes = 0;

  /** Takes a chunk; once the mode is known, returns the bytes to feed (held ones first). */
  push(chunk: Buffer): Buffer[] | null {
    let index = 0;
    if (this.heldBytes === 0) {
      for (; index < chunk.length; index++) {
        const byte = chunk[index] as number;
        // A UTF-8 byte-order mark at the very start.
        if (this.skippedBytes === index && this.bom < 3 && byte === [0xef, 0xbb, 0xbf][this.bom]) {
          this.bom++;
          continue;
        }
        if (!BLANK.has(byte)) break;
        if (byte === 0x0a) this.skippedNewlines++;
      }
      this.skippedBytes += index;
      if (index === chunk.length) return null;
      const first = chunk[index] as number;
      if (first !== OPEN_BRACKET) {
        this.mode = first === OPEN_BRACE ? 'json' : 'text';
        return [chunk.subarray(index)];
      }
      this.held.push(Buffer.from(chunk.subarray(index, index + 1)));
      this.heldBytes = 1;
      index++;
    }
    // `[` opens a dmesg timestamp as often as a JSON array: look at what follows.
    for (let at = index; at < chunk.length; at++) {
      const byte = chunk[at] as number;
      if (BLANK.has(byte) && this.heldBytes + (at - index) < MAX_BRACKET_LOOKAHEAD) continue;
      this.mode = byte === OPEN_BRACE || byte === OPEN_BRACKET || byte === CLOSE_BRACKET ? 'json' : 'text';
      return [...this.held, chunk.subarray(index)];
    }
    this.held.push(Buffer.from(chunk.subarray(index)));
    this.heldBytes += chunk.length - index;
    return null;
  }

  /** What is still held at the end of the input (a `[` and blanks only). */
  rest(): Buffer[] {
    if (this.heldBytes > 0) this.mode = 'text';
    return this.held;
  }
}

async function scanInput(
  chunks: AsyncIterable<Buffer>,
  session: DetectionSession,
  outcome: InputOutcome,
  countLines: boolean,
): Promise<void> {
  const sniffer = new ModeSniffer();
  let scanner: TextLogScanner | null = null;
  let splitter: JsonValueSplitter | null = null;
  const decoder = new StringDecoder('utf8');
  const problem = (found: Problem) => {
    outcome.problemCount++;
    if (outcome.problems.length < PROBLEMS_SHOWN) outcome.problems.push(found);
  };
  const onJsonPiece = (piece: JsonPiece) => {
    if ('error' in piece) {
      if (piece.text !== undefined && mentionsKernelPhrase(piece.text)) session.aggregator.unreadableLine();
      problem({
        line: piece.line,
        offset: null,
        reason: piece.error,
        ...(piece.text ? { text: piece.text } : {}),
      });
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(piece.text);
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      if (mentionsKernelPhrase(piece.text)) session.aggregator.unreadableLine();
      problem({ line: piece.line, offset: null, reason: error.message, text: piece.text });
      return;
    }
    for (const reason of session.jsonValue(value)) problem({ line: piece.line, offset: null, reason });
  };
  const feed = (chunk: Buffer) => {
    if (scanner !== null) scanner.push(chunk);
    else splitter?.push(decoder.write(chunk), onJsonPiece);
  };
  const start = (mode: 'text' | 'json') => {
    if (mode === 'text') {
      scanner = new TextLogScanner(session, problem, { countLines });
      scanner.skipBlank(sniffer.skippedBytes, sniffer.skippedNewlines);
    } else {
      splitter = new JsonValueSplitter();
      splitter.skipLines(sniffer.skippedNewlines);
    }
  };
  for await (const chunk of chunks) {
    if (sniffer.mode === null) {
      const ready = sniffer.push(chunk);
      if (ready === null) continue;
      start(sniffer.mode as unknown as 'text' | 'json');
      for (const bytes of ready) feed(bytes);
      continue;
    }
    feed(chunk);
  }
  if (sniffer.mode === null) {
    const held = sniffer.rest();
    // Only blank characters: nothing to read.
    if (sniffer.mode === null) return;
    start('text');
    for (const bytes of held) feed(bytes);
  }
  (scanner as TextLogScanner | null)?.end();
  const json = splitter as JsonValueSplitter | null;
  if (json !== null) {
    json.push(decoder.end(), onJsonPiece);
    json.end(onJsonPiece);
  }
}

/** 1-based line numbers for byte offsets, by counting newlines in a second pass over the file. */
async function lineNumbersAt(path: string, offsets: number[]): Promise<Map<number, number>> {
  const targets = [...new Set(offsets)].sort((a, b) => a - b);
  const numbers = new Map<number, number>();
  const fd = openSync(path, 'r');
  try {
    let position = 0;
    let newlinesBefore = 0;
    let next = 0;
    for await (const chunk of readDescriptor(fd)) {
      for (; next < targets.length && (targets[next] as number) < position + chunk.length; next++) {
        const target = targets[next] as number;
        numbers.set(target, newlinesBefore + countNewlines(chunk, target - position) + 1);
      }
      if (next >= targets.length) break;
      newlinesBefore += countNewlines(chunk, chunk.length);
      position += chunk.length;
    }
  } finally {
    closeSync(fd);
  }
  return numbers;
}

function countNewlines(chunk: Buffer, end: number): number {
  let count = 0;
  for (let index = chunk.indexOf(0x0a); index >= 0 && index < end; index = chunk.indexOf(0x0a, index + 1))
    count++;
  return count;
}

function describeError(error: unknown): string {
  if (error instanceof GzipError) return `read only in part: ${error.message}; every line before it was read`;
  if (error instanceof UnreadableInputError) return `not read: ${error.message}`;
  return `cannot read: ${(error as Error).message}`;
}

async function processInput(name: string, session: DetectionSession, io: CliIo): Promise<InputOutcome> {
  const outcome: InputOutcome = {
    name: name === '-' ? '(stdin)' : name,
    problems: [],
    problemCount: 0,
    error: null,
  };
  try {
    if (name === '-') {
      const source = readStream(io.stdin);
      const first = await source.next();
      if (first.done) return outcome;
      refuseUnreadableFormat(first.value);
      await scanInput(maybeGunzip(Buffer.from(first.value), source), session, outcome, true);
      return outcome;
    }
    const fd = openSync(name, 'r');
    let compressed = false;
    try {
      const source = readDescriptor(fd);
      const first = await source.next();
      if (first.done) return outcome;
      refuseUnreadableFormat(first.value);
      compressed = first.value[0] === GZIP_MAGIC[0] && first.value[1] === GZIP_MAGIC[1];
      // A plain file can be re-read, so lines are numbered only when there is something to report.
      await scanInput(maybeGunzip(first.value, source), session, outcome, compressed);
    } finally {
      closeSync(fd);
    }
    await numberLines(name, outcome, compressed);
  } catch (error) {
    outcome.error = describeError(error);
  }
  return outcome;
}

async function numberLines(path: string, outcome: InputOutcome, compressed: boolean): Promise<void> {
  const unnumbered = outcome.problems.filter((problem) => problem.line === null && problem.offset !== null);
  if (compressed || unnumbered.length === 0) return;
  const numbers = await lineNumbersAt(
    path,
    unnumbered.map((problem) => problem.offset as number),
  );
  for (const problem of unnumbered) problem.line = numbers.get(problem.offset as number) ?? null;
}

function reportProblems(outcome: InputOutcome, io: CliIo): void {
  const name = printable(outcome.name);
  for (const problem of outcome.problems) {
    const where = problem.line === null ? name : `${name}:${problem.line}`;
    const text = problem.text === undefined ? '' : `: ${printable(problem.text, 120)}`;
    io.stderr.write(`detect: ${where}: ${printable(problem.reason)}${text}\n`);
  }
  const hidden = outcome.problemCount - outcome.problems.length;
  if (hidden > 0) io.stderr.write(`detect: ${name}: ${hidden} more lines that cannot be used\n`);
  if (outcome.error !== null) io.stderr.write(`detect: ${name}: ${printable(outcome.error)}\n`);
}

function summary(report: DetectionReport): string {
  const lines: string[] = [];
  if (report.groups.length === 0) {
    lines.push('No conntrack drop messages found.');
  } else {
    const header = ['HOST', 'NETNS', 'KIND', 'DROP LINES', 'SUPPRESSED', 'FIRST SEEN', 'LAST SEEN'];
    const rows = report.groups.map((group) => [
      printable(group.host, CELL_CHARS),
      group.netns === null ? '-' : printable(group.netns, CELL_CHARS),
      group.kind,
      String(group.dropLines),
      String(group.suppressed),
      group.firstSeen ?? '-',
      group.lastSeen ?? '-',
    ]);
    const widths = header.map((title, column) =>
      Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)),
    );
    const numeric = new Set([3, 4]);
    for (const row of [header, ...rows]) {
      lines.push(
        row
          .map((cell, column) =>
            numeric.has(column) ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0),
          )
          .join('  ')
          .trimEnd(),
      );
    }
    const drops = report.groups.reduce((sum, group) => sum + group.dropLines, 0);
    const hosts = new Set(report.groups.map((group) => group.host)).size;
    lines.push('');
    lines.push(
      `${drops} drop line${drops === 1 ? '' : 's'} in ${report.groups.length} group${report.groups.length === 1 ? '' : 's'} on ${hosts} host${hosts === 1 ? '' : 's'}.`,
    );
  }
  const { 'not-kernel': notKernel, unrelated, unreadable } = report.ignored;
  const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? '' : 's'}`;
  lines.push(
    `Ignored: ${plural(notKernel, 'look-alike line')} not written by the kernel, ${plural(unrelated, 'suppression line')} with no drop line next to it, ${plural(unreadable, 'unreadable line')} with drop or suppression text (named on standard error).`,
  );
  return `${lines.join('\n')}\n`;
}

export const detectCommand: Command = async (args, io) => {
  const options = parseOptions(args);
  if (options === 'help') {
    io.stdout.write(HELP);
    return 0;
  }
  if (options.files.filter((file) => file === '-').length > 1)
    throw new UsageError('"-" (stdin) can be given once');
  if (options.stdinByDefault && (io.stdin as { isTTY?: boolean }).isTTY === true) {
    throw new UsageError("no input: give FILE arguments or pipe a log into it (see 'detect --help')");
  }
  let unreadInput = false;
  let namedLines = false;
  for (const file of options.files) {
    const outcome = await processInput(file, options.session, io);
    reportProblems(outcome, io);
    if (outcome.error !== null) unreadInput = true;
    if (outcome.problemCount > 0) namedLines = true;
  }
  const report = options.session.report();
  io.stdout.write(options.json ? `${terminalSafeJson(JSON.stringify(report))}\n` : summary(report));
  if (unreadInput || (options.strict && namedLines)) return 2;
  return report.groups.length > 0 ? 0 : 1;
};
