import { gunzipSync } from 'node:zlib';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { parser } from '@aws-lambda-powertools/parser/middleware';
import { CloudWatchLogsDecodeSchema } from '@aws-lambda-powertools/parser/schemas/cloudwatch';
import type { ParsedResult } from '@aws-lambda-powertools/parser/types';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import middy from '@middy/core';
import type { CloudWatchLogsEvent, Context } from 'aws-lambda';
import { z } from 'zod';
import { AllowanceBaselineStore } from '../adapters/allowance-baseline-store.js';
import { escalateBreakerOnce } from '../adapters/fleet-escalation.js';
import { GuardrailStore } from '../adapters/guardrail-store.js';
import { IncidentStore, type RecordingOutcome } from '../adapters/incident-store.js';
import { type StartOutcome, startIncidentWorkflow } from '../adapters/incident-workflow.js';
import { SampleWindowStore } from '../adapters/sample-window-store.js';
import { DEFAULT_ALLOWANCE_DETECT_SETTINGS } from '../core/allowance/detect.js';
import {
  detectInSubscription,
  readCloudWatchLogsData,
  type SubscriptionDetection,
} from '../core/detect/index.js';
import { ResponderError } from '../core/errors.js';
import { eventsAtOpening } from '../core/events/lifecycle.js';
import { detectFunctionSettings } from '../core/function-settings.js';
import type { IncidentAdmission } from '../core/guardrails/breaker.js';
import { type DropObservation, type IncidentPolicy, mayStartWorkflow } from '../core/incident/incident.js';
import { formatIssues } from '../core/zod-issues.js';
import { hostSampleObservations } from './host-samples.js';
import { putLifecycleEvents } from './lifecycle-events.js';
import { IGNORED_DROP_TEXT_METRICS } from './metric-names.js';
import { logger, METRICS_NAMESPACE, metrics, SERVICE_NAME, tracer } from './powertools.js';

/**
 * The `detect` function: a CloudWatch Logs subscription delivery of kernel lines in, at most one
 * open incident per instance and kind out, each with its workflow started exactly once.
 *
 * Invoked asynchronously, so a thrown error means "retry, then keep the event in the on-failure
 * queue": that is what happens to an event that cannot be decoded (logged with the reason, never
 * with its content) and to a failed AWS call. Retries are harmless: deliveries are recognised,
 * incidents are opened by conditional writes, and executions are named after their incident.
 */

// A misconfigured function fails at init, naming the variable, rather than on every event.
const {
  detect: settings,
  guardrails,
  forecast: forecastSettings,
  hostMetrics: publishHostMetrics,
  retry,
  region,
} = detectFunctionSettings(process.env);
const policy: IncidentPolicy = {
  cooldownMinutes: settings.cooldownMinutes,
  defaultMode: settings.defaultMode,
  incidentRetentionDays: settings.incidentRetentionDays,
};
// Per-instance metrics of the host samples: their own object, so the function's counts keep theirs.
const hostMetrics = publishHostMetrics
  ? new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME })
  : null;
// Throttling and transient errors are retried by the SDK (backoff, full jitter) before they fail
// the invocation, which Lambda then retries and finally keeps in the failed-events queue.
const documents = DynamoDBDocumentClient.from(tracer.captureAWSv3Client(new DynamoDBClient(retry)));
const store = new IncidentStore(documents, settings.incidentTableName);
const guardrailStore = new GuardrailStore(documents, settings.incidentTableName, guardrails);
const sampleStore = new SampleWindowStore(documents, settings.incidentTableName, forecastSettings);
const allowanceStore = new AllowanceBaselineStore(
  documents,
  settings.incidentTableName,
  DEFAULT_ALLOWANCE_DETECT_SETTINGS,
);
const stepFunctions = tracer.captureAWSv3Client(new SFNClient(retry));
const escalation = {
  sns: tracer.captureAWSv3Client(new SNSClient(retry)),
  topicArn: settings.notificationTopicArn,
  tableName: settings.incidentTableName,
  region,
};

