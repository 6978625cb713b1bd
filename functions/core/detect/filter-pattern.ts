/**
 * The CloudWatch Logs subscription filter pattern that forwards every line detection can use:
 * quoted terms match as case-sensitive substrings, and `?` makes them alternatives.
 *
 * - `"table full"`: every drop form (`ip_conntrack:`/`nf_conntrack:`, doubled prefix, trailing
 *   period, `in netns N`) and `expectation table full`. Matching "dropping packet" instead would
 *   miss the expectation form, which has none.
 * - `"callbacks suppressed"`: `__ratelimit:` and `net_ratelimit:` lines.
 * - `"messages suppressed"`: the old `printk: N messages suppressed.` line.
 *
 * Look-alikes written by other programs pass the filter too; the `detect` function drops them
 * (only kernel lines count). The Lambda sees only lines that pass the filter, so "the next kernel
 * line of the host" in the attribution rule is the next *forwarded* kernel line there: a
 * suppression line is attributed as if the unrelated kernel lines around it were absent.
 */
export const CONNTRACK_FILTER_PATTERN = '?"table full" ?"callbacks suppressed" ?"messages suppressed"';
