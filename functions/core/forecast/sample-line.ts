import type { InterfaceCounters } from '../allowance/counters.js';

/**
 * The host sampler's line (runbooks/scripts/host-sampler.sh), read back. Pure.
 *
 *   conntrack-responder-sample v=1 seq=12 t=1763700000.123 boot=1f0e2d3c ns=4026531840 count=1234
 *     max=262144 drop=0 early_drop=0 insert_failed=0 search_restart=0 cpus=2
 *     ena.0=eth0 ena.0.exceeded=41 ena.0.available=136812
 *
 * Format version 1: space-separated `key=value` pairs after the tag. Keys this reader does not know
 * are ignored (later samplers may add some; the ENA counters of issue 14 came that way, so a line
 * without them is an older sampler or a host without ENA), a missing counter is null, a version
 * above 1 is refused (its keys may mean something else). Anyone on a host can write such a
 * line, so a sample is only ever a reason to look (docs/forecast.md): nothing here is trusted, every
 * value is bounded, and a line that is not exactly this shape is refused with a reason, never
 * half-read.
 */

export const SAMPLE_LINE_TAG = 'conntrack-responder-sample';
export const SAMPLE_FORMAT_VERSION = 1;
/** The subscription filter term that forwards sample lines (added to the kernel pattern). */
export const SAMPLE_FILTER_TERM = `?"${SAMPLE_LINE_TAG}"`;

/** Longer lines are refused unread: version 1 lines are about 170 characters. */
export const MAX_SAMPLE_LINE_LENGTH = 2048;
const MAX_PAIRS = 64;
const KEY = /^[a-z][a-z0-9_.]{0,63}$/;
const VALUE = /^[A-Za-z0-9._:-]{0,64}$/;
const DECIMAL = /^(0|[1-9][0-9]{0,15})$/;
const HEX_ID = /^[0-9a-f]{8}$/;
/** `ena.<index>` names an interface; `ena.<index>.<counter>` is one of its counters. */
const ENA_INTERFACE_KEY = /^ena\.([0-9]{1,2})$/;
const ENA_COUNTER_KEY = /^ena\.([0-9]{1,2})\.(exceeded|available)$/;
/** Linux interface names (IFNAMSIZ 16 with the NUL), in the characters the sampler writes. */
const INTERFACE_NAME = /^[A-Za-z0-9._-]{1,15}$/;
/** The sampler writes at most 8; a few more are tolerated, never an unbounded number. */
export const MAX_SAMPLE_ENA_INTERFACES = 16;
/** Seconds since the epoch, optionally with up to 6 decimals (bash's EPOCHREALTIME or %(%s)T). */
const EPOCH = /^([1-9][0-9]{8,10})(?:\.([0-9]{1,6}))?$/;

export interface HostSample {
  readonly version: number;
  /** Samples since this sampler process started (restarts at 1), null when absent. */
  readonly seq: number | null;
  /** When the host took it (the host's clock), milliseconds since the epoch. */
  readonly timeMs: number;
  /** First 8 hex digits of the kernel's boot id: counters restart when it changes. */
  readonly boot: string | null;
  /** The network namespace's inode, as the kernel names it in "table full in netns N". */
  readonly netns: string | null;
  /** False when nf_conntrack was not loaded: no count, no limit, no counters. */
  readonly loaded: boolean;
  readonly count: number | null;
  readonly max: number | null;
  /** Cumulative per-CPU sums (null when the kernel has no such column). */
  readonly drop: number | null;
  readonly earlyDrop: number | null;
  readonly insertFailed: number | null;
  readonly searchRestart: number | null;
  readonly cpus: number | null;
  /**
   * EC2's connection-tracking allowance counters of each ENA interface, in the sampler's order
   * (empty: no ENA interface, or a sampler older than issue 14). Untrusted like the rest.
   */
  readonly ena: readonly InterfaceCounters[];
}

export type SampleParse =
  | { readonly ok: true; readonly sample: HostSample }
  | { readonly ok: false; readonly reason: string };

/**
 * Finds a sample in a message (a syslog line, a journal MESSAGE, or the line alone) and reads it.
 * Returns null when the message holds no sample at all (the tag followed by a space: the sampler's
 * syslog identifier `conntrack-responder-sampler[pid]:` is not the tag).
 */
export function parseSampleText(message: string): SampleParse | null {
  const start = findTag(message);
  if (start < 0) return null;
  const line = message.slice(start);
  if (line.length > MAX_SAMPLE_LINE_LENGTH) {
    return { ok: false, reason: `longer than ${MAX_SAMPLE_LINE_LENGTH} characters` };
  }
  return parseSampleLine(line.replace(/[\r\n\s]+$/, ''));
}

function findTag(message: string): number {
  let from = 0;
  for (;;) {
    const at = message.indexOf(`${SAMPLE_LINE_TAG} `, from);
    if (at < 0) return -1;
    // The tag starts a word: at the beginning, or after a space, a colon or a bracket.
    if (at === 0 || /[\s:\]]/.test(message[at - 1] ?? '')) return at;
    from = at + 1;
  }
}

