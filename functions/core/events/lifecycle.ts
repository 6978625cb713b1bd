/**
 * Lifecycle events: every state change of an incident as one EventBridge event on the account's
 * default bus, so that PagerDuty, Opsgenie, OpsCenter or a ticketing system can be wired with a rule
 * instead of parsing the SNS text. Built purely here; the Lambda handlers put them with
 * functions/adapters/lifecycle-events.ts and the local twin writes them to events.jsonl.
 *
 * The schema is versioned (`detail.schemaVersion`) and documented in README "Lifecycle events":
 * a field is only ever added within a version; renaming or removing one is a new version.
 *
 * Delivery is at least once and unordered (EventBridge gives no ordering, and a retried step may
 * put its events again): `detail.eventKey` is the same for the same state change of the same
 * incident, for consumers that deduplicate, and `detail.occurredAt` orders them.
 */

import { type EvidenceReference, evidenceReferenceOf } from '../evidence/reference.js';

/** The `source` of every lifecycle event (a rule's `"source": ["conntrack-responder"]`). */
export const EVENT_SOURCE = 'conntrack-responder';

/** `detail.schemaVersion`: see the module comment for what changes it. */
export const LIFECYCLE_SCHEMA_VERSION = '1';

/** The states, each with its `detail-type`. */
export const LIFECYCLE_DETAIL_TYPES = {
  opened: 'Incident Opened',
  held: 'Incident Held',
  diagnosed: 'Incident Diagnosed',
  planned: 'Incident Planned',
  'awaiting-approval': 'Incident Awaiting Approval',
  decided: 'Incident Decided',
  applied: 'Incident Change Applied',
  verified: 'Incident Verified',
  'rolled-back': 'Incident Rolled Back',
  escalated: 'Incident Escalated',
  closed: 'Incident Closed',
} as const;

export type LifecycleState = keyof typeof LIFECYCLE_DETAIL_TYPES;
export type LifecycleDetailType = (typeof LIFECYCLE_DETAIL_TYPES)[LifecycleState];

/** Incident kinds as the detect side names them (docs: README "Lifecycle events"). */
export type IncidentKind = 'table-full' | 'expect-table-full' | 'near-full' | 'ec2-allowance';

/** How an incident ended (the workflow's `$.outcome`), on the events that end it. */
export interface LifecycleOutcome {
  readonly status: string;
  readonly hostChanged: boolean;
  readonly summary: string;
}

/** Version 1 of `detail`. */
export interface LifecycleDetailV1 {
  readonly schemaVersion: typeof LIFECYCLE_SCHEMA_VERSION;
  readonly state: LifecycleState;
  /** The same for the same state change of the same incident: `<incidentId>:<state>[:<qualifier>]`. */
  readonly eventKey: string;
  readonly incidentId: string;
  /** The EC2 instance (or `mi-` managed node) id; null when the host is not one. */
  readonly instanceId: string | null;
  /** The host as detect saw it (the instance id, else the log stream's host part). */
  readonly host: string | null;
  readonly kind: string;
  /** The incident's mode ceiling: auto, approve or dry-run. */
  readonly mode: string | null;
  /** When the state changed (ISO 8601). */
  readonly occurredAt: string;
  /** The workflow execution's ARN once the workflow runs (local twin: its execution id). */
  readonly executionId: string | null;
  /** Set on rolled-back, escalated and closed; null before the incident has an outcome. */
  readonly outcome: LifecycleOutcome | null;
  /** Where the evidence bundle is and its manifest's sha256; null until written (or if it could not be). */
  readonly evidence: EvidenceReference | null;
  /** What this state change is about (see README for each state's fields). Small, never raw log text. */
  readonly facts: Readonly<Record<string, unknown>>;
}

/** One event, in the shape of a PutEvents entry without the AWS SDK's types. */
export interface LifecycleEvent {
  readonly source: typeof EVENT_SOURCE;
  readonly detailType: LifecycleDetailType;
  readonly time: string;
  readonly detail: LifecycleDetailV1;
}

