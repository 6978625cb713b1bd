/**
 * Recognises one line of a text log in any of the formats a fleet produces, and says whether the
 * kernel wrote it (as far as the format can tell: docs/detect.md says what each one proves). Pure:
 * no I/O, the reference time for year-less timestamps is passed in.
 */

export type TextFormat =
  | 'rfc3164' // `Mar 13 20:21:45 host kernel: …`, journalctl -o short / short-precise, busybox syslogd (`host kern.warn kernel: …`), no host (`Jul  3 10:07:53 kernel: …`)
  | 'syslog-iso' // RSYSLOG_FileFormat `2019-02-25T03:45:03.778502+00:00 host kernel: …`, journalctl -o short-iso
  | 'rfc5424' // `<4>1 2026-03-13T20:21:45.000Z host kernel - - - …`
  | 'logread' // OpenWrt/LEDE logread `Fri Dec 16 10:09:21 2022 kern.warn kernel: …`
  | 'journal-full' // journalctl -o short-full `Sat 2026-12-05 12:47:07 UTC host kernel: …`
  | 'journal-unix' // journalctl -o short-unix `1796474827.393375 host kernel: …`
  | 'journal-monotonic' // journalctl -o short-monotonic `[ 926.176737] host kernel: …`; Ubuntu's /var/log/dmesg `[ 926.176737] kernel: …`
  | 'dmesg' // `[27772673.752270] …`, `<4>…`, dmesg -x (seconds since boot, no wall time)
  | 'dmesg-ctime' // dmesg -T `[Tue Nov 20 22:30:22 2018] …`
  | 'dmesg-iso' // dmesg --time-format iso `2018-11-20T22:30:22,123456+00:00 …`
  | 'kernel-tag' // a syslog line whose header was cut off: `kernel: …`, or `host kernel: …`
  | 'bare' // no header at all: journalctl -o cat, dmesg -t, or a line damaged beyond recognition
  | 'journald-json';

export interface LogLine {
  readonly format: TextFormat;
  /** The host the line names, or null when the format carries none (dmesg). */
  readonly host: string | null;
  /** Milliseconds since the epoch (UTC), or null when the line has no wall-clock time. */
  readonly timeMs: number | null;
  /** Whether the kernel wrote the line (as far as the format can tell: see each parser). */
  readonly kernel: boolean;
  /** The message text, after the header and tag. */
  readonly message: string;
  /**
   * Whether the format names the program that wrote each line (a syslog tag, a journal
   * identifier). In such a log a line without any header is damage, not the kernel's.
   */
  readonly tagged: boolean;
  /** The line stands for this many identical messages (rsyslog's `message repeated N times: [ … ]`). */
  readonly times: number;
  /** syslogd's `last message repeated N times`: N more of this host's previous line. */
  readonly repeatsPrevious: number | null;
  /** Set when the line must be refused: its timestamp is not a real time. */
  readonly refused: string | null;
}

export interface TextLineContext {
  /**
   * Milliseconds since the epoch that year-less syslog timestamps are placed near: a line takes
   * this time's year, or the year before when that would put it more than two days in the future
   * (a December line read in January).
   */
  readonly referenceTimeMs: number;
}

const MONTHS: Record<string, number> = {
  Jan: 0,
  Feb: 1,
  Mar: 2,
  Apr: 3,
  May: 4,
  Jun: 5,
  Jul: 6,
  Aug: 7,
  Sep: 8,
  Oct: 9,
  Nov: 10,
  Dec: 11,
};
const TWO_DAYS_MS = 2 * 24 * 3600 * 1000;
/** 9999-12-31T23:59:59.999Z: later (or negative) times are not log times, and Date cannot print all of them. */
const LAST_TIME_MS = 253_402_300_799_999;

/** True for a time detect can place and print: 1970 up to the end of year 9999. */
export function isPlausibleTimeMs(ms: number): boolean {
  return Number.isFinite(ms) && ms >= 0 && ms <= LAST_TIME_MS;
}

