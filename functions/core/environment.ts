import { ResponderError } from './errors.js';

/**
 * The primitives every settings reader is written with: one way to read a variable of a function's
 * environment, one error, one message style. A reader takes the environment as an argument
 * (`process.env` in a handler, a plain object in a test or the local twin), never reads
 * `process.env` itself.
 *
 * Why not Powertools' environment helpers (`getStringFromEnv`, `getNumberFromEnv`,
 * `getBooleanFromEnv` of `@aws-lambda-powertools/commons`): they read `process.env` directly, so a
 * test or the twin would have to change the process's environment to feed them; an empty variable
 * counts as set; a number is whatever `Number()` accepts (`1e3`, `0x10`, `1.5`), with no range; and
 * they throw a bare `Error`. The construct writes empty strings for settings it leaves out, and an
 * operator who mistypes a value deserves a message naming the variable, the rule and what was
 * there. So these primitives are our own, small, and follow the same rules everywhere:
 *
 * - a value is trimmed, and an empty value counts as unset (the default applies, or it is missing);
 * - every refusal is an `EnvironmentSettingError` saying `environment variable NAME must be RULE,
 *   got 'VALUE'` (or `got nothing`), the value shown with anything outside printable ASCII escaped
 *   and cut to a bounded length, since it may have come from anywhere.
 */

/** A function's environment, as Lambda gives it (`process.env`) or a test writes it. */
export type Environment = Readonly<Record<string, string | undefined>>;

/** How much of an offending value a message shows. */
export const SHOWN_VALUE_MAX_CHARS = 64;

/** The value as a message may show it: printable ASCII only (the rest escaped), bounded, quoted. */
export function shownValue(value: string | undefined): string {
  if (value === undefined || value.trim() === '') return 'nothing';
  const escaped = value.replace(/[^\x20-\x7e]|'|\\/g, (char) =>
    char === "'" || char === '\\' ? `\\${char}` : `\\u{${char.codePointAt(0)?.toString(16)}}`,
  );
  const cut =
    escaped.length > SHOWN_VALUE_MAX_CHARS ? `${escaped.slice(0, SHOWN_VALUE_MAX_CHARS)}…` : escaped;
  return `'${cut}'`;
}

/** A variable of a function's environment is missing or breaks its rule; the message names both. */
export class EnvironmentSettingError extends ResponderError {
  override readonly name = 'EnvironmentSettingError';
  readonly variable: string;
  readonly rule: string;

  constructor(variable: string, rule: string, value: string | undefined, options?: ErrorOptions) {
    super(`environment variable ${variable} must be ${rule}, got ${shownValue(value)}`, options);
    this.variable = variable;
    this.rule = rule;
  }
}

/** A rule a text value must follow, stated the way a message completes "must be …". */
export interface TextRule {
  /** e.g. `a Slack channel id (C…)`. */
  readonly rule: string;
  readonly test: (text: string) => boolean;
}

/** The rule a text matches a pattern; `rule` says it in words. */
export function matching(pattern: RegExp, rule: string): TextRule {
  return { rule, test: (text) => pattern.test(text) };
}

function raw(env: Environment, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function checked(name: string, text: string, rule: TextRule | undefined): string {
  if (rule !== undefined && !rule.test(text)) throw new EnvironmentSettingError(name, rule.rule, text);
  return text;
}

/** A text that must be there (a resource name the construct writes), following `rule` when given. */
export function requiredText(env: Environment, name: string, rule?: TextRule): string {
  const text = raw(env, name);
  if (text === undefined) throw new EnvironmentSettingError(name, rule ? `set to ${rule.rule}` : 'set', text);
  return checked(name, text, rule);
}

/** A text that may be left out (undefined then), following `rule` when there. */
export function optionalText(env: Environment, name: string, rule?: TextRule): string | undefined {
  const text = raw(env, name);
  return text === undefined ? undefined : checked(name, text, rule);
}

/** Comma- or space-separated items, each following `rule`; none when unset. */
export function textList(env: Environment, name: string, rule?: TextRule): string[] {
  const items = (raw(env, name) ?? '').split(/[\s,]+/).filter((item) => item !== '');
  for (const item of items) {
    if (rule !== undefined && !rule.test(item))
      throw new EnvironmentSettingError(name, `a list of ${rule.rule}, separated by commas`, item);
  }
  return items;
}

export interface WholeNumberRange {
  readonly min: number;
  readonly max: number;
}

/**
 * A whole number (decimal digits only: no sign, fraction, exponent or hex) from `range.min` to
 * `range.max`; `fallback` when unset, or refused as missing when no fallback is given.
 */
export function wholeNumber(
  env: Environment,
  name: string,
  range: WholeNumberRange,
  fallback?: number,
): number {
  const rule = `a whole number from ${range.min} to ${range.max}`;
  const text = raw(env, name);
  if (text === undefined) {
    if (fallback === undefined) throw new EnvironmentSettingError(name, rule, text);
    return fallback;
  }
  const value = /^[0-9]{1,15}$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= range.min && value <= range.max)) throw new EnvironmentSettingError(name, rule, text);
  return value;
}

/** One of `choices`; `fallback` when unset, or refused as missing when no fallback is given. */
export function oneOf<const Choice extends string>(
  env: Environment,
  name: string,
  choices: readonly Choice[],
  fallback?: Choice,
): Choice {
  const text = raw(env, name);
  if (text === undefined && fallback !== undefined) return fallback;
  if (text === undefined || !(choices as readonly string[]).includes(text))
    throw new EnvironmentSettingError(name, `one of ${choices.join(', ')}`, text);
  return text as Choice;
}

/**
 * A switch written as one of two words (`on`/`off` unless `words` says otherwise, e.g.
 * `true`/`false`); `fallback` when unset, or refused as missing when no fallback is given.
 */
export function onOff(
  env: Environment,
  name: string,
  options: { readonly fallback?: boolean; readonly words?: readonly [on: string, off: string] } = {},
): boolean {
  const [on, off] = options.words ?? ['on', 'off'];
  const fallback = options.fallback === undefined ? undefined : options.fallback ? on : off;
  return oneOf(env, name, [on, off], fallback) === on;
}

/** A JSON text, parsed (its shape is the caller's to check); undefined when unset. */
export function jsonValue(env: Environment, name: string): unknown {
  const text = raw(env, name);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new EnvironmentSettingError(name, 'JSON', text, { cause: error });
  }
}
