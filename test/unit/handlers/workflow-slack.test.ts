import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishCommand, type PublishCommandInput, SNSClient } from '@aws-sdk/client-sns';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoApprovalStore } from '../../../functions/adapters/approval-store.js';
import type { Block } from '../../../functions/core/chatops/block-kit.js';
import { summaryOf } from '../../../functions/core/chatops/notification.js';
import { OUTCOMES } from '../../../functions/core/workflow/outcome.js';
import { approvalTaskPayload } from '../../support/approval-task.js';
import { type LocalDynamo, startLocalDynamo } from '../../support/dynalite.js';
import { handlerHarness } from '../../support/handler-harness.js';
import { SLACK } from '../../support/slack-payloads.js';
import { type SlackRecorder, startSlackRecorder } from '../../support/slack-recorder.js';

const TOPIC = 'arn:aws:sns:eu-west-1:111122223333:conntrack-responder';
const BOT_TOKEN_ARN = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:slack-bot-token-AbCdEf';
const context = {
  awsRequestId: 'req-1',
  functionName: 'workflow',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:111122223333:function:workflow',
  getRemainingTimeInMillis: () => 30_000,
} as unknown as Context;

/**
 * The workflow's Slack-facing steps with Slack configured: "Wait for approval" posts the request in
 * the incident's thread, "Notify" posts the outcome there (and closes an approval nobody decided),
 * SNS always gets the outcome first, and a Slack rate limit or outage never stops it. DynamoDB is
 * dynalite, Slack a local recorder, SNS and Secrets Manager faked at the SDK boundary.
 */
const DIGEST = 'e'.repeat(64);