const BAD_TIME = 'its timestamp is not a real time (a date that does not exist, or outside 1970–9999)';

// Zone-less timestamps (RFC 3164, dmesg -T, logread) are read as UTC: the log does not say which
// zone the host used, and UTC is what EC2 instances run in by default.
function utc(year: number, month: number, day: number, hour: number, minute: number, second: number) {
  const ms = Date.UTC(year, month, day, hour, minute, second);
  const check = new Date(ms);
  // Date.UTC silently rolls Feb 30 over to March: such a line has no real time.
  if (check.getUTCMonth() !== month || check.getUTCDate() !== day || hour > 23 || minute > 59 || second > 60)
    return null;
  return isPlausibleTimeMs(ms) ? ms : null;
}

function fractionMs(fraction: string | undefined): number {
  return fraction === undefined ? 0 : Math.floor(Number(`0.${fraction}`) * 1000);
}

function offsetMs(zone: string): number | null {
  if (zone === 'Z' || zone === 'UTC' || zone === 'GMT') return 0;
  const offset = /^([+-])(\d{2}):?(\d{2})$/.exec(zone);
  if (offset === null) return null;
  const sign = offset[1] === '-' ? -1 : 1;
  return sign * (Number(offset[2]) * 60 + Number(offset[3])) * 60_000;
}

/** year, month, day, hour, minute, second at match[first…first+5], fraction at +6, zone at +7. */
function isoTimeMs(match: RegExpExecArray, first: number): number | null {
  const [year, month, day, hour, minute, second] = match.slice(first, first + 6).map(Number) as number[];
  const base = utc(year ?? 0, (month ?? 0) - 1, day ?? 0, hour ?? 0, minute ?? 0, second ?? 0);
  const offset = offsetMs(match[first + 7] ?? 'Z');
  if (base === null || offset === null) return null;
  const ms = base + fractionMs(match[first + 6]) - offset;
  return isPlausibleTimeMs(ms) ? ms : null;
}

/** `<PRI>`: facility 0 is `kern`. A message claiming the kernel's tag with another facility did not come from it. */
function facilityIsKern(pri: string | undefined): boolean {
  return pri === undefined || Number(pri) >> 3 === 0;
}

/** The `TAG[pid]: ` of a syslog message; the kernel's tag is exactly `kernel`, without a pid. */
const SYSLOG_TAG = /^([^\s:[]+)(\[[^\]]*\])?: ?/;
/** busybox syslogd and OpenWrt logread put `facility.level` before the tag. */
const FACILITY_LEVEL =
  /^(kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|local[0-7])\.(emerg|alert|crit|err|error|warn|warning|notice|info|debug) /;
const LAST_MESSAGE_REPEATED = /^last message repeated (\d+) times?$/;
const RSYSLOG_REPEATED = /^message repeated (\d+) times?: \[ ?(.*)\]$/;

interface Tagged {
  readonly kernel: boolean;
  readonly message: string;
  readonly times: number;
  readonly repeatsPrevious: number | null;
}

/** Reads `[facility.level ]TAG[pid]: message` (or syslogd's own repeat line). */
function splitTag(rest: string): Tagged {
  let facility: string | undefined;
  let text = rest;
  const level = FACILITY_LEVEL.exec(text);
  if (level !== null) {
    facility = level[1];
    text = text.slice(level[0].length);
  }
  // The repeat patterns are tried only where their fixed start is (most lines are neither).
  const repeated = text.startsWith('last message repeated') ? LAST_MESSAGE_REPEATED.exec(text) : null;
  if (repeated !== null)
    return { kernel: false, message: text, times: 1, repeatsPrevious: Number(repeated[1]) };
  const tag = SYSLOG_TAG.exec(text);
  if (tag === null) return { kernel: false, message: text, times: 1, repeatsPrevious: null };
  const kernel =
    tag[1] === 'kernel' && tag[2] === undefined && (facility === undefined || facility === 'kern');
  const message = text.slice(tag[0].length);
  const again = message.startsWith('message repeated') ? RSYSLOG_REPEATED.exec(message) : null;
  if (again !== null) {
    const times = Number(again[1]);
    if (Number.isSafeInteger(times) && times > 0) {
      return { kernel, message: again[2] ?? '', times, repeatsPrevious: null };
    }
  }
  const lastRepeated = message.startsWith('last message repeated')
    ? LAST_MESSAGE_REPEATED.exec(message)
    : null;
  return {
    kernel,
    message,
    times: 1,
    repeatsPrevious: lastRepeated === null ? null : Number(lastRepeated[1]),
  };
}

