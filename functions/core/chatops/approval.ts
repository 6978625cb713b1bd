import type { SlackMessage } from './block-kit.js';
import type { ButtonDecision } from './interaction.js';

/**
 * An approval: one decision a person makes about one incident's plan, identified by a single-use
 * random id. The Step Functions task token belongs to it but is never part of this record's public
 * shape: the store keeps it and hands it back only to the one click that wins the decision.
 */

export interface SlackMessageRef {
  readonly channel: string;
  readonly ts: string;
}

/** A message we posted, with what it says, so that it can be updated without reading it back from Slack. */
export interface PostedMessage extends SlackMessageRef {
  /** The root of the thread it was posted in, when it is a reply. */
  readonly threadTs: string | null;
  readonly body: SlackMessage;
}

/** A subset of the plan offered as its own button ("Raise limits only"). */
export interface SaferAlternative {
  readonly label: string;
  readonly actionIds: readonly string[];
  /** Why it is safer, in one line (shown under the buttons). */
  readonly why: string;
}

/**
 * Who decided, as the channel they decided through identifies them: a Slack user (id U…/W…,
 * workspace, display name), an IAM principal calling the approval URL (id = the caller's ARN as
 * AWS authenticated it, name = role/session or user name, no workspace), or the local operator.
 */
export interface Approver {
  readonly id: string;
  readonly name: string | null;
  /** The Slack workspace; null for every other channel. */
  readonly teamId: string | null;
  readonly via: 'slack' | 'terminal' | 'flag' | 'iam';
  /** Why this person was allowed to decide. */
  readonly basis: 'allowlist' | 'user-group' | 'local-operator' | 'iam-role' | 'iam-policy';
}

export interface RecordedDecision {
  readonly choice: ButtonDecision;
  readonly decision: 'approved' | 'rejected';
  /** The approved subset; null = every action shown. */
  readonly actionIds: readonly string[] | null;
  readonly approver: Approver;
  readonly decidedAt: string;
  /** Unique per winning click, so that a failed resume undoes exactly its own decision. */
  readonly attemptId: string;
}

export type ApprovalStatus = 'pending' | 'decided' | 'expired';

export interface ApprovalRecord {
  readonly approvalId: string;
  readonly incidentId: string;
  readonly instanceId: string | null;
  readonly executionId: string;
  readonly createdAt: string;
  /** After this instant every click is refused (the workflow times the task out at the same time). */
  readonly expiresAt: string;
  /** Every action the approval covers (what "Approve" applies). */
  readonly actions: ReadonlyArray<{ readonly id: string; readonly title: string }>;
  readonly alternative: SaferAlternative | null;
  readonly status: ApprovalStatus;
  /** Where the approval message is, once posted. */
  readonly message: PostedMessage | null;
  readonly decision: RecordedDecision | null;
  /** Why an approval expired without a decision (timeout, or the workflow was no longer waiting). */
  readonly expiredReason: string | null;
}

export type DecideResult =
  | { readonly outcome: 'decided'; readonly record: ApprovalRecord; readonly taskToken: string }
  | { readonly outcome: 'not-found' }
  | { readonly outcome: 'already-decided'; readonly record: ApprovalRecord }
  | { readonly outcome: 'expired'; readonly record: ApprovalRecord };

/**
 * Where approvals live (DynamoDB on AWS, memory in the local twin). `decide` is the single-use
 * step: it records the decision only if the approval is still pending and not expired, atomically,
 * so that however many clicks race, exactly one gets the task token.
 */
export interface ApprovalStore {
  create(record: ApprovalRecord, taskToken: string): Promise<void>;
  get(approvalId: string): Promise<ApprovalRecord | undefined>;
  /** The incident's latest approval (what `approve INCIDENT_ID` decides), if it has one. */
  findByIncident(incidentId: string): Promise<ApprovalRecord | undefined>;
  attachMessage(approvalId: string, message: PostedMessage): Promise<void>;
  decide(approvalId: string, decision: RecordedDecision, now: Date): Promise<DecideResult>;
  /** Returns a decided approval to pending after its resume failed for a passing reason (only that attempt's). */
  undoDecision(approvalId: string, attemptId: string): Promise<boolean>;
  /** Marks a pending (or just decided, by this attempt) approval expired; false when it was not. */
  expire(approvalId: string, reason: string, attemptId?: string): Promise<boolean>;
}

/** The thread of one incident in the channel (its opening message), and its latest approval. */
export interface IncidentThreadRef extends SlackMessageRef {
  readonly incidentId: string;
  readonly approvalId: string | null;
}

