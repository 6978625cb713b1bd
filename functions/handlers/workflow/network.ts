/**
 * The network function: "Describe the network interfaces" (before the plan and after the soak),
 * "Apply: change the ENI timeouts" and "Roll back: restore the ENI timeouts". EC2 through the SDK
 * (functions/adapters/ec2-network.ts), the saved previous values in the incidents table
 * (functions/adapters/eni-change-store.ts); what to do is the core's (functions/core/allowance).
 */

import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { sdkRetryConfig } from '../../adapters/aws-retry.js';
import { ec2NetworkPort } from '../../adapters/ec2-network.js';
import { DynamoEniChangeStore } from '../../adapters/eni-change-store.js';
import { type NetworkStepContext, runNetworkStep } from '../../core/allowance/steps.js';
import { checkWholeNumberInRange, INCIDENT_RETENTION_DAYS_RANGE } from '../../core/incident/settings.js';
import { requiredSetting, WORKFLOW_ENVIRONMENT, workflowSettingsFrom } from '../../core/workflow/settings.js';
import { logger, metrics, tracer } from '../powertools.js';
import { workflowHandler } from './middleware.js';

const settings = workflowSettingsFrom(process.env);
const tableName = requiredSetting(process.env, 'incidentTableName');
const retentionDays = checkWholeNumberInRange(
  `environment variable ${WORKFLOW_ENVIRONMENT.incidentRetentionDays}`,
  Number(process.env[WORKFLOW_ENVIRONMENT.incidentRetentionDays] ?? '90'),
  INCIDENT_RETENTION_DAYS_RANGE,
);
const retry = sdkRetryConfig(process.env);
const now = () => new Date();

const context: NetworkStepContext = {
  ec2: ec2NetworkPort(tracer.captureAWSv3Client(new EC2Client(retry))),
  store: new DynamoEniChangeStore(
    DynamoDBDocumentClient.from(tracer.captureAWSv3Client(new DynamoDBClient(retry))),
    tableName,
    retentionDays,
    now,
  ),
  now,
  optIn: {
    key: requiredSetting(process.env, 'managedInstanceTagKey'),
    value: requiredSetting(process.env, 'managedInstanceTagValue'),
  },
  policy: settings.policy,
};

export const lambdaHandler = async (event: unknown) => {
  const result = await runNetworkStep(event, context);
  const operation = (event as { operation?: unknown } | null)?.operation;
  logger.info('Network step done', { operation: String(operation) });
  metrics.addDimension('operation', String(operation));
  metrics.addMetric('NetworkSteps', MetricUnit.Count, 1);
  return result;
};

export const handler = workflowHandler(lambdaHandler);
