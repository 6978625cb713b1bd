import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for https://slack.com/api/ on a loopback port: it records every Web API call (method,
 * token, arguments) and answers as Slack does, or as a test scripts it (a 429 with Retry-After, an
 * HTTP error, a slow answer, a refused connection once it is closed).
 */
export interface RecordedCall {
  readonly method: string;
  readonly authorization: string | undefined;
  readonly contentType: string | undefined;
  readonly args: Record<string, unknown>;
  /** What the recorder answered (set once it has). */
  answer?: Record<string, unknown>;
}

export type ScriptedAnswer =
  | { readonly status: 429; readonly retryAfter?: string }
  | { readonly status: number; readonly body?: string }
  | { readonly slackError: string }
  | { readonly delayMs: number };

export interface SlackRecorder {
  /** Base URL of the fake Web API, ending in /api/. */
  readonly baseUrl: string;
  readonly calls: RecordedCall[];
  callsTo(method: string): RecordedCall[];
  /** The next calls to `method` get these answers, in order, before the normal one. */
  script(method: string, ...answers: ScriptedAnswer[]): void;
  /** Members returned by usergroups.users.list. */
  groupMembers: string[];
  reset(): void;
  close(): Promise<void>;
}

export async function startSlackRecorder(): Promise<SlackRecorder> {
  const calls: RecordedCall[] = [];
  const scripts = new Map<string, ScriptedAnswer[]>();
  let ts = 1_700_000_000_000;
  const recorder = {
    groupMembers: [] as string[],
  };
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      void (async () => {
        const method = (request.url ?? '').replace(/^\/api\//, '').split('?')[0] ?? '';
        const text = Buffer.concat(chunks).toString('utf8');
        const contentType = request.headers['content-type'];
        const args = contentType?.startsWith('application/json')
          ? (JSON.parse(text) as Record<string, unknown>)
          : Object.fromEntries(new URLSearchParams(text));
        const call: RecordedCall = {
          method,
          authorization: request.headers.authorization,
          contentType,
          args,
        };
        calls.push(call);
        const scripted = scripts.get(method)?.shift();
        if (scripted !== undefined && 'delayMs' in scripted) {
          await new Promise((resolve) => setTimeout(resolve, scripted.delayMs));
        } else if (scripted !== undefined && 'status' in scripted) {
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if ('retryAfter' in scripted && scripted.retryAfter !== undefined)
            headers['retry-after'] = scripted.retryAfter;
          response.writeHead(scripted.status, headers);
          response.end(
            'body' in scripted && scripted.body !== undefined
              ? scripted.body
              : JSON.stringify({ ok: false, error: 'ratelimited' }),
          );
          return;
        } else if (scripted !== undefined && 'slackError' in scripted) {
          response.writeHead(200, { 'content-type': 'application/json' });
          response.end(JSON.stringify({ ok: false, error: scripted.slackError }));
          return;
        }
        if (request.headers.authorization !== 'Bearer xoxb-test-token') {
          response.writeHead(200, { 'content-type': 'application/json' });
          response.end(JSON.stringify({ ok: false, error: 'invalid_auth' }));
          return;
        }
        let answer: Record<string, unknown> = { ok: true };
        if (method === 'chat.postMessage') {
          ts += 1;
          answer = {
            ok: true,
            channel: args.channel,
            ts: `${Math.floor(ts / 1000)}.${String(ts % 1000).padStart(6, '0')}`,
          };
        } else if (method === 'chat.update') {
          answer = { ok: true, channel: args.channel, ts: args.ts };
        } else if (method === 'chat.postEphemeral') {
          answer = { ok: true, message_ts: '1700000000.999999' };
        } else if (method === 'usergroups.users.list') {
          answer = { ok: true, users: recorder.groupMembers };
        }
        call.answer = answer;
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify(answer));
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return Object.assign(recorder, {
    baseUrl: `http://127.0.0.1:${port}/api/`,
    calls,
    callsTo: (method: string) => calls.filter((call) => call.method === method),
    script: (method: string, ...answers: ScriptedAnswer[]) => {
      scripts.set(method, [...(scripts.get(method) ?? []), ...answers]);
    },
    reset: () => {
      calls.length = 0;
      scripts.clear();
      recorder.groupMembers = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

/** A loopback port nobody listens on (a Slack outage: the connection is refused). */
export async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
