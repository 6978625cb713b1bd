import { approvalRequestFrom, approvalText } from '../workflow/approval.js';
import {
  type ApprovalRecord,
  type ApprovalStore,
  newApprovalRecord,
  saferAlternativeOf,
} from './approval.js';
import { approvalTaskFrom } from './approval-task.js';
import { decisionCommandLines, decisionCommands } from './iam-approval.js';
import type { IncidentChat } from './incident-chat.js';
import { type SnsMessage, snsMessage } from './notification.js';

/**
 * "Wait for approval": the workflow hands over its task token; the approval is stored under a new
 * single-use id (the token stays in the store), announced on the SNS topic (without the token), and
 * posted in the incident's Slack thread with its buttons when Slack is configured. A Slack failure
 * fails the task with the Slack error: nobody could approve, so the incident ends "failed before
 * any change" and is notified at once rather than waiting out the timeout.
 */
export interface OpenApprovalPorts {
  readonly store: ApprovalStore;
  readonly chat: IncidentChat | null;
  readonly publish: (message: SnsMessage) => Promise<{ readonly messageId: string }>;
  readonly now: () => Date;
  readonly newApprovalId: () => string;
  /** The account the instance belongs to (a filter attribute of the announcement). */
  readonly account: string;
  /** The approval URL (stack output ApprovalUrl), so that the announcement shows the exact commands. */
  readonly approvalUrl?: string | null;
}

export interface OpenedApproval {
  readonly approvalId: string;
  readonly expiresAt: string;
  readonly announced: string;
  readonly slack: { readonly channel: string; readonly ts: string } | 'not-configured';
}

export async function openApproval(payload: unknown, ports: OpenApprovalPorts): Promise<OpenedApproval> {
  const task = approvalTaskFrom(payload);
  // The announcement's stricter reading of the same input comes first: an input it refuses must
  // fail the task before an approval is stored or its buttons are posted.
  const { request: pending } = approvalRequestFrom(payload, ports.now(), 'pending');
  let record: ApprovalRecord;
  let slack: OpenedApproval['slack'] = 'not-configured';
  if (ports.chat !== null) {
    const opened = await ports.chat.requestApproval(task);
    record = opened.record;
    slack = { channel: opened.message.channel, ts: opened.message.ts };
  } else {
    record = newApprovalRecord({
      approvalId: ports.newApprovalId(),
      incidentId: task.incident.incidentId,
      instanceId: task.incident.instanceId,
      executionId: task.executionId,
      now: ports.now(),
      timeoutSeconds: task.timeoutSeconds,
      actions: task.actions,
      alternative: saferAlternativeOf(task.actions),
    });
    await ports.store.create(record, task.taskToken);
  }
  const request = {
    ...pending,
    approvalId: record.approvalId,
    createdAt: record.createdAt,
    expiresAt: record.expiresAt,
  };
  const instance = request.instanceId ?? task.incident.host ?? 'unknown';
  const commands = decisionCommands(record.incidentId, ports.approvalUrl, record.alternative !== null);
  const howToDecide = [
    ...(slack === 'not-configured' ? [] : ['Decide in the Slack thread of this incident.']),
    ...(commands === null ? [] : decisionCommandLines(commands, record.alternative?.label ?? null)),
  ];
  const announcement = snsMessage(
    {
      subject: `conntrack-responder: approval needed on ${instance} (${request.incidentId})`,
      text: `${approvalText(request)}${howToDecide.length === 0 ? '' : `\n\n${howToDecide.join('\n')}`}`,
      summary: {
        approvalId: record.approvalId,
        incidentId: record.incidentId,
        instance,
        expiresAt: record.expiresAt,
        actions: record.actions.map((action) => action.id),
        alternative: record.alternative?.actionIds ?? null,
        commands,
      },
      attributes: { severity: 'warning', outcome: 'approval-needed', action: 'approval', instance },
    },
    { account: ports.account, evidence: null },
  );
  const published = await ports.publish(announcement);
  return {
    approvalId: record.approvalId,
    expiresAt: record.expiresAt,
    announced: published.messageId,
    slack,
  };
}
