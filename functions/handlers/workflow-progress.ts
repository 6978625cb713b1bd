/**
 * The incident thread's step lines on AWS: a subscription filter on the workflow's execution log
 * (only the exits of the steps worth a line, see THREAD_STEPS) delivers records here, and each
 * becomes a reply in its incident's thread. Best effort by design: a failed post is logged, never
 * retried (a retry would repeat lines), and the outcome message at the end does not depend on it.
 */

import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { CloudWatchLogsEvent } from 'aws-lambda';
import { incidentViewOf } from '../core/chatops/approval-task.js';
import { type ExecutionLogRecord, parseExecutionLogRecord } from '../core/chatops/execution-log.js';
import type { IncidentView } from '../core/chatops/messages.js';
import { stepUpdateOf } from '../core/chatops/steps.js';
import { decodeAwsLogsData } from '../core/detect/awslogs-decode.js';
import { parseCloudWatchLogsData } from '../core/detect/cloudwatch.js';
import { workflowProgressSettings } from '../core/function-settings.js';
import { chatopsRuntimeFrom } from './chatops.js';
import { withPowertools } from './middleware.js';
import { logger, metrics, tracer } from './powertools.js';

const runtime = chatopsRuntimeFrom(
  workflowProgressSettings(process.env).chatops,
  tracer.captureAWSv3Client(new DynamoDBClient({})),
  (message, fields) => logger.warn(message, fields),
);

type Fields = Record<string, unknown>;
const fields = (value: unknown): Fields =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Fields) : {};

/** The incident, from the state a step left behind (every state carries it under `incident`). */
function incidentOf(record: ExecutionLogRecord): IncidentView | null {
  const incident = fields(fields(record.output).incident ?? fields(record.input).incident);
  if (typeof incident.incidentId !== 'string' || !/^[A-Za-z0-9_-]{1,80}$/.test(incident.incidentId))
    return null;
  return incidentViewOf(
    {
      ...incident,
      incidentId: incident.incidentId,
      kind: typeof incident.kind === 'string' ? incident.kind : 'table-full',
      instanceId: typeof incident.instanceId === 'string' ? incident.instanceId : null,
    } as Parameters<typeof incidentViewOf>[0],
    record.executionArn,
  );
}

export const lambdaHandler = async (event: CloudWatchLogsEvent) => {
  const data = parseCloudWatchLogsData(decodeAwsLogsData(event.awslogs.data));
  const records = data.logEvents
    .map((logEvent) => parseExecutionLogRecord(logEvent.message))
    .filter((record): record is ExecutionLogRecord => record !== null)
    .sort((a, b) => a.id - b.id);
  let posted = 0;
  let failed = 0;
  for (const record of records) {
    const update = stepUpdateOf(record);
    const incident = incidentOf(record);
    if (update === null || incident === null) continue;
    try {
      await runtime.chat.step(incident, update.title, update.status, update.detail);
      posted += 1;
    } catch (error) {
      failed += 1;
      logger.error('Could not post a step line', {
        incidentId: incident.incidentId,
        step: update.title,
        error: (error as Error).message,
      });
    }
  }
  if (posted > 0) metrics.addMetric('SlackStepLinesPosted', MetricUnit.Count, posted);
  if (failed > 0) metrics.addMetric('SlackStepLinesFailed', MetricUnit.Count, failed);
  logger.info('Workflow progress', { records: records.length, posted, failed });
  return { records: records.length, posted, failed };
};

export const handler = withPowertools(lambdaHandler);
