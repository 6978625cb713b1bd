import { z } from 'zod';
import type { WorkflowAction } from './gate.js';
import { parseWith, WorkflowIncidentSchema } from './incident.js';

/**
 * "Wait for approval": the request a person decides on. The Step Functions task token stays on
 * the server side (stored under the approval id by the adapter); only the single-use approval id
 * travels in messages and buttons.
 */

const RequestApprovalInputSchema = z.object({
  taskToken: z.string().min(1),
  timeoutSeconds: z.number().int().positive(),
  execution: z.looseObject({ id: z.string(), name: z.string().optional() }),
  incident: z.unknown(),
  assessment: z.looseObject({
    classification: z.string(),
    summary: z.string(),
    plan: z.looseObject({}),
  }),
  gate: z.looseObject({ awaitingApproval: z.array(z.looseObject({ id: z.string(), title: z.string() })) }),
});

export interface ApprovalRequest {
  readonly approvalId: string;
  readonly incidentId: string;
  readonly instanceId: string | null;
  readonly executionId: string;
  readonly createdAt: string;
  /** After this the approval is refused (the state machine has timed out the task by then). */
  readonly expiresAt: string;
  readonly classification: string;
  readonly summary: string;
  readonly actions: readonly WorkflowAction[];
}

export interface PendingApproval {
  readonly request: ApprovalRequest;
  /** Never shown to anyone: the adapter stores it and hands it back to SendTaskSuccess/Failure. */
  readonly taskToken: string;
}

export function approvalRequestFrom(payload: unknown, now: Date, approvalId: string): PendingApproval {
  const input = parseWith(RequestApprovalInputSchema, payload, 'the approval request');
  const incident = parseWith(WorkflowIncidentSchema, input.incident, 'the incident');
  return {
    taskToken: input.taskToken,
    request: {
      approvalId,
      incidentId: incident.incidentId,
      instanceId: incident.instanceId,
      executionId: input.execution.id,
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + input.timeoutSeconds * 1000).toISOString(),
      classification: input.assessment.classification,
      summary: input.assessment.summary,
      actions: input.gate.awaitingApproval as unknown as WorkflowAction[],
    },
  };
}

/** The request in plain text: what would change, exactly, and how long the decision may take. */
export function approvalText(request: ApprovalRequest): string {
  const lines = [
    `Approval needed for incident ${request.incidentId} on ${request.instanceId ?? 'an unknown host'} (${request.classification}).`,
    request.summary,
    '',
    'Changes to apply:',
  ];
  for (const action of request.actions) {
    const parameters = Object.entries(action.parameters)
      .map(([name, values]) => `${name}=${values.join(',')}`)
      .join(' ');
    lines.push(
      `  - [${action.id}] ${action.title} (${action.document}: ${parameters}; policy mode ${action.mode})`,
    );
  }
  lines.push(
    '',
    `Approval id ${request.approvalId}; expires at ${request.expiresAt} (no decision = no change).`,
  );
  return lines.join('\n');
}
