import { LogInputError } from './errors.js';
import { isPlausibleTimeMs, type LogLine } from './text-line.js';

/** One entry of `journalctl -o json` (every field is optional; only these are read). */
export interface JournalEntry {
  readonly MESSAGE?: unknown;
  readonly _TRANSPORT?: unknown;
  readonly _HOSTNAME?: unknown;
  readonly __REALTIME_TIMESTAMP?: unknown;
}

/** Fields every journald entry carries; one of them is enough to recognise an entry. */
function hasJournalFields(value: object): boolean {
  return (
    '__REALTIME_TIMESTAMP' in value || '__CURSOR' in value || '_TRANSPORT' in value || 'MESSAGE' in value
  );
}

/**
 * The CloudWatch agent's journald collector ships each entry through the OpenTelemetry CloudWatch
 * Logs exporter with `raw_log` unset, which writes the record as JSON with the journal fields in
 * `body` beside `resource`, `attributes` and severity keys (read from the agent's source:
 * translator/translate/otel/exporter/journald). Returns those fields, or null for anything else.
 */
function agentJournalBody(value: object): object | null {
  if (!('body' in value) || hasJournalFields(value)) return null;
  const body = (value as { body: unknown }).body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return null;
  return hasJournalFields(body) ? body : null;
}

/**
 * A journald entry: `journalctl -o json`'s flat object, or the CloudWatch agent's `{"body":{…}}`
 * wrapper of one.
 */
export function isJournalEntry(value: object): value is JournalEntry {
  return hasJournalFields(value) || agentJournalBody(value) !== null;
}

const utf8 = new TextDecoder('utf-8');

// journalctl writes a field that is not valid UTF-8 as an array of byte values, a field that
// occurs several times as an array of values, and an oversized one as null.
function fieldText(name: string, value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    if (value.every((byte) => Number.isInteger(byte) && byte >= 0 && byte <= 255)) {
      return utf8.decode(Uint8Array.from(value as number[]));
    }
    if (value.every((item) => typeof item === 'string')) return (value as string[]).join('\n');
  }
  throw new LogInputError(`journald field ${name} is neither a string nor an array of bytes`);
}

/**
 * Reads one journald entry (flat, or in the agent's `body` wrapper). Only `_TRANSPORT=kernel`
 * makes it a kernel line: fields starting with an underscore are set by journald itself, so a
 * program cannot claim to be the kernel.
 */
export function parseJournalEntry(value: JournalEntry): LogLine {
  // The same rule for the agent's wrapper: only the journal's own `_TRANSPORT` counts, never a
  // key of the wrapper around it.
  const entry = (agentJournalBody(value) ?? value) as JournalEntry;
  const realtime = fieldText('__REALTIME_TIMESTAMP', entry.__REALTIME_TIMESTAMP);
  let timeMs: number | null = null;
  let refused: string | null = null;
  if (realtime !== null) {
    // Digits only, and at most 16 of them: more microseconds than that is past the year 2286.
    const micros = /^\d{1,16}$/.test(realtime) ? Number(realtime) : Number.NaN;
    timeMs = Math.floor(micros / 1000);
    if (!isPlausibleTimeMs(timeMs)) {
      timeMs = null;
      refused = `its __REALTIME_TIMESTAMP ${JSON.stringify(realtime.slice(0, 40))} is not a time in microseconds between 1970 and 9999`;
    }
  }
  return {
    format: 'journald-json',
    host: fieldText('_HOSTNAME', entry._HOSTNAME),
    timeMs,
    kernel: fieldText('_TRANSPORT', entry._TRANSPORT) === 'kernel',
    message: fieldText('MESSAGE', entry.MESSAGE) ?? '',
    tagged: true,
    times: 1,
    repeatsPrevious: null,
    refused,
  };
}