export interface ThreadStore {
  getThread(incidentId: string): Promise<IncidentThreadRef | undefined>;
  /** Stores the thread unless one exists already; returns the one that is stored. */
  putThread(thread: IncidentThreadRef): Promise<IncidentThreadRef>;
  setThreadApproval(incidentId: string, approvalId: string): Promise<void>;
}

export function newApprovalRecord(fields: {
  approvalId: string;
  incidentId: string;
  instanceId: string | null;
  executionId: string;
  now: Date;
  timeoutSeconds: number;
  actions: ReadonlyArray<{ id: string; title: string }>;
  alternative: SaferAlternative | null;
}): ApprovalRecord {
  return {
    approvalId: fields.approvalId,
    incidentId: fields.incidentId,
    instanceId: fields.instanceId,
    executionId: fields.executionId,
    createdAt: fields.now.toISOString(),
    expiresAt: new Date(fields.now.getTime() + fields.timeoutSeconds * 1000).toISOString(),
    actions: fields.actions.map(({ id, title }) => ({ id, title })),
    alternative: fields.alternative,
    status: 'pending',
    message: null,
    decision: null,
    expiredReason: null,
  };
}

export function isExpired(record: ApprovalRecord, now: Date): boolean {
  return record.status === 'expired' || Date.parse(record.expiresAt) <= now.getTime();
}

/** What a click decides, given the approval it is about. */
export function decisionFor(
  record: ApprovalRecord,
  choice: ButtonDecision,
  approver: Approver,
  now: Date,
  attemptId: string,
): RecordedDecision {
  if (choice === 'reject') {
    return {
      choice,
      decision: 'rejected',
      actionIds: null,
      approver,
      decidedAt: now.toISOString(),
      attemptId,
    };
  }
  if (choice === 'alternative') {
    if (record.alternative === null) throw new Error(`approval ${record.approvalId} offers no alternative`);
    return {
      choice,
      decision: 'approved',
      actionIds: [...record.alternative.actionIds],
      approver,
      decidedAt: now.toISOString(),
      attemptId,
    };
  }
  return { choice, decision: 'approved', actionIds: null, approver, decidedAt: now.toISOString(), attemptId };
}

/**
 * What SendTaskSuccess carries back to the workflow: the policy gate's ApprovalDecision (decision,
 * optional subset, approver, time), plus the approver's identity (Slack user and workspace, or
 * the IAM principal's ARN) for the incident's record and the evidence bundle. A rejection is a
 * decision too (SendTaskSuccess), so that the incident ends "rejected" rather than "failed".
 */
export function taskOutputOf(record: ApprovalRecord, decision: RecordedDecision): Record<string, unknown> {
  const { approver } = decision;
  return {
    decision: decision.decision,
    ...(decision.actionIds === null ? {} : { actionIds: [...decision.actionIds] }),
    approver: {
      id: approver.id,
      ...(approver.name === null ? {} : { name: approver.name }),
      via: approver.via,
      ...(approver.teamId === null ? {} : { teamId: approver.teamId }),
      basis: approver.basis,
    },
    decidedAt: decision.decidedAt,
    approvalId: record.approvalId,
    choice: decision.choice,
  };
}

interface ActionLike {
  readonly id: string;
  readonly kind: string;
  readonly title: string;
  readonly requires?: readonly string[];
  readonly risk?: string;
}

const ALTERNATIVES: ReadonlyArray<{ kind: string; label: string; why: string }> = [
  {
    kind: 'raise-limits',
    label: 'Raise limits only',
    why: 'Raising the limit changes one sysctl, within the memory budget, and touches no firewall rule or timeout.',
  },
  {
    kind: 'shorten-timeouts',
    label: 'Shorten timeouts only',
    why: 'Shorter timeouts change sysctls only and touch no firewall rule.',
  },
];

/**
 * The safer alternative to offer next to Approve, when the plan has one: the lowest-risk kind of
 * change on its own (with what it requires), if that is a real subset of the plan.
 */
export function saferAlternativeOf(actions: readonly ActionLike[]): SaferAlternative | null {
  for (const candidate of ALTERNATIVES) {
    const chosen = actions.filter((action) => action.kind === candidate.kind);
    const ids = new Set(chosen.map((action) => action.id));
    const runnable = chosen.filter((action) => (action.requires ?? []).every((id) => ids.has(id)));
    if (runnable.length > 0 && runnable.length < actions.length) {
      return { label: candidate.label, actionIds: runnable.map((action) => action.id), why: candidate.why };
    }
  }
  return null;
}