/**
 * After a syslog time: `HOST [facility.level ]TAG: …`, or `TAG: …` when the writer left the host
 * out (journalctl --no-hostname, some router firmwares). A host never ends with a colon.
 */
function hostAndTag(rest: string): { host: string | null } & Tagged {
  const space = rest.indexOf(' ');
  const first = space < 0 ? rest : rest.slice(0, space);
  if (first.endsWith(':') || /^[^\s:[]+\[[^\]]*\]:$/.test(first) || FACILITY_LEVEL.test(rest)) {
    return { host: null, ...splitTag(rest) };
  }
  if (space < 0) return { host: first, kernel: false, message: '', times: 1, repeatsPrevious: null };
  return { host: first, ...splitTag(rest.slice(space + 1)) };
}

function line(
  format: TextFormat,
  fields: Partial<LogLine> & Pick<LogLine, 'kernel' | 'message'>,
  timeMs: number | null,
  hadTime: boolean,
): LogLine {
  return {
    format,
    host: null,
    tagged: false,
    times: 1,
    repeatsPrevious: null,
    ...fields,
    timeMs,
    refused: hadTime && timeMs === null ? BAD_TIME : null,
  };
}

const BSD_LINE =
  /^(?:<(\d{1,3})>)?([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))? +(.*)$/;
const ISO_LINE =
  /^(?:<(\d{1,3})>)?(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2}) (.*)$/;
const DMESG_ISO_LINE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2}),(\d{1,9})([+-]\d{2}:?\d{2}) ?(.*)$/;
const RFC5424_LINE = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (.*)$/;
const RFC5424_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;
const DMESG_RAW_LINE = /^(?:<(\d{1,3})>)?\[\s*\d+\.\d+\](?: ?\[\s*[TC]\d+\])? ?/;
const PRIORITY_ONLY = /^<(\d{1,3})>/;
const WEEKDAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const DMESG_CTIME_LINE = new RegExp(
  `^\\[${WEEKDAY} ([A-Z][a-z]{2}) +(\\d{1,2}) (\\d{2}):(\\d{2}):(\\d{2}) (\\d{4})\\](?: ?\\[\\s*[TC]\\d+\\])? ?(.*)$`,
);
// OpenWrt's logread; some builds put the host name in front.
const LOGREAD_LINE = new RegExp(
  `^(?:(\\S+) )?${WEEKDAY} ([A-Z][a-z]{2}) +(\\d{1,2}) (\\d{2}):(\\d{2}):(\\d{2}) (\\d{4}) (.*)$`,
);
const JOURNAL_FULL_LINE = new RegExp(
  `^${WEEKDAY} (\\d{4})-(\\d{2})-(\\d{2}) (\\d{2}):(\\d{2}):(\\d{2})(?:\\.(\\d{1,9}))? (\\S+) (.*)$`,
);
const JOURNAL_UNIX_LINE = /^(\d{1,12})\.(\d{1,9}) (.*)$/;
// dmesg -x: `kern  :warn  : [123.4] …`. Userspace writes to /dev/kmsg show up as `user  :…`.
const DMESG_DECODED_PREFIX =
  /^(kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|local[0-7]) *:(emerg|alert|crit|err|warn|notice|info|debug) *: ?/;
