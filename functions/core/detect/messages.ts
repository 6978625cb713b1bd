/**
 * The kernel message bodies that matter, in every spelling real kernels have printed
 * (see docs/detect.md and the reference notes, section 1).
 */

export type DropKind = 'table-full' | 'expect-table-full';

export type KernelMessage =
  | { readonly type: 'drop'; readonly kind: DropKind; readonly netns: string | null }
  | { readonly type: 'suppression'; readonly count: number };

// `ip_conntrack:` (2.4–2.6.2x), `nf_conntrack:`, the doubled prefix of kernels whose
// nf_conntrack_core.c defines pr_fmt, OpenVZ's `VPS <id>` (its kernels name the container whose
// table is full), and the ` in netns N` of kernels >= 6.17 for namespaces other than the initial
// one. What follows is matched apart (see dropTail).
const TABLE_FULL =
  /^(?:ip_conntrack|nf_conntrack): (?:nf_conntrack: )?(?:VPS (\S+) )?table full(?: in netns (\d+)(?=,))?(.*)$/;
// `__nf_ct_expect_check()`: a different limit (nf_conntrack_expect_max) that raising
// nf_conntrack_max does not fix, hence a different kind.
const EXPECTATION_TABLE_FULL =
  /^(?:ip_conntrack|nf_conntrack): (?:nf_conntrack: )?expectation table full\.?\s*$/;
// The old printk ratelimit (2.6.x), net_ratelimit's own line of 2.4/early 2.6 (`NET: N messages
// suppressed.`), lib/ratelimit.c named after itself (2.6.3x), and the shared net_ratelimit state
// every net_*_ratelimited() caller uses (modern kernels).
const SUPPRESSED =
  /^(?:(?:printk|NET): (\d+) messages suppressed\.?|(?:__ratelimit|net_ratelimit): (\d+) callbacks suppressed)\s*$/;
// What the kernel prints after "table full"; pre-3.5 kernels end it with a period.
const DROP_TAIL = ', dropping packet.';

/**
 * True for the end of a drop line: `, dropping packet` with or without the period, or any start of
 * it. A line cut short or wrapped by a copy-paste (`…table full,` with `dropping packet` on the
 * next line) is still the kernel's drop line; anything else after "table full" is not.
 */
function isDropTail(tail: string): boolean {
  return DROP_TAIL.startsWith(tail.trimEnd());
}

/**
 * Byte patterns at least one of which every message `classifyKernelMessage` recognises contains.
 * A line without any of them can still matter as a neighbour (see the attribution rule), but never
 * as a drop or suppression line itself. Shared with the CloudWatch filter pattern.
 */
export const CANDIDATE_SUBSTRINGS = ['table full', 'suppressed'] as const;

/**
 * The kernel's own message timestamp (`[12345.678901]`, or `[ 123.4]` with padding) and the
 * optional CONFIG_PRINTK_CALLER field (`[  T123]`, `[ C1]`, with or without a space between) that
 * precede the text in dmesg and in rsyslog's imklog output.
 */
const KERNEL_TIMESTAMP_PREFIX = /^\[\s*\d+\.\d+\](?: ?\[\s*[TC]\d+\])?\s?/;

export function stripKernelTimestamp(message: string): string {
  if (message.charCodeAt(0) !== 0x5b /* [ */) return message;
  const match = KERNEL_TIMESTAMP_PREFIX.exec(message);
  return match === null ? message : message.slice(match[0].length);
}

/** Recognises a drop or a suppression line in a kernel message body, else returns null. */
export function classifyKernelMessage(body: string): KernelMessage | null {
  const message = stripKernelTimestamp(body.trimStart());
  if (message.includes('table full')) {
    const tableFull = TABLE_FULL.exec(message);
    if (tableFull !== null && isDropTail(tableFull[3] ?? '')) {
      const vps = tableFull[1];
      return {
        type: 'drop',
        kind: 'table-full',
        netns: vps === undefined ? (tableFull[2] ?? null) : `VPS ${vps}`,
      };
    }
    if (EXPECTATION_TABLE_FULL.test(message)) return { type: 'drop', kind: 'expect-table-full', netns: null };
    return null;
  }
  if (message.includes('suppressed')) {
    const suppressed = SUPPRESSED.exec(message);
    if (suppressed === null) return null;
    const count = Number(suppressed[1] ?? suppressed[2]);
    return Number.isSafeInteger(count) ? { type: 'suppression', count } : null;
  }
  return null;
}

/** True when `text` contains a substring any recognised message needs (cheap pre-filter). */
export function mentionsCandidate(text: string): boolean {
  return CANDIDATE_SUBSTRINGS.some((needle) => text.includes(needle));
}

// The same phrases anywhere in a text: what another program copying the kernel's words looks like.
const KERNEL_PHRASE =
  /(?:ip_conntrack|nf_conntrack): (?:nf_conntrack: )?(?:VPS \S+ )?(?:expectation )?table full|(?:(?:printk|NET): \d+ messages|(?:__ratelimit|net_ratelimit): \d+ callbacks) suppressed/;

/**
 * True when `text` contains a drop or suppression phrase anywhere (not only as the whole
 * message): used to count look-alikes written by other programs, and to name lines that carry
 * the phrase in a form nobody can attribute.
 */
export function mentionsKernelPhrase(text: string): boolean {
  return mentionsCandidate(text) && KERNEL_PHRASE.test(text);
}

const KERNEL_PHRASES = new RegExp(KERNEL_PHRASE.source, 'g');

/** How many drop or suppression phrases `text` contains (lines of a value refused whole). */
export function countKernelPhrases(text: string): number {
  if (!mentionsCandidate(text)) return 0;
  let count = 0;
  KERNEL_PHRASES.lastIndex = 0;
  while (KERNEL_PHRASES.exec(text) !== null) count++;
  return count;
}
