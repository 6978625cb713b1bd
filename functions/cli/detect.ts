import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { parseArgs } from 'node:util';
import { createGunzip } from 'node:zlib';
import { decodeAwsLogsData } from '../core/detect/awslogs-decode.js';
import { DEFAULT_INSTANCE_ID_PATTERN } from '../core/detect/cloudwatch.js';
import { LogInputError } from '../core/detect/errors.js';
import type { DetectionReport } from '../core/detect/index.js';
import { JsonValueSplitter } from '../core/detect/json-values.js';
import { DetectionSession } from '../core/detect/session.js';
import { TextLogScanner } from '../core/detect/text-scanner.js';
import { type CliIo, type Command, UsageError } from './io.js';

const HELP = `usage: conntrack-responder detect [FILE…|-] [--host NAME] [--json] [--instance-id-pattern RE] [--now TIME]

Finds conntrack drop messages ("nf_conntrack: table full, dropping packet" in every kernel's
spelling, "expectation table full", and the rate-limit lines that count suppressed repeats) in
kernel logs, and groups them per host, network namespace and kind.

Inputs (any mix; "-" or no FILE reads standard input; gzip-compressed input is decompressed):
  syslog files (RFC 3164, rsyslog's high-precision format, RFC 5424), journalctl -o short*,
  dmesg output (raw [seconds], -T, --time-format iso, -x, -r), journalctl -o json / json-pretty,
  the CloudWatch agent's journald events ({"body":{...}}), CloudWatch Logs subscription payloads (decoded JSON, or the Lambda event {"awslogs":{"data":…}}).
  A file is read as JSON when its first character is "{" (or "[" then "{"), else as text lines.
  Only lines the kernel wrote count: the same words from another program are "not-kernel".

Options:
  --host NAME                 host name for lines that carry none (dmesg, bare "kernel:" lines);
                              default: localhost
  --json                      print exactly one JSON object: {"groups":[…],"ignored":{…}}
  --instance-id-pattern RE    regular expression that finds the host (EC2 instance id) in a
                              CloudWatch log stream name; default: ${DEFAULT_INSTANCE_ID_PATTERN.source}
  --now TIME                  reference time (ISO 8601) for syslog timestamps without a year;
                              default: the current time
  -h, --help                  show this help

Exit status: 0 when every input was read; 1 when an input could not be read or has lines that
cannot be parsed (the other inputs are still reported); 2 on a usage error.
`;

/** Bytes per read: large enough that per-read overhead vanishes, small enough to stream. */
const CHUNK_BYTES = 1 << 20;
/** Problems printed per input; the rest are counted. */
const PROBLEMS_SHOWN = 10;
const GZIP_MAGIC = [0x1f, 0x8b];

interface Problem {
  line: number | null;
  offset: number | null;
  reason: string;
  text?: string;
}

interface InputOutcome {
  readonly name: string;
  readonly problems: Problem[];
  /** Set when the input could not be read at all (or stopped being readable). */
  fatal: string | null;
}

interface Options {
  readonly files: string[];
  /** No FILE was given: standard input is read by default. */
  readonly stdinByDefault: boolean;
  readonly json: boolean;
  readonly session: DetectionSession;
}

