import { Metrics } from '@aws-lambda-powertools/metrics';
import {
  ExecutionAlreadyExists,
  SFNClient,
  StartExecutionCommand,
  type StartExecutionCommandInput,
} from '@aws-sdk/client-sfn';
import { DeleteCommand, DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type LocalDynamo, startLocalDynamo } from '../../support/dynalite.js';
import { handlerHarness } from '../../support/handler-harness.js';
import {
  kernelDropEvents,
  lambdaContext,
  type SubscriptionLogEvent,
  subscriptionEvent,
} from '../../support/subscription-events.js';

/**
 * The detect function on the host sampler's lines (issue 13): a filling table opens a `near-full`
 * incident with dedupe, cooldown and modes as for drops, a flat or idle one opens nothing, and an
 * open table-full incident covers the same host. Real DynamoDB semantics (dynalite); Step
 * Functions faked at the SDK client.
 */

const STATE_MACHINE_ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:ConntrackIncident';
const INSTANCE = 'i-0123456789abcdef0';
const MAX = 262_144;
const START = Date.parse('2026-03-13T20:10:00Z');
const NETNS = '4026531840';

let nextEventId = 0;
let seq = 0;

/** The sampler's line as journald forwards it to /var/log/messages (docs/forecast.md). */
function sampleEvent(at: number, count: number, options: { max?: number; drop?: number } = {}) {
  const line = `conntrack-responder-sample v=1 seq=${++seq} t=${(at / 1000).toFixed(3)} boot=1f0e2d3c ns=${NETNS} count=${count} max=${options.max ?? MAX} drop=${options.drop ?? 0} early_drop=0 insert_failed=0 search_restart=0 cpus=2`;
  const stamp = new Date(at);
  const day = String(stamp.getUTCDate()).padStart(2, ' ');
  return {
    id: String(++nextEventId).padStart(56, '7'),
    timestamp: at,
    message: `Mar ${day} ${stamp.toISOString().slice(11, 19)} ip-10-0-0-1 conntrack-responder-sampler[812]: ${line}`,
  } satisfies SubscriptionLogEvent;
}

/** `length` samples a minute apart from `from`, the count given by `countAt(i)`. */
function samples(length: number, countAt: (index: number) => number, from = START) {
  return Array.from({ length }, (_, index) => sampleEvent(from + index * 60_000, countAt(index)));
}

/** 150 000 entries rising 6 000 a minute: about 12 minutes from full at the tenth sample. */
const filling = (index: number) => 150_000 + 6_000 * index;

