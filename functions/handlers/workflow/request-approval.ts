/**
 * "Wait for approval" (a `.waitForTaskToken` task): stores the task token under a new single-use
 * approval id, announces the request on the SNS topic, and posts it with its buttons in the
 * incident's Slack thread when Slack is configured. The workflow resumes when the Slack endpoint or
 * the approval URL (`conntrack-responder approve|reject`) calls SendTaskSuccess with the decision,
 * or ends with no change when the task times out.
 */

import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SNSClient } from '@aws-sdk/client-sns';
import type { Context } from 'aws-lambda';
import { DynamoApprovalStore } from '../../adapters/approval-store.js';
import { SnsPublisher } from '../../adapters/sns-publisher.js';
import { openApproval } from '../../core/chatops/open-approval.js';
import { EVENTS_AFTER_STEP } from '../../core/events/lifecycle.js';
import { requestApprovalSettings } from '../../core/function-settings.js';
import { chatopsRuntimeFrom } from '../chatops.js';
import { putLifecycleEvents } from '../lifecycle-events.js';
import { logger, tracer } from '../powertools.js';
import { accountOf } from './account.js';
import { workflowHandler } from './middleware.js';

const settings = requestApprovalSettings(process.env);
const { approvalUrl } = settings;
const dynamo = tracer.captureAWSv3Client(new DynamoDBClient({}));
const warn = (message: string, fields: Record<string, unknown>) => logger.warn(message, fields);
const runtime = settings.chatops ? chatopsRuntimeFrom(settings.chatops, dynamo, warn) : null;
const store = runtime?.store ?? new DynamoApprovalStore(dynamo, settings.incidentTableName, warn);
const sns = new SnsPublisher(tracer.captureAWSv3Client(new SNSClient({})), settings.notificationTopicArn);

export const lambdaHandler = async (event: unknown, context?: Context) => {
  const opened = await openApproval(event, {
    store,
    chat: runtime?.chat ?? null,
    publish: (message) => sns.publish(message),
    now: () => new Date(),
    newApprovalId: randomUUID,
    account: accountOf(event, context),
    approvalUrl,
  });
  logger.info('Approval requested', { ...opened });
  await putLifecycleEvents(EVENTS_AFTER_STEP.requestApproval(event, opened, new Date()));
  return opened;
};

export const handler = workflowHandler(lambdaHandler);
