import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type FunctionUrlEvent,
  type FunctionUrlResult,
  functionUrlEventFrom,
} from '../../functions/core/chatops/http.js';

/**
 * What stands in front of a Lambda function URL with AWS_IAM auth, on loopback: it checks the
 * request's Signature Version 4 with its own implementation of the specification
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html),
 * independent of the SDK signer the product uses, so that a request the product signs wrongly is
 * refused; it answers 403 as Lambda does when the signature is wrong or the caller is not allowed;
 * and it hands the function the event Lambda builds, with the caller in
 * `requestContext.authorizer.iam` (https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html).
 */

export interface IamIdentity {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION, arn:aws:iam::ACCOUNT:user/NAME … */
  readonly arn: string;
  readonly accountId: string;
  readonly userId: string;
}

export interface IamFunctionUrl {
  readonly url: string;
  /** Requests refused before the function (bad signature, unknown key, not allowed). */
  readonly refused: () => readonly string[];
  close(): Promise<void>;
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/** RFC 3986 encoding of one path segment, as SigV4 wants it (each segment encoded twice for non-S3 services). */
function encodeSegment(segment: string): string {
  return encodeURIComponent(segment).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function canonicalPath(path: string): string {
  return path
    .split('/')
    .map((segment) => encodeSegment(encodeSegment(decodeURIComponent(segment))))
    .join('/');
}

function canonicalQuery(query: string): string {
  if (query === '') return '';
  return query
    .split('&')
    .map((pair) => {
      const [name = '', value = ''] = pair.split('=', 2);
      return [encodeSegment(decodeURIComponent(name)), encodeSegment(decodeURIComponent(value))] as const;
    })
    .sort(([a, av], [b, bv]) => (a === b ? (av < bv ? -1 : 1) : a < b ? -1 : 1))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

type Verdict = { ok: true; identity: IamIdentity } | { ok: false; reason: string };

function verify(
  request: IncomingMessage,
  body: Buffer,
  region: string,
  identities: readonly IamIdentity[],
  now: Date,
): Verdict {
  const header = request.headers.authorization ?? '';
  const match = AUTHORIZATION.exec(header);
  if (match === null) return { ok: false, reason: 'missing or malformed Authorization' };
  const [, keyId, day, scopeRegion, service, signedHeaderList = '', signature = ''] = match;
  const identity = identities.find((candidate) => candidate.accessKeyId === keyId);
  if (identity === undefined) return { ok: false, reason: `unknown access key ${keyId}` };
  if (service !== 'lambda') return { ok: false, reason: `signed for service ${service}, not lambda` };
  if (scopeRegion !== region) return { ok: false, reason: `signed for region ${scopeRegion}, not ${region}` };
  const amzDate = String(request.headers['x-amz-date'] ?? '');
  if (!/^\d{8}T\d{6}Z$/.test(amzDate) || amzDate.slice(0, 8) !== day) {
    return { ok: false, reason: 'x-amz-date missing or not the credential scope day' };
  }
  const signedAt = Date.parse(
    `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
  );
  if (Math.abs(now.getTime() - signedAt) > 5 * 60_000) return { ok: false, reason: 'signature expired' };
  const signedHeaders = signedHeaderList.split(';');
  if (!signedHeaders.includes('host')) return { ok: false, reason: 'host is not signed' };
  const canonicalHeaders = signedHeaders
    .map((name) => {
      const value = request.headers[name];
      const text = Array.isArray(value) ? value.join(',') : (value ?? '');
      return `${name}:${text.trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const [path = '/', query = ''] = (request.url ?? '/').split('?', 2);
  const payloadHash = String(request.headers['x-amz-content-sha256'] ?? sha256(body));
  if (payloadHash !== sha256(body)) return { ok: false, reason: 'the body does not match its signed hash' };
  const canonicalRequest = [
    request.method ?? 'GET',
    canonicalPath(path),
    canonicalQuery(query),
    canonicalHeaders,
    signedHeaderList,
    payloadHash,
  ].join('\n');
  const scope = `${day}/${region}/lambda/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  let key = hmac(`AWS4${identity.secretAccessKey}`, day ?? '');
  for (const part of [region, 'lambda', 'aws4_request']) key = hmac(key, part);
  const expected = hmac(key, stringToSign);
  const given = Buffer.from(signature, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: 'signature does not match' };
  }
  return { ok: true, identity };
}

export async function serveIamFunctionUrl(
  handler: (event: FunctionUrlEvent) => Promise<FunctionUrlResult>,
  options: {
    readonly region: string;
    readonly identities: readonly IamIdentity[];
    /** IAM's policy evaluation for this test: may this identity invoke the URL? @default everyone known */
    readonly allowed?: (identity: IamIdentity) => boolean;
    /** The account the function is in (requestContext.accountId). */
    readonly functionAccount?: string;
    readonly now?: () => Date;
  },
): Promise<IamFunctionUrl> {
  const refused: string[] = [];
  const forbid = (response: import('node:http').ServerResponse, reason: string) => {
    refused.push(reason);
    // Lambda's own refusal: no function runs, and the body is not the function's JSON answer.
    response.writeHead(403, { 'content-type': 'application/json' }).end('{"Message":"Forbidden"}');
  };
  const server: Server = createServer((request, response) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      const verdict = verify(
        request,
        body,
        options.region,
        options.identities,
        options.now?.() ?? new Date(),
      );
      if (!verdict.ok) return forbid(response, verdict.reason);
      if (options.allowed !== undefined && !options.allowed(verdict.identity)) {
        return forbid(response, `${verdict.identity.arn} is not allowed by IAM`);
      }
      const base = functionUrlEventFrom({
        method: request.method ?? 'GET',
        url: request.url ?? '/',
        rawHeaders: request.rawHeaders,
        body,
        sourceIp: request.socket.remoteAddress ?? '',
      });
      const event = {
        ...base,
        requestContext: {
          ...base.requestContext,
          accountId: options.functionAccount ?? verdict.identity.accountId,
          authorizer: {
            iam: {
              accessKey: verdict.identity.accessKeyId,
              accountId: verdict.identity.accountId,
              callerId: verdict.identity.userId,
              cognitoIdentity: null,
              principalOrgId: null,
              userArn: verdict.identity.arn,
              userId: verdict.identity.userId,
            },
          },
        },
      } as FunctionUrlEvent;
      let result: FunctionUrlResult;
      try {
        result = await handler(event);
      } catch {
        result = {
          statusCode: 502,
          headers: { 'content-type': 'application/json' },
          body: '{"Message":null}',
        };
      }
      response.writeHead(result.statusCode, result.headers).end(result.body);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    refused: () => refused,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