describe('detect handler: near-full forecasts from host samples', () => {
  let dynamo: LocalDynamo;
  let documents: DynamoDBDocumentClient;
  let tableName: string;
  let detect: typeof import('../../../functions/handlers/detect.js');
  let powertools: typeof import('../../../functions/handlers/powertools.js');
  const { mocks, load } = handlerHarness({ stepFunctions: SFNClient });
  const { stepFunctions } = mocks;
  let executions: Map<string, StartExecutionCommandInput>;

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
        NEAR_FULL_HORIZON_MINUTES: '30',
        NEAR_FULL_USAGE_PERCENT: '90',
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
    vi.setSystemTime(new Date(START + 10 * 60_000));
    executions = new Map();
    stepFunctions.on(StartExecutionCommand).callsFake((input: StartExecutionCommandInput) => {
      const name = String(input.name);
      if (executions.has(name)) {
        throw new ExecutionAlreadyExists({ message: `Execution Already Exists: '${name}'`, $metadata: {} });
      }
      executions.set(name, input);
      return {
        executionArn: `arn:aws:states:eu-west-1:123456789012:execution:x:${name}`,
        startDate: new Date(),
      };
    });
    for (const item of (await documents.send(new ScanCommand({ TableName: tableName }))).Items ?? []) {
      await documents.send(new DeleteCommand({ TableName: tableName, Key: { pk: item.pk, sk: item.sk } }));
    }
  });

  const items = async (prefix: string) =>
    ((await documents.send(new ScanCommand({ TableName: tableName }))).Items ?? []).filter((item) =>
      String(item.pk).startsWith(prefix),
    );

  it('opens one near-full incident for a filling table, starts its workflow once, and carries the forecast', async () => {
    const event = subscriptionEvent(samples(10, filling), INSTANCE);
    const first = await detect.handler(event, lambdaContext);
    const retry = await detect.handler(event, lambdaContext);

    const incidentId = `${INSTANCE}-near-20260313T2000Z`;
    expect(first.incidents).toEqual([
      { incidentId, host: INSTANCE, kind: 'near-full', outcome: 'opened', workflow: 'started' },
    ]);
    expect(retry.incidents).toEqual([expect.objectContaining({ incidentId, outcome: 'duplicate' })]);
    expect(executions.size).toBe(1);
    const input = JSON.parse(String(executions.get(incidentId)?.input));
    expect(input).toMatchObject({
      kind: 'near-full',
      instanceId: INSTANCE,
      mode: 'approve',
      trigger: {
        dropLines: 0,
        netns: NETNS,
        forecast: { trigger: 'horizon', max: MAX, horizonSeconds: 1800 },
      },
    });
    const forecast = input.trigger.forecast;
    // 204 000 of 262 144, rising 100/s: full in about 9.7 minutes.
    expect(forecast.growthPerSecond).toBeCloseTo(100, 0);
    expect(forecast.secondsToFull).toBeGreaterThan(500);
    expect(forecast.secondsToFull).toBeLessThan(700);
    expect(forecast.samples).toHaveLength(10);
    expect(input.trigger.events.length).toBeGreaterThan(0);
  });

  it('keeps each host’s window between deliveries: three samples forecast nothing, the next ones do', async () => {
    const all = samples(8, filling);
    vi.setSystemTime(new Date(START + 3 * 60_000));
    const early = await detect.handler(subscriptionEvent(all.slice(0, 3), INSTANCE), lambdaContext);
    expect(early.incidents).toEqual([]);
    expect(await items('samples#')).toEqual([
      expect.objectContaining({ pk: `samples#${INSTANCE}`, sk: `netns#${NETNS}`, version: 1 }),
    ]);
    vi.setSystemTime(new Date(START + 8 * 60_000));
    const later = await detect.handler(subscriptionEvent(all.slice(3), INSTANCE), lambdaContext);
    expect(later.incidents).toEqual([expect.objectContaining({ kind: 'near-full', outcome: 'opened' })]);
    const [stored] = await items('samples#');
    expect(String(stored?.samples).split(';')).toHaveLength(8);
  });

  it('opens nothing for a flat table at 70 %, nor stores anything for an idle one', async () => {
    const flat = await detect.handler(
      subscriptionEvent(
        samples(12, (index) => 183_000 + (index % 3) * 400),
        INSTANCE,
      ),
      lambdaContext,
    );
    expect(flat.incidents).toEqual([]);
    expect(await items('samples#')).toHaveLength(1);

    const idle = await detect.handler(
      subscriptionEvent(
        samples(12, (index) => 1_000 + 50 * index),
        'i-0fedcba9876543210',
      ),
      lambdaContext,
    );
    expect(idle.incidents).toEqual([]);
    expect(await items('samples#')).toHaveLength(1);
    expect(executions.size).toBe(0);
  });

  it('opens a near-full incident at once for one sample above the usage threshold', async () => {
    const result = await detect.handler(
      subscriptionEvent([sampleEvent(START + 9 * 60_000, 240_000)], INSTANCE),
      lambdaContext,
    );
    expect(result.incidents).toEqual([expect.objectContaining({ kind: 'near-full', outcome: 'opened' })]);
    expect(JSON.parse(String([...executions.values()][0]?.input)).trigger.forecast.trigger).toBe('usage');
  });

  it('leaves a host with drop lines to its table-full incident, in the same delivery or an open one', async () => {
    const both = await detect.handler(
      subscriptionEvent([...samples(10, filling), ...kernelDropEvents(3, 'ip-10-0-0-1', START)], INSTANCE),
      lambdaContext,
    );
    expect(both.incidents.map((incident) => incident.kind)).toEqual(['table-full']);

    vi.setSystemTime(new Date(START + 12 * 60_000));
    const later = await detect.handler(
      subscriptionEvent(
        samples(2, (index) => 212_000 + 6_000 * index, START + 10 * 60_000),
        INSTANCE,
      ),
      lambdaContext,
    );
    expect(later.incidents).toEqual([]);
    expect([...executions.keys()]).toEqual([`${INSTANCE}-full-20260313T2000Z`]);
  });

  it('adds later forecasts within the cooldown to the open incident and starts nothing more', async () => {
    await detect.handler(subscriptionEvent(samples(10, filling), INSTANCE), lambdaContext);
    vi.setSystemTime(new Date(START + 12 * 60_000));
    const repeat = await detect.handler(
      subscriptionEvent(
        samples(2, (index) => 210_000 + 6_000 * index, START + 10 * 60_000),
        INSTANCE,
      ),
      lambdaContext,
    );
    expect(repeat.incidents).toEqual([expect.objectContaining({ kind: 'near-full', outcome: 'added' })]);
    expect(executions.size).toBe(1);
    expect(await items('incident#')).toHaveLength(1);
  });

  it('counts a damaged or forged-format sample line and still uses the good lines beside it', async () => {
    const warn = vi.spyOn(powertools.logger, 'warn');
    const addMetric = vi.spyOn(powertools.metrics, 'addMetric');
    const good = samples(10, filling);
    const bad = {
      ...sampleEvent(START + 30_000, 1),
      message: 'conntrack-responder-sample v=1 t=1 count=$(reboot) max=1',
    };
    const result = await detect.handler(subscriptionEvent([bad, ...good], INSTANCE), lambdaContext);
    expect(result.incidents).toEqual([expect.objectContaining({ kind: 'near-full', outcome: 'opened' })]);
    expect(addMetric).toHaveBeenCalledWith('SampleLinesRejected', 'Count', 1);
    const warning = warn.mock.calls.find(([message]) => /Refused host sample lines/.test(String(message)));
    expect(warning).toBeDefined();
    expect(JSON.stringify(warning)).not.toContain('reboot');
  });

  it('publishes each sample as per-instance metrics (embedded metric format, dimension InstanceId)', async () => {
    const addMetric = vi.spyOn(Metrics.prototype, 'addMetric');
    const addDimension = vi.spyOn(Metrics.prototype, 'addDimension');
    await detect.handler(subscriptionEvent(samples(3, filling), INSTANCE), lambdaContext);
    const entries = addMetric.mock.calls
      .filter(([name]) => name === 'ConntrackEntries')
      .map(([, , value]) => value);
    expect(entries).toEqual([150_000, 156_000, 162_000]);
    expect(addMetric).toHaveBeenCalledWith('ConntrackUsage', 'Percent', (100 * 150_000) / MAX);
    expect(addMetric).toHaveBeenCalledWith('ConntrackDropCounter', 'Count', 0);
    expect(addDimension).toHaveBeenCalledWith('InstanceId', INSTANCE);
  });
});