/** The incident fields every event carries, read leniently from whatever state a step holds. */
export interface LifecycleSubject {
  readonly incidentId: string;
  readonly instanceId: string | null;
  readonly host: string | null;
  readonly kind: string;
  readonly mode: string | null;
  readonly executionId: string | null;
}

const INCIDENT_ID = /^[A-Za-z0-9_-]{1,80}$/;
/** Bounds on the text a fact may carry: events stay far below PutEvents' 256 KB entry limit. */
const MAX_TEXT = 300;
const MAX_LIST = 20;

type Fields = Record<string, unknown>;
const fieldsOf = (value: unknown): Fields =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Fields) : {};
const text = (value: unknown): string | null =>
  typeof value === 'string' ? (value.length > MAX_TEXT ? `${value.slice(0, MAX_TEXT - 1)}…` : value) : null;
const texts = (value: unknown): string[] =>
  Array.isArray(value)
    ? value
        .map(text)
        .filter((item): item is string => item !== null)
        .slice(0, MAX_LIST)
    : [];
const idsOf = (value: unknown): string[] =>
  Array.isArray(value) ? texts(value.map((item) => fieldsOf(item).id)) : [];

/**
 * The subject from a workflow state (`incident`, `execution`) or an incident record; null when it
 * has no usable incident id, in which case no event is built (an event must name its incident).
 */
export function subjectOf(state: unknown): LifecycleSubject | null {
  const fields = fieldsOf(state);
  const incident = 'incident' in fields ? fieldsOf(fields.incident) : fields;
  const incidentId = incident.incidentId;
  if (typeof incidentId !== 'string' || !INCIDENT_ID.test(incidentId)) return null;
  return {
    incidentId,
    instanceId: text(incident.instanceId),
    host: text(incident.host) ?? text(incident.instanceId),
    kind: text(incident.kind) ?? 'table-full',
    mode: text(incident.mode),
    executionId: text(fieldsOf(fields.execution).id),
  };
}

/** The outcome in `$.outcome`, or null. */
export function outcomeOf(value: unknown): LifecycleOutcome | null {
  const outcome = fieldsOf(value);
  const status = text(outcome.status);
  if (status === null) return null;
  return {
    status,
    hostChanged: outcome.hostChanged === true,
    summary: text(outcome.summary) ?? '',
  };
}

export interface LifecycleEventOptions {
  readonly facts?: Readonly<Record<string, unknown>>;
  readonly outcome?: LifecycleOutcome | null;
  readonly evidence?: EvidenceReference | null;
  /** Tells apart several changes to the same state of one incident (an approval id, a decision). */
  readonly qualifier?: string;
}

/** One lifecycle event. */
export function lifecycleEvent(
  state: LifecycleState,
  subject: LifecycleSubject,
  now: Date,
  options: LifecycleEventOptions = {},
): LifecycleEvent {
  const occurredAt = now.toISOString();
  return {
    source: EVENT_SOURCE,
    detailType: LIFECYCLE_DETAIL_TYPES[state],
    time: occurredAt,
    detail: {
      schemaVersion: LIFECYCLE_SCHEMA_VERSION,
      state,
      eventKey: [subject.incidentId, state, ...(options.qualifier ? [options.qualifier] : [])].join(':'),
      incidentId: subject.incidentId,
      instanceId: subject.instanceId,
      host: subject.host,
      kind: subject.kind,
      mode: subject.mode,
      occurredAt,
      executionId: subject.executionId,
      outcome: options.outcome ?? null,
      evidence: options.evidence ?? null,
      facts: options.facts ?? {},
    },
  };
}

// ---- which events each step puts ------------------------------------------------------------
// Each takes the step's input and its result as Step Functions (or the twin) passes them, reads
// them leniently, and returns no event rather than throw: an event is never worth failing a step.

/**
 * The detect side: an incident was opened (and, when the fleet breaker held it, held: no workflow
 * starts for it).
 */
