import type { DetectionSession } from './session.js';

/**
 * Feeds a text log to a DetectionSession chunk by chunk, decoding as little as it can.
 *
 * Most lines of a syslog file cannot matter: a line matters only if it contains a drop or
 * suppression phrase (a "candidate"), or if it is a kernel line of a host that has a drop or a
 * pending suppression just before it (it settles that host's attribution). So while no host is in
 * that state, the scanner jumps from candidate to candidate with Buffer.indexOf (native, no
 * decoding); only candidate lines, and every line while some host is in that state, are decoded
 * and parsed. The result is the same as parsing every line.
 */

// Needles for CANDIDATE_SUBSTRINGS ('table full', 'suppressed'), chosen for speed: Buffer.indexOf
// runs a memchr for the needle's first byte and compares the rest, so it is as fast as that byte
// is rare in log text, and each needle costs a native pass over the whole input. Every line with
// a candidate substring contains one of these, so nothing is missed. A `full` counts only after
// `table` and a space or a no-break space (the phrase as phraseText reads it), so `full duplex`
// and `fully` cost no parse.
const FULL = Buffer.from('full');
const SUPPRESS = Buffer.from('uppress');
const TABLE_SPACE = Buffer.from('table ');
const TABLE_NBSP = Buffer.from('table\u00a0');
// syslogd's `last message repeated N times` repeats the line just before it, and only when that
// line was given to the session (see DetectionSession.skipped): so it is looked for only in the
// line after one given to the session, not searched for through the whole input.
const REPEATED = Buffer.from('repeated');
const TIME = Buffer.from('time');
const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const OPEN_BRACKET = 0x5b;
const LESS_THAN = 0x3c;
const DIGIT_ZERO = 0x30;
const DIGIT_NINE = 0x39;
const COMMA = 0x2c;
const SPACE_BYTE = 0x20;
const TAB = 0x09;
const GREATER_THAN = 0x3e;
/** First bytes of a no-break space and of a byte-order mark in UTF-8. */
const NBSP_LEAD = 0xc2;
const BOM_LEAD = 0xef;
const NOWHERE = Number.MAX_SAFE_INTEGER;

/** The next occurrence of a needle in one buffer region, searched natively and at most once per occurrence. */
class NeedleCursor {
  private buffer: Buffer | null = null;
  private end = 0;
  private found = -1;

  /** `accepts` can refuse an occurrence (by what surrounds it): the search goes on after it. */
  constructor(
    private readonly needle: Buffer,
    private readonly accepts: (buffer: Buffer, position: number) => boolean = () => true,
  ) {}

  reset(buffer: Buffer, end: number): void {
    this.buffer = buffer;
    this.end = end;
    this.found = -1;
  }

  /** The first position >= from where the needle starts, or NOWHERE. */
  next(from: number): number {
    const buffer = this.buffer;
    if (buffer === null) return this.found;
    let start = from;
    while (this.found !== NOWHERE && this.found < from) {
      const found = buffer.indexOf(this.needle, start);
      this.found = found < 0 || found >= this.end ? NOWHERE : found;
      if (this.found === NOWHERE || this.accepts(buffer, found)) break;
      start = found + 1;
      this.found = -1;
    }
    return this.found;
  }
}
/** A longer "line" is not a log line; refusing it bounds memory. */
export const MAX_LINE_BYTES = 1024 * 1024;

export interface ScannerProblem {
  /** Byte offset of the line's start in the stream. */
  readonly offset: number;
  /** 1-based line number when the scanner counts lines, else null (the caller can derive it from the offset). */
  readonly line: number | null;
  readonly reason: string;
  readonly text: string;
}

export interface TextScannerOptions {
  /**
   * Count every line so problems carry line numbers. Costs a pass over every byte in JavaScript;
   * callers that can re-read their input (files) leave it off and derive numbers from offsets.
   */
  readonly countLines?: boolean;
}

