/**
 * Splits a stream of JSON text into its top-level values without holding more than one value in
 * memory: JSON lines (`journalctl -o json`), concatenated pretty-printed values
 * (`journalctl -o json-pretty`, a saved Lambda event), `json-seq` record separators.
 */

export type JsonPiece =
  | { readonly text: string; readonly line: number }
  | { readonly error: string; readonly line: number };

const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const NEWLINE = 0x0a;

function isSeparator(code: number): boolean {
  // space, tab, CR, LF, the json-seq record separator, a byte-order mark
  return (
    code === 0x20 || code === 0x09 || code === 0x0d || code === NEWLINE || code === 0x1e || code === 0xfeff
  );
}

export class JsonValueSplitter {
  private depth = 0;
  private inString = false;
  private escaped = false;
  private skippingBadLine = false;
  private pieces: string[] = [];
  private valueLine = 0;
  private line = 1;

  /** Feeds text; calls `emit` for each complete top-level value (or unusable stretch) in order. */
  push(chunk: string, emit: (piece: JsonPiece) => void): void {
    let valueStart = this.depth > 0 ? 0 : -1;
    for (let index = 0; index < chunk.length; index++) {
      const code = chunk.charCodeAt(index);
      if (code === NEWLINE) this.line++;
      if (this.depth === 0) {
        if (this.skippingBadLine) {
          if (code === NEWLINE) this.skippingBadLine = false;
        } else if (code === OPEN_OBJECT || code === OPEN_ARRAY) {
          this.depth = 1;
          this.valueLine = this.line;
          valueStart = index;
        } else if (!isSeparator(code)) {
          emit({ error: 'expected a JSON object or array', line: this.line });
          this.skippingBadLine = code !== NEWLINE;
        }
        continue;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (code === BACKSLASH) this.escaped = true;
        else if (code === QUOTE) this.inString = false;
        continue;
      }
      if (code === QUOTE) this.inString = true;
      else if (code === OPEN_OBJECT || code === OPEN_ARRAY) this.depth++;
      else if (code === CLOSE_OBJECT || code === CLOSE_ARRAY) {
        this.depth--;
        if (this.depth === 0) {
          this.pieces.push(chunk.slice(valueStart, index + 1));
          emit({ text: this.pieces.join(''), line: this.valueLine });
          this.pieces = [];
          valueStart = -1;
        }
      }
    }
    if (this.depth > 0 && valueStart >= 0) this.pieces.push(chunk.slice(valueStart));
  }

  /** Reports a value the input ended in the middle of. */
  end(emit: (piece: JsonPiece) => void): void {
    if (this.depth > 0) {
      emit({ error: 'the input ends inside a JSON value', line: this.valueLine });
      this.depth = 0;
      this.pieces = [];
    }
  }
}
