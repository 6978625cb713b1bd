/**
 * Recognises one line of a text log in any of the formats a fleet produces, and says whether the
 * kernel wrote it. Pure: no I/O, the reference time for year-less timestamps is passed in.
 */

export type TextFormat =
  | 'rfc3164' // `Mar 13 20:21:45 host kernel: …` (also journalctl -o short / short-precise)
  | 'syslog-iso' // RSYSLOG_FileFormat `2019-02-25T03:45:03.778502+00:00 host kernel: …`, journalctl -o short-iso
  | 'rfc5424' // `<4>1 2026-03-13T20:21:45.000Z host kernel - - - …`
  | 'dmesg' // `[27772673.752270] …` (seconds since boot, no wall time)
  | 'dmesg-ctime' // dmesg -T `[Tue Nov 20 22:30:22 2018] …`
  | 'dmesg-iso' // dmesg --time-format iso `2018-11-20T22:30:22,123456+00:00 …`
  | 'kernel-tag'; // a syslog line whose header was cut off: `kernel: …`

export interface LogLine {
  readonly format: TextFormat | 'journald-json';
  /** The host the line names, or null when the format carries none (dmesg). */
  readonly host: string | null;
  /** Milliseconds since the epoch (UTC), or null when the line has no wall-clock time. */
  readonly timeMs: number | null;
  /** Whether the kernel wrote the line (as far as the format can tell: see each parser). */
  readonly kernel: boolean;
  /** The message text, after the header and tag. */
  readonly message: string;
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

// Zone-less timestamps (RFC 3164, dmesg -T) are read as UTC: the log does not say which zone the
// host used, and UTC is what EC2 instances run in by default.
function utc(year: number, month: number, day: number, hour: number, minute: number, second: number) {
  const ms = Date.UTC(year, month, day, hour, minute, second);
  const check = new Date(ms);
  // Date.UTC silently rolls Feb 30 over to March: such a line has no usable time.
  if (check.getUTCMonth() !== month || check.getUTCDate() !== day || hour > 23 || minute > 59 || second > 60)
    return null;
  return ms;
}

function fractionMs(fraction: string | undefined): number {
  return fraction === undefined ? 0 : Math.floor(Number(`0.${fraction}`) * 1000);
}

function offsetMs(zone: string): number {
  if (zone === 'Z') return 0;
  const sign = zone.startsWith('-') ? -1 : 1;
  const digits = zone.slice(1).replace(':', '');
  return sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4))) * 60_000;
}

function isoTimeMs(match: RegExpExecArray, first: number): number | null {
  const [year, month, day, hour, minute, second] = match.slice(first, first + 6).map(Number) as number[];
  const base = utc(year ?? 0, (month ?? 0) - 1, day ?? 0, hour ?? 0, minute ?? 0, second ?? 0);
  if (base === null) return null;
  return base + fractionMs(match[first + 6]) - offsetMs(match[first + 7] ?? 'Z');
}

/** `<PRI>`: facility 0 is `kern`. A message claiming the kernel's tag with another facility did not come from it. */
function facilityIsKern(pri: string | undefined): boolean {
  return pri === undefined || Number(pri) >> 3 === 0;
}

/** The `TAG[pid]: ` of a syslog message; the kernel's tag is exactly `kernel`, without a pid. */
const SYSLOG_TAG = /^([^\s:[]+)(\[[^\]]*\])?: ?/;

function splitTag(rest: string): { kernel: boolean; message: string } {
  const tag = SYSLOG_TAG.exec(rest);
  if (tag === null) return { kernel: false, message: rest };
  return { kernel: tag[1] === 'kernel' && tag[2] === undefined, message: rest.slice(tag[0].length) };
}

const BSD_LINE =
  /^(?:<(\d{1,3})>)?([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))? (\S+) (.*)$/;
const ISO_LINE =
  /^(?:<(\d{1,3})>)?(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2}) (\S+) (.*)$/;
const DMESG_ISO_LINE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2}),(\d{1,9})([+-]\d{2}:?\d{2}) ?(.*)$/;
const RFC5424_LINE = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (.*)$/;
const RFC5424_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;
const DMESG_RAW_LINE = /^(?:<(\d{1,3})>)?\[\s*\d+\.\d+\]/;
const DMESG_CTIME_LINE =
  /^\[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})\] ?(.*)$/;
