/**
 * The SNS form of an incident's outcome: a subject for e-mail, a body that is human-readable text
 * followed by a JSON summary for machines, and String message attributes for subscription filter
 * policies. SNS limits (docs.aws.amazon.com/sns/latest/api/API_Publish.html): the subject is ASCII,
 * starts with a letter, digit or punctuation mark, has no line breaks or control characters and is
 * under 100 characters; the message with its attributes is at most 256 KiB; attribute names are
 * [A-Za-z0-9_.-] up to 256 characters, values non-empty. Large parts are cut here and left to the
 * evidence bundle, whose location the message carries.
 */

import { type EvidenceReference, evidenceLines } from '../evidence/reference.js';

export const SNS_MAX_MESSAGE_BYTES = 262_144;
/** Room kept for the envelope SNS adds to what it measures (and for rounding in our own count). */
const SAFETY_BYTES = 2_048;
/** Raw message delivery to SQS accepts at most 10 attributes. */
export const MAX_ATTRIBUTES = 10;
export const SUMMARY_MARKER = '--- JSON summary ---';

/** What the workflow's notify step produces (functions/core/workflow/notify.ts), structurally. */
export interface NotificationContent {
  readonly subject: string;
  readonly text: string;
  readonly summary: object;
  readonly attributes: Readonly<Record<string, string>>;
}

export interface NotificationContext {
  /** The AWS account the instance belongs to (a filter attribute). */
  readonly account: string;
  /**
   * Where the evidence bundle was written and its manifest's sha256 (the digest a reviewer checks
   * the bundle against); null when there is no bundle (yet, or it could not be written).
   */
  readonly evidence: EvidenceReference | null;
}

export interface SnsAttribute {
  readonly DataType: 'String';
  readonly StringValue: string;
}

export interface SnsMessage {
  readonly Subject: string;
  readonly Message: string;
  readonly MessageAttributes: Readonly<Record<string, SnsAttribute>>;
}

/** The attributes every notification carries, so that subscriptions can filter on them. */
export const REQUIRED_ATTRIBUTES = ['severity', 'action', 'instance', 'account', 'outcome'] as const;

const ATTRIBUTE_NAME = /^[A-Za-z0-9_.-]{1,256}$/;
const RESERVED_ATTRIBUTE = /^(aws\.|amazon\.)/i;

/**
 * A subject SNS accepts: printable ASCII only (accents folded, the rest dropped), one line, under
 * 100 characters, starting with a letter, digit or punctuation mark.
 */
export function snsSubject(text: string): string {
  let ascii = text
    .normalize('NFKD')
    .replace(/\s+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '')
    .replace(/ {2,}/g, ' ')
    .trim();
  if (!/^[A-Za-z0-9!-/:-@[-`{-~]/.test(ascii)) ascii = `Incident ${ascii}`.trim();
  return ascii.length > 99 ? `${ascii.slice(0, 96).trimEnd()}...` : ascii;
}

export function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** Cuts text to at most `maxBytes` of UTF-8 without splitting a character. */
export function cutToBytes(text: string, maxBytes: number): string {
  if (utf8Bytes(text) <= maxBytes) return text;
  // A character cut in half decodes to U+FFFD at the end: drop it.
  return Buffer.from(text, 'utf8')
    .subarray(0, Math.max(0, maxBytes))
    .toString('utf8')
    .replace(/\uFFFD+$/, '');
}

function attributesOf(
  content: NotificationContent,
  context: NotificationContext,
): Record<string, SnsAttribute> {
  const values: Record<string, string> = { ...content.attributes, account: context.account };
  const out: Record<string, SnsAttribute> = {};
  const names = [
    ...REQUIRED_ATTRIBUTES,
    ...Object.keys(values).filter((name) => !(REQUIRED_ATTRIBUTES as readonly string[]).includes(name)),
  ];
  for (const name of names) {
    if (Object.keys(out).length >= MAX_ATTRIBUTES) break;
    if (!ATTRIBUTE_NAME.test(name) || RESERVED_ATTRIBUTE.test(name)) {
      throw new Error(
        `SNS message attribute name '${name}' is not allowed ([A-Za-z0-9_.-], not aws./amazon.)`,
      );
    }
    const raw = values[name];
    // SNS refuses an empty String value; "unknown" keeps the attribute filterable.
    const value = raw === undefined || raw.trim() === '' ? 'unknown' : raw;
    out[name] = { DataType: 'String', StringValue: value.slice(0, 1024) };
  }
  return out;
}

function attributeBytes(attributes: Record<string, SnsAttribute>): number {
  return Object.entries(attributes).reduce(
    (sum, [name, attribute]) =>
      sum + utf8Bytes(name) + utf8Bytes(attribute.DataType) + utf8Bytes(attribute.StringValue),
    0,
  );
}

/** Shrinks a JSON value: long strings and long arrays are cut, and the cut is said. */
function shrink(value: unknown, maxString: number, maxItems: number): unknown {
  if (typeof value === 'string') {
    return value.length <= maxString
      ? value
      : `${value.slice(0, maxString)}… (${value.length - maxString} more characters in the evidence bundle)`;
  }
  if (Array.isArray(value)) {
    const kept = value.slice(0, maxItems).map((item) => shrink(item, maxString, maxItems));
    if (value.length > maxItems) kept.push(`… ${value.length - maxItems} more in the evidence bundle`);
    return kept;
  }
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, shrink(item, maxString, maxItems)]),
    );
  }
  return value;
}

export function snsMessage(
  content: NotificationContent,
  context: NotificationContext,
  limitBytes: number = SNS_MAX_MESSAGE_BYTES,
): SnsMessage {
  const attributes = attributesOf(content, context);
  const budget = limitBytes - SAFETY_BYTES - attributeBytes(attributes);
  const summary: Record<string, unknown> = {
    ...content.summary,
    account: context.account,
    evidence: context.evidence,
  };
  let json = JSON.stringify(summary);
  // The summary must always fit whole (machines parse it); it shrinks until it leaves room for text.
  for (const [maxString, maxItems] of [
    [4000, 100],
    [1000, 20],
    [200, 5],
    [80, 2],
  ] as const) {
    if (utf8Bytes(json) <= budget / 2) break;
    json = JSON.stringify({ ...(shrink(summary, maxString, maxItems) as object), truncated: true });
  }
  const tail = `\n\n${SUMMARY_MARKER}\n${json}`;
  const room = budget - utf8Bytes(tail);
  let text = content.text;
  // The bundle's place and digest come first when the text must be cut: they are what a reviewer
  // needs to find and check everything that was cut.
  const evidence = context.evidence ? `\n\n${evidenceLines(context.evidence).join('\n')}` : '';
  if (utf8Bytes(text) + utf8Bytes(evidence) > room) {
    const note = `\n\n[Cut to fit SNS's 256 KB limit. The full text is in the evidence bundle.]`;
    text = `${cutToBytes(text, room - utf8Bytes(note) - utf8Bytes(evidence))}${note}${evidence}`;
  } else text = `${text}${evidence}`;
  return { Subject: snsSubject(content.subject), Message: `${text}${tail}`, MessageAttributes: attributes };
}

/** The JSON summary back out of a message body (subscribers and tests). */
export function summaryOf(message: string): unknown {
  const at = message.lastIndexOf(`\n${SUMMARY_MARKER}\n`);
  if (at < 0) throw new Error('the message has no JSON summary');
  return JSON.parse(message.slice(at + SUMMARY_MARKER.length + 2));
}

export function snsMessageBytes(message: SnsMessage): number {
  return utf8Bytes(message.Message) + attributeBytes({ ...message.MessageAttributes });
}
