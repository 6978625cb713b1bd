/**
 * Text from logs (host names, namespace names, log lines, file names) must never drive the
 * terminal it is printed on: an escape sequence in a host name could rewrite the screen, a
 * bidirectional override could make a line read differently from what it says.
 */

/**
 * C0 controls and DEL, C1 controls (CSI is U+009B), line and paragraph separators, and the
 * bidirectional embeddings, overrides and isolates.
 */
function isUnsafe(code: number): boolean {
  return (
    code < 0x20 ||
    (code >= 0x7f && code <= 0x9f) ||
    code === 0x2028 ||
    code === 0x2029 ||
    (code >= 0x202a && code <= 0x202e) ||
    (code >= 0x2066 && code <= 0x2069)
  );
}

export function hasUnsafeCharacters(text: string): boolean {
  for (let index = 0; index < text.length; index++) if (isUnsafe(text.charCodeAt(index))) return true;
  return false;
}

function escapeUnsafe(text: string, escapeCode: (code: number) => string): string {
  if (!hasUnsafeCharacters(text)) return text;
  let out = '';
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    out += isUnsafe(code) ? escapeCode(code) : text[index];
  }
  return out;
}

const hex = (code: number, digits: number) => code.toString(16).padStart(digits, '0');

/** The text with every unsafe character shown as a visible `\xNN` / `\uNNNN` escape, cut to `maxLength`. */
export function printable(text: string, maxLength = Number.POSITIVE_INFINITY): string {
  const safe = escapeUnsafe(text, (code) => (code <= 0xff ? `\\x${hex(code, 2)}` : `\\u${hex(code, 4)}`));
  return safe.length > maxLength ? `${safe.slice(0, Math.max(0, maxLength - 1))}…` : safe;
}

/**
 * JSON text (from JSON.stringify) with the characters JSON.stringify leaves raw but a terminal
 * would act on written as `\uNNNN` escapes: still the same JSON value.
 */
export function terminalSafeJson(json: string): string {
  return escapeUnsafe(json, (code) => `\\u${hex(code, 4)}`);
}
