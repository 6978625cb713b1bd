import { describe, expect, it } from 'vitest';
import {
  EnvironmentSettingError,
  jsonValue,
  matching,
  oneOf,
  onOff,
  optionalText,
  requiredText,
  SHOWN_VALUE_MAX_CHARS,
  shownValue,
  textList,
  wholeNumber,
} from '../../functions/core/environment.js';
import { ResponderError } from '../../functions/core/errors.js';

const RANGE = { min: 1, max: 60 };
const CHANNEL = matching(/^C[A-Z0-9]{2,}$/, 'a channel id (C…)');

/** Runs `read` and returns what it threw, failing the test when it throws nothing. */
function refusal(read: () => unknown): EnvironmentSettingError {
  try {
    read();
  } catch (error) {
    expect(error).toBeInstanceOf(EnvironmentSettingError);
    expect(error).toBeInstanceOf(ResponderError);
    return error as EnvironmentSettingError;
  }
  throw new Error('expected a refusal, got a value');
}

describe('the message of a refused setting', () => {
  it('names the variable, the rule and the value', () => {
    const error = refusal(() => wholeNumber({ X: 'soon' }, 'X', RANGE));
    expect(error.message).toBe("environment variable X must be a whole number from 1 to 60, got 'soon'");
    expect(error.name).toBe('EnvironmentSettingError');
    expect(error.variable).toBe('X');
    expect(error.rule).toBe('a whole number from 1 to 60');
  });

  it('says "nothing" for a missing value', () => {
    expect(refusal(() => requiredText({}, 'X')).message).toBe(
      'environment variable X must be set, got nothing',
    );
  });

  it('escapes what is not printable ASCII and bounds the length', () => {
    expect(shownValue("a'b\\c\u001b[31m\u00e9")).toBe("'a\\'b\\\\c\\u{1b}[31m\\u{e9}'");
    const long = refusal(() => oneOf({ X: 'y'.repeat(5000) }, 'X', ['a', 'b'])).message;
    expect(long).toBe(
      `environment variable X must be one of a, b, got '${'y'.repeat(SHOWN_VALUE_MAX_CHARS)}…'`,
    );
    expect(refusal(() => requiredText({ X: '\n' }, 'X')).message).toContain('got nothing');
  });
});

describe('requiredText / optionalText', () => {
  it('trims, and counts an empty value as unset', () => {
    expect(requiredText({ X: '  table  ' }, 'X')).toBe('table');
    expect(optionalText({ X: '   ' }, 'X')).toBeUndefined();
    expect(optionalText({}, 'X')).toBeUndefined();
    expect(optionalText({ X: ' C123 ' }, 'X', CHANNEL)).toBe('C123');
  });

  it('checks a rule when given, and says the rule when the value is missing', () => {
    expect(refusal(() => requiredText({ X: 'general' }, 'X', CHANNEL)).message).toBe(
      "environment variable X must be a channel id (C…), got 'general'",
    );
    expect(refusal(() => optionalText({ X: 'general' }, 'X', CHANNEL)).message).toBe(
      "environment variable X must be a channel id (C…), got 'general'",
    );
    expect(refusal(() => requiredText({}, 'X', CHANNEL)).message).toBe(
      'environment variable X must be set to a channel id (C…), got nothing',
    );
  });
});

describe('textList', () => {
  it('splits on commas and spaces, each item checked', () => {
    expect(textList({ X: 'C12, C34 C56,,' }, 'X', CHANNEL)).toEqual(['C12', 'C34', 'C56']);
    expect(textList({}, 'X')).toEqual([]);
    expect(refusal(() => textList({ X: 'C12,general' }, 'X', CHANNEL)).message).toBe(
      "environment variable X must be a list of a channel id (C…), separated by commas, got 'general'",
    );
  });
});

describe('wholeNumber', () => {
  it('reads digits within the range, the bounds included', () => {
    expect(wholeNumber({ X: '1' }, 'X', RANGE)).toBe(1);
    expect(wholeNumber({ X: ' 60 ' }, 'X', RANGE)).toBe(60);
    expect(wholeNumber({}, 'X', RANGE, 30)).toBe(30);
    expect(wholeNumber({ X: '' }, 'X', RANGE, 30)).toBe(30);
  });

  it.each(['0', '61', '-1', '+5', '1.5', '1e1', '0x10', 'ten', '9'.repeat(400)])('refuses %s', (text) => {
    expect(refusal(() => wholeNumber({ X: text }, 'X', RANGE, 30)).rule).toBe('a whole number from 1 to 60');
  });

  it('refuses a missing value when there is no default', () => {
    expect(refusal(() => wholeNumber({}, 'X', RANGE)).message).toBe(
      'environment variable X must be a whole number from 1 to 60, got nothing',
    );
  });
});

describe('oneOf', () => {
  it('reads a choice, the default when unset, and refuses anything else', () => {
    expect(oneOf({ X: 'auto' }, 'X', ['auto', 'approve'])).toBe('auto');
    expect(oneOf({}, 'X', ['auto', 'approve'], 'approve')).toBe('approve');
    expect(refusal(() => oneOf({ X: 'Auto' }, 'X', ['auto', 'approve'])).message).toBe(
      "environment variable X must be one of auto, approve, got 'Auto'",
    );
    expect(refusal(() => oneOf({}, 'X', ['auto', 'approve'])).message).toContain('got nothing');
  });
});

describe('onOff', () => {
  it('reads on/off, or the words given, with or without a default', () => {
    expect(onOff({ X: 'off' }, 'X', { fallback: true })).toBe(false);
    expect(onOff({ X: 'on' }, 'X', { fallback: false })).toBe(true);
    expect(onOff({}, 'X', { fallback: true })).toBe(true);
    expect(onOff({}, 'X', { fallback: false })).toBe(false);
    expect(onOff({ X: 'true' }, 'X', { words: ['true', 'false'] })).toBe(true);
    expect(onOff({ X: 'false' }, 'X', { words: ['true', 'false'] })).toBe(false);
  });

  it('refuses anything else, and a missing value without a default', () => {
    expect(refusal(() => onOff({ X: 'yes' }, 'X', { fallback: true })).message).toBe(
      "environment variable X must be one of on, off, got 'yes'",
    );
    expect(refusal(() => onOff({}, 'X', { words: ['true', 'false'] })).message).toBe(
      'environment variable X must be one of true, false, got nothing',
    );
  });
});

describe('jsonValue', () => {
  it('parses JSON, undefined when unset, and refuses what is not JSON', () => {
    expect(jsonValue({ X: '{"a": [1]}' }, 'X')).toEqual({ a: [1] });
    expect(jsonValue({}, 'X')).toBeUndefined();
    const error = refusal(() => jsonValue({ X: '{a' }, 'X'));
    expect(error.message).toBe("environment variable X must be JSON, got '{a'");
    expect(error.cause).toBeInstanceOf(SyntaxError);
  });
});
