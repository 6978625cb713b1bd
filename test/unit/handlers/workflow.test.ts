import { createHash } from 'node:crypto';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetObjectCommand, PutObjectCommand, type PutObjectCommandInput, S3Client } from '@aws-sdk/client-s3';
import { GetExecutionHistoryCommand, SFNClient } from '@aws-sdk/client-sfn';
import { PublishCommand, type PublishCommandInput, SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { verifyBundleFiles } from '../../../functions/core/evidence/manifest.js';
import { resolvePolicy } from '../../../functions/core/plan/index.js';
import { assessIncident } from '../../../functions/core/workflow/assess.js';
import { gateIncident } from '../../../functions/core/workflow/gate.js';
import { OUTCOMES } from '../../../functions/core/workflow/outcome.js';
import { type LocalDynamo, startLocalDynamo } from '../../support/dynalite.js';
import { handlerHarness } from '../../support/handler-harness.js';
import { ReportBuilder } from '../../support/report-builder.js';

/**
 * The workflow's AWS-facing handlers: DynamoDB is a real local server (dynalite); SNS, S3 and
 * Step Functions are faked at the SDK client boundary.
 */

const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:conntrack-responder';
const BUCKET = 'evidence-bucket';
const EXECUTION = 'arn:aws:states:eu-west-1:123456789012:execution:Incident:i-0abc-full-20261121T1000Z';
const context = {
  awsRequestId: 'req-1',
  functionName: 'workflow',
  getRemainingTimeInMillis: () => 30_000,
} as unknown as Context;

const report = () =>
  ReportBuilder.healthy()
    .table({ max: 262_144, count: 262_144 })
    .sysctl('tcp_timeout_time_wait', 30)
    .states({ 'tcp TIME_WAIT': 200_000, 'tcp ESTABLISHED': 62_144 })
    .localPort('tcp', 8080, 210_000, 198_000)
    .listener('tcp', 8080, 'nginx')
    .drops(2_500)
    .build();

const incident = {
  incidentId: 'i-0abc-full-20261121T1000Z',
  host: 'i-0abc12345678',
  instanceId: 'i-0abc12345678',
  kind: 'table-full',
  mode: 'auto',
  openedAt: '2026-11-21T10:00:00.000Z',
  trigger: {
    logGroup: '/conntrack-responder/kernel',
    logStream: 'i-0abc12345678',
    netns: '4026532177',
    dropLines: 3,
    suppressed: 20,
    events: [
      {
        id: '1',
        timestamp: Date.parse('2026-11-21T09:59:58Z'),
        message: 'nf_conntrack: table full, dropping packet',
      },
    ],
  },
};
const before = { commandId: 'cmd-before', status: 'Success', stdout: JSON.stringify(report()), stderr: '' };
const settings = { policy: resolvePolicy({}), soakSeconds: 60 };
const assessment = assessIncident({ incident, diagnostics: before }, settings);
const gate = gateIncident({ incident, assessment }, settings);

describe('workflow handlers', () => {
  let dynamo: LocalDynamo;
  let documents: DynamoDBDocumentClient;
  let tableName: string;
  const { mocks, load } = handlerHarness({
    sns: SNSClient,
    s3: S3Client,
    stepFunctions: SFNClient,
    eventBridge: EventBridgeClient,
  });
  const { sns, s3, stepFunctions, eventBridge } = mocks;
  let published: PublishCommandInput[];
  let objects: Map<string, PutObjectCommandInput>;
  let handlers: {
    requestApproval: typeof import('../../../functions/handlers/workflow/request-approval.js');
    notify: typeof import('../../../functions/handlers/workflow/notify.js');
    writeEvidence: typeof import('../../../functions/handlers/workflow/write-evidence.js');
  };

  beforeAll(async () => {
    dynamo = await startLocalDynamo();
    documents = DynamoDBDocumentClient.from(dynamo.client);
    tableName = await dynamo.createIncidentTable('workflow-incidents');
    handlers = await load(
      {
        INCIDENT_TABLE_NAME: tableName,
        NOTIFICATION_TOPIC_ARN: TOPIC,
        EVIDENCE_BUCKET_NAME: BUCKET,
        AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      },
      async () => ({
        requestApproval: await import('../../../functions/handlers/workflow/request-approval.js'),
        notify: await import('../../../functions/handlers/workflow/notify.js'),
        writeEvidence: await import('../../../functions/handlers/workflow/write-evidence.js'),
      }),
    );
  });
  afterAll(async () => {
    await dynamo.close();
  });
  beforeEach(() => {
    published = [];
    objects = new Map();
    // The lifecycle events: test/unit/handlers/lifecycle-events.test.ts checks them.
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [] });
    sns.on(PublishCommand).callsFake((input: PublishCommandInput) => {
      published.push(input);
      return { MessageId: `msg-${published.length}` };
    });
    s3.on(PutObjectCommand).callsFake((input: PutObjectCommandInput) => {
      objects.set(String(input.Key), input);
      return {};
    });
    s3.on(GetObjectCommand).rejects(new Error('the handler never reads back'));
  });

  it('stores the task token under a new approval id and announces the request without it', async () => {
    const result = await handlers.requestApproval.handler(
      {
        taskToken: 'AAAA-task-token-that-must-stay-server-side',
        timeoutSeconds: 1800,
        execution: { id: EXECUTION },
        incident,
        assessment,
        gate,
        diagnostics: before,
      },
      context,
    );
    const stored = await documents.send(
      new GetCommand({ TableName: tableName, Key: { pk: `approval#${result.approvalId}`, sk: 'approval' } }),
    );
    expect(stored.Item).toMatchObject({
      status: 'pending',
      taskToken: 'AAAA-task-token-that-must-stay-server-side',
      incidentId: incident.incidentId,
      approvalExpiresAt: result.expiresAt,
    });
    expect(stored.Item?.expiresAt).toBeGreaterThan(Date.parse(result.expiresAt) / 1000);
    expect(published).toHaveLength(1);
    expect(JSON.stringify(published[0])).not.toContain('task-token');
    expect(published[0]?.Message).toContain(result.approvalId);
    expect(published[0]?.MessageAttributes?.outcome).toEqual({
      DataType: 'String',
      StringValue: 'approval-needed',
    });
  });

  it('never reuses an approval id (conditional write)', async () => {
    const { DynamoApprovalStore } = await import('../../../functions/adapters/approval-store.js');
    const { newApprovalRecord } = await import('../../../functions/core/chatops/approval.js');
    const store = new DynamoApprovalStore(dynamo.client, tableName);
    await documents.send(
      new PutCommand({ TableName: tableName, Item: { pk: 'approval#taken', sk: 'approval' } }),
    );
    const record = newApprovalRecord({
      approvalId: 'taken',
      incidentId: incident.incidentId,
      instanceId: incident.instanceId,
      executionId: EXECUTION,
      now: new Date(),
      timeoutSeconds: 60,
      actions: [],
      alternative: null,
    });
    await expect(store.create(record, 't')).rejects.toThrow(/conditional request failed/i);
  });

  it('publishes the outcome with filterable attributes and an ASCII subject', async () => {
    const result = await handlers.notify.handler(
      { incident, execution: { id: EXECUTION }, outcome: OUTCOMES.dryRun, assessment, gate },
      context,
    );
    expect(result).toMatchObject({ channel: 'sns', messageId: 'msg-1' });
    const [message] = published;
    expect(message?.TopicArn).toBe(TOPIC);
    expect(message?.Subject).toBe(
      'conntrack-responder: dry-run on i-0abc12345678 (i-0abc-full-20261121T1000Z)',
    );
    expect(message?.MessageAttributes).toMatchObject({
      severity: { DataType: 'String', StringValue: 'info' },
      outcome: { DataType: 'String', StringValue: 'dry-run' },
      action: { DataType: 'String', StringValue: 'none' },
    });
    expect(Buffer.byteLength(String(message?.Message))).toBeLessThan(256 * 1024);
  });

  it('writes a verifiable bundle to S3, with the execution history, and closes the incident', async () => {
    await documents.send(
      new PutCommand({
        TableName: tableName,
        Item: { pk: `incident#${incident.incidentId}`, sk: 'incident', status: 'open' },
      }),
    );
    stepFunctions
      .on(GetExecutionHistoryCommand, { executionArn: EXECUTION, nextToken: undefined })
      .resolves({
        events: [{ id: 1, type: 'ExecutionStarted', timestamp: new Date('2026-11-21T10:00:01Z') }],
        nextToken: 'p2',
      })
      .on(GetExecutionHistoryCommand, { executionArn: EXECUTION, nextToken: 'p2' })
      .resolves({
        events: [{ id: 2, type: 'TaskStateEntered', timestamp: new Date('2026-11-21T10:00:02Z') }],
      });
    const state = {
      incident,
      execution: { id: EXECUTION },
      before,
      assessment,
      gate,
      outcome: OUTCOMES.dryRun,
    };
    const result = await handlers.writeEvidence.handler(state, context);
    const root = `incidents/${incident.incidentId}/`;
    const manifestSha256 = createHash('sha256')
      .update(Buffer.from(objects.get(`${root}manifest.json`)?.Body as Uint8Array))
      .digest('hex');
    expect(result).toEqual({
      location: `s3://${BUCKET}/${root}`,
      archive: `s3://${BUCKET}/incidents/${incident.incidentId}.tar.gz`,
      manifestSha256,
      signature: null,
      incidentRecord: 'closed',
      problems: [],
    });
    expect([...objects.keys()]).toContain(`incidents/${incident.incidentId}.tar.gz`);
    const files = new Map(
      [...objects.entries()]
        .filter(([key]) => key.startsWith(root))
        .map(([key, input]) => [key.slice(root.length), Buffer.from(input.Body as Uint8Array)]),
    );
    expect(verifyBundleFiles(files, { expectedDigest: manifestSha256 })).toMatchObject({
      ok: true,
      altered: [],
      missing: [],
      unexpected: [],
      digest: { status: 'matches' },
    });
    const history = JSON.parse(String(files.get('execution-history.json')));
    expect(history.map((event: { id: number }) => event.id)).toEqual([1, 2]);
    const record = await documents.send(
      new GetCommand({
        TableName: tableName,
        Key: { pk: `incident#${incident.incidentId}`, sk: 'incident' },
      }),
    );
    // The digest is kept on the record, outside the bucket: what `bundle verify --digest` checks against.
    expect(record.Item).toMatchObject({
      status: 'closed',
      outcome: { status: 'dry-run' },
      evidence: `s3://${BUCKET}/${root}`,
      evidenceArchive: `s3://${BUCKET}/incidents/${incident.incidentId}.tar.gz`,
      evidenceManifestSha256: manifestSha256,
      evidenceSignedBy: null,
    });
  });

  it('writes the bundle of an incident started by hand (no record to close)', async () => {
    stepFunctions.on(GetExecutionHistoryCommand).resolves({ events: [] });
    const state = {
      incident: { ...incident, incidentId: 'manual-1' },
      execution: { id: EXECUTION },
      outcome: OUTCOMES.failedBeforeChange,
    };
    const result = await handlers.writeEvidence.handler(state, context);
    expect(result).toMatchObject({ incidentRecord: 'no-record' });
    expect([...objects.keys()]).toContain('incidents/manual-1/postmortem.md');
  });
});