/**
 * Powertools' CloudWatchLogsSchema, except that the log events are only required to be there: the
 * detection core validates each one (readCloudWatchLogsData), so that one malformed event is
 * refused alone and never costs the events beside it. Failures keep Powertools' wording, which
 * describeParseFailure retraces.
 */
const SubscriptionEventSchema = z.object({
  awslogs: z.object({
    data: z.base64().transform((data, context) => {
      try {
        const decoded: unknown = JSON.parse(gunzipSync(Buffer.from(data, 'base64')).toString('utf8'));
        return CloudWatchLogsDecodeSchema.extend({ logEvents: z.array(z.unknown()).nonempty() }).parse(
          decoded,
        );
      } catch {
        context.addIssue({
          code: 'custom',
          message: 'Failed to decompress CloudWatch log data',
          fatal: true,
        });
        return z.NEVER;
      }
    }),
  }),
});

type SubscriptionEvent = z.infer<typeof SubscriptionEventSchema>;

/**
 * When the breaker episode this container last saw escalated (or closed) tripped: incidents held
 * in that episode need no further claim attempt on the breaker item, which a storm would
 * otherwise hit once per delivery.
 */
let escalationSettledFor: string | null = null;

/** The event could not be decoded or validated; the message says why, without its content. */
export class RejectedEventError extends ResponderError {
  override readonly name = 'RejectedEventError';
}

export interface DetectResult {
  readonly messageType: 'DATA_MESSAGE' | 'CONTROL_MESSAGE';
  readonly incidents: readonly {
    readonly incidentId: string;
    readonly host: string;
    readonly kind: string;
    readonly outcome: RecordingOutcome;
    /**
     * `held`: the fleet breaker is open, so no workflow starts (its one escalation covers it);
     * `starting`: the delivery that opened the incident is starting it.
     */
    readonly workflow: StartOutcome | 'running' | 'held' | 'starting';
  }[];
  readonly ignored: {
    readonly 'not-kernel': number;
    readonly unrelated: number;
    readonly unreadable: number;
  };
  /** Set when this delivery tripped the fleet breaker or sent its escalation. */
  readonly breaker?: { readonly tripped: boolean; readonly escalationSent: boolean };
}

