import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GuardrailState } from '../../../functions/core/guardrails/steps.js';
import { type LocalDynamo, startLocalDynamo } from '../../support/dynalite.js';
import { handlerHarness } from '../../support/handler-harness.js';
import {
  fakeEc2,
  fakeStepFunctions,
  type LoopbackServer,
  throttlingDynamoProxy,
} from '../../support/loopback-aws.js';
import {
  instanceId,
  kernelDropEvents,
  lambdaContext,
  subscriptionEvent,
} from '../../support/subscription-events.js';

/**
 * Throttling, through the SDK's real middleware stack over loopback HTTP: DynamoDB's
 * ProvisionedThroughputExceededException, Step Functions' ThrottlingException and EC2's
 * RequestLimitExceeded are retried with backoff and jitter by the clients the handlers build
 * (AWS_MAX_ATTEMPTS), and what outlasts the retries fails the invocation (so that Lambda retries
 * it) without losing or doubling anything.
 */

const STATE_MACHINE_ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:ConntrackIncident';
const MAX_ATTEMPTS = 4;

describe('throttled AWS APIs', () => {
  let dynamo: LocalDynamo;
  let proxy: LoopbackServer;
  let stepFunctions: Awaited<ReturnType<typeof fakeStepFunctions>>;
  let ec2: LoopbackServer;
  let tableName: string;
  let throttleDynamo: (n: number, operation: string) => boolean = () => false;
  let throttleStarts: (n: number) => boolean = () => false;
  let throttleEc2: (n: number) => boolean = () => false;
  let detect: typeof import('../../../functions/handlers/detect.js');
  let guardrails: typeof import('../../../functions/handlers/guardrails.js');
  // No SDK stubs: the clients talk to the throttling servers above over real HTTP.
  const { load } = handlerHarness();

  beforeAll(async () => {
    dynamo = await startLocalDynamo();
    tableName = await dynamo.createIncidentTable('incidents');
    proxy = await throttlingDynamoProxy(dynamo.endpoint, (n, operation) => throttleDynamo(n, operation));
    stepFunctions = await fakeStepFunctions((n) => throttleStarts(n));
    ec2 = await fakeEc2({ 'i-00000000000000007': { 'conntrack-responder:mode': 'auto' } }, (n) =>
      throttleEc2(n),
    );
    ({ detect, guardrails } = await load(
      {
        INCIDENT_TABLE_NAME: tableName,
        INCIDENT_STATE_MACHINE_ARN: STATE_MACHINE_ARN,
        NOTIFICATION_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:conntrack-responder',
        INSTANCE_ID_PATTERN: 'i-[0-9a-f]{8,17}',
        COOLDOWN_MINUTES: '30',
        DEFAULT_MODE: 'approve',
        INCIDENT_RETENTION_DAYS: '90',
        BREAKER_MAX_INSTANCES: '100',
        CHANGE_CALENDAR: '',
        AWS_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
        AWS_ENDPOINT_URL_DYNAMODB: proxy.endpoint,
        AWS_ENDPOINT_URL_SFN: stepFunctions.endpoint,
        AWS_ENDPOINT_URL_EC2: ec2.endpoint,
      },
      async () => ({
        detect: await import('../../../functions/handlers/detect.js'),
        guardrails: await import('../../../functions/handlers/guardrails.js'),
      }),
    ));
  });

  afterAll(async () => {
    for (const server of [proxy, stepFunctions, ec2]) await server?.close();
    await dynamo.close();
  });

  const incidents = async () =>
    (
      (await DynamoDBDocumentClient.from(dynamo.client).send(new ScanCommand({ TableName: tableName })))
        .Items ?? []
    ).filter((item) => String(item.pk).startsWith('incident#'));

  it('retries DynamoDB throttling with backoff and loses nothing', async () => {
    // Every third request to DynamoDB is throttled; each is retried, never more than once in a row.
    throttleDynamo = (n) => n % 3 === 0;
    const before = proxy.throttled();
    const result = await detect.handler(subscriptionEvent(kernelDropEvents(4), instanceId(1)), lambdaContext);
    throttleDynamo = () => false;
    expect(proxy.throttled() - before).toBeGreaterThanOrEqual(3);
    expect(result.incidents).toEqual([expect.objectContaining({ outcome: 'opened', workflow: 'started' })]);
    expect((await incidents()).filter((item) => item.host === instanceId(1))).toEqual([
      expect.objectContaining({ dropLines: 3, executionStarted: true }),
    ]);
  });

  it('fails the invocation when throttling outlasts the retries, and the redelivery records it once', async () => {
    const event = subscriptionEvent(kernelDropEvents(3), instanceId(2));
    // The incident is opened, then every write is throttled: the admission outlasts MAX_ATTEMPTS tries.
    throttleDynamo = (_n, operation) => operation === 'UpdateItem';
    const before = proxy.throttled();
    await expect(detect.handler(event, lambdaContext)).rejects.toThrow(/provisioned throughput/);
    expect(proxy.throttled() - before).toBe(MAX_ATTEMPTS);
    throttleDynamo = () => false;
    // Lambda's retry of the same delivery.
    const retried = await detect.handler(event, lambdaContext);
    expect(retried.incidents).toEqual([expect.objectContaining({ workflow: 'started' })]);
    const stored = (await incidents()).filter((item) => item.host === instanceId(2));
    expect(stored).toEqual([expect.objectContaining({ dropLines: 2, executionStarted: true })]);
    expect(
      [...stepFunctions.executions.keys()].filter((name) => name.startsWith(instanceId(2))),
    ).toHaveLength(1);
  });

  it('retries Step Functions throttling and starts the workflow once', async () => {
    const limit = stepFunctions.served() + stepFunctions.throttled() + 2;
    throttleStarts = (n) => n <= limit;
    const result = await detect.handler(subscriptionEvent(kernelDropEvents(3), instanceId(3)), lambdaContext);
    throttleStarts = () => false;
    expect(result.incidents).toEqual([expect.objectContaining({ workflow: 'started' })]);
    expect(stepFunctions.throttled()).toBeGreaterThanOrEqual(2);
    expect(
      [...stepFunctions.executions.keys()].filter((name) => name.startsWith(instanceId(3))),
    ).toHaveLength(1);
  });

  it('retries EC2 RequestLimitExceeded when reading the mode tag', async () => {
    throttleEc2 = (n) => n <= 2;
    const verdict = (await guardrails.handler(
      {
        operation: 'check',
        state: {
          incident: { incidentId: 'inc-7', instanceId: 'i-00000000000000007', mode: 'approve' },
          instance: {
            information: [{ PingStatus: 'Online', AgentVersion: '3.3.3000.0', PlatformType: 'Linux' }],
          },
        },
      } as never,
      lambdaContext,
    )) as GuardrailState;
    throttleEc2 = () => false;
    expect(ec2.throttled()).toBe(2);
    expect(verdict).toMatchObject({ next: 'collect', mode: 'auto' });
  });
});
