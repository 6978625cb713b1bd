import {
  type ApprovalRecord,
  type ApprovalStore,
  type Approver,
  decisionFor,
  type RecordedDecision,
  taskOutputOf,
} from './approval.js';
import type { ButtonDecision } from './interaction.js';

/**
 * The single-use decision every approval channel shares (a Slack click, an IAM-signed request from
 * the command line): one conditional write records the decision only if the approval is still
 * pending and not expired, so that however many people race, exactly one gets the task token; that
 * one resumes the workflow. A resume that fails for a passing reason undoes exactly its own
 * decision (so someone can try again); a workflow that no longer waits closes the approval as
 * expired. The task token never leaves this function.
 */

export type ResumeResult = { readonly resumed: true } | { readonly resumed: false; readonly detail: string };

export interface WorkflowCallback {
  /**
   * Resumes the waiting workflow with the decision (SendTaskSuccess). Resolves `resumed: false` when
   * the workflow is no longer waiting (the task timed out or the execution ended); throws for a
   * passing failure (throttling, network), after which the decision is undone so a click can retry.
   */
  succeed(taskToken: string, output: Record<string, unknown>): Promise<ResumeResult>;
}

export interface DecidePorts {
  readonly store: ApprovalStore;
  readonly workflow: WorkflowCallback;
  readonly newAttemptId: () => string;
}

export type DecisionOutcome =
  | { readonly result: 'decided'; readonly record: ApprovalRecord; readonly decision: RecordedDecision }
  | { readonly result: 'not-found' }
  | { readonly result: 'already-decided'; readonly record: ApprovalRecord }
  /**
   * Expired before the decision, or (`stoppedWaiting`) decided but the workflow no longer waited,
   * so the approval was closed as expired.
   */
  | {
      readonly result: 'expired';
      readonly record: ApprovalRecord;
      readonly detail: string;
      readonly stoppedWaiting: boolean;
    }
  /** The workflow could not be resumed just now; `undone` says whether someone can decide again. */
  | { readonly result: 'unavailable'; readonly detail: string; readonly undone: boolean };

export async function decideAndResume(
  record: ApprovalRecord,
  choice: ButtonDecision,
  approver: Approver,
  now: Date,
  ports: DecidePorts,
): Promise<DecisionOutcome> {
  const attemptId = ports.newAttemptId();
  const decided = await ports.store.decide(
    record.approvalId,
    decisionFor(record, choice, approver, now, attemptId),
    now,
  );
  switch (decided.outcome) {
    case 'not-found':
      return { result: 'not-found' };
    case 'already-decided':
      return { result: 'already-decided', record: decided.record };
    case 'expired':
      return {
        result: 'expired',
        record: decided.record,
        detail: `approval ${record.approvalId} expired at ${decided.record.expiresAt}`,
        stoppedWaiting: false,
      };
    case 'decided':
      break;
  }
  const decision = decided.record.decision;
  if (decision === null) throw new Error(`approval ${record.approvalId} was decided without a decision`);
  let resumed: ResumeResult;
  try {
    resumed = await ports.workflow.succeed(decided.taskToken, taskOutputOf(decided.record, decision));
  } catch (error) {
    const undone = await ports.store.undoDecision(record.approvalId, attemptId);
    return {
      result: 'unavailable',
      detail: `the workflow could not be resumed (${(error as Error).message}); the decision was ${undone ? 'undone: decide again' : 'kept'}`,
      undone,
    };
  }
  if (!resumed.resumed) {
    await ports.store.expire(record.approvalId, resumed.detail, attemptId);
    return {
      result: 'expired',
      record: decided.record,
      detail: `the workflow no longer waits for approval ${record.approvalId}: ${resumed.detail}`,
      stoppedWaiting: true,
    };
  }
  return { result: 'decided', record: decided.record, decision };
}
