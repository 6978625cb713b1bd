import { TASK_ERROR } from '../errors.js';

/**
 * The names of the incident workflow's states. They read as sentences in the Step Functions
 * console and in the postmortem timeline, and they are the keys by which the local twin binds a
 * Task state to the same handler code that runs in Lambda (`functions/local/twin/`).
 */
export const STATE = {
  takeIncident: 'Take the incident',
  hostIsInstance: 'Is the host an instance?',
  lookUpInstance: 'Look up the instance in SSM',
  checkGuardrails: 'Check the guardrails',
  optedOutChoice: 'Opted out by its tag?',
  optedOut: 'Opted out: no change',
  instanceManaged: 'Instance managed and online?',
  notManaged: 'Not managed: no change, escalated',

  collectDiagnostics: 'Collect diagnostics',
  describeNetwork: 'Describe the network interfaces',
  assess: 'Confirm the drops and plan the remediation',
  dropsConfirmed: 'Drops confirmed?',
  notConfirmed: 'Not confirmed: no change',

  checkPolicy: 'Check the policy',
  approvalRequired: 'Approval required?',
  nothingToChange: 'Nothing to change on the host',
  dryRun: 'Dry run: no change',
  waitForApproval: 'Wait for approval',
  approvalTimedOut: 'No decision in time: no change, escalated',
  settleApproval: 'Settle the approved changes',
  anythingApproved: 'Anything approved?',
  rejected: 'Rejected: no change',

  takeSlot: 'Take a remediation slot',
  slotTaken: 'Slot taken?',
  noSlot: 'No remediation slot in time: no change, escalated',
  applyRemediation: 'Apply the remediation',
  announceChange: 'Announce the change',
  applyThrough: 'Apply: through EC2 or SSM?',
  applyEniChange: 'Apply: change the ENI timeouts',
  soak: 'Wait for the soak period',
  collectDiagnosticsAfter: 'Collect diagnostics after the soak',
  describeNetworkAfter: 'Describe the network interfaces after the soak',
  verify: 'Verify the fix',
  fixHeld: 'Fix held?',
  persist: 'Make the fix permanent',
  remediated: 'Fixed and verified',
  rollBack: 'Roll back',
  rollBackThrough: 'Roll back: through EC2 or SSM?',
  rollBackEniChange: 'Roll back: restore the ENI timeouts',
  rolledBack: 'Rolled back',
  rollbackFailed: 'Rollback failed: escalated',
  failedBeforeChange: 'Failed before any change',

  releaseSlot: 'Release the remediation slot',
  writeEvidence: 'Write the evidence bundle',
  notify: 'Notify',
  evidenceAndNotification: 'Evidence kept and people told?',
  evidenceNotWritten: 'Evidence bundle not written',
  notificationNotSent: 'Notification not sent',
  done: 'Incident closed',
} as const;

export type StateName = (typeof STATE)[keyof typeof STATE];

/** The Lambda-backed Task states, by the handler that serves them. */
export const LAMBDA_TASK_STATES = {
  assess: [STATE.assess],
  policyGate: [STATE.checkPolicy, STATE.settleApproval],
  requestApproval: [STATE.waitForApproval],
  verify: [STATE.verify],
  announce: [STATE.announceChange],
  notify: [STATE.notify],
  writeEvidence: [STATE.writeEvidence],
  guardrails: [STATE.checkGuardrails, STATE.takeSlot, STATE.releaseSlot],
  /** EC2's side of the instance: its ENIs, and changing their idle timeouts (functions/core/allowance). */
  network: [STATE.describeNetwork, STATE.describeNetworkAfter, STATE.applyEniChange, STATE.rollBackEniChange],
} as const;

export type WorkflowFunctionRole = keyof typeof LAMBDA_TASK_STATES;

/** SSM command blocks: a Parallel (or Map) state wrapping a send → wait → get → finished? loop. */
export const SSM_BLOCK = {
  collectBefore: STATE.collectDiagnostics,
  collectAfter: STATE.collectDiagnosticsAfter,
  apply: STATE.applyRemediation,
  persist: STATE.persist,
  rollBack: STATE.rollBack,
} as const;

/** Error names raised by the workflow itself (its Fail states) and the one a task raises to be retried. */
export const WORKFLOW_ERROR = {
  commandFailed: 'SsmCommandFailed',
  commandTimedOut: 'SsmCommandTimedOut',
  unknownDocument: 'UnknownRemediationDocument',
  /** Every remediation slot is taken (thrown by the guardrails function; retried, then escalated). */
  slotsBusy: TASK_ERROR.slotsBusy,
  /** The incident was handled but its evidence bundle was not written (the execution fails). */
  evidenceNotWritten: 'EvidenceNotWritten',
  /** The incident was handled and its evidence kept, but SNS did not take the notification. */
  notificationNotSent: 'NotificationNotSent',
} as const;

/**
 * The error Step Functions reports when GetCommandInvocation runs before the invocation exists
 * (the race right after SendCommand). SDK integrations name errors `<Service>.<Name>Exception`,
 * adding the suffix even where the service's own name lacks it.
 */
export const INVOCATION_DOES_NOT_EXIST = 'Ssm.InvocationDoesNotExistException';
