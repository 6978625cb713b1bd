/**
 * "Notify": the outcome to the SNS topic (text for people, a JSON summary, filterable attributes,
 * under 256 KB) and, when Slack is configured, to the incident's thread, both with where the
 * evidence bundle was written and its manifest's sha256 (the step runs after the bundle is kept).
 * SNS goes first and does not depend on Slack; a Slack failure is logged and returned, never thrown.
 */

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SNSClient } from '@aws-sdk/client-sns';
import type { Context } from 'aws-lambda';
import { SnsPublisher } from '../../adapters/sns-publisher.js';
import { notifyOutcome } from '../../core/chatops/outcome.js';
import { EVENTS_AFTER_STEP } from '../../core/events/lifecycle.js';
import { evidenceReferenceOf } from '../../core/evidence/reference.js';
import { notifySettings } from '../../core/function-settings.js';
import { incidentNotification, type WorkflowState } from '../../core/workflow/notify.js';
import { chatopsRuntimeFrom } from '../chatops.js';
import { putLifecycleEvents } from '../lifecycle-events.js';
import { logger, tracer } from '../powertools.js';
import { accountOf } from './account.js';
import { workflowHandler } from './middleware.js';

const settings = notifySettings(process.env);
const { approvalUrl } = settings;
const sns = new SnsPublisher(tracer.captureAWSv3Client(new SNSClient({})), settings.notificationTopicArn);
const runtime = settings.chatops
  ? chatopsRuntimeFrom(
      settings.chatops,
      tracer.captureAWSv3Client(new DynamoDBClient({})),
      (message, fields) => logger.warn(message, fields),
    )
  : null;

export const lambdaHandler = async (event: unknown, context?: Context) => {
  const state = event as WorkflowState;
  // Before SNS, so that a notification SNS refuses (which fails the execution) does not cost the
  // events; putting them never throws.
  const events = await putLifecycleEvents(EVENTS_AFTER_STEP.notify(event, null, new Date()));
  const notification = incidentNotification(state, { approvalUrl });
  const delivery = await notifyOutcome(
    event,
    notification,
    { account: accountOf(event, context), evidence: evidenceReferenceOf(state.evidence) },
    { publish: (message) => sns.publish(message), chat: runtime?.chat ?? null },
  );
  const messageId = 'messageId' in delivery.sns ? delivery.sns.messageId : null;
  if (typeof delivery.slack === 'object') logger.error('Slack was not told the outcome', delivery.slack);
  logger.info('Published the outcome', {
    outcome: notification.summary.outcome,
    messageId,
    slack: delivery.slack,
  });
  return { channel: 'sns', messageId, subject: notification.subject, slack: delivery.slack, events };
};

export const handler = workflowHandler(lambdaHandler);
