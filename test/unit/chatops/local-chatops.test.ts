import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type Block,
  blockKitProblems,
  type SlackMessage,
} from '../../../functions/core/chatops/block-kit.js';
import { summaryOf } from '../../../functions/core/chatops/notification.js';
import { OUTCOMES } from '../../../functions/core/workflow/outcome.js';
import { STATE } from '../../../functions/core/workflow/state-names.js';
import { type LocalChatops, startLocalChatops } from '../../../functions/local/chatops/local-chatops.js';
import { approvalTaskPayload } from '../../support/approval-task.js';
import { blockActionsPayload, SLACK, signedForm } from '../../support/slack-payloads.js';
import { type SlackRecorder, startSlackRecorder } from '../../support/slack-recorder.js';

const event = (type: string, state: string, extra: Record<string, unknown> = {}) => ({
  type: type as never,
  timestamp: Date.now(),
  state,
  ...extra,
});

describe('local ChatOps without a workspace: Block Kit files and the terminal', () => {
  let outDir: string;
  let chatops: LocalChatops;
  const said: string[] = [];

  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), 'ctr-chatops-'));
  });
  afterAll(async () => {
    await rm(outDir, { recursive: true, force: true });
  });

  it('writes the whole thread as Block Kit JSON and takes the safer alternative from the terminal', async () => {
    const questions: string[] = [];
    chatops = await startLocalChatops({
      outDir,
      env: { USER: 'operator' },
      decision: 'prompt',
      ask: async (question) => {
        questions.push(question);
        return 'raise limits only';
      },
      say: (line) => said.push(line),
    });
    expect(chatops.mode).toBe('files');
    expect(chatops.endpoint).toBeNull();
    const payload = approvalTaskPayload({ incidentId: 'inc-local-1', taskToken: 'local-task-token-x' });
    chatops.onEvent({ type: 'ExecutionStarted' as never, timestamp: Date.now(), input: payload.incident });
    chatops.onEvent(event('StateExited', STATE.collectDiagnostics, { output: {} }));
    chatops.onEvent(
      event('StateExited', STATE.assess, {
        output: { assessment: { classification: 'table-full', summary: 'The table is full.' } },
      }),
    );
    const output = await chatops.requestApproval(payload);
    expect(questions[0]).toContain('"raise limits only" (or "alt")');
    expect(output).toMatchObject({
      decision: 'approved',
      actionIds: ['limits'],
      approver: { id: 'operator', via: 'terminal', basis: 'local-operator' },
    });
    const evidence = {
      location: join(outDir, 'inc-local-1'),
      archive: join(outDir, 'inc-local-1.tar.gz'),
      manifestSha256: 'd'.repeat(64),
      signature: null,
    };
    const notified = await chatops.notify({
      incident: payload.incident,
      execution: payload.execution,
      outcome: OUTCOMES.remediated,
      evidence,
    });
    expect(notified).toMatchObject({ channel: 'file', slack: 'posted' });
    await chatops.close();

    const files = (await readdir(join(outDir, 'slack'))).sort();
    const messages = await Promise.all(
      files.map(async (file) => ({
        file,
        body: JSON.parse(await readFile(join(outDir, 'slack', file), 'utf8')) as SlackMessage & {
          thread_ts?: string;
        },
      })),
    );
    expect(files.map((file) => file.replace(/^\d+-/, ''))).toEqual([
      'chat.postMessage.json', // opening
      'chat.postMessage.json', // Collect diagnostics
      'chat.postMessage.json', // Confirm the drops and plan
      'chat.postMessage.json', // the approval request
      'chat.update.json', // the request, settled
      'chat.postMessage.json', // who decided
      'chat.postMessage.json', // the outcome
    ]);
    for (const { body } of messages) expect(blockKitProblems(body)).toEqual([]);
    const [opening, ...replies] = messages.filter(({ file }) => file.endsWith('postMessage.json'));
    const root = (opening?.body as { ts?: string } | undefined)?.ts;
    expect(root).toEqual(expect.any(String));
    for (const reply of replies) expect(reply.body.thread_ts).toBe(root);
    const approval = messages[3]?.body;
    expect(approval?.blocks.some((block: Block) => block.type === 'actions')).toBe(true);
    const settled = messages[4]?.body;
    expect(settled?.blocks.some((block: Block) => block.type === 'actions')).toBe(false);
    expect(JSON.stringify(settled)).toContain('Approved in part');
    expect(JSON.stringify(messages)).not.toContain('local-task-token-x');

    const sns = JSON.parse(await readFile(join(outDir, 'notifications', 'sns-01.json'), 'utf8'));
    expect(sns.MessageAttributes.outcome).toEqual({ DataType: 'String', StringValue: 'remediated' });
    expect(summaryOf(sns.Message)).toMatchObject({
      evidence: {
        location: evidence.location,
        archive: evidence.archive,
        manifestSha256: evidence.manifestSha256,
        signedBy: null,
      },
    });
    // The digest is recorded in the Slack thread too, in the outcome message.
    expect(JSON.stringify(messages.at(-1)?.body)).toContain(evidence.manifestSha256);
  });
});