export class TextLogScanner {
  private carry: Buffer | null = null;
  private streamOffset = 0;
  private linesBefore = 0;
  private readonly candidateCursors = [new NeedleCursor(FULL, afterTable), new NeedleCursor(SUPPRESS)];
  private readonly kernelWord = new NeedleCursor(Buffer.from('kern'));
  private readonly countLines: boolean;
  /** After an overlong line: drop bytes up to the next newline. */
  private skipToNewline = false;
  /** Stream offset just past the last line given to the session (a gap means lines were skipped). */
  private fedUpTo = 0;

  constructor(
    private readonly session: DetectionSession,
    private readonly onProblem: (problem: ScannerProblem) => void,
    options: TextScannerOptions = {},
  ) {
    this.countLines = options.countLines ?? false;
    // A new input: its first line decides what a line without a header is.
    session.beginInput();
  }

  /** Bytes seen so far. */
  get bytes(): number {
    return this.streamOffset;
  }

  /**
   * Accounts for leading blank bytes the caller dropped unread (a blank-only prefix costs no
   * memory): offsets and line numbers go on from there.
   */
  skipBlank(bytes: number, newlines: number): void {
    this.streamOffset += bytes;
    if (this.countLines) this.linesBefore += newlines;
  }

  /** Feeds the next chunk. The scanner keeps no reference to it, so the caller may reuse it. */
  push(chunk: Buffer): void {
    let start = 0;
    if (this.skipToNewline) {
      const newline = chunk.indexOf(NEWLINE);
      if (newline < 0) {
        this.streamOffset += chunk.length;
        return;
      }
      this.skipToNewline = false;
      if (this.countLines) this.linesBefore++;
      start = newline + 1;
    }
    if (this.carry !== null) {
      const newline = chunk.indexOf(NEWLINE, start);
      if (newline < 0) {
        this.appendCarry(chunk.subarray(start));
        this.streamOffset += start;
        return;
      }
      const carriedOffset = this.streamOffset - this.carry.length;
      if (this.carry.length + newline - start > MAX_LINE_BYTES) {
        this.overlong(carriedOffset, this.carry);
        if (this.countLines) this.linesBefore++;
      } else {
        const line = Buffer.concat([this.carry, chunk.subarray(start, newline + 1)]);
        this.region(line, 0, line.length, carriedOffset);
      }
      this.carry = null;
      start = newline + 1;
    }
    const lastNewline = chunk.lastIndexOf(NEWLINE);
    if (lastNewline >= start) {
      this.region(chunk, start, lastNewline + 1, this.streamOffset + start);
      start = lastNewline + 1;
    }
    this.streamOffset += chunk.length;
    if (start < chunk.length) this.appendCarry(chunk.subarray(start), false);
  }

  /** Flushes a last line without a newline. */
  end(): void {
    if (this.carry === null) return;
    const line = this.carry;
    this.carry = null;
    this.region(line, 0, line.length, this.streamOffset - line.length);
  }

  private appendCarry(bytes: Buffer, countsAsNew = true): void {
    // Copied: the caller may reuse the chunk's memory for its next read.
    this.carry = this.carry === null ? Buffer.from(bytes) : Buffer.concat([this.carry, bytes]);
    if (countsAsNew) this.streamOffset += bytes.length;
    if (this.carry.length > MAX_LINE_BYTES) {
      this.overlong(this.streamOffset - this.carry.length, this.carry);
      this.carry = null;
      this.skipToNewline = true;
    }
  }

  private overlong(offset: number, start: Buffer): void {
    this.onProblem({
      offset,
      line: this.countLines ? this.linesBefore + 1 : null,
      reason: `a line longer than ${MAX_LINE_BYTES} bytes: not a log line`,
      text: start.subarray(0, 80).toString('utf8'),
    });
  }

