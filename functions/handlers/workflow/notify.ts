import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { incidentNotification, type WorkflowState } from '../../core/workflow/notify.js';
import { requiredSetting } from '../../core/workflow/settings.js';
import { logger, tracer } from '../powertools.js';
import { workflowHandler } from './middleware.js';

/** "Notify": the outcome to SNS (Slack joins in issue 5). */
const topicArn = requiredSetting(process.env, 'notificationTopicArn');
const sns = tracer.captureAWSv3Client(new SNSClient({}));

/** SNS takes 256 KB per message, attributes included; the bundle has the rest. */
const MAX_TEXT_BYTES = 200 * 1024;

export const lambdaHandler = async (event: unknown) => {
  const notification = incidentNotification(event as WorkflowState);
  const summary = JSON.stringify(notification.summary);
  let text = notification.text;
  if (Buffer.byteLength(text) > MAX_TEXT_BYTES) {
    text = `${Buffer.from(text).subarray(0, MAX_TEXT_BYTES).toString('utf8')}\n… (cut; the evidence bundle has everything)`;
  }
  const published = await sns.send(
    new PublishCommand({
      TopicArn: topicArn,
      Subject: notification.subject,
      Message: `${text}\n\n${summary}`,
      MessageAttributes: Object.fromEntries(
        Object.entries(notification.attributes).map(([name, value]) => [
          name,
          { DataType: 'String', StringValue: value },
        ]),
      ),
    }),
  );
  logger.info('Published the outcome', {
    outcome: notification.summary.outcome,
    messageId: published.MessageId,
  });
  return { channel: 'sns', messageId: published.MessageId ?? null, subject: notification.subject };
};

export const handler = workflowHandler(lambdaHandler);
