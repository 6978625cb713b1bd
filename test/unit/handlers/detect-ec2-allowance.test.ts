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
 * The detect function on the host sampler's ENA counters (issue 14): a rise of
 * conntrack_allowance_exceeded against the host's stored reading, or a low
 * conntrack_allowance_available, opens an `ec2-allowance` incident naming the interfaces, with
 * dedupe, cooldown and modes as for drops; the first reading is only a baseline; quiet counters
 * open nothing. Real DynamoDB semantics (dynalite); Step Functions faked at the SDK client.
 */

const STATE_MACHINE_ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:ConntrackIncident';
const INSTANCE = 'i-0123456789abcdef0';
const MAX = 262_144;
const START = Date.parse('2026-03-13T20:10:00Z');
const NETNS = '4026531840';

let nextEventId = 0;
let seq = 0;

type Ena = Record<string, { exceeded?: number; available?: number }>;

/** The sampler's line as journald forwards it to /var/log/messages, with ENA counters. */
function sampleEvent(at: number, ena: Ena, options: { boot?: string; count?: number } = {}) {
  const fields = Object.entries(ena).flatMap(([name, counters], index) => [
    `ena.${index}=${name}`,
    ...(counters.exceeded === undefined ? [] : [`ena.${index}.exceeded=${counters.exceeded}`]),
    ...(counters.available === undefined ? [] : [`ena.${index}.available=${counters.available}`]),
  ]);
  const line = `conntrack-responder-sample v=1 seq=${++seq} t=${(at / 1000).toFixed(3)} boot=${options.boot ?? '1f0e2d3c'} ns=${NETNS} count=${options.count ?? 1000} max=${MAX} drop=0 early_drop=0 insert_failed=0 search_restart=0 cpus=2 ${fields.join(' ')}`;
  const stamp = new Date(at);
  const day = String(stamp.getUTCDate()).padStart(2, ' ');
  return {
    id: String(++nextEventId).padStart(56, '7'),
    timestamp: at,
    message: `Mar ${day} ${stamp.toISOString().slice(11, 19)} ip-10-0-0-1 conntrack-responder-sampler[812]: ${line}`,
  } satisfies SubscriptionLogEvent;
}