  /** Handles the complete lines in buffer[start, end); `end` is just past a newline or the stream's end. */
  private region(buffer: Buffer, start: number, end: number, offset: number): void {
    for (const cursor of this.candidateCursors) cursor.reset(buffer, end);
    this.kernelWord.reset(buffer, end);
    let position = start;
    let counted = start;
    while (position < end) {
      // Until the input's first line has been read, and while some host has state a kernel line
      // could change, lines are looked at one by one. (A `last message repeated` line needs no
      // search either: it repeats the line before it, which left no host with state, so it
      // changes nothing.)
      if (this.session.inputFormatKnown && !this.session.aggregator.hasActiveHosts()) {
        const candidate = this.nextCandidate(position);
        if (candidate === NOWHERE) break;
        position = Math.max(buffer.lastIndexOf(NEWLINE, candidate) + 1, position);
      }
      const lineEnd = lineEndOf(buffer, position, end);
      const candidate =
        this.nextCandidate(position) < lineEnd ||
        (offset + position - start === this.fedUpTo &&
          endsWithTimes(buffer, position, lineEnd) &&
          contains(buffer, position, lineEnd, REPEATED));
      // While some host is active, every kernel line counts, but a line that cannot be a kernel
      // line is still skipped undecoded.
      if (candidate || !this.session.inputFormatKnown || this.mayBeKernelLine(buffer, position, lineEnd)) {
        if (this.countLines) {
          this.linesBefore += countNewlines(buffer, counted, position);
          counted = position;
        }
        this.line(buffer, position, lineEnd, offset + position - start);
      }
      position = lineEnd + 1;
    }
    if (this.countLines) this.linesBefore += countNewlines(buffer, counted, end);
  }

  private nextCandidate(from: number): number {
    let best = NOWHERE;
    for (const cursor of this.candidateCursors) best = Math.min(best, cursor.next(from));
    return best;
  }

  /**
   * False only for lines that no parser would call a kernel line: syslog and RFC 5424 kernel lines
   * carry the tag `kernel`, `dmesg -x` lines the facility `kern`; dmesg's own forms start with
   * `[` or `<`, or with an ISO time whose fraction follows a comma.
   */
  private mayBeKernelLine(buffer: Buffer, start: number, end: number): boolean {
    const first = buffer[start] ?? 0;
    if (first === OPEN_BRACKET || first === LESS_THAN) return true;
    // Damaged starts (indentation, no-break spaces, quote markers, NUL bytes) are rare: let the parser look.
    if (
      first === 0x00 ||
      first === SPACE_BYTE ||
      first === TAB ||
      first === GREATER_THAN ||
      first === NBSP_LEAD ||
      first === BOM_LEAD
    )
      return true;
    // In dmesg -t or journalctl -o cat output any line may be a kernel line of the default host.
    if (this.session.bareLinesAreKernel && this.session.aggregator.isActive(this.session.hostForBareLines))
      return true;
    if (first >= DIGIT_ZERO && first <= DIGIT_NINE && end - start > 19 && buffer[start + 19] === COMMA)
      return true;
    if (this.kernelWord.next(start) >= end) return false;
    // A plain `Mmm dd hh:mm:ss host …` line can only be parsed as RFC 3164 (see parseTextLine),
    // and then its host is that token: a kernel line of a host with no state changes nothing.
    const host = bsdHostBounds(buffer, start, end);
    return host < 0 || this.isActiveHost(buffer, start + 16, host);
  }

  /** Whether buffer[start, end), a host name, is an active host (compared without decoding the common ASCII name). */
  private isActiveHost(buffer: Buffer, start: number, end: number): boolean {
    for (const host of this.session.aggregator.activeHosts()) {
      if (host.length !== end - start) continue;
      let same = true;
      for (let index = 0; index < host.length && same; index++)
        same = host.charCodeAt(index) === buffer[start + index];
      if (same) return true;
    }
    // A name with non-ASCII bytes has fewer characters than bytes: decode it to compare.
    for (let index = start; index < end; index++) {
      if ((buffer[index] as number) >= 0x80)
        return this.session.aggregator.isActive(buffer.toString('utf8', start, end));
    }
    return false;
  }

