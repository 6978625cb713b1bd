/**
 * Resumes the workflow's "Wait for approval" task with SendTaskSuccess. The errors that mean "the
 * workflow no longer waits" (the task timed out, the execution ended, the token is not one) are an
 * answer, not a failure: the approval is then closed as expired. Anything else (throttling that
 * outlasted the SDK's retries, the network) is thrown, so that the decision is undone and the
 * person can click again.
 */

import { SendTaskSuccessCommand, type SFNClient } from '@aws-sdk/client-sfn';
import type { ResumeResult, WorkflowCallback } from '../core/chatops/decide.js';

const NO_LONGER_WAITING = new Set(['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken']);

export class StepFunctionsCallback implements WorkflowCallback {
  constructor(private readonly client: SFNClient) {}

  async succeed(taskToken: string, output: Record<string, unknown>): Promise<ResumeResult> {
    try {
      await this.client.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(output) }));
      return { resumed: true };
    } catch (error) {
      const name = (error as { name?: string }).name ?? '';
      if (NO_LONGER_WAITING.has(name)) {
        return {
          resumed: false,
          detail: `Step Functions answered ${name}: the workflow is no longer waiting`,
        };
      }
      throw error;
    }
  }
}
