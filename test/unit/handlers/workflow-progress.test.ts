import { gzipSync } from 'node:zlib';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudWatchLogsEvent, Context } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoApprovalStore } from '../../../functions/adapters/approval-store.js';
import { blockKitProblems, type SlackMessage } from '../../../functions/core/chatops/block-kit.js';
import { STATE } from '../../../functions/core/workflow/state-names.js';
import { type LocalDynamo, startLocalDynamo } from '../../support/dynalite.js';
import { handlerHarness } from '../../support/handler-harness.js';
import { SLACK } from '../../support/slack-payloads.js';
import { type SlackRecorder, startSlackRecorder } from '../../support/slack-recorder.js';

const BOT_TOKEN_ARN = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:slack-bot-token-AbCdEf';
const EXECUTION = 'arn:aws:states:eu-west-1:111122223333:execution:IncidentWorkflow:inc-progress-1';
const context = { awsRequestId: 'r', functionName: 'progress' } as unknown as Context;

const incident = {
  incidentId: 'inc-progress-1',
  host: 'i-0abc1234def567890',
  instanceId: 'i-0abc1234def567890',
  kind: 'table-full',
  mode: 'approve',
  openedAt: '2026-11-21T10:00:00.000Z',
  trigger: { netns: null, dropLines: 3, suppressed: 20, events: [] },
};

/** A record as Step Functions writes it to the execution log (level ALL, with execution data). */
function record(id: number, type: string, name: string, output: unknown) {
  return {
    id: String(id),
    type,
    details: { name, output: JSON.stringify(output), outputDetails: { truncated: false } },
    previous_event_id: String(id - 1),
    event_timestamp: String(Date.parse('2026-11-21T10:00:00Z') + id * 1000),
    execution_arn: EXECUTION,
    redrive_count: '0',
  };
}

function delivery(records: unknown[]): CloudWatchLogsEvent {
  const data = {
    messageType: 'DATA_MESSAGE',
    owner: '111122223333',
    logGroup: '/aws/vendedlogs/states/workflow',
    logStream: 'states/IncidentWorkflow/2026-11-21-10-00/abc',
    subscriptionFilters: ['conntrack-responder-slack-progress'],
    logEvents: records.map((entry, index) => ({
      id: String(index),
      timestamp: Date.now(),
      message: typeof entry === 'string' ? entry : JSON.stringify(entry),
    })),
  };
  return { awslogs: { data: gzipSync(JSON.stringify(data)).toString('base64') } };
}

describe('step lines in the incident thread, from the workflow execution log', () => {
  let dynamo: LocalDynamo;
  let slack: SlackRecorder;
  let store: DynamoApprovalStore;
  const { mocks, load } = handlerHarness({ secrets: SecretsManagerClient });
  const { secrets } = mocks;
  let progress: typeof import('../../../functions/handlers/workflow-progress.js');

  beforeAll(async () => {
    dynamo = await startLocalDynamo();
    const table = await dynamo.createIncidentTable('incidents');
    slack = await startSlackRecorder();
    progress = await load(
      {
        INCIDENT_TABLE_NAME: table,
        AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
        SLACK_CHANNEL_ID: SLACK.channelId,
        SLACK_TEAM_ID: SLACK.teamId,
        SLACK_APP_ID: SLACK.appId,
        SLACK_APPROVER_USER_IDS: SLACK.approver,
        SLACK_API_BASE_URL: slack.baseUrl,
        SLACK_BOT_TOKEN_SECRET_ARN: BOT_TOKEN_ARN,
      },
      () => import('../../../functions/handlers/workflow-progress.js'),
    );
    store = new DynamoApprovalStore(dynamo.client, table);
  });
  afterAll(async () => {
    await slack.close();
    await dynamo.close();
  });
  beforeEach(() => {
    slack.reset();
    secrets.on(GetSecretValueCommand, { SecretId: BOT_TOKEN_ARN }).resolves({ SecretString: SLACK.botToken });
  });

  it('opens the thread and posts one line per finished step, in order, ignoring everything else', async () => {
    const state = { incident, execution: { id: EXECUTION } };
    const result = await progress.handler(
      delivery([
        record(9, 'TaskStateExited', STATE.assess, {
          ...state,
          assessment: { classification: 'table-full', summary: 'The table is full.' },
        }),
        record(3, 'ParallelStateExited', STATE.collectDiagnostics, state),
        record(4, 'TaskStateEntered', STATE.assess, state),
        'START RequestId: not a record',
        record(12, 'TaskStateExited', 'Collect diagnostics: send collect-diagnostics', state),
      ]),
      context,
    );
    expect(result).toEqual({ records: 4, posted: 2, failed: 0 });
    const posts = slack.callsTo('chat.postMessage');
    expect(posts).toHaveLength(3);
    const [opening, first, second] = posts;
    expect(opening?.args.thread_ts).toBeUndefined();
    const root = String(opening?.answer?.ts);
    expect(first?.args.thread_ts).toBe(root);
    expect(second?.args.thread_ts).toBe(root);
    expect(JSON.stringify(first?.args.blocks)).toContain('Collect diagnostics');
    expect(JSON.stringify(second?.args.blocks)).toContain('table-full: The table is full.');
    for (const post of posts) expect(blockKitProblems(post.args as unknown as SlackMessage)).toEqual([]);
    expect(await store.getThread('inc-progress-1')).toMatchObject({ channel: SLACK.channelId, ts: root });
  });

  it('keeps one thread when two deliveries open it at once, taking back the extra opening message', async () => {
    const other = { ...incident, incidentId: 'inc-progress-2' };
    const state = { incident: other, execution: { id: EXECUTION } };
    await Promise.all([
      progress.handler(
        delivery([record(3, 'ParallelStateExited', STATE.collectDiagnostics, state)]),
        context,
      ),
      progress.handler(delivery([record(5, 'TaskStateExited', STATE.lookUpInstance, state)]), context),
    ]);
    const thread = await store.getThread('inc-progress-2');
    const openings = slack.callsTo('chat.postMessage').filter((call) => call.args.thread_ts === undefined);
    const deleted = slack.callsTo('chat.delete');
    expect(openings.length - deleted.length).toBe(1);
    for (const call of deleted) expect(call.args.ts).not.toBe(thread?.ts);
    const replies = slack.callsTo('chat.postMessage').filter((call) => call.args.thread_ts !== undefined);
    expect(replies.map((call) => call.args.thread_ts)).toEqual([thread?.ts, thread?.ts]);
  });

  it('logs and counts a Slack failure instead of failing the delivery (no retried, repeated lines)', async () => {
    slack.script('chat.postMessage', { slackError: 'channel_not_found' });
    const result = await progress.handler(
      delivery([
        record(3, 'ParallelStateExited', STATE.collectDiagnostics, {
          incident: { ...incident, incidentId: 'inc-progress-3' },
        }),
      ]),
      context,
    );
    expect(result).toEqual({ records: 1, posted: 0, failed: 1 });
  });
});