export function eventsAtOpening(
  incident: unknown,
  admission: { readonly decision: string; readonly detail?: string } | null,
  now: Date,
): LifecycleEvent[] {
  const subject = subjectOf(incident);
  if (subject === null) return [];
  const fields = fieldsOf(incident);
  const trigger = fieldsOf(fields.trigger);
  const forecast = fieldsOf(trigger.forecast);
  const opened = lifecycleEvent('opened', subject, now, {
    facts: {
      openedAt: text(fields.openedAt),
      dropLines: typeof trigger.dropLines === 'number' ? trigger.dropLines : null,
      suppressed: typeof trigger.suppressed === 'number' ? trigger.suppressed : null,
      firstSeen: text(trigger.firstSeen),
      netns: text(trigger.netns),
      ...(typeof forecast.predictedFullAt === 'string' || typeof forecast.secondsToFull === 'number'
        ? {
            forecast: {
              predictedFullAt: text(forecast.predictedFullAt),
              secondsToFull: typeof forecast.secondsToFull === 'number' ? forecast.secondsToFull : null,
            },
          }
        : {}),
    },
  });
  if (admission?.decision !== 'hold') return [opened];
  return [
    opened,
    lifecycleEvent('held', subject, now, {
      facts: { reason: text(admission.detail) ?? 'the fleet breaker is open' },
    }),
  ];
}

/** "Confirm the drops and plan the remediation": diagnosed, and planned when the drops are confirmed. */
export function eventsAfterAssess(input: unknown, assessment: unknown, now: Date): LifecycleEvent[] {
  const subject = subjectOf(input);
  if (subject === null) return [];
  const result = fieldsOf(assessment);
  const plan = fieldsOf(result.plan);
  const diagnosed = lifecycleEvent('diagnosed', subject, now, {
    facts: {
      confirmed: result.confirmed === true,
      classification: text(result.classification),
      summary: text(result.summary),
    },
  });
  if (result.confirmed !== true) return [diagnosed];
  const actions = Array.isArray(plan.actions) ? plan.actions.map(fieldsOf) : [];
  return [
    diagnosed,
    lifecycleEvent('planned', subject, now, {
      facts: {
        actions: actions.slice(0, MAX_LIST).map((action) => ({
          id: text(action.id),
          kind: text(action.kind),
          mode: text(action.mode),
        })),
        recommendations: Array.isArray(plan.recommendations) ? plan.recommendations.length : 0,
      },
    }),
  ];
}

/**
 * "Check the policy" and "Settle the approved changes": decided, once the decision is final (a
 * decision to ask a person is followed by awaiting-approval instead).
 */
export function eventsAfterPolicyGate(input: unknown, gate: unknown, now: Date): LifecycleEvent[] {
  const subject = subjectOf(input);
  const result = fieldsOf(gate);
  const decision = text(result.decision);
  if (subject === null || decision === null || decision === 'approve') return [];
  const approval = fieldsOf(fieldsOf(input).approval);
  const approver = fieldsOf(approval.approver);
  const approved = text(approval.decision);
  return [
    lifecycleEvent('decided', subject, now, {
      qualifier: approved === null ? `policy:${decision}` : `${text(approval.approvalId) ?? 'approval'}`,
      facts: {
        decision,
        toApply: idsOf(result.toApply),
        notApplied: idsOf(result.notApplied),
        reasons: texts(result.reasons).slice(0, 5),
        approval:
          approved === null
            ? null
            : {
                decision: approved,
                approver: text(approver.name) ?? text(approver.id),
                via: text(approver.via),
                decidedAt: text(approval.decidedAt),
              },
      },
    }),
  ];
}

/** "Wait for approval": the request is stored and announced. */
export function eventsAfterApprovalRequest(input: unknown, opened: unknown, now: Date): LifecycleEvent[] {
  const subject = subjectOf(input);
  if (subject === null) return [];
  const result = fieldsOf(opened);
  const approvalId = text(result.approvalId);
  return [
    lifecycleEvent('awaiting-approval', subject, now, {
      ...(approvalId ? { qualifier: approvalId } : {}),
      facts: {
        approvalId,
        expiresAt: text(result.expiresAt),
        actions: idsOf(fieldsOf(fieldsOf(input).gate).awaitingApproval),
      },
    }),
  ];
}

