/**
 * Slack request signing, version 0 (https://docs.slack.dev/authentication/verifying-requests-from-slack):
 * `X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret, "v0:" + X-Slack-Request-Timestamp + ":" + raw body)>`.
 *
 * The raw body is the bytes Slack sent: a Function URL or API Gateway may hand it over
 * base64-encoded, and re-serializing a parsed form would change it, so callers pass the decoded
 * bytes exactly as received (see `http.ts`).
 */

import { createHmac, timingSafeEqual } from 'node:crypto';
import type { RawRequest } from './http.js';

export const SIGNATURE_VERSION = 'v0';
/** Requests older or newer than this are refused: a captured request cannot be replayed later. */
export const MAX_CLOCK_SKEW_SECONDS = 300;

const SIGNATURE = /^v0=([0-9a-f]{64})$/;
const TIMESTAMP = /^[0-9]{1,12}$/;

export type SignatureFailure =
  | 'no-signing-secret'
  | 'missing-timestamp'
  | 'malformed-timestamp'
  | 'timestamp-too-old'
  | 'timestamp-in-the-future'
  | 'missing-signature'
  | 'malformed-signature'
  | 'signature-mismatch';

export type SignatureCheck =
  | { readonly ok: true; readonly timestamp: number }
  | { readonly ok: false; readonly reason: SignatureFailure; readonly detail: string };

export interface SignedRequest {
  /** X-Slack-Request-Timestamp. */
  readonly timestamp: string | undefined;
  /** X-Slack-Signature. */
  readonly signature: string | undefined;
  readonly rawBody: Uint8Array;
}

export function computeSignature(signingSecret: string, timestamp: string, rawBody: Uint8Array): string {
  const mac = createHmac('sha256', signingSecret);
  mac.update(`${SIGNATURE_VERSION}:${timestamp}:`);
  mac.update(rawBody);
  return `${SIGNATURE_VERSION}=${mac.digest('hex')}`;
}

/**
 * Checks a request's signature against every given signing secret (more than one while a secret is
 * being replaced: the old and the new both verify until the old is removed). The timestamp is
 * checked first and both ways, so that a stale or future request is refused without computing
 * anything from its body.
 */
export function verifySlackSignature(
  request: SignedRequest,
  signingSecrets: readonly string[],
  nowSeconds: number,
): SignatureCheck {
  const secrets = signingSecrets.filter((secret) => secret.length > 0);
  if (secrets.length === 0) {
    return { ok: false, reason: 'no-signing-secret', detail: 'no signing secret is configured' };
  }
  const { timestamp, signature } = request;
  if (timestamp === undefined || timestamp === '') {
    return { ok: false, reason: 'missing-timestamp', detail: 'X-Slack-Request-Timestamp is missing' };
  }
  if (!TIMESTAMP.test(timestamp)) {
    return {
      ok: false,
      reason: 'malformed-timestamp',
      detail: 'X-Slack-Request-Timestamp is not a whole number of seconds',
    };
  }
  const seconds = Number(timestamp);
  const skew = nowSeconds - seconds;
  if (skew > MAX_CLOCK_SKEW_SECONDS) {
    return {
      ok: false,
      reason: 'timestamp-too-old',
      detail: `the request was signed ${skew} s ago (more than ${MAX_CLOCK_SKEW_SECONDS} s): a replay or a wrong clock`,
    };
  }
  if (-skew > MAX_CLOCK_SKEW_SECONDS) {
    return {
      ok: false,
      reason: 'timestamp-in-the-future',
      detail: `the request is dated ${-skew} s ahead (more than ${MAX_CLOCK_SKEW_SECONDS} s)`,
    };
  }
  if (signature === undefined || signature === '') {
    return { ok: false, reason: 'missing-signature', detail: 'X-Slack-Signature is missing' };
  }
  const hex = SIGNATURE.exec(signature)?.[1];
  if (hex === undefined) {
    return {
      ok: false,
      reason: 'malformed-signature',
      detail: 'X-Slack-Signature is not v0=<64 hex digits>',
    };
  }
  const given = Buffer.from(hex, 'hex');
  let matched = false;
  for (const secret of secrets) {
    const expected = Buffer.from(computeSignature(secret, timestamp, request.rawBody).slice(3), 'hex');
    // Constant time per comparison; every secret is tried so the time does not say which matched.
    if (timingSafeEqual(given, expected)) matched = true;
  }
  if (!matched) {
    return {
      ok: false,
      reason: 'signature-mismatch',
      detail: 'the signature does not match the body (tampered body or wrong signing secret)',
    };
  }
  return { ok: true, timestamp: seconds };
}

/**
 * The signing secrets in a stored value: several, separated by white space, while the app's secret
 * is being replaced (old and new both verify meanwhile).
 */
export function parseSigningSecrets(text: string): string[] {
  return text.split(/\s+/).filter((secret) => secret !== '');
}

/** The Slack signature of a request as a Function URL delivers it (headers and raw body), at `now`. */
export function verifySlackRequest(
  request: RawRequest,
  signingSecrets: readonly string[],
  now: Date,
): SignatureCheck {
  return verifySlackSignature(
    {
      timestamp: request.headers['x-slack-request-timestamp'],
      signature: request.headers['x-slack-signature'],
      rawBody: request.body,
    },
    signingSecrets,
    Math.floor(now.getTime() / 1000),
  );
}

/** Headers of a request signed as Slack signs it (the test client and local tools use it). */
export function signSlackRequest(
  signingSecret: string,
  rawBody: Uint8Array,
  timestampSeconds: number,
): { 'x-slack-request-timestamp': string; 'x-slack-signature': string } {
  const timestamp = String(timestampSeconds);
  return {
    'x-slack-request-timestamp': timestamp,
    'x-slack-signature': computeSignature(signingSecret, timestamp, rawBody),
  };
}