describe('local ChatOps with a workspace: the same endpoint code on this machine', () => {
  let slack: SlackRecorder;
  let outDir: string;
  let chatops: LocalChatops | undefined;

  beforeAll(async () => {
    slack = await startSlackRecorder();
    outDir = await mkdtemp(join(tmpdir(), 'ctr-chatops-slack-'));
  });
  afterEach(async () => {
    await chatops?.close();
  });
  afterAll(async () => {
    await slack.close();
    await rm(outDir, { recursive: true, force: true });
  });

  it('posts the request to Slack and resumes on a verified click from an approver only', async () => {
    const said: string[] = [];
    chatops = await startLocalChatops({
      outDir,
      env: {
        SLACK_BOT_TOKEN: SLACK.botToken,
        SLACK_SIGNING_SECRET: SLACK.signingSecret,
        SLACK_CHANNEL_ID: SLACK.channelId,
        SLACK_TEAM_ID: SLACK.teamId,
        SLACK_APP_ID: SLACK.appId,
        SLACK_APPROVER_USER_IDS: SLACK.approver,
        SLACK_API_BASE_URL: slack.baseUrl,
        SLACK_INTERACTIVITY_PORT: '0',
      },
      decision: 'prompt',
      ask: async () => {
        throw new Error('the terminal must not be asked when Slack decides');
      },
      say: (line) => said.push(line),
    });
    expect(chatops.mode).toBe('slack');
    const endpoint = chatops.endpoint ?? '';
    expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);

    const decided = chatops.requestApproval(approvalTaskPayload({ incidentId: 'inc-local-2' }));
    await expect.poll(() => slack.callsTo('chat.postMessage').length).toBe(2);
    const approval = slack.callsTo('chat.postMessage')[1];
    const buttons = ((approval?.args.blocks ?? []) as Block[]).find((block) => block.type === 'actions');
    const value = buttons?.type === 'actions' ? buttons.elements[0]?.value : undefined;
    const approvalId = String(value).split(':')[1] ?? '';
    const messageTs = String(approval?.answer?.ts);
    const post = async (userId: string) => {
      const request = signedForm(
        blockActionsPayload({ approvalId, userId, channelId: SLACK.channelId, messageTs }),
        { timestampSeconds: Math.floor(Date.now() / 1000) },
      );
      return (await fetch(endpoint, { method: 'POST', headers: request.headers, body: request.body })).status;
    };

    expect(await post(SLACK.bystander)).toBe(403);
    expect(await post(SLACK.approver)).toBe(200);
    await expect(decided).resolves.toMatchObject({
      decision: 'approved',
      approver: { id: SLACK.approver, via: 'slack' },
    });
    await expect.poll(() => slack.callsTo('chat.update').length).toBe(1);
    expect(said.some((line) => line.includes('not-allowed (403)'))).toBe(true);
  });
});
