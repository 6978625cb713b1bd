import { ResponderError } from '../errors.js';
/**
 * Why a bundle could not be read, as a rule name a script can match and a message that names the
 * file (the archive or folder, and the entry inside it) and what was wrong. `limit` is set when the
 * input broke one of the reading limits rather than a format rule: the bundle may be genuine but
 * larger than this reader was told to accept (`bundle verify` exits 3 instead of 1).
 */

export type ReadLimitName = 'maxMemberBytes' | 'maxTotalBytes' | 'maxMembers' | 'maxCompressionRatio';

export type ReadRule =
  | 'not-a-tar-archive'
  | 'damaged-header'
  | 'entry-type'
  | 'unsafe-path'
  | 'duplicate-entry'
  | 'truncated'
  | 'data-after-end'
  | 'damaged-gzip'
  | 'manifest-size'
  | 'signature-size'
  | 'several-manifests'
  | 'no-such-path'
  | 'unreadable'
  | ReadLimitName;

export class BundleReadError extends ResponderError {
  override readonly name = 'BundleReadError';
  constructor(
    readonly rule: ReadRule,
    message: string,
    readonly limit: ReadLimitName | null = null,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** C0 controls, DEL, C1 controls, line/paragraph separators and the bidirectional overrides. */
function isUnsafeCharacter(code: number): boolean {
  return (
    code <= 0x1f ||
    (code >= 0x7f && code <= 0x9f) ||
    code === 0x2028 ||
    code === 0x2029 ||
    (code >= 0x202a && code <= 0x202e) ||
    (code >= 0x2066 && code <= 0x2069)
  );
}

/** True when the text holds a C0 or C1 control character or DEL. */
export function hasControlCharacter(text: string): boolean {
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code <= 0x1f || (code >= 0x7f && code <= 0x9f)) return true;
  }
  return false;
}

/**
 * Text from a bundle (a path, an incident id) made safe to print on a terminal: control characters
 * (C0, DEL, C1), line and paragraph separators and the bidirectional overrides become \u escapes,
 * so that a hostile name can neither move the cursor nor disguise itself. Newlines are kept only
 * where `keepNewlines` says so (our own multi-line output).
 */
export function printable(text: string, keepNewlines = false): string {
  let out = '';
  for (const character of text) {
    const code = character.charCodeAt(0);
    out +=
      isUnsafeCharacter(code) && !(keepNewlines && code === 0x0a)
        ? `\\u${code.toString(16).padStart(4, '0')}`
        : character;
  }
  return out;
}
