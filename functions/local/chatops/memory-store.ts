import type {
  ApprovalRecord,
  ApprovalStore,
  DecideResult,
  IncidentThreadRef,
  PostedMessage,
  RecordedDecision,
  ThreadStore,
} from '../../core/chatops/approval.js';

/**
 * The approvals and threads of the local twin, in memory (one process runs the whole incident).
 * Same contract as the DynamoDB store: `decide` checks and writes in one synchronous step, so
 * concurrent clicks on the local endpoint also act exactly once.
 */
export class MemoryApprovalStore implements ApprovalStore, ThreadStore {
  private readonly approvals = new Map<string, { record: ApprovalRecord; taskToken: string }>();
  private readonly threads = new Map<string, IncidentThreadRef>();
  private readonly latestByIncident = new Map<string, string>();

  async create(record: ApprovalRecord, taskToken: string): Promise<void> {
    if (this.approvals.has(record.approvalId))
      throw new Error(`approval ${record.approvalId} exists already`);
    this.approvals.set(record.approvalId, { record, taskToken });
    this.latestByIncident.set(record.incidentId, record.approvalId);
  }

  async findByIncident(incidentId: string): Promise<ApprovalRecord | undefined> {
    const approvalId = this.latestByIncident.get(incidentId);
    return approvalId === undefined ? undefined : this.get(approvalId);
  }

  async get(approvalId: string): Promise<ApprovalRecord | undefined> {
    return this.approvals.get(approvalId)?.record;
  }

  async attachMessage(approvalId: string, message: PostedMessage): Promise<void> {
    const entry = this.approvals.get(approvalId);
    if (entry === undefined) throw new Error(`approval ${approvalId} does not exist`);
    entry.record = { ...entry.record, message };
  }

  async decide(approvalId: string, decision: RecordedDecision, now: Date): Promise<DecideResult> {
    const entry = this.approvals.get(approvalId);
    if (entry === undefined) return { outcome: 'not-found' };
    const { record } = entry;
    if (record.status === 'decided') return { outcome: 'already-decided', record };
    if (record.status === 'expired' || Date.parse(record.expiresAt) <= now.getTime()) {
      return { outcome: 'expired', record };
    }
    entry.record = { ...record, status: 'decided', decision };
    return { outcome: 'decided', record: entry.record, taskToken: entry.taskToken };
  }

  async undoDecision(approvalId: string, attemptId: string): Promise<boolean> {
    const entry = this.approvals.get(approvalId);
    if (entry?.record.status !== 'decided' || entry.record.decision?.attemptId !== attemptId) return false;
    entry.record = { ...entry.record, status: 'pending', decision: null };
    return true;
  }

  async expire(approvalId: string, reason: string, attemptId?: string): Promise<boolean> {
    const entry = this.approvals.get(approvalId);
    if (entry === undefined) return false;
    const { record } = entry;
    const mine =
      attemptId !== undefined && record.status === 'decided' && record.decision?.attemptId === attemptId;
    if (record.status !== 'pending' && !mine) return false;
    entry.record = { ...record, status: 'expired', expiredReason: reason };
    return true;
  }

  async getThread(incidentId: string): Promise<IncidentThreadRef | undefined> {
    return this.threads.get(incidentId);
  }

  async putThread(thread: IncidentThreadRef): Promise<IncidentThreadRef> {
    const existing = this.threads.get(thread.incidentId);
    if (existing !== undefined) return existing;
    this.threads.set(thread.incidentId, thread);
    return thread;
  }

  async setThreadApproval(incidentId: string, approvalId: string): Promise<void> {
    const thread = this.threads.get(incidentId);
    if (thread === undefined) throw new Error(`incident ${incidentId} has no thread`);
    this.threads.set(incidentId, { ...thread, approvalId });
  }
}
