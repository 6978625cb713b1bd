/**
 * Runs a follow-up after Slack got its answer: the interactivity function invokes itself
 * asynchronously (InvocationType Event returns as soon as Lambda has queued the event), so the
 * slow part (updating the message through the Web API) never counts against Slack's 3 seconds.
 */

import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import type { FollowUp } from '../core/chatops/interactivity.js';

export const FOLLOW_UP_FIELD = 'conntrackResponderFollowUp';

export interface FollowUpEvent {
  readonly [FOLLOW_UP_FIELD]: FollowUp;
}

export function isFollowUpEvent(event: unknown): event is FollowUpEvent {
  return event !== null && typeof event === 'object' && FOLLOW_UP_FIELD in event;
}

export class LambdaFollowUps {
  constructor(
    private readonly client: LambdaClient,
    /** This function's own name (AWS_LAMBDA_FUNCTION_NAME). */
    private readonly functionName: string,
  ) {}

  async schedule(followUp: FollowUp): Promise<void> {
    const event: FollowUpEvent = { [FOLLOW_UP_FIELD]: followUp };
    const answer = await this.client.send(
      new InvokeCommand({
        FunctionName: this.functionName,
        InvocationType: 'Event',
        Payload: Buffer.from(JSON.stringify(event)),
      }),
    );
    if (answer.StatusCode !== 202) {
      throw new Error(`queuing the follow-up on ${this.functionName} answered ${answer.StatusCode}`);
    }
  }
}