/** Reads one line that starts with the tag. */
export function parseSampleLine(line: string): SampleParse {
  const fail = (reason: string): SampleParse => ({ ok: false, reason });
  if (!line.startsWith(`${SAMPLE_LINE_TAG} `)) return fail('does not start with the sample tag');
  if (line.length > MAX_SAMPLE_LINE_LENGTH) return fail(`longer than ${MAX_SAMPLE_LINE_LENGTH} characters`);
  const tokens = line.slice(SAMPLE_LINE_TAG.length + 1).split(' ');
  if (tokens.length > MAX_PAIRS) return fail(`more than ${MAX_PAIRS} fields`);
  const values = new Map<string, string>();
  for (const token of tokens) {
    const equals = token.indexOf('=');
    if (equals < 1) return fail('a field is not key=value');
    const key = token.slice(0, equals);
    const value = token.slice(equals + 1);
    if (!KEY.test(key)) return fail('a field name is not lower-case letters, digits, _ and .');
    if (!VALUE.test(value)) return fail(`field ${key}: value has characters a sampler never writes`);
    if (values.has(key)) return fail(`field ${key} appears twice`);
    values.set(key, value);
  }
  const version = values.get('v');
  if (version === undefined) return fail('no format version (v=)');
  if (!DECIMAL.test(version)) return fail('format version is not a number');
  if (Number(version) !== SAMPLE_FORMAT_VERSION) {
    return fail(
      `format version ${version} is not ${SAMPLE_FORMAT_VERSION} (a newer sampler than this reader?)`,
    );
  }
  const time = values.get('t');
  const epoch = time === undefined ? null : EPOCH.exec(time);
  if (!epoch) return fail('no sample time (t= seconds since the epoch)');
  const timeMs = Number(epoch[1]) * 1000 + Math.floor(Number(`0.${epoch[2] ?? '0'}`) * 1000);

  const number = (key: string): number | null | 'bad' => {
    const text = values.get(key);
    if (text === undefined) return null;
    return DECIMAL.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : 'bad';
  };
  const numbers: Record<string, number | null> = {};
  for (const key of [
    'seq',
    'count',
    'max',
    'drop',
    'early_drop',
    'insert_failed',
    'search_restart',
    'cpus',
  ]) {
    const value = number(key);
    if (value === 'bad') return fail(`field ${key} is not a whole number`);
    numbers[key] = value;
  }
  const loadedField = values.get('loaded');
  if (loadedField !== undefined && loadedField !== '0' && loadedField !== '1') {
    return fail('field loaded is neither 0 nor 1');
  }
  const loaded = loadedField !== '0' && numbers.count !== null && numbers.max !== null;
  if (loadedField === '0' && (numbers.count !== null || numbers.max !== null)) {
    return fail('loaded=0 with a count or a limit');
  }
  if (loadedField !== '0' && !loaded) return fail('no count and limit (count=, max=) and not loaded=0');
  const ena = enaInterfaces(values);
  if (typeof ena === 'string') return fail(ena);
  const boot = values.get('boot');
  const netns = values.get('ns');
  return {
    ok: true,
    sample: {
      version: SAMPLE_FORMAT_VERSION,
      seq: numbers.seq ?? null,
      timeMs,
      boot: boot !== undefined && HEX_ID.test(boot) ? boot : null,
      netns: netns !== undefined && /^[1-9][0-9]{0,19}$/.test(netns) ? netns : null,
      loaded,
      count: loaded ? (numbers.count ?? null) : null,
      max: loaded ? (numbers.max ?? null) : null,
      drop: numbers.drop ?? null,
      earlyDrop: numbers.early_drop ?? null,
      insertFailed: numbers.insert_failed ?? null,
      searchRestart: numbers.search_restart ?? null,
      cpus: numbers.cpus ?? null,
      ena,
    },
  };
}

/** The `ena.*` fields as interfaces, or why they are not a sampler's. */
function enaInterfaces(values: ReadonlyMap<string, string>): InterfaceCounters[] | string {
  const byIndex = new Map<number, { name: string; exceeded: number | null; available: number | null }>();
  const counters: { index: number; counter: 'exceeded' | 'available'; key: string; text: string }[] = [];
  for (const [key, text] of values) {
    const named = ENA_INTERFACE_KEY.exec(key);
    if (named) {
      const index = Number(named[1]);
      if (index >= MAX_SAMPLE_ENA_INTERFACES)
        return `field ${key}: more than ${MAX_SAMPLE_ENA_INTERFACES} ENA interfaces`;
      if (!INTERFACE_NAME.test(text)) return `field ${key} is not an interface name`;
      byIndex.set(index, { name: text, exceeded: null, available: null });
      continue;
    }
    const counter = ENA_COUNTER_KEY.exec(key);
    if (counter) {
      counters.push({
        index: Number(counter[1]),
        counter: counter[2] as 'exceeded' | 'available',
        key,
        text,
      });
    }
  }
  for (const { index, counter, key, text } of counters) {
    const entry = byIndex.get(index);
    if (entry === undefined) return `field ${key} without ena.${index}`;
    if (!DECIMAL.test(text) || !Number.isSafeInteger(Number(text)))
      return `field ${key} is not a whole number`;
    entry[counter] = Number(text);
  }
  const interfaces = [...byIndex.entries()].sort(([a], [b]) => a - b).map(([, entry]) => entry);
  if (new Set(interfaces.map((entry) => entry.name)).size < interfaces.length) {
    return 'an ENA interface is named twice';
  }
  return interfaces;
}