// A journal identifier after a host in short-monotonic output: `host kernel: …`, `host sshd[12]: …`.
const MONOTONIC_HOST_TAG = /^(\S+) ([^\s:[]+)(\[\d+\])?: /;
const HOST_KERNEL_TAG = /^([^\s:[]+) kernel: ?(.*)$/;

// Consecutive lines mostly share their second: remember the last conversion.
let lastBsdStamp = -1;
let lastBsdReference = -1;
let lastBsdTimeMs: number | null = null;

function bsdTimeMs(
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
  referenceTimeMs: number,
) {
  const stamp = (((month * 32 + day) * 24 + hour) * 60 + minute) * 61 + second;
  if (stamp === lastBsdStamp && referenceTimeMs === lastBsdReference) return lastBsdTimeMs;
  const referenceYear = new Date(referenceTimeMs).getUTCFullYear();
  let timeMs = utc(referenceYear, month, day, hour, minute, second);
  if (timeMs !== null && timeMs > referenceTimeMs + TWO_DAYS_MS) {
    timeMs = utc(referenceYear - 1, month, day, hour, minute, second);
  }
  // Feb 29 when the reference year has none: the year before may (a log read early in a year).
  if (timeMs === null && month === 1 && day === 29)
    timeMs = utc(referenceYear - 1, month, day, hour, minute, second);
  lastBsdStamp = stamp;
  lastBsdReference = referenceTimeMs;
  lastBsdTimeMs = timeMs;
  return timeMs;
}

function parseBsd(text: string, context: TextLineContext): LogLine | null {
  const match = BSD_LINE.exec(text);
  if (match === null) return null;
  const month = MONTHS[match[2] ?? ''];
  if (month === undefined) return null;
  const day = Number(match[3]);
  const [hour, minute, second] = [Number(match[4]), Number(match[5]), Number(match[6])];
  const timeMs = bsdTimeMs(month, day, hour, minute, second, context.referenceTimeMs);
  const { host, kernel, ...rest } = hostAndTag(match[8] ?? '');
  return line(
    'rfc3164',
    { host, kernel: kernel && facilityIsKern(match[1]), tagged: true, ...rest },
    timeMs === null ? null : timeMs + fractionMs(match[7]),
    true,
  );
}

function parseIsoSyslog(text: string): LogLine | null {
  const match = ISO_LINE.exec(text);
  if (match === null) return null;
  const { host, kernel, ...rest } = hostAndTag(match[10] ?? '');
  return line(
    'syslog-iso',
    { host, kernel: kernel && facilityIsKern(match[1]), tagged: true, ...rest },
    isoTimeMs(match, 2),
    true,
  );
}

function parseDmesgIso(text: string): LogLine | null {
  const match = DMESG_ISO_LINE.exec(text);
  if (match === null) return null;
  return line('dmesg-iso', { kernel: true, message: match[9] ?? '' }, isoTimeMs(match, 1), true);
}

function parseJournalUnix(text: string): LogLine | null {
  const match = JOURNAL_UNIX_LINE.exec(text);
  if (match === null) return null;
  const ms = Number(match[1]) * 1000 + fractionMs(match[2]);
  const { host, kernel, ...rest } = hostAndTag(match[3] ?? '');
  return line(
    'journal-unix',
    { host, kernel, tagged: true, ...rest },
    isPlausibleTimeMs(ms) ? ms : null,
    true,
  );
}

function parseJournalFull(text: string): LogLine | null {
  const match = JOURNAL_FULL_LINE.exec(text);
  if (match === null) return null;
  const { host, kernel, ...rest } = hostAndTag(match[9] ?? '');
  // A zone journalctl names by abbreviation only (CET, PDT…) cannot be placed: no time, not a bad one.
  const known = offsetMs(match[8] ?? '') !== null;
  return line(
    'journal-full',
    { host, kernel, tagged: true, ...rest },
    known ? isoTimeMs(match, 1) : null,
    known,
  );
}

function parseLogread(text: string): LogLine | null {
  const match = LOGREAD_LINE.exec(text);
  if (match === null) return null;
  const month = MONTHS[match[2] ?? ''];
  if (month === undefined) return null;
  const timeMs = utc(
    Number(match[7]),
    month,
    Number(match[3]),
    Number(match[4]),
    Number(match[5]),
    Number(match[6]),
  );
  const { kernel, ...rest } = splitTag(match[8] ?? '');
  return line('logread', { host: match[1] ?? null, kernel, tagged: true, ...rest }, timeMs, true);
}

/** Skips RFC 5424 STRUCTURED-DATA (`-` or `[id k="v"]…`, values may escape `"`, `\` and `]`). */
function skipStructuredData(rest: string): string | null {
  if (rest === '-' || rest.startsWith('- ')) return rest.slice(2);
  let index = 0;
  if (rest[0] !== '[') return null;
  while (rest[index] === '[') {
    let inValue = false;
    index++;
    for (; index < rest.length; index++) {
      const char = rest[index];
      if (inValue && char === '\\') index++;
      else if (char === '"') inValue = !inValue;
      else if (!inValue && char === ']') break;
    }
    if (index >= rest.length) return null;
    index++;
  }
  if (index < rest.length && rest[index] !== ' ') return null;
  return rest.slice(index + 1);
}

function parseRfc5424(text: string): LogLine | null {
  const match = RFC5424_LINE.exec(text);
  if (match === null) return null;
  const [, pri, time, host, app, , , rest] = match;
  const body = skipStructuredData(rest ?? '');
  if (body === null) return null;
  let timeMs: number | null = null;
  if (time !== '-') {
    const parsed = RFC5424_TIME.exec(time ?? '');
    if (parsed === null) return null;
    timeMs = isoTimeMs(parsed, 1);
  }
  return line(
    'rfc5424',
    {
      host: host === '-' ? null : (host ?? null),
      kernel: app === 'kernel' && facilityIsKern(pri),
      tagged: true,
      message: body.startsWith('\uFEFF') ? body.slice(1) : body,
    },
    timeMs,
    time !== '-',
  );
}

/**
 * `[seconds] …`: dmesg, or journalctl -o short-monotonic (`[seconds] host kernel: …`), or Ubuntu's
 * /var/log/dmesg (journalctl --dmesg -o short-monotonic --no-hostname: `[seconds] kernel: …`).
 */
function parseBracketed(text: string, kernelFacility: boolean): LogLine | null {
  const raw = DMESG_RAW_LINE.exec(text);
  if (raw !== null) {
    const rest = text.slice(raw[0].length);
    if (raw[1] === undefined) {
      if (rest.startsWith('kernel: ')) {
        return line('journal-monotonic', { kernel: true, tagged: true, message: rest.slice(8) }, null, false);
      }
      const journal = MONOTONIC_HOST_TAG.exec(rest);
      // A journal line names its writer after the host; a dmesg line's text could look alike
      // (`ath11k c000000.wifi: …`), so only the kernel's identifier or one with a pid decides.
      if (journal !== null && (journal[2] === 'kernel' || journal[3] !== undefined)) {
        return line(
          'journal-monotonic',
          {
            host: journal[1] ?? null,
            kernel: journal[2] === 'kernel' && journal[3] === undefined,
            tagged: true,
            message: rest.slice(journal[0].length),
          },
          null,
          false,
        );
      }
    }
    // The message keeps its `[secs]`: classification strips it, and it is not a wall time.
    return line(
      'dmesg',
      {
        kernel: kernelFacility && facilityIsKern(raw[1]),
        message: raw[1] === undefined ? text : text.slice(raw[1].length + 2),
      },
      null,
      false,
    );
  }
  const ctime = DMESG_CTIME_LINE.exec(text);
  if (ctime !== null) {
    const month = MONTHS[ctime[1] ?? ''];
    const timeMs =
      month === undefined
        ? null
        : utc(
            Number(ctime[6]),
            month,
            Number(ctime[2]),
            Number(ctime[3]),
            Number(ctime[4]),
            Number(ctime[5]),
          );
    return line('dmesg-ctime', { kernel: kernelFacility, message: ctime[7] ?? '' }, timeMs, true);
  }
  const iso = parseDmesgIso(text);
  return iso === null ? null : { ...iso, kernel: kernelFacility };
}

/** A `<PRI>` with the message right after it: dmesg -r without timestamps, /proc/kmsg. */
function parsePriorityOnly(text: string): LogLine | null {
  const match = PRIORITY_ONLY.exec(text);
  if (match === null) return null;
  return line(
    'dmesg',
    { kernel: facilityIsKern(match[1]), message: text.slice(match[0].length) },
    null,
    false,
  );
}

/**
 * Damage that hides a line's start: blanks and no-break spaces in front (indented code blocks,
 * HTML), e-mail quote markers (`> `, `>> `), and NUL bytes (the zeroed blocks a syslog file keeps
 * after an unclean shutdown run into the first line written after the reboot).
 */
function undamaged(text: string): string {
  let cleaned = text.includes('\u00a0') ? text.replaceAll('\u00a0', ' ') : text;
  const first = cleaned.charCodeAt(0);
  if (
    first === 0x20 ||
    first === 0x09 ||
    first === 0x3e /* > */ ||
    first === 0xfeff ||
    first === 0x3000 ||
    first === 0x00
  ) {
    cleaned = cleaned.replace(/^[\s>\0]+/, '');
  }
  return cleaned;
}

/**
 * Parses one line of a text log. A line in none of the known formats comes back as `bare`, with
 * `kernel` false: it is what `journalctl -o cat` and `dmesg -t` print, and also what damage
 * leaves of any other line; the caller decides which (see DetectionSession).
 */
export function parseTextLine(raw: string, context: TextLineContext): LogLine {
  return parseHeader(raw, context) ?? line('bare', { kernel: false, message: undamaged(raw) }, null, false);
}

function parseHeader(raw: string, context: TextLineContext): LogLine | null {
  const text = undamaged(raw);
  const first = text.charCodeAt(0);
  // Dispatch on the first character keeps the common case to one regular expression.
  if (first === 0x5b /* [ */) return parseBracketed(text, true);
  if (first === 0x3c /* < */) {
    return (
      parseRfc5424(text) ??
      parseBsd(text, context) ??
      parseIsoSyslog(text) ??
      parseBracketed(text, true) ??
      parsePriorityOnly(text)
    );
  }
  if (first >= 0x30 && first <= 0x39)
    return parseIsoSyslog(text) ?? parseDmesgIso(text) ?? parseJournalUnix(text);
  if (text.startsWith('kernel: ')) {
    return line('kernel-tag', { kernel: true, tagged: true, message: text.slice(8) }, null, false);
  }
  const decoded = DMESG_DECODED_PREFIX.exec(text);
  if (decoded !== null) {
    const rest = text.slice(decoded[0].length);
    const kernel = decoded[1] === 'kern';
    return parseBracketed(rest, kernel) ?? line('dmesg', { kernel, message: rest }, null, false);
  }
  const bsd = parseBsd(text, context);
  if (bsd !== null) return bsd;
  const dated = parseJournalFull(text) ?? parseLogread(text);
  if (dated !== null) return dated;
  // `host kernel: …`: a syslog line whose time was cut off.
  const hostKernel = HOST_KERNEL_TAG.exec(text);
  if (hostKernel !== null) {
    return line(
      'kernel-tag',
      { host: hostKernel[1] ?? null, kernel: true, tagged: true, message: hostKernel[2] ?? '' },
      null,
      false,
    );
  }
  return null;
}