export const lambdaHandler = async (
  parsed: ParsedResult<unknown, SubscriptionEvent>,
): Promise<DetectResult> => {
  if (!parsed.success) reject(describeParseFailure(parsed.error, parsed.originalEvent));
  const { data, refused } = readCloudWatchLogsData(parsed.data.awslogs.data);
  if (data.messageType === 'CONTROL_MESSAGE') {
    logger.info('Acknowledged a CloudWatch Logs control message');
    return {
      messageType: 'CONTROL_MESSAGE',
      incidents: [],
      ignored: { 'not-kernel': 0, unrelated: 0, unreadable: 0 },
    };
  }
  if (data.messageType !== 'DATA_MESSAGE') reject(`unknown messageType ${quoted(data.messageType)}`);

  const now = new Date();
  const detection = detectInSubscription(
    data,
    { instanceIdPattern: settings.instanceIdPattern, now },
    refused,
  );
  if (refused.length > 0) {
    // Never the events' content: where they are in the delivery, and why they were refused.
    metrics.addMetric('LogEventsRefused', MetricUnit.Count, refused.length);
    logger.warn('Refused malformed log events; the other events of the delivery were read', {
      logGroup: data.logGroup,
      logStream: data.logStream,
      refused: refused.slice(0, 5).map((event) => `${event.where}: ${event.reason}`),
    });
  }
  const incidents: DetectResult['incidents'][number][] = [];
  let tripped = false;
  /** Whether an incident of this delivery was held in an episode not known to be escalated. */
  let escalationMayBeDue = false;
  const observations: DropObservation[] = detection.groups.map((group, index) => ({
    ...group,
    source: { owner: data.owner, logGroup: data.logGroup, logStream: data.logStream },
    events: detection.events[index] ?? [],
  }));
  // The host sampler's lines: near-full forecasts and EC2 allowance findings open incidents the
  // same way (docs/forecast.md).
  observations.push(
    ...(await hostSampleObservations({
      data,
      now,
      instanceIdPattern: settings.instanceIdPattern,
      samples: sampleStore,
      allowance: allowanceStore,
      incidents: store,
      policy,
      settings: forecastSettings,
      metrics,
      hostMetrics,
      hostsWithDrops: new Set(
        detection.groups.filter((group) => group.kind === 'table-full').map((group) => group.host),
      ),
    })),
  );
  for (const observation of observations) {
    const recorded = await store.recordDrops(observation, now, policy);
    const { incident } = recorded;
    if (recorded.outcome !== 'duplicate') {
      // Remembered before anything can fail, so that a retry counts these lines once.
      await store.rememberDelivery(recorded, now);
      metrics.addMetric('DropLinesSeen', MetricUnit.Count, observation.dropLines);
    }
    // The breaker decides once per incident whether its workflow may start; a retry or a
    // concurrent delivery finds that decision stored on the incident.
    const admitted = await guardrailStore.admit(
      { incidentId: incident.incidentId, host: incident.host, account: data.owner },
      incident.admission,
      now,
    );
    tripped ||= admitted.tripped;
    let workflow: StartOutcome | 'running' | 'held' | 'starting' = 'running';
    if (admitted.admission.decision === 'hold') {
      workflow = 'held';
      const { trippedAt } = admitted.admission;
      // The opening that tripped the breaker always sends (or retries) its escalation.
      escalationMayBeDue ||=
        admitted.tripped || trippedAt === undefined || trippedAt !== escalationSettledFor;
    } else if (mayStartWorkflow(incident, recorded.deliveryKey, now)) {
      // Also reached by a retry whose first attempt opened the incident but failed before this.
      workflow = await startIncidentWorkflow(stepFunctions, settings.stateMachineArn, incident);
      await store.markExecutionStarted(incident.incidentId);
    } else if (!incident.executionStarted) {
      workflow = 'starting';
    }
    if (recorded.outcome === 'opened') {
      metrics.addMetric('IncidentsOpened', MetricUnit.Count, 1);
      if (workflow === 'held') metrics.addMetric('IncidentsHeld', MetricUnit.Count, 1);
      // Never throws: an event EventBridge did not take is logged and counted, the delivery goes on.
      await putLifecycleEvents(eventsAtOpening(incident, admitted.admission, now));
    }
    logger.info(
      observation.kind === 'near-full'
        ? 'Recorded a near-full forecast'
        : observation.kind === 'ec2-allowance'
          ? 'Recorded an exhausted EC2 allowance'
          : 'Recorded conntrack drops',
      {
        incidentId: incident.incidentId,
        outcome: recorded.outcome,
        workflow,
        admission: describeAdmission(admitted.admission),
        host: observation.host,
        kind: observation.kind,
        netns: observation.netns,
        dropLines: observation.dropLines,
        suppressed: observation.suppressed,
        ...(observation.forecast ? { forecast: observation.forecast.summary } : {}),
        ...(observation.allowance ? { allowance: observation.allowance.summary } : {}),
      },
    );
    incidents.push({
      incidentId: incident.incidentId,
      host: observation.host,
      kind: observation.kind,
      outcome: recorded.outcome,
      workflow,
    });
  }
  if (detection.groups.length === 0) {
    logger.info('No conntrack drops in this delivery', {
      ignored: detection.ignored,
      logStream: data.logStream,
    });
  }
  reportIgnoredDropText(data, detection);
  let escalationSent = false;
  if (tripped) {
    metrics.addMetric('FleetBreakerTripped', MetricUnit.Count, 1);
    logger.warn('The fleet breaker tripped: automatic changes stop everywhere until a person resets it');
  }
  if (escalationMayBeDue) {
    // Whoever claims it sends the one escalation; a failure here fails the invocation, and its
    // retry (or the next held delivery) sends it.
    const attempt = await escalateBreakerOnce(guardrailStore, escalation, now);
    escalationSent = attempt.sent;
    if (attempt.settledTrippedAt !== null) escalationSettledFor = attempt.settledTrippedAt;
    if (attempt.sent) logger.warn('Sent the fleet breaker escalation', { messageId: attempt.messageId });
  }
  return {
    messageType: 'DATA_MESSAGE',
    incidents,
    ignored: detection.ignored,
    ...(tripped || escalationSent ? { breaker: { tripped, escalationSent } } : {}),
  };
};

