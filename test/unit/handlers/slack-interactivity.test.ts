import { randomUUID } from 'node:crypto';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendTaskSuccessCommand, SFNClient, SFNServiceException, TaskTimedOut } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoApprovalStore } from '../../../functions/adapters/approval-store.js';
import { breakerControl } from '../../../functions/adapters/breaker-control.js';
import { FOLLOW_UP_FIELD } from '../../../functions/adapters/follow-up-invoker.js';
import { SlackWebApi } from '../../../functions/adapters/slack-web-api.js';
import type { ApprovalRecord } from '../../../functions/core/chatops/approval.js';
import { approvalTaskFrom } from '../../../functions/core/chatops/approval-task.js';
import type { Block } from '../../../functions/core/chatops/block-kit.js';
import type { FunctionUrlEvent } from '../../../functions/core/chatops/http.js';
import { IncidentChat } from '../../../functions/core/chatops/incident-chat.js';
import type { FollowUp } from '../../../functions/core/chatops/interactivity.js';
import {
  type FunctionUrlServer,
  serveFunctionUrl,
} from '../../../functions/local/chatops/function-url-server.js';
import { approvalTaskPayload } from '../../support/approval-task.js';
import { type LocalDynamo, startLocalDynamo } from '../../support/dynalite.js';
import { handlerHarness } from '../../support/handler-harness.js';
import {
  blockActionsPayload,
  type ClickOptions,
  SLACK,
  signedFields,
  signedForm,
  slashCommandBody,
} from '../../support/slack-payloads.js';
import { type SlackRecorder, startSlackRecorder } from '../../support/slack-recorder.js';

const SIGNING_SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:slack-signing-AbCdEf';
const BOT_TOKEN_ARN = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:slack-bot-token-AbCdEf';
const FUNCTION_NAME = 'conntrack-responder-slack-interactivity';

const context = {
  functionName: FUNCTION_NAME,
  functionVersion: '$LATEST',
  invokedFunctionArn: `arn:aws:lambda:eu-west-1:111122223333:function:${FUNCTION_NAME}`,
  memoryLimitInMB: '256',
  awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
  logGroupName: `/aws/lambda/${FUNCTION_NAME}`,
  logStreamName: '2026/11/21/[$LATEST]abc',
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 10_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
} satisfies Context;

const now = () => Math.floor(Date.now() / 1000);

/**
 * The interactivity endpoint end to end, over real HTTP on loopback: the production handler (the
 * module Lambda loads) behind the product's Function URL adapter, signed requests from a test
 * client, approvals on a real DynamoDB-compatible server (dynalite), Slack's Web API on a local
 * recorder, and only the AWS services without a local stand-in (Step Functions, Lambda's async
 * invoke, Secrets Manager) faked at the SDK boundary.
 */