function parseOptions(args: string[]): Options | 'help' {
  let parsed: ReturnType<
    typeof parseArgs<{
      options: {
        host: { type: 'string' };
        json: { type: 'boolean' };
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
        'instance-id-pattern': { type: 'string' },
        now: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\nRun 'conntrack-responder detect --help' for usage.`);
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (values.host !== undefined && !/^\S+$/.test(values.host)) {
    throw new UsageError('--host must be a non-empty name without spaces');
  }
  let instanceIdPattern = DEFAULT_INSTANCE_ID_PATTERN;
  if (values['instance-id-pattern'] !== undefined) {
    try {
      instanceIdPattern = new RegExp(values['instance-id-pattern']);
    } catch (error) {
      throw new UsageError(`--instance-id-pattern is not a regular expression: ${(error as Error).message}`);
    }
  }
  let now = new Date();
  if (values.now !== undefined) {
    now = new Date(values.now);
    if (Number.isNaN(now.getTime())) throw new UsageError(`--now is not a date: ${values.now}`);
  }
  const session = new DetectionSession({
    defaultHost: values.host ?? 'localhost',
    now,
    instanceIdPattern,
    decodeAwsLogsData,
  });
  const stdinByDefault = positionals.length === 0;
  return { files: stdinByDefault ? ['-'] : positionals, stdinByDefault, json: values.json ?? false, session };
}

async function* readHandle(handle: Awaited<ReturnType<typeof open>>): AsyncGenerator<Buffer> {
  // One buffer for the whole file: consumers finish with a chunk before asking for the next.
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  for (;;) {
    const { bytesRead } = await handle.read(buffer, 0, CHUNK_BYTES, null);
    if (bytesRead === 0) return;
    yield buffer.subarray(0, bytesRead);
  }
}

async function* readStream(stream: Readable): AsyncGenerator<Buffer> {
  for await (const chunk of stream) yield typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
}

/** Yields `first` and the rest of `source`, decompressed when the input starts with the gzip magic. */
async function* maybeGunzip(first: Buffer, source: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  if (first[0] !== GZIP_MAGIC[0] || first[1] !== GZIP_MAGIC[1]) {
    yield first;
    for (let next = await source.next(); !next.done; next = await source.next()) yield next.value;
    return;
  }
  const gunzip = createGunzip();
  const feed = (async () => {
    // Copies: the reader reuses its buffer while gunzip may still hold the previous chunk.
    gunzip.write(Buffer.from(first));
    for (let next = await source.next(); !next.done; next = await source.next()) {
      if (!gunzip.write(Buffer.from(next.value)))
        await new Promise((resolve) => gunzip.once('drain', resolve));
    }
    gunzip.end();
  })().catch((error: unknown) => gunzip.destroy(error as Error));
  yield* readStream(gunzip);
  await feed;
}

type Mode = 'text' | 'json';

/** JSON when the first non-blank character opens an object, or an array of objects; else text lines. */
function detectMode(bytes: Buffer): Mode | null {
  let index = 0;
  const isBlank = (byte: number | undefined) =>
    byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d || byte === 0x1e;
  // A UTF-8 byte-order mark
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) index = 3;
  while (index < bytes.length && isBlank(bytes[index])) index++;
  if (index >= bytes.length) return null;
  if (bytes[index] === 0x7b) return 'json';
  if (bytes[index] !== 0x5b) return 'text';
  // `[` opens a dmesg timestamp as often as a JSON array: look at what follows.
  index++;
  while (index < bytes.length && isBlank(bytes[index])) index++;
  if (index >= bytes.length) return null;
  return bytes[index] === 0x7b || bytes[index] === 0x5d || bytes[index] === 0x5b ? 'json' : 'text';
}

async function scanInput(
  chunks: AsyncIterable<Buffer>,
  session: DetectionSession,
  outcome: InputOutcome,
  countLines: boolean,
): Promise<void> {
  let mode: Mode | null = null;
  const pending: Buffer[] = [];
  let scanner: TextLogScanner | null = null;
  let splitter: JsonValueSplitter | null = null;
  const decoder = new StringDecoder('utf8');
  const onJsonPiece = (piece: { text: string; line: number } | { error: string; line: number }) => {
    if ('error' in piece) {
      outcome.problems.push({ line: piece.line, offset: null, reason: piece.error });
      return;
    }
    try {
      session.jsonValue(JSON.parse(piece.text));
    } catch (error) {
      if (!(error instanceof LogInputError || error instanceof SyntaxError)) throw error;
      outcome.problems.push({ line: piece.line, offset: null, reason: error.message });
    }
  };
  const feed = (chunk: Buffer) => {
    if (scanner !== null) scanner.push(chunk);
    else splitter?.push(decoder.write(chunk), onJsonPiece);
  };
  for await (const chunk of chunks) {
    if (mode === null) {
      pending.push(Buffer.from(chunk));
      mode = detectMode(Buffer.concat(pending));
      if (mode === null) continue;
      if (mode === 'text') {
        scanner = new TextLogScanner(session, (problem) => outcome.problems.push({ ...problem }), {
          countLines,
        });
      } else {
        splitter = new JsonValueSplitter();
      }
      for (const held of pending.splice(0)) feed(held);
      continue;
    }
    feed(chunk);
  }
  if (mode === null && pending.length > 0) {
    // Only blank characters: nothing to report.
    return;
  }
  scanner?.end();
  if (splitter !== null) {
    splitter.push(decoder.end(), onJsonPiece);
    splitter.end(onJsonPiece);
  }
}

/** 1-based line numbers for byte offsets, by counting newlines in a second pass over the file. */
async function lineNumbersAt(path: string, offsets: number[]): Promise<Map<number, number>> {
  const targets = [...new Set(offsets)].sort((a, b) => a - b);
  const numbers = new Map<number, number>();
  const handle = await open(path, 'r');
  try {
    let position = 0;
    let newlinesBefore = 0;
    let next = 0;
    for await (const chunk of readHandle(handle)) {
      for (; next < targets.length && (targets[next] as number) < position + chunk.length; next++) {
        const target = targets[next] as number;
        numbers.set(target, newlinesBefore + countNewlines(chunk, target - position) + 1);
      }
      if (next >= targets.length) break;
      newlinesBefore += countNewlines(chunk, chunk.length);
      position += chunk.length;
    }
  } finally {
    await handle.close();
  }
  return numbers;
}

function countNewlines(chunk: Buffer, end: number): number {
  let count = 0;
  for (let index = chunk.indexOf(0x0a); index >= 0 && index < end; index = chunk.indexOf(0x0a, index + 1))
    count++;
  return count;
}

async function processInput(name: string, session: DetectionSession, io: CliIo): Promise<InputOutcome> {
  const outcome: InputOutcome = { name: name === '-' ? '(stdin)' : name, problems: [], fatal: null };
  try {
    if (name === '-') {
      const source = readStream(io.stdin);
      const first = await source.next();
      if (first.done) return outcome;
      await scanInput(maybeGunzip(Buffer.from(first.value), source), session, outcome, true);
      return outcome;
    }
    const handle = await open(name, 'r');
    let compressed = false;
    try {
      const source = readHandle(handle);
      const first = await source.next();
      if (first.done) return outcome;
      compressed = first.value[0] === GZIP_MAGIC[0] && first.value[1] === GZIP_MAGIC[1];
      // A plain file can be re-read, so lines are numbered only when there is something to report.
      await scanInput(maybeGunzip(first.value, source), session, outcome, compressed);
    } finally {
      await handle.close();
    }
    const unnumbered = outcome.problems.filter((problem) => problem.line === null && problem.offset !== null);
    if (!compressed && unnumbered.length > 0) {
      const numbers = await lineNumbersAt(
        name,
        unnumbered.map((problem) => problem.offset as number),
      );
      for (const problem of unnumbered) problem.line = numbers.get(problem.offset as number) ?? null;
    }
  } catch (error) {
    outcome.fatal = (error as Error).message;
  }
  return outcome;
}

function shorten(text: string): string {
  // Control characters from a log line must not drive the terminal.
  const oneLine = [...text]
    .map((char) => (char.charCodeAt(0) < 0x20 || char === '\u007f' ? ' ' : char))
    .join('');
  return oneLine.length > 120 ? `${oneLine.slice(0, 117)}...` : oneLine;
}

function reportProblems(outcome: InputOutcome, io: CliIo): void {
  if (outcome.fatal !== null) io.stderr.write(`detect: ${outcome.name}: cannot read: ${outcome.fatal}\n`);
  for (const problem of outcome.problems.slice(0, PROBLEMS_SHOWN)) {
    const where = problem.line === null ? outcome.name : `${outcome.name}:${problem.line}`;
    const text = problem.text === undefined ? '' : `: ${shorten(problem.text)}`;
    io.stderr.write(`detect: ${where}: ${problem.reason}${text}\n`);
  }
  const hidden = outcome.problems.length - PROBLEMS_SHOWN;
  if (hidden > 0) io.stderr.write(`detect: ${outcome.name}: ${hidden} more lines that cannot be parsed\n`);
}

function summary(report: DetectionReport): string {
  const lines: string[] = [];
  if (report.groups.length === 0) {
    lines.push('No conntrack drop messages found.');
  } else {
    const header = ['HOST', 'NETNS', 'KIND', 'DROP LINES', 'SUPPRESSED', 'FIRST SEEN', 'LAST SEEN'];
    const rows = report.groups.map((group) => [
      group.host,
      group.netns ?? '-',
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
  const notKernel = report.ignored['not-kernel'];
  const unrelated = report.ignored.unrelated;
  lines.push(
    `Ignored: ${notKernel} look-alike line${notKernel === 1 ? '' : 's'} not written by the kernel, ${unrelated} suppression line${unrelated === 1 ? '' : 's'} with no drop line next to it.`,
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
  let failed = false;
  for (const file of options.files) {
    const outcome = await processInput(file, options.session, io);
    reportProblems(outcome, io);
    if (outcome.fatal !== null || outcome.problems.length > 0) failed = true;
  }
  const report = options.session.report();
  io.stdout.write(options.json ? `${JSON.stringify(report)}\n` : summary(report));
  return failed ? 1 : 0;
};
