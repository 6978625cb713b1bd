import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import {
  type IamDecisionAnswer,
  type IamDecisionRequest,
  MAX_DECISION_BODY_BYTES,
} from '../core/chatops/iam-approval.js';
import { ResponderError } from '../core/errors.js';

/**
 * The command line's side of the approval URL: one JSON POST, signed with Signature Version 4 for
 * the `lambda` service (what a Function URL with AWS_IAM auth requires:
 * https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html), with whatever credentials
 * the SDK's default chain finds (environment, profile, SSO, instance role). The body names only
 * the incident and the decision; who decides is the signer, as Lambda authenticates it.
 */

/** https://<url-id>.lambda-url.<region>.on.aws/ — the region is part of the host name. */
const FUNCTION_URL_HOST = /^[a-z0-9]+\.lambda-url\.([a-z0-9-]+)\.on\.aws$/;

export function regionOfApprovalUrl(url: URL): string | null {
  return FUNCTION_URL_HOST.exec(url.hostname)?.[1] ?? null;
}

/** A refusal to send at all: the URL is not one we may sign a request for. */
export class ApprovalUrlError extends ResponderError {
  override readonly name = 'ApprovalUrlError';
}

/** Checks the URL before any credential is used on it: https to a Function URL, or http to loopback (tests, the lab). */
export function checkApprovalUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ApprovalUrlError(`'${text}' is not a URL`);
  }
  const loopback = url.hostname === '127.0.0.1' || url.hostname === '[::1]' || url.hostname === 'localhost';
  if (url.protocol === 'https:' && regionOfApprovalUrl(url) !== null) return url;
  if (url.protocol === 'http:' && loopback) return url;
  throw new ApprovalUrlError(
    `'${url.origin}' is not a Lambda function URL (https://<id>.lambda-url.<region>.on.aws/); the stack output ApprovalUrl is`,
  );
}

export interface SendDecisionOptions {
  readonly url: URL;
  readonly region: string;
  /** Credentials or a provider of them (the SDK's default chain on the command line). */
  readonly credentials: ConstructorParameters<typeof SignatureV4>[0]['credentials'];
  readonly request: IamDecisionRequest;
  /** @default 30 s: the function answers in well under a second; a cold start takes a few. */
  readonly timeoutMs?: number;
}

export interface SentDecision {
  readonly status: number;
  /** The function's JSON answer, or null when something in front of it answered (IAM's 403, a 5xx). */
  readonly answer: IamDecisionAnswer | null;
  /** The body when it is not the function's answer (first 2,000 characters). */
  readonly raw: string | null;
}

/** The function's answers are a few hundred bytes; more is not ours and is not read. */
const MAX_ANSWER_BYTES = 64 * 1024;

export async function sendDecision(options: SendDecisionOptions): Promise<SentDecision> {
  const { url } = options;
  const body = JSON.stringify(options.request);
  if (Buffer.byteLength(body) > MAX_DECISION_BODY_BYTES)
    throw new ApprovalUrlError('the request is too large');
  const signer = new SignatureV4({
    service: 'lambda',
    region: options.region,
    credentials: options.credentials,
    sha256: Hash.bind(null, 'sha256'),
  });
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port === '' ? {} : { port: Number(url.port) }),
    path: url.pathname,
    query: {},
    headers: { host: url.host, 'content-type': 'application/json' },
    body,
  });
  const response = await fetch(url, {
    method: 'POST',
    headers: signed.headers,
    body,
    redirect: 'error',
    signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
  });
  const text = await readBounded(response);
  let answer: IamDecisionAnswer | null = null;
  try {
    const json = JSON.parse(text) as Partial<IamDecisionAnswer>;
    if (typeof json.result === 'string' && typeof json.detail === 'string')
      answer = json as IamDecisionAnswer;
  } catch {
    // Not the function's answer (IAM refusals and Lambda errors have their own bodies).
  }
  return { status: response.status, answer, raw: answer === null ? text.slice(0, 2000) : null };
}

async function readBounded(response: Response): Promise<string> {
  const reader = response.body?.getReader();
  if (reader === undefined) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > MAX_ANSWER_BYTES) {
      await reader.cancel();
      break;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
