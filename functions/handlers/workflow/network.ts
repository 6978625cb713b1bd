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
import { ec2NetworkPort } from '../../adapters/ec2-network.js';
import { DynamoEniChangeStore } from '../../adapters/eni-change-store.js';
import { type NetworkStepContext, runNetworkStep } from '../../core/allowance/steps.js';
import { networkFunctionSettings } from '../../core/function-settings.js';
import { logger, metrics, tracer } from '../powertools.js';
import { workflowHandler } from './middleware.js';

const settings = networkFunctionSettings(process.env);
const retry = settings.retry;
const now = () => new Date();

const context: NetworkStepContext = {
  ec2: ec2NetworkPort(tracer.captureAWSv3Client(new EC2Client(retry))),
  store: new DynamoEniChangeStore(
    DynamoDBDocumentClient.from(tracer.captureAWSv3Client(new DynamoDBClient(retry))),
    settings.incidentTableName,
    settings.incidentRetentionDays,
    now,
  ),
  now,
  optIn: settings.optIn,
  policy: settings.workflow.policy,
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
