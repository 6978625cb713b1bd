import type { Context } from 'aws-lambda';

/**
 * The AWS account an incident belongs to: the owner of the log group its kernel lines came from
 * (detect records it), else this function's own account.
 */
export function accountOf(state: unknown, context: Context | undefined): string {
  const owner = (state as { incident?: { trigger?: { owner?: unknown } } } | null)?.incident?.trigger?.owner;
  if (typeof owner === 'string' && /^[0-9]{12}$/.test(owner)) return owner;
  const own = context?.invokedFunctionArn?.split(':')[4];
  return own && /^[0-9]{12}$/.test(own) ? own : 'unknown';
}