describe('the Slack interactivity endpoint over HTTP', () => {
  let dynamo: LocalDynamo;
  let slack: SlackRecorder;
  let endpoint: FunctionUrlServer;
  let store: DynamoApprovalStore;
  let chat: IncidentChat;
  let tableName: string;
  let handler: typeof import('../../../functions/handlers/slack-interactivity.js');
  const { mocks, load } = handlerHarness({
    stepFunctions: SFNClient,
    lambda: LambdaClient,
    secrets: SecretsManagerClient,
  });
  const { stepFunctions, lambda, secrets } = mocks;

  beforeAll(async () => {
    dynamo = await startLocalDynamo();
    const table = await dynamo.createIncidentTable('incidents');
    tableName = table;
    slack = await startSlackRecorder();
    handler = await load(
      {
        AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
        AWS_LAMBDA_FUNCTION_NAME: FUNCTION_NAME,
        INCIDENT_TABLE_NAME: table,
        SLACK_CHANNEL_ID: SLACK.channelId,
        SLACK_TEAM_ID: SLACK.teamId,
        SLACK_APP_ID: SLACK.appId,
        SLACK_APPROVER_USER_IDS: `${SLACK.approver},${SLACK.secondApprover}`,
        SLACK_APPROVER_USER_GROUP_ID: SLACK.userGroupId,
        SLACK_API_BASE_URL: slack.baseUrl,
        SLACK_SIGNING_SECRET_ARN: SIGNING_SECRET_ARN,
        SLACK_BOT_TOKEN_SECRET_ARN: BOT_TOKEN_ARN,
      },
      () => import('../../../functions/handlers/slack-interactivity.js'),
    );
    endpoint = await serveFunctionUrl((event) => handler.handler(event, context) as never);
    store = new DynamoApprovalStore(dynamo.client, table);
    chat = new IncidentChat({
      slack: new SlackWebApi({ baseUrl: slack.baseUrl, token: async () => SLACK.botToken }),
      threads: store,
      approvals: store,
      channel: SLACK.channelId,
      now: () => new Date(),
      newApprovalId: randomUUID,
    });
  });

  afterAll(async () => {
    await endpoint.close();
    await slack.close();
    await dynamo.close();
  });

  beforeEach(() => {
    slack.reset();
    stepFunctions.on(SendTaskSuccessCommand).resolves({});
    lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
    secrets
      .on(GetSecretValueCommand, { SecretId: SIGNING_SECRET_ARN })
      .resolves({ SecretString: SLACK.signingSecret });
    secrets.on(GetSecretValueCommand, { SecretId: BOT_TOKEN_ARN }).resolves({ SecretString: SLACK.botToken });
  });

  /** An approval as the workflow's "Wait for approval" step leaves it: stored, then posted in Slack. */
  async function requestApproval(
    options: { taskToken?: string; expired?: boolean } = {},
  ): Promise<ApprovalRecord> {
    const incidentId = `inc-${randomUUID().slice(0, 8)}`;
    const task = approvalTaskFrom(approvalTaskPayload({ incidentId, taskToken: options.taskToken }));
    const requester = options.expired
      ? new IncidentChat({
          slack: new SlackWebApi({ baseUrl: slack.baseUrl, token: async () => SLACK.botToken }),
          threads: store,
          approvals: store,
          channel: SLACK.channelId,
          now: () => new Date(Date.now() - 2 * 3600_000),
          newApprovalId: randomUUID,
        })
      : chat;
    const { record } = await requester.requestApproval(task);
    slack.reset();
    return record;
  }

  function click(record: ApprovalRecord, options: Partial<ClickOptions> = {}) {
    return blockActionsPayload({
      approvalId: record.approvalId,
      channelId: record.message?.channel,
      messageTs: record.message?.ts,
      ...options,
    });
  }

  async function send(
    parts: { headers: Record<string, string>; body: Buffer },
    tamper?: (body: Buffer) => Buffer,
  ): Promise<{ status: number; body: string }> {
    const response = await fetch(endpoint.url, {
      method: 'POST',
      headers: parts.headers,
      body: tamper ? tamper(parts.body) : parts.body,
    });
    return { status: response.status, body: await response.text() };
  }

  const signed = (payload: unknown, options: { secret?: string; timestampSeconds?: number } = {}) =>
    signedForm(payload, { secret: options.secret, timestampSeconds: options.timestampSeconds ?? now() });

  function followUps(): FollowUp[] {
    return lambda.commandCalls(InvokeCommand).map((call) => {
      expect(call.args[0].input).toMatchObject({ FunctionName: FUNCTION_NAME, InvocationType: 'Event' });
      const payload = JSON.parse(Buffer.from(call.args[0].input.Payload as Uint8Array).toString('utf8'));
      return payload[FOLLOW_UP_FIELD] as FollowUp;
    });
  }

  async function expectUnchanged(record: ApprovalRecord) {
    const stored = await store.get(record.approvalId);
    expect(stored?.status).toBe('pending');
    expect(stored?.decision).toBeNull();
    expect(stepFunctions.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
  }

  it('resumes the workflow exactly once with five concurrent clicks, then shows who decided and when', async () => {
    const token = `AQCEAAAAKgAAAAMAAAAAAAAAA-${randomUUID()}`;
    const record = await requestApproval({ taskToken: token });
    const clicks = [
      SLACK.approver,
      SLACK.secondApprover,
      SLACK.approver,
      SLACK.secondApprover,
      SLACK.approver,
    ];
    const responses = await Promise.all(clicks.map((userId) => send(signed(click(record, { userId })))));

    expect(responses.map((response) => response.status).sort()).toEqual([200, 403, 403, 403, 403]);
    const calls = stepFunctions.commandCalls(SendTaskSuccessCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args[0].input.taskToken).toBe(token);
    const output = JSON.parse(String(calls[0]?.args[0].input.output));
    expect(output).toMatchObject({
      decision: 'approved',
      approvalId: record.approvalId,
      approver: { via: 'slack', teamId: SLACK.teamId, basis: 'allowlist' },
    });
    expect([SLACK.approver, SLACK.secondApprover]).toContain(output.approver.id);
    for (const response of responses) expect(response.body).not.toContain(token);

    const stored = await store.get(record.approvalId);
    expect(stored?.status).toBe('decided');
    expect(stored?.decision?.approver.id).toBe(output.approver.id);

    // One follow-up settles the message; the four late clickers are told privately.
    const queued = followUps();
    expect(queued.filter((followUp) => followUp.kind === 'settle-approval')).toHaveLength(1);
    expect(queued.filter((followUp) => followUp.kind === 'tell-user')).toHaveLength(4);

    // Lambda delivers the follow-up to the same function, asynchronously.
    const settle = queued.find((followUp) => followUp.kind === 'settle-approval');
    await handler.handler({ [FOLLOW_UP_FIELD]: settle } as never, context);
    const [update] = slack.callsTo('chat.update');
    expect(update?.args).toMatchObject({ channel: record.message?.channel, ts: record.message?.ts });
    const blocks = update?.args.blocks as Block[];
    expect(blocks.some((block) => block.type === 'actions')).toBe(false);
    expect(JSON.stringify(blocks)).toContain(`by <@${output.approver.id}> on <!date^`);
    const [reply] = slack.callsTo('chat.postMessage');
    expect(reply?.args.thread_ts).toBe(record.message?.threadTs);
  });

  it('the safer alternative approves only its subset', async () => {
    const record = await requestApproval();
    expect(record.alternative?.actionIds).toEqual(['limits']);
    const response = await send(signed(click(record, { decision: 'alternative' })));
    expect(response.status).toBe(200);
    const output = JSON.parse(
      String(stepFunctions.commandCalls(SendTaskSuccessCommand)[0]?.args[0].input.output),
    );
    expect(output).toMatchObject({ decision: 'approved', actionIds: ['limits'], choice: 'alternative' });
  });

  it('a rejection resumes the workflow with the decision "rejected"', async () => {
    const record = await requestApproval();
    expect((await send(signed(click(record, { decision: 'reject' })))).status).toBe(200);
    const output = JSON.parse(
      String(stepFunctions.commandCalls(SendTaskSuccessCommand)[0]?.args[0].input.output),
    );
    expect(output.decision).toBe('rejected');
  });

  it('a member of the approvers user group may decide (membership read through the Web API)', async () => {
    const record = await requestApproval();
    slack.groupMembers = [SLACK.groupMember];
    expect((await send(signed(click(record, { userId: SLACK.groupMember })))).status).toBe(200);
    expect(slack.callsTo('usergroups.users.list')[0]?.args).toMatchObject({ usergroup: SLACK.userGroupId });
  });

  describe('refuses, and changes nothing', () => {
    it('401: a tampered body', async () => {
      const record = await requestApproval();
      const response = await send(signed(click(record, { decision: 'reject' })), (body) =>
        Buffer.from(body.toString().replace('reject', 'approve').replace('reject', 'approve')),
      );
      expect(response.status).toBe(401);
      expect(JSON.parse(response.body)).toMatchObject({ error: 'bad-signature' });
      await expectUnchanged(record);
      expect(followUps()).toEqual([]);
    });

    it('401: a request signed with another secret', async () => {
      const record = await requestApproval();
      const response = await send(signed(click(record), { secret: 'not-the-signing-secret' }));
      expect(response.status).toBe(401);
      await expectUnchanged(record);
    });

    it.each([
      ['301 s old', -301],
      ['301 s ahead', 301],
    ])('401: a timestamp %s', async (_label, offset) => {
      const record = await requestApproval();
      const response = await send(signed(click(record), { timestampSeconds: now() + offset }));
      expect(response.status).toBe(401);
      expect(JSON.parse(response.body).detail).toMatch(
        offset < 0 ? /timestamp-too-old/ : /timestamp-in-the-future/,
      );
      await expectUnchanged(record);
    });

    it('403: a user who is not an approver (told privately why)', async () => {
      const record = await requestApproval();
      const response = await send(signed(click(record, { userId: SLACK.bystander })));
      expect(response.status).toBe(403);
      await expectUnchanged(record);
      expect(followUps()).toEqual([
        expect.objectContaining({
          kind: 'tell-user',
          userId: SLACK.bystander,
          channelId: record.message?.channel,
        }),
      ]);
    });

    it('403: a click from another workspace', async () => {
      const record = await requestApproval();
      const response = await send(signed(click(record, { teamId: SLACK.foreignTeamId })));
      expect(response.status).toBe(403);
      expect(JSON.parse(response.body).detail).toMatch(/foreign-team/);
      await expectUnchanged(record);
    });

    it('403: another app', async () => {
      const record = await requestApproval();
      expect((await send(signed(click(record, { appId: 'A0OTHERAPP' })))).status).toBe(403);
      await expectUnchanged(record);
    });

    it('403: a button that is not on the approval message', async () => {
      const record = await requestApproval();
      expect((await send(signed(click(record, { messageTs: '1700000000.123456' })))).status).toBe(403);
      await expectUnchanged(record);
    });

    it('403: a replayed request (the same signed click sent again) acts once', async () => {
      const record = await requestApproval();
      const request = signed(click(record));
      expect((await send(request)).status).toBe(200);
      const replay = await send(request);
      expect(replay.status).toBe(403);
      expect(JSON.parse(replay.body)).toMatchObject({ error: 'already-decided' });
      expect(stepFunctions.commandCalls(SendTaskSuccessCommand)).toHaveLength(1);
    });

    it('403: an expired approval', async () => {
      const record = await requestApproval({ expired: true });
      const response = await send(signed(click(record)));
      expect(response.status).toBe(403);
      expect(JSON.parse(response.body)).toMatchObject({ error: 'expired' });
      await expectUnchanged(record);
    });

    it('404: an approval id that does not exist', async () => {
      const record = await requestApproval();
      const response = await send(signed(click({ ...record, approvalId: randomUUID() })));
      expect(response.status).toBe(404);
      await expectUnchanged(record);
    });
  });

  it('403 and closed when Step Functions says the task already timed out', async () => {
    const record = await requestApproval();
    stepFunctions
      .on(SendTaskSuccessCommand)
      .rejects(new TaskTimedOut({ message: 'Task Timed Out', $metadata: {} }));
    const response = await send(signed(click(record)));
    expect(response.status).toBe(403);
    expect((await store.get(record.approvalId))?.status).toBe('expired');
    expect(followUps().map((followUp) => followUp.kind)).toEqual(['settle-approval']);
  });

  it('503 and the decision undone when Step Functions is unavailable; the next click works', async () => {
    const record = await requestApproval();
    stepFunctions
      .on(SendTaskSuccessCommand)
      .rejectsOnce(
        new SFNServiceException({
          name: 'ServiceUnavailable',
          message: 'try again',
          $fault: 'server',
          $metadata: {},
        }),
      )
      .resolves({});
    const first = await send(signed(click(record)));
    expect(first.status).toBe(503);
    expect((await store.get(record.approvalId))?.status).toBe('pending');
    const second = await send(signed(click(record)));
    expect(second.status).toBe(200);
    expect((await store.get(record.approvalId))?.status).toBe('decided');
  });

  it('answers a base64-encoded body (as Function URLs deliver forms) and a plain one alike', async () => {
    const record = await requestApproval();
    const parts = signed(click(record));
    const event: FunctionUrlEvent = {
      version: '2.0',
      rawPath: '/',
      headers: parts.headers,
      body: parts.body.toString('utf8'),
      isBase64Encoded: false,
      requestContext: { http: { method: 'POST', path: '/' } },
    };
    const result = (await handler.handler(event as never, context)) as { statusCode: number };
    expect(result.statusCode).toBe(200);
  });

  describe('the fleet breaker from Slack (/conntrack-responder breaker …)', () => {
    const breaker = () => breakerControl(DynamoDBDocumentClient.from(dynamo.client), tableName);
    const command = (
      text: string,
      options: { userId?: string; secret?: string; timestampSeconds?: number } = {},
    ) =>
      signedFields(slashCommandBody({ text, ...(options.userId ? { userId: options.userId } : {}) }), {
        secret: options.secret,
        timestampSeconds: options.timestampSeconds ?? now(),
      });

    it('an approver resets an open breaker, the channel is told, the audit names the Slack user', async () => {
      await breaker().open({ by: 'test', reason: 'a storm' });
      const response = await send(command('breaker reset the storm is over'));
      expect(response.status).toBe(200);
      const body = JSON.parse(response.body);
      expect(body.response_type).toBe('in_channel');
      expect(body.text).toContain(`<@${SLACK.approver}> *reset* the fleet breaker`);
      const status = await breaker().status();
      expect(status.breaker.status).toBe('closed');
      const audit = await DynamoDBDocumentClient.from(dynamo.client).send(
        new QueryCommand({
          TableName: tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :reset)',
          ExpressionAttributeValues: { ':pk': 'guardrail#breaker', ':reset': 'reset#' },
        }),
      );
      expect(audit.Items?.at(-1)).toMatchObject({
        resetBy: `slack:${SLACK.approver} (alice)`,
        resetReason: 'the storm is over',
      });
    });

    it('shows the status privately', async () => {
      const response = await send(command('breaker status'));
      expect(response.status).toBe(200);
      expect(JSON.parse(response.body)).toMatchObject({
        response_type: 'ephemeral',
        text: expect.stringMatching(/breaker is \*(open|closed)\*/),
      });
    });

    it('refuses a non-approver privately, and the breaker stays open', async () => {
      await breaker().open({ by: 'test', reason: 'a storm' });
      const response = await send(command('breaker reset let me', { userId: SLACK.bystander }));
      expect(response.status).toBe(200);
      expect(JSON.parse(response.body)).toMatchObject({
        response_type: 'ephemeral',
        text: expect.stringContaining('Only the approvers'),
      });
      expect((await breaker().status()).breaker.status).toBe('open');
    });

    it('401 for a tampered or stale command, and the breaker stays open', async () => {
      await breaker().open({ by: 'test', reason: 'a storm' });
      const tampered = await send(command('breaker status'), (body) =>
        Buffer.from(body.toString().replace('status', 'reset+now')),
      );
      expect(tampered.status).toBe(401);
      expect((await send(command('breaker reset old', { timestampSeconds: now() - 301 }))).status).toBe(401);
      expect((await breaker().status()).breaker.status).toBe('open');
    });

    it('asks for a reason, and explains the command otherwise', async () => {
      expect(JSON.parse((await send(command('breaker reset'))).body).text).toContain('Say why');
      expect(JSON.parse((await send(command('hello'))).body).text).toContain('breaker status');
      expect((await breaker().status()).breaker.status).toBe('open');
    });
  });
});
