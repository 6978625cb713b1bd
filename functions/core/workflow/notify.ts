import { printableApprovalUrl } from '../chatops/iam-approval.js';
import type { OutcomeStatus } from './outcome.js';

/**
 * "Notify": the incident's outcome as a subject, a text for people and a JSON summary for
 * machines, built from the workflow's accumulated state. Every path of the workflow reaches this,
 * so it must cope with any subset of the state (a failure can happen anywhere).
 */

interface StateError {
  readonly Error?: string;
  readonly Cause?: string;
}

export interface WorkflowState {
  readonly incident?: {
    incidentId?: string;
    instanceId?: string | null;
    host?: string;
    kind?: string;
    mode?: string;
  };
  readonly execution?: { id?: string; startedAt?: string };
  readonly outcome?: { status?: OutcomeStatus; hostChanged?: boolean; summary?: string };
  readonly assessment?: {
    classification?: string;
    summary?: string;
    plan?: { recommendations?: ReadonlyArray<{ title?: string; scope?: string }> };
  };
  readonly gate?: {
    decision?: string;
    toApply?: ReadonlyArray<{ id?: string; title?: string }>;
    notApplied?: ReadonlyArray<{ title?: string; why?: string }>;
  };
  readonly approval?: { decision?: string; approver?: { id?: string; name?: string; via?: string } };
  readonly applied?: ReadonlyArray<{
    request?: { id?: string; title?: string };
    invocation?: { status?: string };
  }>;
  readonly verification?: { held?: boolean; reasons?: readonly string[] };
  readonly rollback?: ReadonlyArray<{ request?: { changeId?: string }; invocation?: { status?: string } }>;
  readonly error?: StateError;
  readonly rollbackError?: StateError;
  readonly persistError?: StateError;
  /** What the evidence step returned (functions/core/evidence/reference.ts reads it). */
  readonly evidence?: unknown;
  readonly evidenceError?: StateError;
  /** What the fleet guardrails decided (functions/core/guardrails/steps.ts). */
  readonly guardrails?: {
    mode?: string;
    escalation?: { reasons?: readonly string[]; runbook?: string } | null;
    decisions?: ReadonlyArray<{ guardrail?: string; effect?: string; detail?: string }>;
  };
}

export interface IncidentSummary {
  readonly incidentId: string;
  readonly instance: string;
  readonly outcome: OutcomeStatus | 'unknown';
  readonly hostChanged: boolean | null;
  readonly classification: string | null;
  readonly applied: readonly string[];
  readonly verified: boolean | null;
  readonly error: string | null;
  readonly execution: string | null;
}

export interface IncidentNotification {
  /** ASCII, at most 99 characters (the SNS limit is "less than 100"). */
  readonly subject: string;
  readonly text: string;
  readonly summary: IncidentSummary;
  /** For SNS subscription filters (String attributes). */
  readonly attributes: Readonly<Record<string, string>>;
}

const SEVERITY: Record<OutcomeStatus | 'unknown', string> = {
  remediated: 'info',
  'rolled-back': 'warning',
  'rollback-failed': 'critical',
  'not-confirmed': 'info',
  'no-host-change': 'warning',
  'dry-run': 'info',
  rejected: 'info',
  escalated: 'critical',
  failed: 'critical',
  unknown: 'critical',
};

export function asciiSubject(text: string): string {
  const ascii = text
    .normalize('NFKD')
    .replace(/[^\x20-\x7e]/g, '')
    .replace(/\s+/g, ' ')
    .trim();
  const cut = ascii.length > 99 ? `${ascii.slice(0, 96)}...` : ascii;
  return /^[A-Za-z0-9\p{P}]/u.test(cut) ? cut : `Incident ${cut}`.slice(0, 99);
}

function describeError(error: StateError | undefined): string | null {
  if (error === undefined) return null;
  return `${error.Error ?? 'Error'}: ${String(error.Cause ?? '').slice(0, 1000)}`;
}

export interface NotificationOptions {
  /** The approval URL (stack output ApprovalUrl): an approval nobody decided says how to decide next time. */
  readonly approvalUrl?: string | null;
}

/** The approval wait ran out: the gate asked for a person and no decision came back. */
function approvalTimedOut(state: WorkflowState): boolean {
  return (
    state.gate?.decision === 'approve' &&
    state.approval === undefined &&
    state.outcome?.status === 'escalated' &&
    state.error?.Error === 'States.Timeout'
  );
}

