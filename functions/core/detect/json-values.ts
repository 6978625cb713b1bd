/**
 * Splits a stream of JSON text into its top-level values without holding more than one value in
 * memory: JSON lines (`journalctl -o json`), concatenated pretty-printed values
 * (`journalctl -o json-pretty`, a saved Lambda event), `json-seq` record separators.
 *
 * Bad input gets a bounded answer and costs only itself:
 * - a value cut short (a truncated line) ends at the next newline that a string cannot span, or
 *   where the next value starts at the beginning of a line: the following values are read;
 * - a value nested deeper than MAX_JSON_DEPTH, or longer than MAX_JSON_VALUE_CHARS (the size cap
 *   of a text line), is reported and skipped without being kept, so neither the stack nor the
 *   memory grows with it.
 */

export type JsonPiece =
  | { readonly text: string; readonly line: number }
  | {
      readonly error: string;
      readonly line: number;
      /** What was read of the refused value (up to the size cap; none for stray text). */
      readonly text?: string;
    };

/** Deeper than any journald entry or CloudWatch payload (both are at most 3 levels). */
export const MAX_JSON_DEPTH = 64;
/** The same cap as a text line (text-scanner's MAX_LINE_BYTES), in characters. */
export const MAX_JSON_VALUE_CHARS = 1024 * 1024;

const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const NEWLINE = 0x0a;
const RECORD_SEPARATOR = 0x1e;

function isSeparator(code: number): boolean {
  // space, tab, CR, LF, the json-seq record separator, a byte-order mark
  return (
    code === 0x20 ||
    code === 0x09 ||
    code === 0x0d ||
    code === NEWLINE ||
    code === RECORD_SEPARATOR ||
    code === 0xfeff
  );
}

export class JsonValueSplitter {
  private depth = 0;
  private inString = false;
  private escaped = false;
  private skippingBadLine = false;
  /** The current value is too deep or too long: its structure is followed, its text not kept. */
  private discarding: string | null = null;
  private pieces: string[] = [];
  private size = 0;
  private valueLine = 0;
  private line = 1;
  private atLineStart = true;

  /** Accounts for leading blank lines the caller dropped unread. */
  skipLines(newlines: number): void {
    this.line += newlines;
  }

  /** Feeds text; calls `emit` for each complete top-level value (or unusable stretch) in order. */
  push(chunk: string, emit: (piece: JsonPiece) => void): void {
    let valueStart = this.depth > 0 && this.discarding === null ? 0 : -1;
    const keep = (end: number) => {
      if (valueStart >= 0 && end > valueStart) this.pieces.push(chunk.slice(valueStart, end));
    };
    for (let index = 0; index < chunk.length; index++) {
      const code = chunk.charCodeAt(index);
      const lineStart = this.atLineStart;
      this.atLineStart = code === NEWLINE;
      if (code === NEWLINE) this.line++;
      if (this.depth === 0) {
        if (this.skippingBadLine) {
          if (code === NEWLINE) this.skippingBadLine = false;
        } else if (code === OPEN_OBJECT || code === OPEN_ARRAY) {
          this.open();
          valueStart = index;
        } else if (!isSeparator(code)) {
          emit({ error: 'expected a JSON object or array', line: this.line });
          this.skippingBadLine = true;
        }
        continue;
      }
      // Inside a value. A string cannot span lines, and a value that starts at the beginning of a
      // line (or after a json-seq separator) means the previous one was cut short.
      const cutShort =
        (code === NEWLINE && this.inString) ||
        code === RECORD_SEPARATOR ||
        (lineStart && !this.inString && code === OPEN_OBJECT);
      if (cutShort) {
        keep(index);
        this.fail(
          this.discarding ?? `the JSON value is cut short (a new line or value starts at line ${this.line})`,
          emit,
        );
        valueStart = -1;
        if (code === OPEN_OBJECT) {
          this.open();
          valueStart = index;
        }
        continue;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (code === BACKSLASH) this.escaped = true;
        else if (code === QUOTE) this.inString = false;
      } else if (code === QUOTE) this.inString = true;
      else if (code === OPEN_OBJECT || code === OPEN_ARRAY) {
        this.depth++;
        if (this.depth > MAX_JSON_DEPTH && this.discarding === null) {
          keep(index);
          valueStart = -1;
          this.discard(`a JSON value nested deeper than ${MAX_JSON_DEPTH} levels`);
        }
      } else if (code === CLOSE_OBJECT || code === CLOSE_ARRAY) {
        this.depth--;
        if (this.depth === 0) {
          if (this.discarding !== null) {
            this.fail(this.discarding, emit);
          } else {
            keep(index + 1);
            emit({ text: this.pieces.join(''), line: this.valueLine });
            this.reset();
          }
          valueStart = -1;
          continue;
        }
      }
      if (
        this.discarding === null &&
        valueStart >= 0 &&
        this.size + (index - valueStart) > MAX_JSON_VALUE_CHARS
      ) {
        keep(index);
        valueStart = -1;
        this.discard(`a JSON value longer than ${MAX_JSON_VALUE_CHARS} characters: not a log entry`);
      }
    }
    if (this.depth > 0 && valueStart >= 0) {
      keep(chunk.length);
      this.size += chunk.length - valueStart;
    }
  }

  /** Reports a value the input ended in the middle of. */
  end(emit: (piece: JsonPiece) => void): void {
    if (this.depth > 0) this.fail(this.discarding ?? 'the input ends inside a JSON value', emit);
  }

  private open(): void {
    this.depth = 1;
    this.valueLine = this.line;
    this.size = 0;
  }

  private discard(reason: string): void {
    this.discarding = reason;
  }

  private fail(reason: string, emit: (piece: JsonPiece) => void): void {
    const text = this.pieces.join('');
    emit({ error: reason, line: this.valueLine, ...(text === '' ? {} : { text }) });
    this.reset();
  }

  private reset(): void {
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
    this.discarding = null;
    this.pieces = [];
    this.size = 0;
  }
}
