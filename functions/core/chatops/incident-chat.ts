import {
  type ApprovalRecord,
  type ApprovalStore,
  type IncidentThreadRef,
  newApprovalRecord,
  type PostedMessage,
  type SlackMessageRef,
  saferAlternativeOf,
  type ThreadStore,
} from './approval.js';
import type { ApprovalTask } from './approval-task.js';
import { assertFitsBlockKit, type SlackMessage } from './block-kit.js';
import type { FollowUp } from './interactivity.js';
import {
  approvalMessage,
  decisionLine,
  expiryLine,
  type IncidentView,
  noticeMessage,
  openingMessage,
  type ResultView,
  resultMessage,
  type StepStatus,
  settledApprovalMessage,
  stepMessage,
} from './messages.js';

/**
 * What conntrack-responder says in Slack about one incident: one thread per incident (the opening
 * message), a reply per step, the approval request, its settlement, and the result. The Slack Web
 * API (on AWS and in the lab with a real workspace) and the local files (in the lab without one)
 * are both a `SlackPort`; the threads and approvals stores are DynamoDB on AWS, memory locally.
 */
export interface SlackPort {
  postMessage(
    channel: string,
    message: SlackMessage,
    options?: { readonly threadTs?: string; readonly broadcast?: boolean },
  ): Promise<SlackMessageRef>;
  updateMessage(ref: SlackMessageRef, message: SlackMessage): Promise<void>;
  postEphemeral(channel: string, userId: string, message: SlackMessage): Promise<void>;
  deleteMessage(ref: SlackMessageRef): Promise<void>;
}

export interface IncidentChatOptions {
  readonly slack: SlackPort;
  readonly threads: ThreadStore;
  readonly approvals: ApprovalStore;
  /** The channel (C…) every incident thread goes to. */
  readonly channel: string;
  readonly now: () => Date;
  readonly newApprovalId: () => string;
}

/** Threads remembered per IncidentChat (a warm Lambda container serves many incidents). */
const REMEMBERED_THREADS = 256;

export class IncidentChat {
  /**
   * Where each incident's thread is: its channel and ts never change once stored (the store's put
   * is create-only), so a batch of step lines reads the thread item once, not once per line.
   */
  private readonly threadMessages = new Map<string, SlackMessageRef>();

  constructor(private readonly options: IncidentChatOptions) {}

  /** The incident's thread (where it is), opened with its first message when it has none yet. */
  async thread(incident: IncidentView): Promise<SlackMessageRef> {
    const remembered = this.threadMessages.get(incident.incidentId);
    if (remembered !== undefined) return remembered;
    const thread = await this.findOrOpenThread(incident);
    if (this.threadMessages.size >= REMEMBERED_THREADS) this.threadMessages.clear();
    const where = { channel: thread.channel, ts: thread.ts };
    this.threadMessages.set(incident.incidentId, where);
    return where;
  }

  private async findOrOpenThread(incident: IncidentView): Promise<IncidentThreadRef> {
    const { threads, slack, channel } = this.options;
    const existing = await threads.getThread(incident.incidentId);
    if (existing !== undefined) return existing;
    const message = openingMessage(incident);
    assertFitsBlockKit(message, 'the opening message');
    const posted = await slack.postMessage(channel, message);
    const stored = await threads.putThread({ incidentId: incident.incidentId, ...posted, approvalId: null });
    if (stored.ts !== posted.ts || stored.channel !== posted.channel) {
      // Another step opened the thread at the same moment: keep theirs, take ours back.
      await slack.deleteMessage(posted).catch(() => undefined);
    }
    return stored;
  }

  async step(
    incident: IncidentView,
    title: string,
    status: StepStatus,
    detail?: string | null,
  ): Promise<void> {
    const thread = await this.thread(incident);
    const message = stepMessage({ title, status, detail: detail ?? null });
    assertFitsBlockKit(message, `the step message '${title}'`);
    await this.options.slack.postMessage(thread.channel, message, { threadTs: thread.ts });
  }

  /**
   * Stores the approval (with its task token, server side) before anything is posted, so that a
   * click can never arrive for an approval that does not exist; then posts the request in the
   * incident's thread, also to the channel, and remembers where it is.
   */
  async requestApproval(task: ApprovalTask): Promise<{ record: ApprovalRecord; message: PostedMessage }> {
    const { approvals, threads, slack, now, newApprovalId } = this.options;
    const record = newApprovalRecord({
      approvalId: newApprovalId(),
      incidentId: task.incident.incidentId,
      instanceId: task.incident.instanceId,
      executionId: task.executionId,
      now: now(),
      timeoutSeconds: task.timeoutSeconds,
      actions: task.actions,
      alternative: saferAlternativeOf(task.actions),
    });
    const body = approvalMessage({
      record,
      incident: task.incident,
      classification: task.classification,
      summary: task.summary,
      confirmation: task.confirmation,
      actions: task.actions,
      report: task.report,
    });
    assertFitsBlockKit(body, 'the approval message');
    await approvals.create(record, task.taskToken);
    const thread = await this.thread(task.incident);
    const posted = await slack.postMessage(thread.channel, body, { threadTs: thread.ts, broadcast: true });
    const message: PostedMessage = { ...posted, threadTs: thread.ts, body };
    await approvals.attachMessage(record.approvalId, message);
    await threads.setThreadApproval(task.incident.incidentId, record.approvalId);
    return { record: { ...record, message }, message };
  }

  /** After a decision or an expiry: the buttons give way to the outcome, and the thread says it. */
  async settleApproval(approvalId: string): Promise<'settled' | 'nothing-to-settle'> {
    const { approvals, slack } = this.options;
    const record = await approvals.get(approvalId);
    if (record === undefined || record.message === null || record.status === 'pending')
      return 'nothing-to-settle';
    const line =
      record.decision !== null && record.status === 'decided'
        ? decisionLine(record, record.decision)
        : expiryLine(record, record.expiredReason);
    const settled = settledApprovalMessage(record.message.body, line);
    assertFitsBlockKit(settled, 'the settled approval message');
    await slack.updateMessage(record.message, settled);
    await slack.postMessage(record.message.channel, noticeMessage(line), {
      threadTs: record.message.threadTs ?? record.message.ts,
    });
    return 'settled';
  }

  /**
   * The approval wait ended without a decision: the pending approval is closed (a late click is
   * refused) and its message and thread say that nothing changed and the incident is escalated.
   */
  async approvalTimedOut(incidentId: string, reason: string): Promise<'settled' | 'nothing-to-settle'> {
    const thread = await this.options.threads.getThread(incidentId);
    if (thread?.approvalId == null) return 'nothing-to-settle';
    await this.options.approvals.expire(thread.approvalId, reason);
    return this.settleApproval(thread.approvalId);
  }

  async result(incident: IncidentView, result: ResultView): Promise<void> {
    const thread = await this.thread(incident);
    const message = resultMessage(result);
    assertFitsBlockKit(message, 'the result message');
    // Escalations also go to the channel itself, where people see them without opening the thread.
    await this.options.slack.postMessage(thread.channel, message, {
      threadTs: thread.ts,
      broadcast: result.escalated,
    });
  }

  async followUp(followUp: FollowUp): Promise<void> {
    switch (followUp.kind) {
      case 'settle-approval':
        await this.settleApproval(followUp.approvalId);
        return;
      case 'tell-user':
        await this.options.slack.postEphemeral(
          followUp.channelId,
          followUp.userId,
          noticeMessage(followUp.text),
        );
        return;
    }
  }
}
