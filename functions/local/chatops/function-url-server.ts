import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type FunctionUrlEvent,
  type FunctionUrlResult,
  functionUrlEventFrom,
  jsonResult,
} from '../../core/chatops/http.js';

/**
 * Serves a Function URL handler over plain HTTP on this machine: each request becomes the event a
 * Lambda Function URL would deliver (functionUrlEventFrom, base64 body included), and the
 * handler's result becomes the response. The local twin exposes the Slack endpoint this way (put
 * a tunnel in front of it for a real workspace), and the tests drive the real handler through it.
 */
export interface FunctionUrlServer {
  /** http://127.0.0.1:<port>/ */
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/** Function URLs accept request bodies up to 6 MB; Slack's interactivity payloads are far smaller. */
const MAX_BODY_BYTES = 1024 * 1024;

async function readBody(request: IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function serveFunctionUrl(
  handler: (event: FunctionUrlEvent) => Promise<FunctionUrlResult>,
  options: {
    readonly host?: string;
    readonly port?: number;
    readonly onError?: (error: unknown) => void;
  } = {},
): Promise<FunctionUrlServer> {
  const server = createServer((request, response) => {
    void (async () => {
      let result: FunctionUrlResult;
      const body = await readBody(request);
      if (body === null) {
        result = jsonResult(413, { error: 'payload-too-large' });
      } else {
        const event = functionUrlEventFrom({
          method: request.method ?? 'GET',
          url: request.url ?? '/',
          rawHeaders: request.rawHeaders,
          body,
          sourceIp: request.socket.remoteAddress ?? '',
        });
        try {
          result = await handler(event);
        } catch (error) {
          options.onError?.(error);
          // What a Function URL answers when the function fails.
          result = jsonResult(502, { error: 'internal-server-error' });
        }
      }
      response.writeHead(result.statusCode, result.headers);
      response.end(result.body);
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port, address } = server.address() as AddressInfo;
  return {
    url: `http://${address}:${port}/`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
