/**
 * The Slack secrets from Secrets Manager, through Powertools Parameters (cached in the execution
 * environment, so a warm function reads each secret once per `maxAgeSeconds`).
 *
 * The signing secret's value may hold several secrets separated by white space: while Slack's
 * signing secret is being regenerated, store "new old" so that requests signed with either verify,
 * then remove the old one.
 */

import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import { parseSigningSecrets } from '../core/chatops/signature.js';

export const SECRET_CACHE_SECONDS = 300;

async function secretText(arn: string, maxAgeSeconds: number): Promise<string> {
  const value = await getSecret(arn, { maxAge: maxAgeSeconds });
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return new TextDecoder().decode(value);
  throw new Error(`secret ${arn} has no value`);
}

export function botTokenFrom(arn: string, maxAgeSeconds = SECRET_CACHE_SECONDS): () => Promise<string> {
  return async () => {
    const token = (await secretText(arn, maxAgeSeconds)).trim();
    if (!token.startsWith('xoxb-')) throw new Error(`secret ${arn} does not hold a bot token (xoxb-…)`);
    return token;
  };
}

export function signingSecretsFrom(
  arn: string,
  maxAgeSeconds = SECRET_CACHE_SECONDS,
): () => Promise<string[]> {
  return async () => parseSigningSecrets(await secretText(arn, maxAgeSeconds));
}