export function incidentNotification(
  state: WorkflowState,
  options: NotificationOptions = {},
): IncidentNotification {
  const incidentId = state.incident?.incidentId ?? 'unknown-incident';
  const instance = state.incident?.instanceId ?? state.incident?.host ?? 'unknown host';
  const outcome = state.outcome?.status ?? 'unknown';
  const applied = (state.applied ?? []).map((each) => each.request?.title ?? each.request?.id ?? 'a change');
  const error = describeError(state.error);
  const summary: IncidentSummary = {
    incidentId,
    instance,
    outcome,
    hostChanged: state.outcome?.hostChanged ?? null,
    classification: state.assessment?.classification ?? null,
    applied,
    verified: state.verification?.held ?? null,
    error,
    execution: state.execution?.id ?? null,
  };

  const lines = [
    `Incident ${incidentId} on ${instance}: ${outcome}.`,
    state.outcome?.summary ?? 'The workflow recorded no outcome.',
  ];
  const escalation = state.guardrails?.escalation;
  if (escalation) {
    lines.push(
      '',
      'Why the responder did not act:',
      ...(escalation.reasons ?? []).map((reason) => `  - ${reason}`),
    );
    if (escalation.runbook) lines.push(`Follow the manual runbook: ${escalation.runbook}`);
  }
  if (approvalTimedOut(state)) {
    const url = printableApprovalUrl(options.approvalUrl) ?? '<stack output ApprovalUrl>';
    lines.push(
      '',
      'Nobody approved or rejected the change before the approval timeout, so the host is unchanged.',
      'If the drops continue, follow the manual runbook (runbooks/conntrack-table-full.md).',
      'So that the next request is decided in time: make sure someone receives the approval requests',
      '(SNS filter policy {"outcome": ["approval-needed"]}); they can decide without Slack, with the AWS',
      "credentials of an approver (a role in approverRoleArns, or a holder of the stack's ApproverPolicyArn):",
      `  npx conntrack-responder approve INCIDENT_ID --url ${url}`,
      `  npx conntrack-responder reject INCIDENT_ID --url ${url}`,
    );
  }
  // Guardrails that changed what the responder could do (the rest passed).
  const deciding = (state.guardrails?.decisions ?? []).filter((decision) =>
    ['cap-mode', 'opt-out', 'hold'].includes(decision.effect ?? ''),
  );
  if (deciding.length > 0) {
    lines.push(
      '',
      'Guardrails:',
      ...deciding.map((decision) => `  - ${decision.guardrail}: ${decision.detail}`),
    );
  }
  if (state.assessment?.summary)
    lines.push('', `Diagnosis (${state.assessment.classification}): ${state.assessment.summary}`);
  if (state.approval?.decision) {
    const who = state.approval.approver?.name ?? state.approval.approver?.id ?? 'someone';
    lines.push(
      `Decision: ${state.approval.decision} by ${who} via ${state.approval.approver?.via ?? 'unknown'}.`,
    );
  }
  if (applied.length > 0) lines.push('', 'Applied:', ...applied.map((title) => `  - ${title}`));
  for (const skipped of state.gate?.notApplied ?? [])
    lines.push(`  - not applied: ${skipped.title} (${skipped.why})`);
  if (state.verification) {
    lines.push('', `Verification: ${state.verification.held ? 'passed' : 'failed'}`);
    for (const reason of state.verification.reasons ?? []) lines.push(`  - ${reason}`);
  }
  if ((state.rollback ?? []).length > 0) {
    lines.push(
      '',
      `Rolled back: ${(state.rollback ?? []).map((step) => step.request?.changeId ?? '?').join(', ')}`,
    );
  }
  for (const [label, failure] of [
    ['Failure', state.error],
    ['Rollback failure', state.rollbackError],
    ['Persisting the fix failed (it holds until reboot)', state.persistError],
    ['The evidence bundle could not be written', state.evidenceError],
  ] as const) {
    const described = describeError(failure);
    if (described) lines.push('', `${label}: ${described}`);
  }
  const recommendations = state.assessment?.plan?.recommendations ?? [];
  if (recommendations.length > 0) {
    lines.push(
      '',
      'Durable fixes to consider:',
      ...recommendations.map((each) => `  - [${each.scope}] ${each.title}`),
    );
  }
  if (state.execution?.id) lines.push('', `Execution: ${state.execution.id}`);

  return {
    subject: asciiSubject(`conntrack-responder: ${outcome} on ${instance} (${incidentId})`),
    text: lines.join('\n'),
    summary,
    attributes: {
      severity: SEVERITY[outcome],
      outcome,
      action: applied.length > 0 ? 'changed' : 'none',
      instance,
    },
  };
}
