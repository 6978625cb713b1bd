/**
 * The base of every error the project throws on purpose, so that a newcomer finds one shape: a
 * message that says what was wrong (never raw untrusted input), the cause kept through
 * `ErrorOptions`, and a `name` each subclass states as a string. The name is stated rather than
 * taken from the class because the Lambda bundles are minified (class names do not survive) and
 * because a Lambda error's name is what Step Functions reports and matches (`Error` of a caught
 * error, `ErrorEquals` of Retry and Catch).
 */
export abstract class ResponderError extends Error {
  abstract override readonly name: string;

  /** A message is required (an error that says nothing helps no one); `options.cause` keeps what led to it. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * The names Step Functions sees for the errors the workflow's Lambda tasks throw: the `Error` of a
 * caught error in the execution history, the notification and the evidence bundle, and what a
 * Retry or Catch matches (infra/workflow). Operators know them from there, so they keep their
 * names even where the class carries the `…Error` suffix.
 */
export const TASK_ERROR = {
  /** A task received a state it cannot work with. */
  workflowInput: 'WorkflowInputError',
  /** The collect-diagnostics output is not JSON or breaks the report contract. */
  diagnosticsUnreadable: 'DiagnosticsUnreadable',
  /** Every remediation slot is held (the take-a-slot state retries it, then escalates). */
  slotsBusy: 'RemediationSlotsBusy',
  /** The guardrails step received a state it cannot work with. */
  guardrailInput: 'GuardrailInputError',
  /** The approval task's input cannot be read. */
  approvalTaskInput: 'ApprovalTaskInputError',
  /** SNS did not take the notification (Slack may still have). */
  notificationNotPublished: 'NotificationNotPublished',
  /** An ENI timeout change was refused before any call that changes EC2. */
  eniChangeRefused: 'EniChangeRefused',
} as const;
