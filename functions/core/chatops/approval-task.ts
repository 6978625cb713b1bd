import { z } from 'zod';
import { type DiagnosticsReport, readDiagnosticsReport } from '../diagnostics/report.js';
import { ResponderError, TASK_ERROR } from '../errors.js';
import { INCIDENT_ID_PATTERN } from '../workflow/incident.js';
import { formatIssues } from '../zod-issues.js';
import type { ActionView, IncidentView } from './messages.js';

/**
 * The input of the workflow's "Wait for approval" task (infra/workflow/definition.ts): the task
 * token, the timeout, the incident, the assessment with its plan, the gate's list of actions
 * waiting for a person, and the diagnostics before any change (the evidence shown to the
 * approver). Parsed leniently (fields we do not use are kept) but every field we rely on is
 * checked, so a malformed input fails the task with a message naming the field.
 */

/** The workflow's incident as the chat messages read it (the approval task and the outcome). */
export const IncidentSchema = z.looseObject({
  incidentId: z.string().regex(INCIDENT_ID_PATTERN, 'an execution-name-safe id of 1 to 80 characters'),
  instanceId: z.string().nullable(),
  host: z.string().optional(),
  kind: z.string(),
  mode: z.string().optional(),
  openedAt: z.string().optional(),
  trigger: z
    .looseObject({
      netns: z.string().nullable().optional(),
      dropLines: z.number().optional(),
      suppressed: z.number().optional(),
    })
    .optional(),
});

const PlannedActionSchema = z.looseObject({
  id: z.string(),
  kind: z.string(),
  document: z.string(),
  parameters: z.record(z.string(), z.string()),
  persistParameters: z.record(z.string(), z.string()).nullable().optional(),
  requires: z.array(z.string()).optional(),
  title: z.string(),
  reason: z.string().optional(),
  memoryCostBytes: z.number().optional(),
  expectedEffect: z.string().optional(),
  risk: z.string().optional(),
  unsafeIf: z.array(z.string()).optional(),
});

const WaitingActionSchema = z.looseObject({
  id: z.string(),
  title: z.string(),
  kind: z.string().optional(),
  document: z.string().optional(),
  parameters: z.record(z.string(), z.array(z.string())).optional(),
});

export const ApprovalTaskInputSchema = z.looseObject({
  taskToken: z.string().min(1),
  timeoutSeconds: z.number().int().positive(),
  execution: z.looseObject({ id: z.string(), name: z.string().optional() }),
  incident: IncidentSchema,
  assessment: z.looseObject({
    classification: z.string(),
    summary: z.string(),
    confirmation: z.array(z.string()).optional(),
    plan: z.looseObject({ actions: z.array(PlannedActionSchema) }),
  }),
  gate: z.looseObject({ awaitingApproval: z.array(WaitingActionSchema).min(1) }),
  /** The collect-diagnostics command output ({ stdout }), optional: the message says when it is missing. */
  diagnostics: z.looseObject({ stdout: z.string() }).optional(),
});

export class ApprovalTaskInputError extends ResponderError {
  override readonly name = TASK_ERROR.approvalTaskInput;
}

export interface ApprovalTask {
  readonly taskToken: string;
  readonly timeoutSeconds: number;
  readonly executionId: string;
  readonly incident: IncidentView;
  readonly classification: string;
  readonly summary: string;
  readonly confirmation: readonly string[];
  /** The actions waiting for the decision, in the gate's order, with the plan's explanation of each. */
  readonly actions: readonly ActionView[];
  readonly report: DiagnosticsReport | null;
  /** Why the report is missing, when it is. */
  readonly reportProblem: string | null;
}

function readReport(stdout: string | undefined): {
  report: DiagnosticsReport | null;
  problem: string | null;
} {
  if (stdout === undefined) return { report: null, problem: 'the task input has no diagnostics' };
  const reading = readDiagnosticsReport(stdout, { limit: 1, root: '' });
  if (reading.ok) return { report: reading.report, problem: null };
  if (reading.reason === 'not-json') return { report: null, problem: 'the diagnostics output is not JSON' };
  return {
    report: null,
    problem: `the diagnostics do not follow the report contract (${reading.detail || 'invalid'})`,
  };
}

export function incidentViewOf(
  incident: z.infer<typeof IncidentSchema>,
  executionId: string | null,
): IncidentView {
  return {
    incidentId: incident.incidentId,
    instanceId: incident.instanceId,
    host: incident.host ?? null,
    kind: incident.kind,
    mode: incident.mode ?? null,
    openedAt: incident.openedAt ?? null,
    dropLines: incident.trigger?.dropLines ?? null,
    suppressed: incident.trigger?.suppressed ?? null,
    netns: incident.trigger?.netns ?? null,
    executionId,
  };
}

export function approvalTaskFrom(payload: unknown): ApprovalTask {
  const parsed = ApprovalTaskInputSchema.safeParse(payload);
  if (!parsed.success) {
    throw new ApprovalTaskInputError(
      `the approval task input is invalid: ${formatIssues(parsed.error, { limit: 8 })}`,
    );
  }
  const input = parsed.data;
  const planned = new Map(input.assessment.plan.actions.map((action) => [action.id, action]));
  const actions: ActionView[] = input.gate.awaitingApproval.map((waiting) => {
    const detail = planned.get(waiting.id);
    if (detail !== undefined) return detail;
    // The gate's SSM form (parameter values as lists) when the plan does not list the action.
    const parameters = Object.fromEntries(
      Object.entries(waiting.parameters ?? {}).map(([name, values]) => [name, values.join(',')]),
    );
    return {
      id: waiting.id,
      kind: waiting.kind ?? 'unknown',
      title: waiting.title,
      document: waiting.document ?? 'unknown',
      parameters,
    };
  });
  const { report, problem } = readReport(input.diagnostics?.stdout);
  return {
    taskToken: input.taskToken,
    timeoutSeconds: input.timeoutSeconds,
    executionId: input.execution.id,
    incident: incidentViewOf(input.incident, input.execution.id),
    classification: input.assessment.classification,
    summary: input.assessment.summary,
    confirmation: input.assessment.confirmation ?? [],
    actions,
    report,
    reportProblem: problem,
  };
}