/**
 * A delivery with drop or suppression text that did not count as the kernel's is the sign of a
 * wrong shipping setup (a journald collector that does not keep the kernel transport, a file
 * format without the syslog header, another program's copy of the words): made visible on the
 * first such event, as metrics with an alarm and a warning naming where the lines came from,
 * instead of at the next outage. Never the lines themselves.
 */
function reportIgnoredDropText(
  data: { logGroup: string; logStream: string },
  detection: SubscriptionDetection,
) {
  const { 'not-kernel': notKernel, unreadable } = detection.ignored;
  if (notKernel === 0 && unreadable === 0) return;
  if (notKernel > 0) metrics.addMetric(IGNORED_DROP_TEXT_METRICS.notKernel, MetricUnit.Count, notKernel);
  if (unreadable > 0) metrics.addMetric(IGNORED_DROP_TEXT_METRICS.unreadable, MetricUnit.Count, unreadable);
  logger.warn('Conntrack drop or suppression text in this delivery did not count as kernel drops', {
    logGroup: data.logGroup,
    logStream: data.logStream,
    notKernel,
    unreadable,
    problems: detection.problems.slice(0, 5),
    check:
      'not-kernel: the lines have no kernel syslog header, or journald entries whose _TRANSPORT is not kernel; unreadable: a wording or timestamp detect cannot read. See README "Is shipping working?"',
  });
}

function describeAdmission(admission: IncidentAdmission): string {
  return `${admission.decision}: ${admission.detail}`;
}

function reject(reason: string): never {
  logger.error('Rejected a subscription event', { reason });
  metrics.addMetric('EventsRejected', MetricUnit.Count, 1);
  throw new RejectedEventError(`subscription event rejected: ${reason}`);
}

function quoted(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
}

/**
 * Why the parser refused the event, as precisely as we can tell. The schema reports every failure
 * after base64 as "Failed to decompress", so those are retraced step by step here.
 */
function describeParseFailure(error: Error, originalEvent: unknown): string {
  const issues = Array.isArray(error.cause)
    ? (error.cause as { path?: PropertyKey[]; message?: string }[])
    : [];
  const schemaReason =
    issues
      .map((issue) => `${(issue.path ?? []).map(String).join('.') || '(event)'}: ${issue.message}`)
      .join('; ') || error.message;
  const data = (originalEvent as { awslogs?: { data?: unknown } } | undefined)?.awslogs?.data;
  if (
    typeof data !== 'string' ||
    !issues.some((issue) => issue.message === 'Failed to decompress CloudWatch log data')
  ) {
    return schemaReason;
  }
  let text: string;
  try {
    text = gunzipSync(Buffer.from(data, 'base64')).toString('utf8');
  } catch (gzipError) {
    return `awslogs.data: not gzip-compressed (${(gzipError as Error).message})`;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return 'awslogs.data: decompressed to something that is not JSON';
  }
  const decoded = CloudWatchLogsDecodeSchema.safeParse(json);
  if (decoded.success) return schemaReason;
  return formatIssues(decoded.error, { prefix: 'awslogs.data(decoded).', root: '' });
}

const middyfied = middy(lambdaHandler)
  .use(captureLambdaHandler(tracer))
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics, { captureColdStartMetric: true }))
  .use(parser({ schema: SubscriptionEventSchema, safeParse: true }));

/**
 * The Lambda entry point. It takes the raw subscription event (`awslogs.data` still encoded); the
 * parser middleware hands the handler its decoded form, which is the type middy infers.
 */
export const handler = middyfied as unknown as (
  event: CloudWatchLogsEvent,
  context: Context,
) => Promise<DetectResult>;