/** After "Apply the remediation": the change is on the host (the workflow state, with `$.applied`). */
export function eventsAfterApply(state: unknown, now: Date): LifecycleEvent[] {
  const subject = subjectOf(state);
  if (subject === null) return [];
  const fields = fieldsOf(state);
  const applied = Array.isArray(fields.applied) ? fields.applied.map(fieldsOf) : [];
  return [
    lifecycleEvent('applied', subject, now, {
      facts: {
        actions: idsOf(fieldsOf(fields.gate).toApply),
        commands: applied
          .map((block) => text(fieldsOf(block.command).commandId))
          .filter((id): id is string => id !== null)
          .slice(0, MAX_LIST),
        soakSeconds:
          typeof fieldsOf(fields.gate).soakSeconds === 'number' ? fieldsOf(fields.gate).soakSeconds : null,
      },
    }),
  ];
}

/** "Verify the fix": verified, with whether the fix held (it is rolled back when it did not). */
export function eventsAfterVerify(input: unknown, verification: unknown, now: Date): LifecycleEvent[] {
  const subject = subjectOf(input);
  if (subject === null) return [];
  const result = fieldsOf(verification);
  return [
    lifecycleEvent('verified', subject, now, {
      facts: { held: result.held === true, reasons: texts(result.reasons).slice(0, 5) },
    }),
  ];
}

/** Outcomes that need a person: the incident is escalated. */
const ESCALATING_STATUSES: ReadonlySet<string> = new Set(['escalated', 'rollback-failed']);

/**
 * The end of every path ("Notify", after the evidence bundle): rolled-back when the change was
 * undone, escalated when a person must act, and always closed, each with the outcome and the
 * evidence bundle's location and digest when it was written.
 */
export function eventsAtClose(state: unknown, now: Date): LifecycleEvent[] {
  const subject = subjectOf(state);
  if (subject === null) return [];
  const fields = fieldsOf(state);
  const outcome = outcomeOf(fields.outcome);
  const evidence = evidenceReferenceOf(fields.evidence);
  const common = { outcome, evidence };
  const events: LifecycleEvent[] = [];
  if (outcome?.status === 'rolled-back') {
    events.push(
      lifecycleEvent('rolled-back', subject, now, {
        ...common,
        facts: { why: text(fieldsOf(fields.error).Error) ?? (fields.verification ? 'not-held' : null) },
      }),
    );
  }
  if (outcome !== null && ESCALATING_STATUSES.has(outcome.status)) {
    const escalation = fieldsOf(fieldsOf(fields.guardrails).escalation);
    events.push(
      lifecycleEvent('escalated', subject, now, {
        ...common,
        facts: {
          reason: outcome.summary,
          reasons: texts(escalation.reasons).slice(0, 5),
          runbook: text(escalation.runbook),
        },
      }),
    );
  }
  events.push(
    lifecycleEvent('closed', subject, now, {
      ...common,
      facts: {
        evidenceError: fields.evidenceError === undefined ? null : text(fieldsOf(fields.evidenceError).Error),
      },
    }),
  );
  return events;
}

/**
 * The events each workflow function puts after its step, by the function's role in the workflow
 * (functions/core/workflow/state-names.ts LAMBDA_TASK_STATES): the Lambda handlers and the local twin both
 * read this, so they put the same events. `announce` is the one step that only puts an event.
 */
export const EVENTS_AFTER_STEP = {
  assess: eventsAfterAssess,
  policyGate: eventsAfterPolicyGate,
  requestApproval: eventsAfterApprovalRequest,
  announce: (state: unknown, _result: unknown, now: Date) => eventsAfterApply(state, now),
  verify: eventsAfterVerify,
  notify: (state: unknown, _result: unknown, now: Date) => eventsAtClose(state, now),
} as const satisfies Record<string, (input: unknown, result: unknown, now: Date) => LifecycleEvent[]>;
