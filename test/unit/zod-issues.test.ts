import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { formatIssues, issueList } from '../../functions/core/zod-issues.js';

const Schema = z.object({
  name: z.string(),
  ports: z.array(z.number().int()),
  nested: z.object({ on: z.boolean() }),
});

function errorOf(value: unknown): z.ZodError {
  const parsed = Schema.safeParse(value);
  if (parsed.success) throw new Error('expected the value to fail');
  return parsed.error;
}

describe('the zod issue formatter', () => {
  const error = errorOf({ name: 7, ports: [1, 'two', 3.5], nested: {} });

  it('names each issue by its dotted path (array indexes included), in zod order', () => {
    expect(issueList(error)).toEqual([
      'name: Invalid input: expected string, received number',
      'ports.1: Invalid input: expected number, received string',
      'ports.2: Invalid input: expected int, received number',
      'nested.on: Invalid input: expected boolean, received undefined',
    ]);
    expect(formatIssues(error)).toBe(issueList(error).join('; '));
  });

  it('calls the value itself (root) unless told another label', () => {
    const whole = errorOf('not an object');
    expect(formatIssues(whole)).toBe('(root): Invalid input: expected object, received string');
    expect(formatIssues(whole, { root: '(policy)' })).toBe(
      '(policy): Invalid input: expected object, received string',
    );
    expect(formatIssues(whole, { root: '', prefix: 'field.' })).toBe(
      'field.: Invalid input: expected object, received string',
    );
  });

  it('keeps only the first issues when limited, so what it says stays bounded', () => {
    expect(issueList(error, { limit: 2 })).toEqual(issueList(error).slice(0, 2));
    expect(formatIssues(error, { limit: 1, prefix: 'body.' })).toBe(
      'body.name: Invalid input: expected string, received number',
    );
    const many = z.array(z.string()).safeParse(Array.from({ length: 10_000 }, (_, i) => i));
    expect(many.success).toBe(false);
    if (!many.success) expect(issueList(many.error, { limit: 5 })).toHaveLength(5);
  });
});
