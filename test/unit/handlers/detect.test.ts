import { gzipSync } from 'node:zlib';
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import {
  ExecutionAlreadyExists,
  SFNClient,
  SFNServiceException,
  StartExecutionCommand,
  type StartExecutionCommandInput,
} from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type LocalDynamo, startLocalDynamo } from '../../support/dynalite.js';
import { handlerHarness } from '../../support/handler-harness.js';
import {
  lambdaContext,
  type SubscriptionLogEvent,
  subscriptionEvent,
} from '../../support/subscription-events.js';
import { agentJournaldEvent } from '../detect/real-lines.js';

const STATE_MACHINE_ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:ConntrackIncident';
const INSTANCE = 'i-0123456789abcdef0';

let nextEventId = 0;

/** Real kernel lines as the CloudWatch agent ships them from /var/log/messages (seed 001). */
function kernelEvents(count: number, host = 'ip-10-0-0-1'): SubscriptionLogEvent[] {
  const lines = [`Mar 13 20:21:45 ${host} kernel: __ratelimit: 30 callbacks suppressed`];
  for (let i = 1; i < count; i++)
    lines.push(`Mar 13 20:21:45 ${host} kernel: nf_conntrack: table full, dropping packet.`);
  return lines.map((message) => ({
    id: String(++nextEventId).padStart(56, '3'),
    timestamp: Date.parse('2026-03-13T20:21:45Z'),
    message,
  }));
}