describe('workflow handlers with Slack', () => {
  let dynamo: LocalDynamo;
  let slack: SlackRecorder;
  let store: DynamoApprovalStore;
  let published: PublishCommandInput[];
  const { mocks, load } = handlerHarness({ sns: SNSClient, secrets: SecretsManagerClient });
  const { sns, secrets } = mocks;
  let handlers: {
    requestApproval: typeof import('../../../functions/handlers/workflow/request-approval.js');
    notify: typeof import('../../../functions/handlers/workflow/notify.js');
  };

  beforeAll(async () => {
    dynamo = await startLocalDynamo();
    const table = await dynamo.createIncidentTable('incidents');
    slack = await startSlackRecorder();
    handlers = await load(
      {
        INCIDENT_TABLE_NAME: table,
        NOTIFICATION_TOPIC_ARN: TOPIC,
        EVIDENCE_BUCKET_NAME: 'evidence-bucket',
        AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
        SLACK_CHANNEL_ID: SLACK.channelId,
        SLACK_TEAM_ID: SLACK.teamId,
        SLACK_APP_ID: SLACK.appId,
        SLACK_APPROVER_USER_IDS: SLACK.approver,
        SLACK_API_BASE_URL: slack.baseUrl,
        SLACK_BOT_TOKEN_SECRET_ARN: BOT_TOKEN_ARN,
      },
      async () => ({
        requestApproval: await import('../../../functions/handlers/workflow/request-approval.js'),
        notify: await import('../../../functions/handlers/workflow/notify.js'),
      }),
    );
    store = new DynamoApprovalStore(dynamo.client, table);
  });
  afterAll(async () => {
    await slack.close();
    await dynamo.close();
  });
  beforeEach(() => {
    slack.reset();
    published = [];
    sns.on(PublishCommand).callsFake((input: PublishCommandInput) => {
      published.push(input);
      return { MessageId: `msg-${published.length}` };
    });
    secrets.on(GetSecretValueCommand, { SecretId: BOT_TOKEN_ARN }).resolves({ SecretString: SLACK.botToken });
  });

  const incidentOf = (payload: Record<string, unknown>) => payload.incident as { incidentId: string };

  it('posts the approval request in a new incident thread, announces it on SNS, keeps the token server side', async () => {
    const payload = approvalTaskPayload({ incidentId: 'inc-slack-1', taskToken: 'TOKEN-STAYS-HERE' });
    const opened = await handlers.requestApproval.handler(payload, context);

    const posts = slack.callsTo('chat.postMessage');
    expect(posts).toHaveLength(2);
    const [opening, approval] = posts;
    expect(opening?.args.thread_ts).toBeUndefined();
    expect(approval?.args).toMatchObject({ channel: SLACK.channelId, reply_broadcast: true });
    expect(approval?.args.thread_ts).toEqual(expect.any(String));
    const blocks = approval?.args.blocks as Block[];
    expect(blocks.find((block) => block.type === 'actions')).toBeDefined();
    expect(JSON.stringify(slack.calls)).not.toContain('TOKEN-STAYS-HERE');

    const record = await store.get(opened.approvalId);
    expect(record).toMatchObject({ status: 'pending', incidentId: 'inc-slack-1' });
    expect(record?.message?.channel).toBe(SLACK.channelId);
    expect(opened.slack).toEqual({ channel: SLACK.channelId, ts: record?.message?.ts });

    expect(published).toHaveLength(1);
    expect(published[0]?.MessageAttributes).toMatchObject({
      outcome: { DataType: 'String', StringValue: 'approval-needed' },
      account: { DataType: 'String', StringValue: '111122223333' },
    });
    expect(JSON.stringify(published)).not.toContain('TOKEN-STAYS-HERE');
  });

  it('when nobody decided in time: SNS first, then the approval message closed and the thread told; late clicks refused', async () => {
    const payload = approvalTaskPayload({ incidentId: 'inc-slack-2' });
    const opened = await handlers.requestApproval.handler(payload, context);
    const posted = await store.get(opened.approvalId);
    slack.reset();
    published.length = 0;

    const state = {
      incident: payload.incident,
      execution: payload.execution,
      assessment: payload.assessment,
      gate: payload.gate,
      error: { Error: 'States.Timeout', Cause: 'Task timed out' },
      outcome: OUTCOMES.approvalTimedOut,
      // What the evidence step (which runs before notify) returned.
      evidence: {
        location: 's3://evidence-bucket/incidents/inc-slack-2/',
        archive: 's3://evidence-bucket/incidents/inc-slack-2.tar.gz',
        manifestSha256: DIGEST,
        signature: null,
        incidentRecord: 'closed',
        problems: [],
      },
    };
    const result = await handlers.notify.handler(state, context);
    expect(result).toMatchObject({ channel: 'sns', messageId: 'msg-1', slack: 'posted' });

    expect(published).toHaveLength(1);
    const message = published[0];
    expect(message?.MessageAttributes).toMatchObject({
      severity: { StringValue: 'critical' },
      outcome: { StringValue: 'escalated' },
      instance: { StringValue: 'i-0abc1234def567890' },
      account: { StringValue: '111122223333' },
    });
    expect(summaryOf(String(message?.Message))).toMatchObject({
      outcome: 'escalated',
      evidence: {
        location: 's3://evidence-bucket/incidents/inc-slack-2/',
        archive: 's3://evidence-bucket/incidents/inc-slack-2.tar.gz',
        manifestSha256: DIGEST,
        signedBy: null,
      },
    });
    expect(String(message?.Message)).toContain(`Manifest sha256: ${DIGEST}`);

    const [update] = slack.callsTo('chat.update');
    expect(update?.args).toMatchObject({ channel: posted?.message?.channel, ts: posted?.message?.ts });
    expect(JSON.stringify(update?.args.blocks)).toContain('No decision');
    expect(((update?.args.blocks ?? []) as Block[]).some((block) => block.type === 'actions')).toBe(false);
    const replies = slack.callsTo('chat.postMessage');
    expect(replies.map((call) => call.args.thread_ts)).toEqual([
      posted?.message?.threadTs,
      posted?.message?.threadTs,
    ]);
    expect(JSON.stringify(replies[1]?.args.blocks)).toContain('Escalated');
    expect(JSON.stringify(replies[1]?.args.blocks)).toContain(DIGEST);
    expect(replies[1]?.args.reply_broadcast).toBe(true);
    expect((await store.get(opened.approvalId))?.status).toBe('expired');
  });

  it('waits out a Slack rate limit and still posts the outcome', async () => {
    const payload = approvalTaskPayload({ incidentId: 'inc-slack-3' });
    slack.script('chat.postMessage', { status: 429, retryAfter: '1' });
    const result = await handlers.notify.handler(
      { incident: payload.incident, execution: payload.execution, outcome: OUTCOMES.remediated },
      context,
    );
    expect(result.slack).toBe('posted');
    expect(published).toHaveLength(1);
    expect(slack.callsTo('chat.postMessage').length).toBeGreaterThanOrEqual(3);
  });

  it('still publishes to SNS when Slack answers errors, and says so instead of failing', async () => {
    const payload = approvalTaskPayload({ incidentId: 'inc-slack-4' });
    slack.script('chat.postMessage', { status: 503, body: 'down' });
    const result = await handlers.notify.handler(
      { incident: payload.incident, execution: payload.execution, outcome: OUTCOMES.rolledBack },
      context,
    );
    expect(published).toHaveLength(1);
    expect(result.messageId).toBe('msg-1');
    expect(result.slack).toEqual({ error: expect.stringMatching(/chat\.postMessage failed: http_503/) });
  });

  it('still publishes to SNS during a Slack outage (connection refused)', async () => {
    await slack.close();
    const payload = approvalTaskPayload({ incidentId: 'inc-slack-5' });
    const result = await handlers.notify.handler(
      { incident: payload.incident, execution: payload.execution, outcome: OUTCOMES.remediated },
      context,
    );
    expect(published).toHaveLength(1);
    expect(published[0]?.TopicArn).toBe(TOPIC);
    expect(result.slack).toEqual({ error: expect.stringMatching(/connection_refused/) });
    expect(incidentOf(payload).incidentId).toBe('inc-slack-5');
  });
});