  private line(buffer: Buffer, start: number, end: number, offset: number): void {
    // `end` is the newline's position (or the stream's end): the next line starts after it.
    if (offset !== this.fedUpTo) this.session.skipped();
    this.fedUpTo = offset + (end - start) + 1;
    let stop = end;
    if (stop > start && buffer[stop - 1] === CARRIAGE_RETURN) stop--;
    const text = buffer.toString('utf8', start, stop);
    const problem = this.session.textLine(text);
    if (problem !== null) {
      this.onProblem({ offset, line: this.countLines ? this.linesBefore + 1 : null, reason: problem, text });
    }
  }
}

/**
 * True when the line in buffer[start, end) ends with `time` or `times` (before a carriage return),
 * as syslogd's `last message repeated N times` does: a cheap test before searching the line.
 */
function endsWithTimes(buffer: Buffer, start: number, end: number): boolean {
  let stop = end;
  if (stop > start && buffer[stop - 1] === CARRIAGE_RETURN) stop--;
  if (stop > start && buffer[stop - 1] === 0x73 /* s */) stop--;
  return stop - start >= 4 && endsAt(buffer, stop, TIME);
}

/** Where the line starting at `start` ends: its newline, or `end`. */
function lineEndOf(buffer: Buffer, start: number, end: number): number {
  const newline = buffer.indexOf(NEWLINE, start);
  return newline < 0 || newline > end ? end : newline;
}

/** True when buffer[start, end) contains the needle (searched within those bytes only). */
function contains(buffer: Buffer, start: number, end: number, needle: Buffer): boolean {
  return end - start >= needle.length && buffer.subarray(start, end).indexOf(needle) >= 0;
}

/** True when the `full` at `position` ends `table full` (or `table` and a no-break space, then `full`). */
function afterTable(buffer: Buffer, position: number): boolean {
  return endsAt(buffer, position, TABLE_SPACE) || endsAt(buffer, position, TABLE_NBSP);
}

function endsAt(buffer: Buffer, position: number, text: Buffer): boolean {
  const from = position - text.length;
  return from >= 0 && buffer.compare(text, 0, text.length, from, position) === 0;
}

function countNewlines(buffer: Buffer, start: number, end: number): number {
  let count = 0;
  for (let position = buffer.indexOf(NEWLINE, start); position >= 0 && position < end; ) {
    count++;
    position = buffer.indexOf(NEWLINE, position + 1);
  }
  return count;
}

const SPACE = 0x20;
const COLON = 0x3a;

function isDigit(byte: number | undefined): boolean {
  return byte !== undefined && byte >= DIGIT_ZERO && byte <= DIGIT_NINE;
}

function isLetter(byte: number | undefined, upper: boolean): boolean {
  return byte !== undefined && (upper ? byte >= 0x41 && byte <= 0x5a : byte >= 0x61 && byte <= 0x7a);
}

/**
 * Where the host of a line that starts exactly like `Mar 13 20:21:45 host ` (or `Mar  3 …`) ends
 * (it starts at start + 16), else -1 (any other shape is left to the full parser).
 */
function bsdHostBounds(buffer: Buffer, start: number, end: number): number {
  const at = (index: number) => buffer[start + index];
  if (end - start < 17 || !isLetter(at(0), true) || !isLetter(at(1), false) || !isLetter(at(2), false))
    return -1;
  if (at(3) !== SPACE || !(at(4) === SPACE || isDigit(at(4))) || !isDigit(at(5)) || at(6) !== SPACE)
    return -1;
  if (!isDigit(at(7)) || !isDigit(at(8)) || at(9) !== COLON || !isDigit(at(10)) || !isDigit(at(11)))
    return -1;
  if (at(12) !== COLON || !isDigit(at(13)) || !isDigit(at(14)) || at(15) !== SPACE) return -1;
  let hostEnd = start + 16;
  while (hostEnd < end && buffer[hostEnd] !== SPACE) hostEnd++;
  if (hostEnd >= end || hostEnd === start + 16) return -1;
  // `Jul  3 10:07:53 kernel: …` names no host (the default one applies): let the parser decide.
  if (buffer[hostEnd - 1] === COLON) return -1;
  return hostEnd;
}