describe('detect handler', () => {
  let dynamo: LocalDynamo;
  let documents: DynamoDBDocumentClient;
  let tableName: string;
  let detect: typeof import('../../../functions/handlers/detect.js');
  let powertools: typeof import('../../../functions/handlers/powertools.js');
  const { mocks, load } = handlerHarness({ stepFunctions: SFNClient, eventBridge: EventBridgeClient });
  const { stepFunctions, eventBridge } = mocks;
  /** Lifecycle events EventBridge took (README "Lifecycle events"). */
  let putEvents: PutEventsRequestEntry[];
  /** Executions Step Functions accepted, by name: a second start under a name is refused, as on AWS. */
  let executions: Map<string, StartExecutionCommandInput>;
  /** How many coming StartExecution calls fail as if Step Functions were unavailable. */
  let unavailableForNextStarts: number;

  beforeAll(async () => {
    dynamo = await startLocalDynamo();
    documents = DynamoDBDocumentClient.from(dynamo.client);
    tableName = await dynamo.createIncidentTable('incidents');
    ({ detect, powertools } = await load(
      {
        INCIDENT_TABLE_NAME: tableName,
        INCIDENT_STATE_MACHINE_ARN: STATE_MACHINE_ARN,
        INSTANCE_ID_PATTERN: 'i-[0-9a-f]{8,17}',
        COOLDOWN_MINUTES: '30',
        DEFAULT_MODE: 'approve',
        INCIDENT_RETENTION_DAYS: '90',
        NOTIFICATION_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:conntrack-responder',
        AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      },
      async () => ({
        detect: await import('../../../functions/handlers/detect.js'),
        powertools: await import('../../../functions/handlers/powertools.js'),
      }),
    ));
  });

  afterAll(async () => {
    vi.useRealTimers();
    await dynamo.close();
  });

  beforeEach(async () => {
    vi.restoreAllMocks();
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-03-13T20:22:00Z'));
    executions = new Map();
    unavailableForNextStarts = 0;
    putEvents = [];
    eventBridge.on(PutEventsCommand).callsFake((input: { Entries: PutEventsRequestEntry[] }) => {
      putEvents.push(...input.Entries);
      return { FailedEntryCount: 0, Entries: input.Entries.map((_, n) => ({ EventId: `event-${n}` })) };
    });
    stepFunctions.on(StartExecutionCommand).callsFake((input: StartExecutionCommandInput) => {
      if (unavailableForNextStarts > 0) {
        unavailableForNextStarts--;
        throw new SFNServiceException({
          name: 'ServiceUnavailable',
          message: 'ServiceUnavailable: try again',
          $fault: 'server',
          $metadata: {},
        });
      }
      const name = String(input.name);
      if (executions.has(name)) {
        throw new ExecutionAlreadyExists({ message: `Execution Already Exists: '${name}'`, $metadata: {} });
      }
      executions.set(name, input);
      return {
        executionArn: `${STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:${name}`,
        startDate: new Date(),
      };
    });
    // A fresh table per test: the handler's table name is fixed at import, so empty it instead.
    for (const item of (await documents.send(new ScanCommand({ TableName: tableName }))).Items ?? []) {
      const { DeleteCommand } = await import('@aws-sdk/lib-dynamodb');
      await documents.send(new DeleteCommand({ TableName: tableName, Key: { pk: item.pk, sk: item.sk } }));
    }
  });

  const storedIncidents = async () =>
    ((await documents.send(new ScanCommand({ TableName: tableName }))).Items ?? []).filter((item) =>
      String(item.pk).startsWith('incident#'),
    );

  it('opens one incident and starts one execution when the same delivery arrives twice', async () => {
    // Prepare
    const event = subscriptionEvent(kernelEvents(3), INSTANCE);
    // Act
    const first = await detect.handler(event, lambdaContext);
    vi.setSystemTime(new Date('2026-03-13T20:23:00Z')); // Lambda's async retry, a minute later
    const retry = await detect.handler(event, lambdaContext);
    // Assess
    const incidentId = `${INSTANCE}-full-20260313T2000Z`;
    expect(first.incidents).toEqual([
      { incidentId, host: INSTANCE, kind: 'table-full', outcome: 'opened', workflow: 'started' },
    ]);
    expect(retry.incidents).toEqual([
      { incidentId, host: INSTANCE, kind: 'table-full', outcome: 'duplicate', workflow: 'running' },
    ]);
    expect(stepFunctions.commandCalls(StartExecutionCommand)).toHaveLength(1);
    const started = executions.get(incidentId);
    expect(started?.stateMachineArn).toBe(STATE_MACHINE_ARN);
    expect(JSON.parse(String(started?.input))).toMatchObject({
      incidentId,
      instanceId: INSTANCE,
      kind: 'table-full',
      mode: 'approve',
      trigger: { logStream: INSTANCE, dropLines: 2, suppressed: 30 },
    });
    expect(await storedIncidents()).toEqual([
      expect.objectContaining({
        incidentId,
        dropLines: 2,
        suppressed: 30,
        deliveries: 1,
        executionStarted: true,
      }),
    ]);
  });

  it('refuses a malformed log event alone: the events beside it open the incident, the bad one is named without its content', async () => {
    // Prepare
    const warn = vi.spyOn(powertools.logger, 'warn');
    const addMetric = vi.spyOn(powertools.metrics, 'addMetric');
    const events: unknown[] = kernelEvents(3);
    events.splice(1, 0, {
      id: 'malformed-1',
      timestamp: 'soon',
      message: 'kernel: nf_conntrack: table full',
    });
    // Act
    const result = await detect.handler(
      subscriptionEvent(events as SubscriptionLogEvent[], INSTANCE),
      lambdaContext,
    );
    // Assess
    expect(result.incidents).toEqual([expect.objectContaining({ outcome: 'opened', workflow: 'started' })]);
    expect(result.ignored).toEqual({ 'not-kernel': 0, unrelated: 0, unreadable: 1 });
    expect(await storedIncidents()).toEqual([expect.objectContaining({ dropLines: 2, suppressed: 30 })]);
    expect(addMetric).toHaveBeenCalledWith('LogEventsRefused', 'Count', 1);
    const refusedWarning = warn.mock.calls.find(([message]) =>
      String(message).startsWith('Refused malformed'),
    );
    expect(refusedWarning?.[1]).toEqual({
      logGroup: expect.any(String),
      logStream: INSTANCE,
      refused: ['logEvents[1] (id "malformed-1"): timestamp is not a number'],
    });
    expect(JSON.stringify(warn.mock.calls)).not.toContain('kernel: nf_conntrack');
  });

  it('adds a repeat within the cooldown to the open incident and starts nothing', async () => {
    // Act
    await detect.handler(subscriptionEvent(kernelEvents(3), INSTANCE), lambdaContext);
    vi.setSystemTime(new Date('2026-03-13T20:35:00Z'));
    const repeat = await detect.handler(subscriptionEvent(kernelEvents(5), INSTANCE), lambdaContext);
    // Assess
    expect(repeat.incidents).toEqual([expect.objectContaining({ outcome: 'added', workflow: 'running' })]);
    expect(stepFunctions.commandCalls(StartExecutionCommand)).toHaveLength(1);
    expect(await storedIncidents()).toEqual([
      expect.objectContaining({ dropLines: 6, suppressed: 60, deliveries: 2 }),
    ]);
  });

  it('opens a new incident, with its own execution, once the cooldown is over', async () => {
    await detect.handler(subscriptionEvent(kernelEvents(3), INSTANCE), lambdaContext);
    vi.setSystemTime(new Date('2026-03-13T20:52:30Z'));
    const later = await detect.handler(subscriptionEvent(kernelEvents(3), INSTANCE), lambdaContext);
    expect(later.incidents).toEqual([
      expect.objectContaining({
        incidentId: `${INSTANCE}-full-20260313T2030Z`,
        outcome: 'opened',
        workflow: 'started',
      }),
    ]);
    expect([...executions.keys()].sort()).toEqual([
      `${INSTANCE}-full-20260313T2000Z`,
      `${INSTANCE}-full-20260313T2030Z`,
    ]);
  });

  it('starts one execution when the same delivery is processed twice at once', async () => {
    const event = subscriptionEvent(kernelEvents(3), INSTANCE);
    const results = await Promise.all([
      detect.handler(event, lambdaContext),
      detect.handler(event, lambdaContext),
    ]);
    expect(executions.size).toBe(1);
    expect(results.flatMap((result) => result.incidents.map((incident) => incident.incidentId))).toEqual([
      `${INSTANCE}-full-20260313T2000Z`,
      `${INSTANCE}-full-20260313T2000Z`,
    ]);
    expect(await storedIncidents()).toHaveLength(1);
  });

  it('starts the workflow on the retry when the first attempt failed to', async () => {
    // Prepare: Step Functions is unavailable for the first attempt only.
    unavailableForNextStarts = 1;
    const event = subscriptionEvent(kernelEvents(3), INSTANCE);
    // Act
    await expect(detect.handler(event, lambdaContext)).rejects.toThrow(/ServiceUnavailable/);
    const retry = await detect.handler(event, lambdaContext);
    // Assess
    expect(retry.incidents).toEqual([expect.objectContaining({ outcome: 'duplicate', workflow: 'started' })]);
    expect(executions.size).toBe(1);
    expect(await storedIncidents()).toEqual([
      expect.objectContaining({ dropLines: 2, deliveries: 1, executionStarted: true }),
    ]);
  });

  it('opens one incident per instance', async () => {
    await detect.handler(subscriptionEvent(kernelEvents(2), INSTANCE), lambdaContext);
    await detect.handler(subscriptionEvent(kernelEvents(2), 'i-0fedcba9876543210'), lambdaContext);
    expect([...executions.keys()].sort()).toEqual([
      `${INSTANCE}-full-20260313T2000Z`,
      'i-0fedcba9876543210-full-20260313T2000Z',
    ]);
  });

  it('acknowledges a control message and does nothing', async () => {
    const control = subscriptionEvent(
      [
        {
          id: '',
          timestamp: Date.now(),
          message: 'CWL CONTROL MESSAGE: Checking health of destination Lambda.',
        },
      ],
      '',
      { messageType: 'CONTROL_MESSAGE' },
    );
    const result = await detect.handler(control, lambdaContext);
    expect(result).toMatchObject({ messageType: 'CONTROL_MESSAGE', incidents: [] });
    expect(stepFunctions.calls()).toHaveLength(0);
    expect((await documents.send(new ScanCommand({ TableName: tableName }))).Items).toEqual([]);
  });

  it('opens nothing for lines another program wrote', async () => {
    const forged = [
      {
        id: '9'.repeat(56),
        timestamp: Date.now(),
        message: 'Mar 13 20:21:45 ip-10-0-0-1 app[311]: nf_conntrack: table full, dropping packet',
      },
    ];
    const result = await detect.handler(subscriptionEvent(forged, INSTANCE), lambdaContext);
    expect(result).toMatchObject({ incidents: [], ignored: { 'not-kernel': 1 } });
    expect(stepFunctions.calls()).toHaveLength(0);
  });

  it.each([
    ['no awslogs', { records: [] }, /awslogs: Invalid input/],
    ['data that is not base64', { awslogs: { data: 'not base64!' } }, /awslogs\.data: Invalid base64/],
    [
      'base64 that is not gzip',
      { awslogs: { data: Buffer.from('plain text').toString('base64') } },
      /not gzip-compressed/,
    ],
    [
      'gzip that is not JSON',
      { awslogs: { data: gzipSync('{oops').toString('base64') } },
      /decompressed to something that is not JSON/,
    ],
    [
      'JSON without log events',
      {
        awslogs: {
          data: gzipSync(
            JSON.stringify({
              messageType: 'DATA_MESSAGE',
              owner: '1',
              logGroup: 'g',
              logStream: 's',
              subscriptionFilters: [],
            }),
          ).toString('base64'),
        },
      },
      /awslogs\.data\(decoded\)\.logEvents: Invalid input/,
    ],
    [
      'an unknown message type',
      subscriptionEvent(kernelEvents(2), INSTANCE, { messageType: 'SURPRISE' }),
      /unknown messageType "SURPRISE"/,
    ],
  ])(
    'rejects %s with a clear reason, logged without the event, so the failure destination keeps it',
    async (_name, event, reason) => {
      // Prepare
      const logError = vi.spyOn(powertools.logger, 'error');
      const addMetric = vi.spyOn(powertools.metrics, 'addMetric');
      // Act
      const failure = detect.handler(event as never, lambdaContext);
      // Assess
      await expect(failure).rejects.toThrow(detect.RejectedEventError);
      await expect(failure).rejects.toThrow(reason);
      expect(logError).toHaveBeenCalledTimes(1);
      const [message, details] = logError.mock.calls[0] as [string, { reason: string }];
      expect(message).toBe('Rejected a subscription event');
      expect(details.reason).toMatch(reason);
      // Never the event's content: only the reason.
      const payload = (event as { awslogs?: { data?: string } }).awslogs?.data ?? JSON.stringify(event);
      expect(JSON.stringify(logError.mock.calls)).not.toContain(payload);
      expect(addMetric).toHaveBeenCalledWith('EventsRejected', 'Count', 1);
      expect(stepFunctions.calls()).toHaveLength(0);
      expect(await storedIncidents()).toEqual([]);
    },
  );

  it('makes ignored drop text visible: metrics and a warning naming the log group and stream, never the lines; the good lines still count', async () => {
    const addMetric = vi.spyOn(powertools.metrics, 'addMetric');
    const warn = vi.spyOn(powertools.logger, 'warn');
    const at = Date.parse('2026-03-13T20:21:46Z');
    const events: SubscriptionLogEvent[] = [
      ...kernelEvents(2),
      // A journald collector keeping every transport: the same words from a program.
      {
        id: '9'.repeat(56),
        timestamp: at,
        message: agentJournaldEvent({
          message: 'nf_conntrack: table full, dropping packet',
          transport: 'syslog',
        }),
      },
      // A file shipped without its syslog header.
      { id: '8'.repeat(56), timestamp: at, message: 'nf_conntrack: table full, dropping packet' },
      // An event whose timestamp is not a time: that event is refused, not the delivery.
      {
        id: '7'.repeat(56),
        timestamp: 1e300,
        message: 'Mar 13 20:21:46 h kernel: nf_conntrack: table full, dropping packet',
      },
    ];
    const result = await detect.handler(
      subscriptionEvent(events, INSTANCE, { logGroup: '/var/log/messages' }),
      lambdaContext,
    );
    expect(result.ignored).toEqual({ 'not-kernel': 2, unrelated: 0, unreadable: 1 });
    expect(result.incidents).toHaveLength(1);
    expect(addMetric).toHaveBeenCalledWith('LinesNotKernel', 'Count', 2);
    expect(addMetric).toHaveBeenCalledWith('LinesUnreadable', 'Count', 1);
    expect(warn).toHaveBeenCalledWith(
      'Conntrack drop or suppression text in this delivery did not count as kernel drops',
      expect.objectContaining({
        logGroup: '/var/log/messages',
        logStream: INSTANCE,
        notKernel: 2,
        unreadable: 1,
      }),
    );
    expect(JSON.stringify(warn.mock.calls)).not.toContain('dropping packet');
  });

  it('says nothing of ignored text when every drop line counted', async () => {
    const warn = vi.spyOn(powertools.logger, 'warn');
    const addMetric = vi.spyOn(powertools.metrics, 'addMetric');
    await detect.handler(subscriptionEvent(kernelEvents(3), INSTANCE), lambdaContext);
    expect(warn).not.toHaveBeenCalledWith(expect.stringMatching(/did not count/), expect.anything());
    expect(addMetric).not.toHaveBeenCalledWith('LinesNotKernel', expect.anything(), expect.anything());
  });

  it('counts incidents opened and drop lines seen', async () => {
    const addMetric = vi.spyOn(powertools.metrics, 'addMetric');
    await detect.handler(subscriptionEvent(kernelEvents(4), INSTANCE), lambdaContext);
    expect(addMetric).toHaveBeenCalledWith('IncidentsOpened', 'Count', 1);
    expect(addMetric).toHaveBeenCalledWith('DropLinesSeen', 'Count', 3);
  });

  it('puts the opened lifecycle event once per incident, on the default bus, never the kernel lines', async () => {
    const event = subscriptionEvent(kernelEvents(3), INSTANCE);
    await detect.handler(event, lambdaContext);
    await detect.handler(event, lambdaContext); // the retry opens nothing and puts nothing
    await detect.handler(subscriptionEvent(kernelEvents(5), INSTANCE), lambdaContext); // a repeat
    expect(putEvents).toHaveLength(1);
    const [opened] = putEvents;
    expect(opened).toMatchObject({ Source: 'conntrack-responder', DetailType: 'Incident Opened' });
    expect(opened?.EventBusName).toBeUndefined();
    expect(JSON.parse(String(opened?.Detail))).toMatchObject({
      schemaVersion: '1',
      state: 'opened',
      incidentId: `${INSTANCE}-full-20260313T2000Z`,
      instanceId: INSTANCE,
      kind: 'table-full',
      mode: 'approve',
      facts: { dropLines: 2, suppressed: 30 },
    });
    expect(String(opened?.Detail)).not.toContain('dropping packet');
  });

  it('opens the incident and starts its workflow when EventBridge refuses the event, and counts the failure', async () => {
    const addMetric = vi.spyOn(powertools.metrics, 'addMetric');
    eventBridge.reset();
    eventBridge.on(PutEventsCommand).resolves({
      FailedEntryCount: 1,
      Entries: [{ ErrorCode: 'InternalFailure', ErrorMessage: 'try again' }],
    });
    const result = await detect.handler(subscriptionEvent(kernelEvents(3), INSTANCE), lambdaContext);
    expect(result.incidents).toEqual([expect.objectContaining({ outcome: 'opened', workflow: 'started' })]);
    expect(addMetric).toHaveBeenCalledWith('LifecycleEventsFailed', 'Count', 1);

    eventBridge.reset();
    eventBridge.on(PutEventsCommand).rejects(new Error('AccessDeniedException'));
    vi.setSystemTime(new Date('2026-03-13T20:52:30Z'));
    const later = await detect.handler(subscriptionEvent(kernelEvents(3), INSTANCE), lambdaContext);
    expect(later.incidents).toEqual([expect.objectContaining({ outcome: 'opened', workflow: 'started' })]);
    expect(executions.size).toBe(2);
  });
});
