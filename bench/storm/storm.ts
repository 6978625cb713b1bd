/**
 * One storm, in its own process (bench/storm/run.ts starts one per scale and breaker setting):
 * EVENTS kernel drop lines from EVENTS / PER_INSTANCE instances, cut into CloudWatch Logs
 * subscription deliveries of 1 to 4 events, shuffled, with a share of them delivered twice (as
 * Lambda's retries do), handed to the real `detect` handler CONCURRENCY at a time. The incidents
 * table is a dynalite server in a child process on loopback; Step Functions and SNS are faked at
 * the SDK boundary (aws-sdk-client-mock). Prints one JSON line with the figures and the checks.
 *
 *   tsx bench/storm/storm.ts --events 10000 [--per-instance 10] [--breaker 10] [--concurrency 50]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient, StartExecutionCommand, type StartExecutionCommandInput } from '@aws-sdk/client-sfn';
import { PublishCommand, type PublishCommandInput, SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { lambdaContext, subscriptionEvent } from '../../test/support/subscription-events.js';

const here = dirname(fileURLToPath(import.meta.url));

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '10000' },
    'per-instance': { type: 'string', default: '10' },
    breaker: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '50' },
    duplicates: { type: 'string', default: '0.05' },
    seed: { type: 'string', default: '1' },
    'deadline-seconds': { type: 'string', default: '900' },
  },
});
const EVENTS = Number(values.events);
const PER_INSTANCE = Number(values['per-instance']);
const BREAKER = Number(values.breaker);
const CONCURRENCY = Number(values.concurrency);
const DUPLICATE_SHARE = Number(values.duplicates);
const INSTANCES = Math.ceil(EVENTS / PER_INSTANCE);
for (const [name, value] of Object.entries({ EVENTS, PER_INSTANCE, BREAKER, CONCURRENCY })) {
  if (!Number.isInteger(value) || value < 0)
    throw new Error(`--${name.toLowerCase()} must be a whole number`);
}

// Self-stopping: whatever happens, this process ends by the deadline, and takes dynalite with it.
let database: ChildProcess | undefined;
const deadline = setTimeout(() => {
  process.stderr.write(`storm: deadline of ${values['deadline-seconds']} s reached, stopping\n`);
  database?.kill('SIGTERM');
  process.exit(3);
}, Number(values['deadline-seconds']) * 1000);
deadline.unref();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    database?.kill('SIGTERM');
    process.exit(130);
  });
}

/** Deterministic randomness, so every run cuts and orders the same deliveries. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = mulberry32(Number(values.seed));

async function startDatabase(): Promise<string> {
  database = spawn(process.execPath, [join(here, 'dynalite-server.mjs')], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const child = database;
  return new Promise((resolve, reject) => {
    let buffered = '';
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`dynalite exited with ${code}`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const line = buffered.split('\n')[0];
      if (buffered.includes('\n') && line)
        resolve(`http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}`);
    });
  });
}

const endpoint = await startDatabase();
const TABLE = 'incidents';
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
Object.assign(process.env, {
  INCIDENT_TABLE_NAME: TABLE,
  INCIDENT_STATE_MACHINE_ARN: 'arn:aws:states:eu-west-1:123456789012:stateMachine:ConntrackIncident',
  NOTIFICATION_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:conntrack-responder',
  INSTANCE_ID_PATTERN: 'i-[0-9a-f]{8,17}',
  COOLDOWN_MINUTES: '30',
  DEFAULT_MODE: 'approve',
  INCIDENT_RETENTION_DAYS: '90',
  BREAKER_MAX_INSTANCES: String(BREAKER),
  BREAKER_WINDOW_MINUTES: '15',
  AWS_REGION: 'eu-west-1',
  AWS_ACCESS_KEY_ID: credentials.accessKeyId,
  AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
  AWS_ENDPOINT_URL_DYNAMODB: endpoint,
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  POWERTOOLS_METRICS_DISABLED: 'true',
  POWERTOOLS_TRACE_ENABLED: 'false',
});

const dynamo = new DynamoDBClient({ endpoint, region: 'eu-west-1', credentials });
await dynamo.send(
  new CreateTableCommand({
    TableName: TABLE,
    BillingMode: 'PAY_PER_REQUEST',
    KeySchema: [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ],
    AttributeDefinitions: [
      { AttributeName: 'pk', AttributeType: 'S' },
      { AttributeName: 'sk', AttributeType: 'S' },
    ],
  }),
);

// Step Functions at the SDK boundary: a name starts once (as on AWS, for 90 days).
const executions = new Map<string, StartExecutionCommandInput>();
let startCalls = 0;
mockClient(SFNClient)
  .on(StartExecutionCommand)
  .callsFake((input: StartExecutionCommandInput) => {
    startCalls += 1;
    const name = String(input.name);
    if (!executions.has(name)) executions.set(name, input);
    return { executionArn: `${input.stateMachineArn}:${name}`, startDate: new Date() };
  });
const published: PublishCommandInput[] = [];
mockClient(SNSClient)
  .on(PublishCommand)
  .callsFake((input: PublishCommandInput) => {
    published.push(input);
    return { MessageId: `message-${published.length}` };
  });

const memoryBefore = process.memoryUsage();
const { handler } = await import('../../functions/handlers/detect.js');
const memoryLoaded = process.memoryUsage();

// ---- the storm: deliveries of 1 to 4 events per instance, shuffled, some delivered twice ----------
const ACCOUNTS = ['111122223333', '444455556666', '777788889999'];
const instanceId = (n: number) => `i-${(0x5000000 + n).toString(16).padStart(17, '0')}`;
const now = new Date();
const syslogTime = `${now.toUTCString().slice(8, 11)} ${String(now.getUTCDate()).padStart(2, ' ')} ${now.toISOString().slice(11, 19)}`;
let eventId = 0;
type Delivery = { awslogs: { data: string } };
const deliveries: Delivery[] = [];
let made = 0;
for (let n = 0; n < INSTANCES; n++) {
  const host = instanceId(n);
  let left = Math.min(PER_INSTANCE, EVENTS - made);
  while (left > 0) {
    const size = Math.min(left, 1 + Math.floor(random() * 4));
    const logEvents = Array.from({ length: size }, () => ({
      id: String(++eventId).padStart(56, '3'),
      timestamp: now.getTime(),
      message: `${syslogTime} ip-10-${n >> 8}-${n & 255}-1 kernel: nf_conntrack: nf_conntrack: table full, dropping packet`,
    }));
    deliveries.push(subscriptionEvent(logEvents, host, { owner: ACCOUNTS[n % ACCOUNTS.length] }));
    left -= size;
    made += size;
  }
}
const unique = deliveries.length;
for (let i = 0; i < unique; i++) if (random() < DUPLICATE_SHARE) deliveries.push(deliveries[i] as Delivery);
for (let i = deliveries.length - 1; i > 0; i--) {
  const j = Math.floor(random() * (i + 1));
  [deliveries[i], deliveries[j]] = [deliveries[j] as Delivery, deliveries[i] as Delivery];
}

// ---- deliver, CONCURRENCY in flight, retrying a failed invocation as Lambda would (twice) --------
let peakRss = 0;
let peakHeap = 0;
const sample = () => {
  const usage = process.memoryUsage();
  peakRss = Math.max(peakRss, usage.rss);
  peakHeap = Math.max(peakHeap, usage.heapUsed);
};
const sampler = setInterval(sample, 20);
const workflows: Record<string, number> = {};
let failedInvocations = 0;
let lostDeliveries = 0;
const cpuBefore = process.cpuUsage();
const started = process.hrtime.bigint();
let next = 0;
await Promise.all(
  Array.from({ length: Math.min(CONCURRENCY, deliveries.length) }, async () => {
    while (next < deliveries.length) {
      const delivery = deliveries[next++] as Delivery;
      for (let attempt = 0; ; attempt++) {
        try {
          const result = await handler(delivery as never, lambdaContext);
          for (const incident of result.incidents)
            workflows[incident.workflow] = (workflows[incident.workflow] ?? 0) + 1;
          break;
        } catch (error) {
          failedInvocations += 1;
          if (attempt === 2) {
            lostDeliveries += 1;
            process.stderr.write(`storm: a delivery failed three times: ${(error as Error).message}\n`);
            break;
          }
        }
      }
    }
  }),
);
const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
const cpu = process.cpuUsage(cpuBefore);
clearInterval(sampler);
sample();
// What the handler keeps once the storm is over (run.ts starts this process with --expose-gc).
(globalThis as { gc?: () => void }).gc?.();
const memoryAfter = process.memoryUsage();

// ---- what the table says ----------------------------------------------------------------------
const documents = DynamoDBDocumentClient.from(dynamo);
const items: Record<string, unknown>[] = [];
let exclusiveStartKey: Record<string, unknown> | undefined;
do {
  const page = await documents.send(
    new ScanCommand({ TableName: TABLE, ConsistentRead: true, ExclusiveStartKey: exclusiveStartKey }),
  );
  items.push(...(page.Items ?? []));
  exclusiveStartKey = page.LastEvaluatedKey;
} while (exclusiveStartKey);
const incidents = items.filter((item) => String(item.pk).startsWith('incident#'));
const admitted = incidents.filter(
  (item) => (item.admission as { decision?: string } | undefined)?.decision === 'admit',
);
const held = incidents.filter(
  (item) => (item.admission as { decision?: string } | undefined)?.decision === 'hold',
);
const dropLinesRecorded = incidents.reduce((sum, item) => sum + Number(item.dropLines ?? 0), 0);

const problems: string[] = [];
const expectExactly = (what: string, actual: number, expected: number) => {
  if (actual !== expected) problems.push(`${what}: ${actual}, expected exactly ${expected}`);
};
expectExactly('incidents opened', incidents.length, INSTANCES);
expectExactly('distinct hosts with an incident', new Set(incidents.map((item) => item.host)).size, INSTANCES);
expectExactly('executions started', executions.size, admitted.length);
expectExactly(
  'incidents admitted (workflow allowed)',
  admitted.length,
  BREAKER === 0 ? INSTANCES : Math.min(INSTANCES, BREAKER),
);
expectExactly('incidents held past the breaker', held.length, INSTANCES - admitted.length);
expectExactly('fleet escalations sent', published.length, BREAKER > 0 && INSTANCES > BREAKER ? 1 : 0);
expectExactly('deliveries lost', lostDeliveries, 0);
for (const item of admitted) {
  if (!executions.has(String(item.incidentId)))
    problems.push(`admitted incident ${item.incidentId} has no execution`);
}
for (const item of held) {
  if (executions.has(String(item.incidentId)))
    problems.push(`held incident ${item.incidentId} started an execution`);
}
if (dropLinesRecorded < EVENTS)
  problems.push(`drop lines recorded: ${dropLinesRecorded}, fewer than the ${EVENTS} sent`);

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;
process.stdout.write(
  `${JSON.stringify({
    events: EVENTS,
    instances: INSTANCES,
    deliveries: deliveries.length,
    duplicateDeliveries: deliveries.length - unique,
    breakerMaxInstances: BREAKER,
    concurrency: CONCURRENCY,
    wallMs: Math.round(wallMs),
    eventsPerSecond: Math.round((EVENTS / wallMs) * 1000),
    deliveriesPerSecond: Math.round((deliveries.length / wallMs) * 1000),
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    incidentsOpened: incidents.length,
    executionsStarted: executions.size,
    startExecutionCalls: startCalls,
    incidentsHeld: held.length,
    escalations: published.length,
    escalationSubject: published[0]?.Subject ?? null,
    dropLinesRecorded,
    failedInvocations,
    workflows,
    memory: {
      rssBeforeImportMB: mb(memoryBefore.rss),
      rssLoadedMB: mb(memoryLoaded.rss),
      rssPeakMB: mb(peakRss),
      heapLoadedMB: mb(memoryLoaded.heapUsed),
      heapPeakMB: mb(peakHeap),
      heapAfterGcMB: mb(memoryAfter.heapUsed),
      rssAfterGcMB: mb(memoryAfter.rss),
    },
    checks: { ok: problems.length === 0, problems },
  })}\n`,
);
dynamo.destroy();
database?.kill('SIGTERM');
process.exit(problems.length === 0 ? 0 : 1);
