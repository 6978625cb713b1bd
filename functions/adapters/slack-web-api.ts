import type { SlackMessageRef } from '../core/chatops/approval.js';
import type { SlackMessage } from '../core/chatops/block-kit.js';
import type { SlackPort } from '../core/chatops/incident-chat.js';
import { ResponderError } from '../core/errors.js';

/**
 * A small Slack Web API client: the four methods conntrack-responder uses, over `fetch`, with a
 * configurable base URL (tests point it at a local server), a time limit per call, and Slack's
 * rate limiting honoured (HTTP 429 with Retry-After, waited out a bounded number of times).
 * Every failure is a SlackApiError that names the method and what went wrong; nothing else escapes.
 *
 * Only requests Slack has certainly not processed are retried (429, a refused connection), plus
 * any failure of an idempotent method (chat.update, usergroups.users.list): a timed-out
 * chat.postMessage may have been posted, and posting it again would duplicate it.
 */

export interface SlackWebApiOptions {
  /** e.g. https://slack.com/api/ */
  readonly baseUrl: string;
  /** The bot token (xoxb-…), read when needed (Secrets Manager through a cache on AWS). */
  readonly token: () => Promise<string>;
  /** Time limit of one HTTP attempt. @default 2500 */
  readonly timeoutMs?: number;
  /** Retries after the first attempt. @default 2 */
  readonly maxRetries?: number;
  /** A Retry-After longer than this is not waited for: the call fails at once. @default 10 */
  readonly maxRetryAfterSeconds?: number;
  /** Pause before retrying a failure that is not a 429. @default 250 */
  readonly retryDelayMs?: number;
  readonly fetch?: typeof fetch;
  readonly sleep?: (ms: number) => Promise<void>;
}

export class SlackApiError extends ResponderError {
  override readonly name = 'SlackApiError';
  constructor(
    readonly method: string,
    /** Slack's error code (`channel_not_found`…), or `ratelimited`, `timeout`, `http_<status>`, `network`, `no_token`. */
    readonly code: string,
    detail: string,
    readonly retryAfterSeconds: number | null = null,
    options?: ErrorOptions,
  ) {
    super(`Slack ${method} failed: ${code}${detail ? ` (${detail})` : ''}`, options);
  }
}

const IDEMPOTENT = new Set(['chat.update', 'chat.delete', 'usergroups.users.list', 'auth.test']);
/** Methods whose arguments Slack only reads from a form body. */
const FORM_METHODS = new Set(['usergroups.users.list', 'auth.test']);

type SlackResponse = { ok: boolean; error?: string; [key: string]: unknown };

export class SlackWebApi implements SlackPort {
  private readonly fetchImpl: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly base: URL;

