import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SlackApiError, SlackWebApi } from '../../../functions/adapters/slack-web-api.js';
import { section } from '../../../functions/core/chatops/block-kit.js';
import { SLACK } from '../../support/slack-payloads.js';
import { deadPort, type SlackRecorder, startSlackRecorder } from '../../support/slack-recorder.js';

const message = { text: 'hello', blocks: [section('*hello*')] };

describe('the Slack Web API client, against a local Web API', () => {
  let slack: SlackRecorder;
  let waits: number[];
  const client = (options: Partial<ConstructorParameters<typeof SlackWebApi>[0]> = {}) =>
    new SlackWebApi({
      baseUrl: slack.baseUrl,
      token: async () => SLACK.botToken,
      sleep: async (ms) => {
        waits.push(ms);
      },
      ...options,
    });

  beforeAll(async () => {
    slack = await startSlackRecorder();
  });
  afterAll(async () => {
    await slack.close();
  });
  beforeEach(() => {
    slack.reset();
    waits = [];
  });

  it('posts a message with the bot token and Block Kit, in a thread, and returns where it is', async () => {
    const ref = await client().postMessage(SLACK.channelId, message, {
      threadTs: '1.000001',
      broadcast: true,
    });
    expect(ref.channel).toBe(SLACK.channelId);
    expect(ref.ts).toMatch(/^\d+\.\d{6}$/);
    const [call] = slack.callsTo('chat.postMessage');
    expect(call?.authorization).toBe(`Bearer ${SLACK.botToken}`);
    expect(call?.contentType).toContain('application/json');
    expect(call?.args).toMatchObject({
      channel: SLACK.channelId,
      text: 'hello',
      blocks: message.blocks,
      thread_ts: '1.000001',
      reply_broadcast: true,
    });
  });

  it('updates a message and reads a user group (form-encoded, as Slack wants it)', async () => {
    slack.groupMembers = [SLACK.groupMember];
    const api = client();
    await api.updateMessage({ channel: SLACK.channelId, ts: '1.000002' }, message);
    expect(await api.userGroupMembers(SLACK.userGroupId)).toEqual([SLACK.groupMember]);
    expect(slack.callsTo('chat.update')[0]?.args).toMatchObject({ channel: SLACK.channelId, ts: '1.000002' });
    expect(slack.callsTo('usergroups.users.list')[0]).toMatchObject({
      contentType: 'application/x-www-form-urlencoded',
      args: { usergroup: SLACK.userGroupId },
    });
  });

  it('waits out a 429 for the Retry-After it was given, then succeeds', async () => {
    slack.script('chat.postMessage', { status: 429, retryAfter: '3' }, { status: 429, retryAfter: '1' });
    const ref = await client().postMessage(SLACK.channelId, message);
    expect(ref.ts).toBeTruthy();
    expect(waits).toEqual([3000, 1000]);
    expect(slack.callsTo('chat.postMessage')).toHaveLength(3);
  });

  it('really sleeps for Retry-After with the default timer', async () => {
    slack.script('chat.update', { status: 429, retryAfter: '1' });
    const started = Date.now();
    await new SlackWebApi({ baseUrl: slack.baseUrl, token: async () => SLACK.botToken }).updateMessage(
      { channel: SLACK.channelId, ts: '1.1' },
      message,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(slack.callsTo('chat.update')).toHaveLength(2);
  });

  it('gives up after its bounded retries with a clear rate-limit error', async () => {
    slack.script(
      'chat.postMessage',
      ...Array.from({ length: 5 }, () => ({ status: 429 as const, retryAfter: '1' })),
    );
    const error = await client({ maxRetries: 2 })
      .postMessage(SLACK.channelId, message)
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SlackApiError);
    expect((error as SlackApiError).code).toBe('ratelimited');
    expect((error as Error).message).toMatch(/chat\.postMessage failed: ratelimited/);
    expect(slack.callsTo('chat.postMessage')).toHaveLength(3);
  });

  it('does not wait for a Retry-After longer than it allows', async () => {
    slack.script('chat.postMessage', { status: 429, retryAfter: '120' });
    await expect(
      client({ maxRetryAfterSeconds: 10 }).postMessage(SLACK.channelId, message),
    ).rejects.toMatchObject({
      code: 'ratelimited',
      retryAfterSeconds: 120,
    });
    expect(waits).toEqual([]);
  });

  it("reports Slack's own error code", async () => {
    slack.script('chat.postMessage', { slackError: 'channel_not_found' });
    await expect(client().postMessage('C0NOWHERE', message)).rejects.toMatchObject({
      code: 'channel_not_found',
    });
  });

  it('times out a slow answer; a post is not repeated (it may have been posted), an update is', async () => {
    slack.script('chat.postMessage', { delayMs: 500 });
    await expect(client({ timeoutMs: 100 }).postMessage(SLACK.channelId, message)).rejects.toMatchObject({
      code: 'timeout',
    });
    expect(slack.callsTo('chat.postMessage')).toHaveLength(1);
    slack.script('chat.update', { delayMs: 500 });
    await client({ timeoutMs: 100 }).updateMessage({ channel: SLACK.channelId, ts: '1.2' }, message);
    expect(slack.callsTo('chat.update')).toHaveLength(2);
  });

  it('reports an HTTP error with its status', async () => {
    slack.script('chat.postMessage', { status: 503, body: 'upstream down' });
    await expect(client().postMessage(SLACK.channelId, message)).rejects.toMatchObject({ code: 'http_503' });
  });

  it('reports an outage (connection refused) after retrying, as a SlackApiError', async () => {
    const port = await deadPort();
    const error = await new SlackWebApi({
      baseUrl: `http://127.0.0.1:${port}/api/`,
      token: async () => SLACK.botToken,
      sleep: async (ms) => {
        waits.push(ms);
      },
    })
      .postMessage(SLACK.channelId, message)
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SlackApiError);
    expect((error as SlackApiError).code).toBe('connection_refused');
    expect(waits).toHaveLength(2);
  });

  it('says so when the token cannot be read, without calling Slack', async () => {
    const failing = client({
      token: async () => {
        throw new Error('AccessDeniedException');
      },
    });
    await expect(failing.postMessage(SLACK.channelId, message)).rejects.toMatchObject({ code: 'no_token' });
    expect(slack.calls).toHaveLength(0);
  });
});
