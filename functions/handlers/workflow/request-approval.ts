import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { WorkflowStore } from '../../adapters/workflow-store.js';
import { approvalRequestFrom, approvalText } from '../../core/workflow/approval.js';
import { asciiSubject } from '../../core/workflow/notify.js';
import { requiredSetting } from '../../core/workflow/settings.js';
import { logger, tracer } from '../powertools.js';
import { workflowHandler } from './middleware.js';

/**
 * "Wait for approval" (a `.waitForTaskToken` task): stores the task token under a new single-use
 * approval id and announces the request. The workflow resumes when the approval endpoint calls
 * SendTaskSuccess with the decision, or ends with no change when the task times out.
 */
const tableName = requiredSetting(process.env, 'incidentTableName');
const topicArn = requiredSetting(process.env, 'notificationTopicArn');
const store = new WorkflowStore(
  DynamoDBDocumentClient.from(tracer.captureAWSv3Client(new DynamoDBClient({}))),
  tableName,
);
const sns = tracer.captureAWSv3Client(new SNSClient({}));

export const lambdaHandler = async (event: unknown) => {
  const pending = approvalRequestFrom(event, new Date(), randomUUID());
  const { request } = pending;
  await store.putPendingApproval(pending);
  await sns.send(
    new PublishCommand({
      TopicArn: topicArn,
      Subject: asciiSubject(
        `conntrack-responder: approval needed on ${request.instanceId ?? 'a host'} (${request.incidentId})`,
      ),
      Message: approvalText(request),
      MessageAttributes: {
        severity: { DataType: 'String', StringValue: 'warning' },
        outcome: { DataType: 'String', StringValue: 'approval-needed' },
        action: { DataType: 'String', StringValue: 'approval' },
        instance: { DataType: 'String', StringValue: request.instanceId ?? 'unknown' },
      },
    }),
  );
  logger.info('Approval requested', {
    approvalId: request.approvalId,
    incidentId: request.incidentId,
    expiresAt: request.expiresAt,
  });
  return { approvalId: request.approvalId, expiresAt: request.expiresAt };
};

export const handler = workflowHandler(lambdaHandler);