  constructor(private readonly options: SlackWebApiOptions) {
    this.fetchImpl = options.fetch ?? fetch;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.base = new URL(options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`);
  }

  async call(method: string, args: Record<string, unknown>): Promise<SlackResponse> {
    let token: string;
    try {
      token = (await this.options.token()).trim();
    } catch (error) {
      throw new SlackApiError(
        method,
        'no_token',
        `the bot token could not be read: ${(error as Error).message}`,
      );
    }
    if (token === '') throw new SlackApiError(method, 'no_token', 'the bot token is empty');
    const maxRetries = this.options.maxRetries ?? 2;
    for (let attempt = 0; ; attempt += 1) {
      const outcome = await this.attempt(method, args, token);
      if (outcome.ok) return outcome.body;
      const { error } = outcome;
      const retryable =
        error.code === 'ratelimited' || error.code === 'connection_refused' || IDEMPOTENT.has(method);
      if (!retryable || attempt >= maxRetries) throw error;
      if (error.code === 'ratelimited') {
        const wait = error.retryAfterSeconds ?? 1;
        if (wait > (this.options.maxRetryAfterSeconds ?? 10)) throw error;
        await this.sleep(wait * 1000);
      } else {
        await this.sleep((this.options.retryDelayMs ?? 250) * 2 ** attempt);
      }
    }
  }

  private async attempt(
    method: string,
    args: Record<string, unknown>,
    token: string,
  ): Promise<{ ok: true; body: SlackResponse } | { ok: false; error: SlackApiError }> {
    const url = new URL(method, this.base);
    const form = FORM_METHODS.has(method);
    const body = form
      ? new URLSearchParams(
          Object.entries(args).map(([key, value]): [string, string] => [key, String(value)]),
        ).toString()
      : JSON.stringify(args);
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json; charset=utf-8',
        },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 2500),
      });
    } catch (error) {
      const err = error as Error & { cause?: { code?: string } };
      if (err.name === 'TimeoutError' || err.name === 'AbortError') {
        return {
          ok: false,
          error: new SlackApiError(
            method,
            'timeout',
            `no answer within ${this.options.timeoutMs ?? 2500} ms`,
          ),
        };
      }
      const code = err.cause?.code === 'ECONNREFUSED' ? 'connection_refused' : 'network';
      return { ok: false, error: new SlackApiError(method, code, err.cause?.code ?? err.message) };
    }
    if (response.status === 429) {
      const header = Number(response.headers.get('retry-after'));
      const retryAfter = Number.isFinite(header) && header >= 0 ? header : null;
      await response.body?.cancel().catch(() => {});
      return {
        ok: false,
        error: new SlackApiError(method, 'ratelimited', `retry after ${retryAfter ?? '?'} s`, retryAfter),
      };
    }
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      return { ok: false, error: new SlackApiError(method, 'network', (error as Error).message) };
    }
    if (!response.ok) {
      return { ok: false, error: new SlackApiError(method, `http_${response.status}`, text.slice(0, 200)) };
    }
    let parsed: SlackResponse;
    try {
      parsed = JSON.parse(text) as SlackResponse;
    } catch {
      return { ok: false, error: new SlackApiError(method, 'invalid_response', text.slice(0, 200)) };
    }
    if (parsed.ok !== true) {
      return { ok: false, error: new SlackApiError(method, parsed.error ?? 'unknown_error', '') };
    }
    return { ok: true, body: parsed };
  }

  async postMessage(
    channel: string,
    message: SlackMessage,
    options: { threadTs?: string; broadcast?: boolean } = {},
  ): Promise<SlackMessageRef> {
    const answer = await this.call('chat.postMessage', {
      channel,
      text: message.text,
      blocks: message.blocks,
      unfurl_links: false,
      unfurl_media: false,
      ...(options.threadTs ? { thread_ts: options.threadTs } : {}),
      ...(options.threadTs && options.broadcast ? { reply_broadcast: true } : {}),
    });
    if (typeof answer.ts !== 'string' || typeof answer.channel !== 'string') {
      throw new SlackApiError('chat.postMessage', 'invalid_response', 'no ts or channel in the answer');
    }
    return { channel: answer.channel, ts: answer.ts };
  }

  async updateMessage(ref: SlackMessageRef, message: SlackMessage): Promise<void> {
    await this.call('chat.update', {
      channel: ref.channel,
      ts: ref.ts,
      text: message.text,
      blocks: message.blocks,
    });
  }

  async postEphemeral(channel: string, userId: string, message: SlackMessage): Promise<void> {
    await this.call('chat.postEphemeral', {
      channel,
      user: userId,
      text: message.text,
      blocks: message.blocks,
    });
  }

  async deleteMessage(ref: SlackMessageRef): Promise<void> {
    await this.call('chat.delete', { channel: ref.channel, ts: ref.ts });
  }

  async userGroupMembers(groupId: string): Promise<string[]> {
    const answer = await this.call('usergroups.users.list', { usergroup: groupId, include_disabled: false });
    if (!Array.isArray(answer.users) || !answer.users.every((user) => typeof user === 'string')) {
      throw new SlackApiError('usergroups.users.list', 'invalid_response', 'users is not a list of ids');
    }
    return answer.users as string[];
  }
}
