import { ENV_VAR_MIN_AGENT_VERSION, MANUAL_RUNBOOK } from '../guardrails/settings.js';

/**
 * How an incident ended. Every path through the workflow sets exactly one outcome before it
 * notifies and writes the evidence bundle, so no incident stays open.
 */
export const OUTCOME_STATUSES = [
  'remediated',
  'rolled-back',
  'rollback-failed',
  'not-confirmed',
  'no-host-change',
  'dry-run',
  'rejected',
  'escalated',
  'failed',
] as const;

export type OutcomeStatus = (typeof OUTCOME_STATUSES)[number];

export interface Outcome {
  readonly status: OutcomeStatus;
  /** Whether the host may have been changed at some point of the incident (false = never touched). */
  readonly hostChanged: boolean;
  /** One sentence for people: what happened and why. */
  readonly summary: string;
}

/** The outcome each terminal branch of the state machine records (a Pass state's static Result). */
export const OUTCOMES = {
  notManaged: {
    status: 'escalated',
    hostChanged: false,
    summary: `The instance cannot run the runbooks (not managed by SSM, not online, not Linux, or an SSM Agent older than ${ENV_VAR_MIN_AGENT_VERSION}), so nothing was collected or changed; follow ${MANUAL_RUNBOOK}.`,
  },
  optedOut: {
    status: 'no-host-change',
    hostChanged: false,
    summary: "The instance's mode tag is off: it opted out, so nothing was collected or changed.",
  },
  noRemediationSlot: {
    status: 'escalated',
    hostChanged: false,
    summary:
      'Too many remediations were running fleet-wide and no slot came free in time: nothing was changed, and the incident is escalated.',
  },
  notConfirmed: {
    status: 'not-confirmed',
    hostChanged: false,
    summary: "The host's own counters do not confirm the alert, so nothing was changed.",
  },
  nothingToChange: {
    status: 'no-host-change',
    hostChanged: false,
    summary: 'The diagnosis calls for no change on the host; see the recommendations.',
  },
  dryRun: {
    status: 'dry-run',
    hostChanged: false,
    summary: 'Dry run: the plan was made and recorded, nothing was changed.',
  },
  rejected: {
    status: 'rejected',
    hostChanged: false,
    summary: 'The change was rejected, so nothing was changed.',
  },
  approvalTimedOut: {
    status: 'escalated',
    hostChanged: false,
    summary:
      'Nobody approved or rejected the change in time: nothing was changed, and the incident is escalated.',
  },
  remediated: {
    status: 'remediated',
    hostChanged: true,
    summary: 'The change was applied and verified after the soak period.',
  },
  rolledBack: {
    status: 'rolled-back',
    hostChanged: true,
    summary: 'The change did not hold or a step failed after it, so it was rolled back.',
  },
  rollbackFailed: {
    status: 'rollback-failed',
    hostChanged: true,
    summary: 'The rollback itself failed: the host may be in a changed state and needs a person now.',
  },
  failedBeforeChange: {
    status: 'failed',
    hostChanged: false,
    summary: 'A step failed before any change was made, so nothing was changed.',
  },
} as const satisfies Record<string, Outcome>;
