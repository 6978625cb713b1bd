import {
  ExecutionAlreadyExists,
  SFNClient,
  StartExecutionCommand,
  type StartExecutionCommandInput,
} from '@aws-sdk/client-sfn';
import { PublishCommand, type PublishCommandInput, SNSClient } from '@aws-sdk/client-sns';
import { DeleteCommand, DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { Capture, Match } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { logicalIdOf, stringLike, synthesize } from '../../infra/support.js';
import { LOCAL_REGION, type LocalDynamo, startLocalDynamo } from '../../support/dynalite.js';
import { handlerHarness } from '../../support/handler-harness.js';
import {
  instanceId,
  kernelDropEvents,
  lambdaContext,
  subscriptionEvent,
} from '../../support/subscription-events.js';

/**
 * The `detect` handler in an alert storm: many deliveries from many instances handled at the same
 * time (Promise.all of real handler invocations) against a real DynamoDB-compatible server, with
 * Step Functions and SNS faked at the SDK boundary. Incidents must open exactly once per instance,
 * workflows start exactly once per admitted incident and never past the breaker, and the breaker
 * sends exactly one escalation.
 */

const STATE_MACHINE_ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:ConntrackIncident';
const TOPIC_ARN = 'arn:aws:sns:eu-west-1:123456789012:conntrack-responder';
const MAX_INSTANCES = 10;

describe('detect handler in an alert storm', () => {
  let dynamo: LocalDynamo;
  let documents: DynamoDBDocumentClient;
  let tableName: string;
  let detect: typeof import('../../../functions/handlers/detect.js');
  const { mocks, load } = handlerHarness({ stepFunctions: SFNClient, sns: SNSClient });
  const { stepFunctions, sns } = mocks;
  let executions: Map<string, StartExecutionCommandInput>;
  let published: PublishCommandInput[];
  let snsFailuresLeft: number;

  /** The detect role's dynamodb:LeadingKeys patterns, from the synthesized template. */
  let detectLeadingKeys: RegExp[];

  beforeAll(async () => {
    // Synthesized first: it blocks the event loop for seconds, which idle connections do not survive.
    detectLeadingKeys = leadingKeysOfDetect();
    dynamo = await startLocalDynamo();
    documents = DynamoDBDocumentClient.from(dynamo.client);
    tableName = await dynamo.createIncidentTable('incidents');
    detect = await load(
      {
        INCIDENT_TABLE_NAME: tableName,
        INCIDENT_STATE_MACHINE_ARN: STATE_MACHINE_ARN,
        NOTIFICATION_TOPIC_ARN: TOPIC_ARN,
        INSTANCE_ID_PATTERN: 'i-[0-9a-f]{8,17}',
        COOLDOWN_MINUTES: '30',
        DEFAULT_MODE: 'approve',
        INCIDENT_RETENTION_DAYS: '90',
        BREAKER_MAX_INSTANCES: String(MAX_INSTANCES),
        BREAKER_WINDOW_MINUTES: '15',
        AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      },
      () => import('../../../functions/handlers/detect.js'),
    );
  });

  afterAll(async () => {
    vi.useRealTimers();
    await dynamo.close();
  });

  beforeEach(async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-03-13T20:22:00Z'));
    executions = new Map();
    published = [];
    snsFailuresLeft = 0;
    // Step Functions refuses a second execution of a name, as on AWS.
    stepFunctions.on(StartExecutionCommand).callsFake((input: StartExecutionCommandInput) => {
      const name = String(input.name);
      if (executions.has(name)) {
        throw new ExecutionAlreadyExists({ message: `Execution Already Exists: '${name}'`, $metadata: {} });
      }
      executions.set(name, input);
      return { executionArn: `${STATE_MACHINE_ARN}:${name}`, startDate: new Date() };
    });
    sns.on(PublishCommand).callsFake((input: PublishCommandInput) => {
      if (snsFailuresLeft > 0) {
        snsFailuresLeft--;
        throw Object.assign(new Error('SNS is unavailable'), { name: 'InternalErrorException' });
      }
      published.push(input);
      return { MessageId: `message-${published.length}` };
    });
    for (const item of (await documents.send(new ScanCommand({ TableName: tableName }))).Items ?? []) {
      await documents.send(new DeleteCommand({ TableName: tableName, Key: { pk: item.pk, sk: item.sk } }));
    }
  });

  const incidents = async () =>
    ((await documents.send(new ScanCommand({ TableName: tableName }))).Items ?? []).filter((item) =>
      String(item.pk).startsWith('incident#'),
    );

  /** `perInstance` separate deliveries (fresh event ids, 3 lines each) for each of `instances` instances, shuffled. */
  function storm(instances: number, perInstance: number, first = 0) {
    const deliveries = [];
    for (let n = first; n < first + instances; n++) {
      for (let d = 0; d < perInstance; d++)
        deliveries.push(subscriptionEvent(kernelDropEvents(3), instanceId(n)));
    }
    return deliveries.sort(() => Math.random() - 0.5);
  }

  it('opens one incident per instance, starts N workflows, holds the rest, and escalates once', async () => {
    // Act: 30 instances, 3 deliveries each, all handled at once.
    const results = await Promise.all(storm(30, 3).map((event) => detect.handler(event, lambdaContext)));
    // Assess
    const stored = await incidents();
    expect(stored).toHaveLength(30);
    expect(new Set(stored.map((item) => item.host)).size).toBe(30);
    // Every delivery's lines were added to its instance's one incident: 3 deliveries × 2 drop lines.
    expect(stored.every((item) => item.dropLines === 6 && item.deliveries === 3)).toBe(true);
    const admitted = stored.filter((item) => item.admission?.decision === 'admit');
    const held = stored.filter((item) => item.admission?.decision === 'hold');
    expect(admitted).toHaveLength(MAX_INSTANCES);
    expect(held).toHaveLength(30 - MAX_INSTANCES);
    // Exactly one execution per admitted incident, none for a held one; and only the delivery that
    // opened an incident asked Step Functions, not every delivery that raced with it.
    expect([...executions.keys()].sort()).toEqual(admitted.map((item) => item.incidentId).sort());
    expect(stepFunctions.commandCalls(StartExecutionCommand)).toHaveLength(MAX_INSTANCES);
    expect(held.every((item) => item.executionStarted === false)).toBe(true);
    expect(results.filter((result) => result.breaker?.tripped)).toHaveLength(1);
    // One escalation, with the fleet view, instead of 20 messages.
    expect(published).toHaveLength(1);
    const [escalation] = published;
    expect(escalation?.TopicArn).toBe(TOPIC_ARN);
    expect(escalation?.Subject).toMatch(
      /^conntrack-responder: fleet breaker tripped, \d+ instances in 15 min$/,
    );
    expect(escalation?.Message).toMatch(
      /more than 10 instances opened conntrack incidents within 15 minutes/,
    );
    expect(escalation?.Message).toContain('Accounts (1): 123456789012');
    expect(escalation?.Message).toContain(`breaker reset --table ${tableName} --region ${LOCAL_REGION}`);
    expect(escalation?.MessageAttributes?.action).toEqual({
      DataType: 'String',
      StringValue: 'fleet-breaker',
    });
    // Later deliveries from held instances start nothing and send nothing more.
    vi.setSystemTime(new Date('2026-03-13T20:25:00Z'));
    const later = await Promise.all(storm(30, 1).map((event) => detect.handler(event, lambdaContext)));
    expect(later.flatMap((r) => r.incidents).filter((i) => i.workflow === 'held')).toHaveLength(20);
    expect(executions.size).toBe(MAX_INSTANCES);
    expect(published).toHaveLength(1);
  });

  it('sends the escalation on the retry when publishing failed the first time, and still only once', async () => {
    // Prepare: another storm, later (each breaker episode is known by when it tripped), with the
    // breaker one instance short of tripping.
    vi.setSystemTime(new Date('2026-03-13T21:10:00Z'));
    await Promise.all(storm(MAX_INSTANCES, 1).map((event) => detect.handler(event, lambdaContext)));
    snsFailuresLeft = 1;
    const tripping = subscriptionEvent(kernelDropEvents(3), instanceId(500));
    // Act
    await expect(detect.handler(tripping, lambdaContext)).rejects.toThrow(/SNS is unavailable/);
    const retried = await detect.handler(tripping, lambdaContext);
    // Assess
    expect(retried.incidents).toEqual([expect.objectContaining({ outcome: 'duplicate', workflow: 'held' })]);
    expect(retried.breaker).toEqual({ tripped: false, escalationSent: true });
    expect(published).toHaveLength(1);
    await detect.handler(subscriptionEvent(kernelDropEvents(3), instanceId(501)), lambdaContext);
    expect(published).toHaveLength(1);
    expect(executions.size).toBe(MAX_INSTANCES);
  });

  it("reads and writes only the keys its IAM role's dynamodb:LeadingKeys condition allows", async () => {
    // Prepare: every DynamoDB call the handler makes.
    const allowed = detectLeadingKeys;
    const calls: { command: string; partitionKeys: string[] }[] = [];
    const send = DynamoDBDocumentClient.prototype.send;
    const spy = vi.spyOn(DynamoDBDocumentClient.prototype, 'send').mockImplementation(function (
      this: DynamoDBDocumentClient,
      command: { constructor: { name: string }; input: unknown },
      ...rest: unknown[]
    ) {
      calls.push({ command: command.constructor.name, partitionKeys: partitionKeysOf(command.input) });
      return (send as (...args: unknown[]) => unknown).call(this, command, ...rest);
    } as never);
    try {
      // Act: every path that touches the table: open, add, admit, trip, hold, the escalation's
      // claim and fleet view (BatchGetItem), and a repeated delivery.
      const deliveries = storm(MAX_INSTANCES + 3, 2);
      await Promise.all(deliveries.map((event) => detect.handler(event, lambdaContext)));
      const [repeated] = deliveries;
      if (repeated !== undefined) await detect.handler(repeated, lambdaContext);
    } finally {
      spy.mockRestore();
    }
    // Assess: the storm did go through the breaker's paths, and no key fell outside the patterns.
    const commands = new Set(calls.map((call) => call.command));
    for (const name of ['PutCommand', 'UpdateCommand', 'GetCommand', 'BatchGetCommand']) {
      expect(commands, name).toContain(name);
    }
    expect(published).toHaveLength(1);
    const keys = new Set(calls.flatMap((call) => call.partitionKeys));
    expect([...keys].some((key) => key === 'guardrail#breaker')).toBe(true);
    expect([...keys].some((key) => key.startsWith('delivery#'))).toBe(true);
    expect([...keys].filter((key) => !allowed.some((pattern) => pattern.test(key)))).toEqual([]);
    expect(calls.every((call) => call.partitionKeys.length > 0)).toBe(true);
  });

  it('starts one workflow per incident when identical deliveries race with their retries', async () => {
    // Below the breaker: 8 instances, each delivery handled three times at once (Lambda's retries).
    const deliveries = storm(8, 2);
    await Promise.all(
      deliveries.flatMap((event) => [event, event, event]).map((e) => detect.handler(e, lambdaContext)),
    );
    const stored = await incidents();
    expect(stored).toHaveLength(8);
    expect(
      stored.every((item) => item.admission?.decision === 'admit' && item.executionStarted === true),
    ).toBe(true);
    expect(executions.size).toBe(8);
    // A racing duplicate may be counted twice (the delivery marker is written last, on purpose),
    // but never lost: at least the two deliveries' lines are there.
    expect(stored.every((item) => item.dropLines >= 4)).toBe(true);
  });
});

/** The partition keys a DocumentClient command names (Key, Item, or BatchGet's Keys). */
function partitionKeysOf(input: unknown): string[] {
  const { Key, Item, RequestItems } = input as {
    Key?: { pk?: unknown };
    Item?: { pk?: unknown };
    RequestItems?: Record<string, { Keys?: { pk?: unknown }[] }>;
  };
  const keys = [
    Key?.pk,
    Item?.pk,
    ...Object.values(RequestItems ?? {}).flatMap((r) => (r.Keys ?? []).map((k) => k.pk)),
  ];
  return keys.filter((key): key is string => typeof key === 'string');
}

function leadingKeysOfDetect(): RegExp[] {
  const { template } = synthesize();
  const roleId = logicalIdOf(template, 'AWS::IAM::Role', 'Detection/FunctionRole/Resource');
  const leadingKeys = new Capture();
  template.hasResourceProperties('AWS::IAM::Policy', {
    Roles: [{ Ref: roleId }],
    PolicyDocument: {
      Statement: Match.arrayWith([
        Match.objectLike({
          Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': leadingKeys } },
        }),
      ]),
    },
  });
  return leadingKeys.asArray().map((pattern) => stringLike(String(pattern)));
}
