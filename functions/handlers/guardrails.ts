import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { GuardrailStore } from '../adapters/guardrail-store.js';
import { readCalendarState, readModeTag } from '../adapters/instance-policy.js';
import { guardrailsFunctionSettings } from '../core/function-settings.js';
import { type GuardrailPorts, type GuardrailState, runGuardrailStep } from '../core/guardrails/steps.js';
import { withPowertools } from './middleware.js';
import { logger, metrics, tracer } from './powertools.js';

/**
 * The `guardrails` function: the workflow's "Check the guardrails", "Take a remediation slot" and
 * "Release the remediation slot" states (the payload's `operation` says which), and the
 * EventBridge rule that gives back the slot of an execution that ended without reaching the
 * release state (aborted, timed out, failed).
 */

const {
  guardrails: settings,
  incidentTableName: tableName,
  incidentRetentionDays: retentionDays,
  retry,
} = guardrailsFunctionSettings(process.env);

const store = new GuardrailStore(
  DynamoDBDocumentClient.from(tracer.captureAWSv3Client(new DynamoDBClient(retry))),
  tableName,
  settings,
);
const ec2 = tracer.captureAWSv3Client(new EC2Client(retry));
const ssm = tracer.captureAWSv3Client(new SSMClient(retry));

const ports: GuardrailPorts = {
  modeTag: (instanceId, key) => readModeTag({ ec2, ssm }, instanceId, key),
  calendarState: async () =>
    settings.changeCalendar === null ? null : readCalendarState(ssm, settings.changeCalendar),
  breaker: () => store.getBreaker(),
  lastChange: (instanceId) => store.lastChange(instanceId),
  acquireSlot: (holder, now) => store.acquireSlot(holder, now),
  releaseSlot: (holder) => store.releaseSlot(holder),
  recordChange: (instanceId, change) => store.recordChange(instanceId, change, retentionDays),
  recordTopPorts: (incidentId, topPorts) => store.recordTopPorts(incidentId, topPorts),
};

/** Step Functions' "Execution Status Change" event, as the EventBridge rule delivers it. */
interface ExecutionEnded {
  readonly source: 'aws.states';
  readonly 'detail-type': string;
  readonly detail: { readonly name?: string; readonly status?: string; readonly executionArn?: string };
}

function isExecutionEnded(event: unknown): event is ExecutionEnded {
  return (event as { source?: unknown } | null)?.source === 'aws.states';
}

export const lambdaHandler = async (event: unknown): Promise<GuardrailState | { released: boolean }> => {
  if (isExecutionEnded(event)) {
    // The execution name is the incident id, which is the slot's holder.
    const holder = event.detail.name ?? '';
    if (holder === '') throw new Error('execution status event without an execution name');
    const released = await store.releaseSlot(holder);
    logger.info('Execution ended outside the workflow', { holder, status: event.detail.status, released });
    if (released) metrics.addMetric('RemediationSlotsReclaimed', MetricUnit.Count, 1);
    return { released };
  }
  const result = await runGuardrailStep(event, ports, settings, new Date());
  const operation = (event as { operation?: string }).operation;
  logger.info('Guardrail step', {
    operation,
    next: result.next,
    mode: result.mode,
    slot: result.slot,
    decisions: result.decisions.map((d) => `${d.guardrail}: ${d.effect}`),
  });
  return result;
};

export const handler = withPowertools(lambdaHandler);