// dmesg -x: `kern  :warn  : [123.4] …`. Userspace writes to /dev/kmsg show up as `user  :…`.
const DMESG_DECODED_PREFIX =
  /^(kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|local[0-7]) *:(emerg|alert|crit|err|warn|notice|info|debug) *: ?/;

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

function parseBsd(line: string, context: TextLineContext): LogLine | null {
  const match = BSD_LINE.exec(line);
  if (match === null) return null;
  const month = MONTHS[match[2] ?? ''];
  if (month === undefined) return null;
  const day = Number(match[3]);
  const [hour, minute, second] = [Number(match[4]), Number(match[5]), Number(match[6])];
  const timeMs = bsdTimeMs(month, day, hour, minute, second, context.referenceTimeMs);
  const { kernel, message } = splitTag(match[9] ?? '');
  return {
    format: 'rfc3164',
    host: match[8] ?? null,
    timeMs: timeMs === null ? null : timeMs + fractionMs(match[7]),
    kernel: kernel && facilityIsKern(match[1]),
    message,
  };
}

function parseIsoSyslog(line: string): LogLine | null {
  const match = ISO_LINE.exec(line);
  if (match === null) return null;
  const { kernel, message } = splitTag(match[11] ?? '');
  return {
    format: 'syslog-iso',
    host: match[10] ?? null,
    timeMs: isoTimeMs(match, 2),
    kernel: kernel && facilityIsKern(match[1]),
    message,
  };
}

function parseDmesgIso(line: string): LogLine | null {
  const match = DMESG_ISO_LINE.exec(line);
  if (match === null) return null;
  return {
    format: 'dmesg-iso',
    host: null,
    timeMs: isoTimeMs(match, 1),
    kernel: true,
    message: match[9] ?? '',
  };
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

function parseRfc5424(line: string): LogLine | null {
  const match = RFC5424_LINE.exec(line);
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
  return {
    format: 'rfc5424',
    host: host === '-' ? null : (host ?? null),
    timeMs,
    kernel: app === 'kernel' && facilityIsKern(pri),
    message: body.startsWith('\uFEFF') ? body.slice(1) : body,
  };
}

function parseDmesg(line: string, kernelFacility: boolean): LogLine | null {
  const raw = DMESG_RAW_LINE.exec(line);
  if (raw !== null) {
    // The message keeps its `[secs]`: classification strips it, and it is not a wall time.
    return {
      format: 'dmesg',
      host: null,
      timeMs: null,
      kernel: kernelFacility && facilityIsKern(raw[1]),
      message: raw[1] === undefined ? line : line.slice(raw[1].length + 2),
    };
  }
  const ctime = DMESG_CTIME_LINE.exec(line);
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
    return { format: 'dmesg-ctime', host: null, timeMs, kernel: kernelFacility, message: ctime[7] ?? '' };
  }
  const iso = parseDmesgIso(line);
  return iso === null ? null : { ...iso, kernel: kernelFacility };
}

/**
 * Parses one line of a text log. Returns null when the line is in none of the known formats
 * (the caller decides whether that matters: it does only when the line mentions a drop).
 */
export function parseTextLine(line: string, context: TextLineContext): LogLine | null {
  const first = line.charCodeAt(0);
  // Dispatch on the first character keeps the common case to one regular expression.
  if (first === 0x5b /* [ */) return parseDmesg(line, true);
  if (first === 0x3c /* < */) {
    return parseRfc5424(line) ?? parseBsd(line, context) ?? parseIsoSyslog(line) ?? parseDmesg(line, true);
  }
  if (first >= 0x30 && first <= 0x39) return parseIsoSyslog(line) ?? parseDmesgIso(line);
  if (line.startsWith('kernel: ')) {
    return { format: 'kernel-tag', host: null, timeMs: null, kernel: true, message: line.slice(8) };
  }
  const decoded = DMESG_DECODED_PREFIX.exec(line);
  if (decoded !== null) {
    const rest = line.slice(decoded[0].length);
    const kernel = decoded[1] === 'kern';
    return parseDmesg(rest, kernel) ?? { format: 'dmesg', host: null, timeMs: null, kernel, message: rest };
  }
  return parseBsd(line, context);
}
