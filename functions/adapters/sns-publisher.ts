import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { SnsMessage } from '../core/chatops/notification.js';

/** Publishes an incident notification (built by core/chatops/notification.ts) to the topic. */
export class SnsPublisher {
  constructor(
    private readonly client: SNSClient,
    private readonly topicArn: string,
  ) {}

  async publish(message: SnsMessage): Promise<{ messageId: string }> {
    const answer = await this.client.send(
      new PublishCommand({
        TopicArn: this.topicArn,
        Subject: message.Subject,
        Message: message.Message,
        MessageAttributes: message.MessageAttributes,
      }),
    );
    if (answer.MessageId === undefined)
      throw new Error(`SNS published to ${this.topicArn} without a MessageId`);
    return { messageId: answer.MessageId };
  }
}
