import { describe, expect, it } from 'vitest';
import {
  CONNTRACK_FILTER_PATTERN,
  classifyKernelMessage,
  parseTextLine,
} from '../../../functions/core/detect/index.js';
import {
  FACTS_1_4,
  journalEntry,
  KERNEL_6_18_NETNS,
  SEED_000_KERNEL_TAGGED,
  SEED_001_KEEPALIVED,
  SEED_001_MESSAGES,
  SEED_002_KERNEL_TAGGED,
  SEED_003_DMESG,
  THIRD_PARTY,
} from './real-lines.js';

/**
 * CloudWatch Logs' matching of unstructured filter patterns, for the quoted-term subset:
 * a quoted term matches when it occurs in the message (case-sensitive substring); terms are ANDed;
 * a `?` starts an alternative group (`?"a" "b" ?"c"` = a∧b ∨ c, as CDK's anyTermGroup renders it);
 * `-"t"` excludes.
 */
function cloudWatchMatches(pattern: string, message: string): boolean {
  const terms = [...pattern.matchAll(/([?-]?)"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((match) => {
    if (match[3] !== undefined) throw new Error(`helper supports quoted terms only, got ${match[3]}`);
    return { operator: match[1] ?? '', text: (match[2] ?? '').replace(/\\(.)/g, '$1') };
  });
  const excluded = terms.filter((term) => term.operator === '-').some((term) => message.includes(term.text));
  if (excluded) return false;
  const groups: string[][] = [];
  for (const term of terms.filter((candidate) => candidate.operator !== '-')) {
    if (term.operator === '?' || groups.length === 0) groups.push([term.text]);
    else groups[groups.length - 1]?.push(term.text);
  }
  return groups.some((group) => group.every((text) => message.includes(text)));
}

describe('the helper implements CloudWatch term matching', () => {
  const cases: [string, string, boolean][] = [
    ['"ERROR" "MainThread"', 'ERROR in MainThread', true],
    ['"ERROR" "MainThread"', 'ERROR elsewhere', false],
    ['?"ERROR" ?"WARN"', 'a WARN here', true],
    ['?"ERROR" ?"WARN"', 'all good', false],
    ['?"a" "b" ?"c"', 'a only', false],
    ['?"a" "b" ?"c"', 'b and a', true],
    ['"table full" -"app["', 'app[1]: table full', false],
    ['"Table Full"', 'table full', false],
  ];
  it.each(cases)('%s on %s → %s', (pattern, message, expected) => {
    expect(cloudWatchMatches(pattern, message)).toBe(expected);
  });
});

describe('CONNTRACK_FILTER_PATTERN', () => {
  const context = { referenceTimeMs: Date.parse('2026-11-21T00:00:00Z') };
  const relevant = [
    ...SEED_001_MESSAGES,
    ...SEED_002_KERNEL_TAGGED,
    SEED_000_KERNEL_TAGGED,
    ...SEED_003_DMESG.slice(0, 12),
    ...Object.values(FACTS_1_4),
    ...Object.values(THIRD_PARTY),
    ...Object.values(KERNEL_6_18_NETNS).filter((line) => line.includes(' ')),
    'Mar 13 20:21:45 cache-01 kernel: nf_conntrack: nf_conntrack: expectation table full',
    'Mar 13 20:21:45 cache-01 kernel: nf_conntrack: expectation table full',
    journalEntry({ message: 'net_ratelimit: 12 callbacks suppressed' }),
  ];

  it.each(relevant)('forwards %s', (line) => {
    expect(cloudWatchMatches(CONNTRACK_FILTER_PATTERN, line)).toBe(true);
  });

  it('every forwarded line above really is a drop or suppression line', () => {
    // Guards the list itself: a line that classifies as nothing would make the test above vacuous.
    for (const line of relevant.filter((candidate) => !candidate.startsWith('{'))) {
      const parsed = parseTextLine(line, context);
      expect(parsed, line).not.toBeNull();
      expect(classifyKernelMessage(parsed?.message ?? ''), line).not.toBeNull();
    }
  });

  it.each([
    ...SEED_001_KEEPALIVED,
    SEED_003_DMESG[12] as string,
    'Mar 13 20:21:45 cache-01 kernel: nf_conntrack: falling back to vmalloc.',
    'Mar 13 20:21:45 cache-01 kernel: Table Full',
  ])('does not forward %s', (line) => {
    expect(cloudWatchMatches(CONNTRACK_FILTER_PATTERN, line)).toBe(false);
  });
});
