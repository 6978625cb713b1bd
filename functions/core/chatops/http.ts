/**
 * The HTTP side of a Lambda Function URL (payload format 2.0, the same shape as an API Gateway HTTP
 * API event), reduced to what the Slack endpoint needs: the method, lower-cased headers, and the
 * body as the exact bytes the client sent. The local twin's endpoint and the tests convert real
 * node:http requests with `functionUrlEventFrom`, so that both directions are the product's code.
 */

export interface FunctionUrlEvent {
  readonly version?: string;
  readonly rawPath?: string;
  readonly rawQueryString?: string;
  readonly headers?: Readonly<Record<string, string | undefined>>;
  readonly body?: string;
  readonly isBase64Encoded?: boolean;
  readonly requestContext?: {
    readonly http?: { readonly method?: string; readonly path?: string; readonly sourceIp?: string };
    readonly timeEpoch?: number;
    readonly requestId?: string;
  };
}

export interface FunctionUrlResult {
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface RawRequest {
  readonly method: string;
  readonly path: string;
  /** Header names in lower case; repeated headers joined with ",", as Function URLs do. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

export function isFunctionUrlEvent(event: unknown): event is FunctionUrlEvent {
  if (event === null || typeof event !== 'object') return false;
  const context = (event as { requestContext?: unknown }).requestContext;
  return (
    context !== null &&
    typeof context === 'object' &&
    typeof (context as { http?: { method?: unknown } }).http?.method === 'string'
  );
}

/**
 * The request as the client sent it. A base64-encoded body (Function URLs encode
 * `application/x-www-form-urlencoded`, which is what Slack posts) is decoded to its bytes; a
 * plain body is taken as UTF-8, which is how the platform decoded it.
 */
export function rawRequestFromEvent(event: FunctionUrlEvent): RawRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    if (value !== undefined) headers[name.toLowerCase()] = value;
  }
  const text = event.body ?? '';
  const body = event.isBase64Encoded === true ? Buffer.from(text, 'base64') : Buffer.from(text, 'utf8');
  return {
    method: (event.requestContext?.http?.method ?? 'GET').toUpperCase(),
    path: event.rawPath ?? event.requestContext?.http?.path ?? '/',
    headers,
    body,
  };
}

/** Content types a Function URL passes through as text; every other body arrives base64-encoded. */
const TEXT_CONTENT = /^(text\/|application\/(json|xml|javascript|yaml|[a-z.+-]*\+(json|xml)))/i;

export interface IncomingHttp {
  readonly method: string;
  /** Path and query string, as in the request line. */
  readonly url: string;
  /** node:http's `rawHeaders`: name, value, name, value, … */
  readonly rawHeaders: readonly string[];
  readonly body: Buffer;
  readonly sourceIp: string;
}

/** The event a Function URL would hand the function for this request. */
export function functionUrlEventFrom(request: IncomingHttp, now: Date = new Date()): FunctionUrlEvent {
  const headers: Record<string, string> = {};
  for (let i = 0; i + 1 < request.rawHeaders.length; i += 2) {
    const name = (request.rawHeaders[i] ?? '').toLowerCase();
    const value = request.rawHeaders[i + 1] ?? '';
    headers[name] = headers[name] === undefined ? value : `${headers[name]},${value}`;
  }
  const [path = '/', query = ''] = request.url.split('?', 2);
  const isText = TEXT_CONTENT.test(headers['content-type'] ?? '');
  const hasBody = request.body.length > 0;
  return {
    version: '2.0',
    rawPath: path,
    rawQueryString: query,
    headers,
    ...(hasBody
      ? {
          body: isText ? request.body.toString('utf8') : request.body.toString('base64'),
          isBase64Encoded: !isText,
        }
      : { isBase64Encoded: false }),
    requestContext: {
      http: { method: request.method.toUpperCase(), path, sourceIp: request.sourceIp },
      timeEpoch: now.getTime(),
    },
  };
}

export function jsonResult(statusCode: number, body: unknown): FunctionUrlResult {
  return {
    statusCode,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify(body),
  };
}

/** Slack only needs a quick 200 for a button click; the message is updated separately. */
export function emptyOk(): FunctionUrlResult {
  return { statusCode: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: '' };
}