describe('detect handler: EC2 allowance incidents from host samples', () => {
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
  const deliver = (events: SubscriptionLogEvent[], host = INSTANCE) =>
    detect.handler(subscriptionEvent(events, host), lambdaContext);

  it('takes the first reading as a baseline, then opens one ec2-allowance incident for a rise, naming the interface', async () => {
    vi.setSystemTime(new Date(START + 60_000));
    const baseline = await deliver([sampleEvent(START, { eth0: { exceeded: 5000, available: 90_000 } })]);
    expect(baseline.incidents).toEqual([]);
    expect(await items('allowance#')).toEqual([
      expect.objectContaining({
        pk: `allowance#${INSTANCE}`,
        sk: `netns#${NETNS}`,
        readingAt: START,
        interfaces: 'eth0:5000:90000',
      }),
    ]);

    vi.setSystemTime(new Date(START + 2 * 60_000));
    const rising = [
      sampleEvent(START + 60_000, {
        eth0: { exceeded: 5600, available: 90_000 },
        eth1: { exceeded: 3, available: 90_000 },
      }),
    ];
    const first = await deliver(rising);
    const retry = await deliver(rising);
    const incidentId = `${INSTANCE}-ec2-20260313T2000Z`;
    expect(first.incidents).toEqual([
      { incidentId, host: INSTANCE, kind: 'ec2-allowance', outcome: 'opened', workflow: 'started' },
    ]);
    expect(retry.incidents).toEqual([expect.objectContaining({ incidentId, outcome: 'duplicate' })]);
    expect(executions.size).toBe(1);
    const input = JSON.parse(String(executions.get(incidentId)?.input));
    expect(input).toMatchObject({
      kind: 'ec2-allowance',
      instanceId: INSTANCE,
      mode: 'approve',
      trigger: {
        dropLines: 0,
        netns: NETNS,
        allowance: {
          lowAvailable: 1000,
          interfaces: [
            { name: 'eth0', exhausted: true, low: false, exceededIncrease: 600, coveredSeconds: 60 },
          ],
        },
      },
    });
    // eth1 appeared with this sample: its first reading is only a baseline.
    expect(input.trigger.allowance.interfaces).toHaveLength(1);
    expect(input.trigger.allowance.summary).toMatch(/^eth0: conntrack_allowance_exceeded rose by 600/);
    expect(input.trigger.events.length).toBe(1);
  });

  it('opens nothing while the counters are quiet, and rewrites the stored reading only when due', async () => {
    vi.setSystemTime(new Date(START + 60_000));
    await deliver([sampleEvent(START, { eth0: { exceeded: 7, available: 90_000 } })]);
    const [before] = await items('allowance#');
    for (let minute = 1; minute <= 3; minute++) {
      vi.setSystemTime(new Date(START + (minute + 1) * 60_000));
      const quiet = await deliver([
        sampleEvent(START + minute * 60_000, { eth0: { exceeded: 7, available: 89_000 } }),
      ]);
      expect(quiet.incidents).toEqual([]);
    }
    expect(await items('allowance#')).toEqual([before]);
    vi.setSystemTime(new Date(START + 7 * 60_000));
    await deliver([sampleEvent(START + 6 * 60_000, { eth0: { exceeded: 7, available: 88_000 } })]);
    expect((await items('allowance#'))[0]).toMatchObject({ readingAt: START + 6 * 60_000 });
    expect(executions.size).toBe(0);
  });

  it('opens an incident at once for a low conntrack_allowance_available, and adds repeats within the cooldown', async () => {
    vi.setSystemTime(new Date(START + 60_000));
    const low = await deliver([sampleEvent(START, { ens5: { exceeded: 0, available: 120 } })]);
    expect(low.incidents).toEqual([expect.objectContaining({ kind: 'ec2-allowance', outcome: 'opened' })]);
    vi.setSystemTime(new Date(START + 2 * 60_000));
    const again = await deliver([sampleEvent(START + 60_000, { ens5: { exceeded: 0, available: 80 } })]);
    expect(again.incidents).toEqual([expect.objectContaining({ kind: 'ec2-allowance', outcome: 'added' })]);
    expect(executions.size).toBe(1);
    const input = JSON.parse(String([...executions.values()][0]?.input));
    expect(input.trigger.allowance.interfaces).toEqual([
      expect.objectContaining({ name: 'ens5', low: true, exhausted: false, available: 120 }),
    ]);
  });

  it('counts a driver reset from zero, and forgets the baseline at a reboot', async () => {
    vi.setSystemTime(new Date(START + 60_000));
    await deliver([sampleEvent(START, { eth0: { exceeded: 5000 } })]);
    vi.setSystemTime(new Date(START + 2 * 60_000));
    const rebooted = await deliver([
      sampleEvent(START + 60_000, { eth0: { exceeded: 9000 } }, { boot: 'aaaabbbb' }),
    ]);
    expect(rebooted.incidents).toEqual([]);
    vi.setSystemTime(new Date(START + 3 * 60_000));
    const reset = await deliver([
      sampleEvent(START + 2 * 60_000, { eth0: { exceeded: 4 } }, { boot: 'aaaabbbb' }),
    ]);
    expect(reset.incidents).toEqual([expect.objectContaining({ kind: 'ec2-allowance', outcome: 'opened' })]);
    const input = JSON.parse(String([...executions.values()][0]?.input));
    expect(input.trigger.allowance.interfaces[0]).toMatchObject({ exceededIncrease: 4, resets: 1 });
  });

  it('keeps the two tables apart: kernel drops and EC2 drops in one delivery open one incident each', async () => {
    vi.setSystemTime(new Date(START + 2 * 60_000));
    const result = await deliver([
      sampleEvent(START, { eth0: { exceeded: 10 } }),
      sampleEvent(START + 60_000, { eth0: { exceeded: 900 } }),
      ...kernelDropEvents(3, 'ip-10-0-0-1', START),
    ]);
    expect(result.incidents.map((incident) => incident.kind).sort()).toEqual(['ec2-allowance', 'table-full']);
    expect(executions.size).toBe(2);
  });

  it('reads and writes nothing for samples without ENA counters', async () => {
    const plain = {
      ...sampleEvent(START, {}),
    };
    const result = await deliver([plain]);
    expect(result.incidents).toEqual([]);
    expect(await items('allowance#')).toEqual([]);
  });

  it('refuses a damaged ENA field by reason, and still reads the good lines beside it', async () => {
    const warn = vi.spyOn(powertools.logger, 'warn');
    vi.setSystemTime(new Date(START + 2 * 60_000));
    const bad = sampleEvent(START + 30_000, { eth0: { exceeded: 1 } });
    const forged = { ...bad, message: bad.message.replace('ena.0.exceeded=1', 'ena.3.exceeded=1') };
    const result = await deliver([
      sampleEvent(START, { eth0: { exceeded: 10 } }),
      forged,
      sampleEvent(START + 60_000, { eth0: { exceeded: 20 } }),
    ]);
    expect(result.incidents).toEqual([expect.objectContaining({ kind: 'ec2-allowance', outcome: 'opened' })]);
    const warning = warn.mock.calls.find(([message]) => /Refused host sample lines/.test(String(message)));
    expect(JSON.stringify(warning)).toContain('ena.3.exceeded without ena.3');
  });
});
