import { z } from 'zod';
import { type DiagnosticsReport, readDiagnosticsReport } from '../diagnostics/report.js';
import { GUARDRAIL_NAMES, GUARDRAIL_STEPS, type GuardrailDecision } from '../guardrails/decisions.js';
import { RESPONSE_MODES } from '../incident/settings.js';
import type { Plan } from '../plan/types.js';
import type { VerificationResult } from '../plan/verify.js';
import { WorkflowIncidentSchema } from '../workflow/incident.js';
import { OUTCOME_STATUSES, type Outcome } from '../workflow/outcome.js';
import { STATE } from '../workflow/state-names.js';
import { formatIssues } from '../zod-issues.js';
import type {
  ApprovalRecord,
  CommandRecord,
  CommandStep,
  ForecastEvidence,
  IncidentEvidence,
  LogEvent,
  WorkflowError,
} from './incident.js';

/**
 * Turns the incident workflow's final state (the object the "Write the evidence bundle" task
 * receives, see infra/workflow/definition.ts) and its execution history into the evidence the
 * bundle is built from. The same function serves the Lambda (history from GetExecutionHistory)
 * and the local twin (history from the local interpreter): both history forms are read.
 *
 * Every part but the incident itself is optional, because a failure can end the workflow
 * anywhere; whatever cannot be read becomes a note in the bundle instead of an exception, so that
 * a bundle is always written.
 */

export interface WorkflowEvidenceInput {
  /** The workflow's state when the evidence task runs. */
  readonly state: unknown;
  /** Execution history events, in order: AWS GetExecutionHistory events or the local twin's. */
  readonly history: readonly unknown[];
  /** When the bundle is written (the incident's close time). */
  readonly closedAt: string;
}

/**
 * The incident as the workflow's own schema (WorkflowIncidentSchema) reads it, with what the
 * evidence must still accept when the workflow itself could not: the bundle is written after a
 * failure too, so the id need not be an execution name, the instance may be missing, a log event's
 * time may be text, the forecast is read on its own below, and the mode (which the guardrails'
 * decisions record) is not read here at all.
 */
const IncidentSchema = WorkflowIncidentSchema.omit({ mode: true }).extend({
  incidentId: z.string().min(1),
  instanceId: WorkflowIncidentSchema.shape.instanceId.optional(),
  trigger: WorkflowIncidentSchema.shape.trigger.extend({
    events: z
      .array(z.looseObject({ timestamp: z.union([z.number(), z.string()]), message: z.string() }))
      .default([]),
    forecast: z.unknown().optional(),
  }),
});

/** A near-full incident's forecast as detection recorded it (functions/core/forecast). */
const ForecastSchema = z.looseObject({
  sampledAt: z.iso.datetime(),
  count: z.number().int().nonnegative(),
  max: z.number().int().positive(),
  usage: z.number().nonnegative(),
  growthPerSecond: z.number().nullable(),
  secondsToFull: z.number().nonnegative().nullable(),
  predictedFullAt: z.iso.datetime().nullable(),
  horizonSeconds: z.number().positive().optional(),
  usageThreshold: z.number().positive().optional(),
  trigger: z.string().nullable().optional(),
  summary: z.string().max(2000),
  samples: z
    .array(
      z.looseObject({
        at: z.iso.datetime(),
        count: z.number().int().nonnegative(),
        max: z.number().int().nonnegative(),
        drop: z.number().int().nonnegative().nullable(),
      }),
    )
    .max(256)
    .default([]),
});

const CommandOutputSchema = z.looseObject({
  commandId: z.string().optional(),
  status: z.string().optional(),
  stdout: z.string().default(''),
  stderr: z.string().default(''),
});

const BlockResultSchema = z.looseObject({
  request: z
    .looseObject({
      id: z.string().optional(),
      document: z.string().optional(),
      changeId: z.string().optional(),
      parameters: z.record(z.string(), z.union([z.string(), z.array(z.string())])).optional(),
    })
    .default({}),
  command: z.looseObject({ commandId: z.string().optional() }).optional(),
  invocation: z
    .looseObject({
      status: z.string().optional(),
      responseCode: z.number().optional(),
      stdout: z.string().optional(),
      stderr: z.string().optional(),
    })
    .optional(),
});

const ApprovalSchema = z.looseObject({
  decision: z.enum(['approved', 'rejected']),
  actionIds: z.array(z.string()).optional(),
  approver: z.looseObject({
    id: z.string(),
    name: z.string().optional(),
    via: z.string(),
    teamId: z.string().optional(),
    basis: z.string().optional(),
  }),
  decidedAt: z.string(),
  comment: z.string().optional(),
});

const OutcomeSchema = z.looseObject({
  status: z.enum(OUTCOME_STATUSES),
  hostChanged: z.boolean(),
  summary: z.string(),
});

const VerificationSchema = z.looseObject({
  held: z.boolean(),
  reasons: z.array(z.string()).default([]),
  checks: z.array(z.looseObject({ name: z.string(), passed: z.boolean(), detail: z.string() })).default([]),
});

/** A guardrail decision (guardrails/decisions.ts): any guardrail, step and mode the guardrails know. */
const GuardrailDecisionSchema = z.object({
  guardrail: z.enum(GUARDRAIL_NAMES),
  step: z.enum(GUARDRAIL_STEPS),
  effect: z.string(),
  mode: z.enum(RESPONSE_MODES).optional(),
  detail: z.string(),
  at: z.string(),
});

const ErrorSchema = z.looseObject({ Error: z.string().optional(), Cause: z.string().optional() });

const ERROR_FIELDS = ['error', 'rollbackError', 'persistError', 'notificationError'] as const;

type WorkflowState = Record<string, unknown>;
type Incident = z.infer<typeof IncidentSchema>;

export function evidenceFromWorkflow(input: WorkflowEvidenceInput): IncidentEvidence {
  const state = (typeof input.state === 'object' && input.state !== null ? input.state : {}) as WorkflowState;
  const parsedIncident = IncidentSchema.safeParse(state.incident);
  if (!parsedIncident.success) {
    throw new Error(
      `evidence: the workflow state has no usable incident (${formatIssues(parsedIncident.error)})`,
    );
  }
  const incident = parsedIncident.data;
  const notes: string[] = [];
  const history = new History(input.history);

  const before = diagnosticsReportOf(state, 'before', notes);
  const after = diagnosticsReportOf(state, 'after', notes);
  const plan = planOf(state, notes);
  const commands = commandsOf(state, history, plan, notes);
  const approvals = approvalsOf(state, history, plan, notes);
  const verification = verificationOf(state, notes);
  const outcome = outcomeOf(state, commands, notes);
  const { logEvents, forecast } = triggerOf(incident, notes);

  return {
    incidentId: incident.incidentId,
    instanceId: incident.instanceId ?? null,
    alert: {
      kind: incident.kind,
      netns: incident.trigger.netns,
      dropLines: incident.trigger.dropLines,
      suppressed: incident.trigger.suppressed,
    },
    detectedAt: incident.openedAt ?? history.started() ?? input.closedAt,
    closedAt: input.closedAt,
    outcome,
    logEvents,
    before,
    after,
    plan,
    approvals,
    commands,
    verification,
    executionHistory: input.history,
    errors: errorsOf(state),
    notes,
    guardrails: guardrailsOf(state.guardrails, notes),
    ...(forecast === undefined ? {} : { forecast }),
  };
}

/** The diagnostics report collected before or after the change; one that cannot be read becomes a note. */
function diagnosticsReportOf(
  state: WorkflowState,
  field: 'before' | 'after',
  notes: string[],
): DiagnosticsReport | null {
  if (state[field] === undefined) return null;
  const output = CommandOutputSchema.safeParse(state[field]);
  if (!output.success) {
    notes.push(`the ${field} diagnostics command output has an unexpected shape`);
    return null;
  }
  const reading = readDiagnosticsReport(output.data.stdout);
  if (reading.ok) return reading.report;
  notes.push(
    reading.reason === 'not-json'
      ? `the ${field} diagnostics are not JSON; their raw output is kept with the command`
      : `the ${field} diagnostics do not follow the report contract; their raw output is kept with the command`,
  );
  return null;
}

function planOf(state: WorkflowState, notes: string[]): Plan | null {
  const assessment = state.assessment as { plan?: Plan } | undefined;
  const plan = assessment?.plan && Array.isArray(assessment.plan.actions) ? assessment.plan : null;
  if (state.assessment !== undefined && plan === null) notes.push('the assessment holds no readable plan');
  return plan;
}

/** Every SSM command the workflow ran, in the only order it can run them: diagnostics, changes, diagnostics, persist or rollback. */
function commandsOf(
  state: WorkflowState,
  history: History,
  plan: Plan | null,
  notes: string[],
): CommandRecord[] {
  const actionIdByChangeId = new Map(
    (plan?.actions ?? []).map((action) => [action.parameters.ChangeId ?? '', action.id] as const),
  );
  const commands: CommandRecord[] = [];
  const collect = (field: 'before' | 'after', step: CommandStep, stateName: string) => {
    const output = CommandOutputSchema.safeParse(state[field]);
    if (state[field] === undefined || !output.success) return;
    commands.push({
      step,
      document: 'collect-diagnostics',
      actionId: null,
      parameters: {},
      commandId: output.data.commandId ?? null,
      startedAt: history.entered(stateName),
      finishedAt: history.exited(stateName),
      status: output.data.status ?? 'unknown',
      exitCode: output.data.status === 'Success' ? 0 : null,
      stdout: output.data.stdout,
      stderr: output.data.stderr,
    });
  };
  const blocks = (field: 'applied' | 'persisted' | 'rollback', step: CommandStep, stateName: string) => {
    const value = state[field];
    if (value === undefined) return;
    if (!Array.isArray(value)) {
      notes.push(`$.${field} is not a list of command results`);
      return;
    }
    for (const item of value) {
      const parsed = BlockResultSchema.safeParse(item);
      if (!parsed.success) {
        notes.push(`a result in $.${field} has an unexpected shape`);
        continue;
      }
      const { request, command, invocation } = parsed.data;
      const parameters = Object.fromEntries(
        Object.entries(request.parameters ?? {}).map(([name, v]) => [
          name,
          Array.isArray(v) ? v.join(',') : v,
        ]),
      );
      const changeId = request.changeId ?? parameters.ChangeId;
      commands.push({
        step,
        document: request.document ?? 'unknown',
        actionId: request.id ?? (changeId ? (actionIdByChangeId.get(changeId) ?? null) : null),
        parameters,
        commandId: command?.commandId ?? null,
        startedAt: history.entered(stateName),
        finishedAt: history.exited(stateName),
        status: invocation?.status ?? 'unknown',
        exitCode: invocation?.responseCode ?? null,
        stdout: invocation?.stdout ?? '',
        stderr: invocation?.stderr ?? '',
      });
    }
  };
  collect('before', 'collect-before', STATE.collectDiagnostics);
  blocks('applied', 'apply', STATE.applyRemediation);
  collect('after', 'collect-after', STATE.collectDiagnosticsAfter);
  blocks('persisted', 'persist', STATE.persist);
  blocks('rollback', 'rollback', STATE.rollBack);
  return commands;
}

/** A person's decision on the plan, and a wait that ended with none. */
function approvalsOf(
  state: WorkflowState,
  history: History,
  plan: Plan | null,
  notes: string[],
): ApprovalRecord[] {
  const approvals: ApprovalRecord[] = [];
  if (state.approval !== undefined) {
    const approval = ApprovalSchema.safeParse(state.approval);
    if (approval.success) {
      const data = approval.data;
      approvals.push({
        decision: data.decision,
        actionIds:
          data.actionIds ??
          (plan?.actions ?? []).filter((action) => action.mode !== 'dry-run').map((action) => action.id),
        by: data.approver.name ?? data.approver.id,
        at: data.decidedAt,
        channel: data.approver.via,
        // The identity itself (for Slack: user and workspace ids), not only the name shown.
        approver: {
          id: data.approver.id,
          ...(data.approver.name ? { name: data.approver.name } : {}),
          ...(data.approver.teamId ? { teamId: data.approver.teamId } : {}),
          via: data.approver.via,
          ...(data.approver.basis ? { basis: data.approver.basis } : {}),
        },
        ...(data.comment ? { comment: data.comment } : {}),
      });
    } else {
      notes.push('the approval decision has an unexpected shape');
    }
  }
  const timedOutAt = history.entered(STATE.approvalTimedOut);
  if (timedOutAt) {
    approvals.push({
      decision: 'timed-out',
      actionIds: (plan?.actions ?? [])
        .filter((action) => action.mode === 'approve')
        .map((action) => action.id),
      by: null,
      at: timedOutAt,
      channel: 'timeout',
    });
  }
  return approvals;
}

function verificationOf(state: WorkflowState, notes: string[]): VerificationResult | null {
  if (state.verification === undefined) return null;
  const parsed = VerificationSchema.safeParse(state.verification);
  if (!parsed.success) {
    notes.push('the verification result has an unexpected shape');
    return null;
  }
  return {
    passed: parsed.data.held,
    reasons: parsed.data.reasons,
    checks: parsed.data.checks as unknown as VerificationResult['checks'],
  };
}

/** The outcome the workflow recorded; without one, a failure that changed the host if a change ran. */
function outcomeOf(state: WorkflowState, commands: readonly CommandRecord[], notes: string[]): Outcome {
  const parsedOutcome = OutcomeSchema.safeParse(state.outcome);
  if (parsedOutcome.success) return parsedOutcome.data;
  notes.push('the workflow recorded no outcome');
  return {
    status: 'failed',
    hostChanged: commands.some((command) => command.step === 'apply'),
    summary: 'The workflow ended without recording an outcome.',
  };
}

/** The errors the workflow caught, by where it put them. */
function errorsOf(state: WorkflowState): WorkflowError[] {
  const errors: WorkflowError[] = [];
  for (const field of ERROR_FIELDS) {
    const parsed = ErrorSchema.safeParse(state[field]);
    if (state[field] !== undefined && parsed.success) {
      errors.push({
        where: `$.${field}`,
        error: parsed.data.Error ?? 'unknown',
        cause: parsed.data.Cause ?? '',
      });
    }
  }
  return errors;
}

/**
 * What opened the incident: the kernel's drop lines, or for a near-full incident the host sampler's
 * forecast (whose lines go with it, not with the log events).
 */
function triggerOf(
  incident: Incident,
  notes: string[],
): { logEvents: LogEvent[]; forecast: ForecastEvidence | undefined } {
  const logEvents: LogEvent[] = incident.trigger.events.map((event) => ({
    timestamp:
      typeof event.timestamp === 'number' ? new Date(event.timestamp).toISOString() : event.timestamp,
    message: event.message,
    source: 'CloudWatch Logs',
  }));
  if (incident.kind === 'near-full') {
    const forecast = forecastOf(incident.trigger.forecast, logEvents);
    if (forecast === undefined)
      notes.push('the near-full forecast that opened the incident is missing or malformed: it is not shown');
    return { logEvents: [], forecast };
  }
  if (logEvents.length === 0 && incident.trigger.firstSeen) {
    notes.push('the triggering log events were not kept; the first drop time is the one detection recorded');
    logEvents.push({
      timestamp: incident.trigger.firstSeen,
      message: '(first drop line, as recorded by detection)',
    });
  }
  return { logEvents, forecast: undefined };
}

function forecastOf(value: unknown, lines: readonly LogEvent[]): ForecastEvidence | undefined {
  const parsed = ForecastSchema.safeParse(value);
  if (!parsed.success) return undefined;
  const f = parsed.data;
  return {
    sampledAt: f.sampledAt,
    count: f.count,
    max: f.max,
    usage: f.usage,
    growthPerSecond: f.growthPerSecond,
    secondsToFull: f.secondsToFull,
    predictedFullAt: f.predictedFullAt,
    horizonSeconds: f.horizonSeconds ?? null,
    usageThreshold: f.usageThreshold ?? null,
    trigger: f.trigger ?? null,
    summary: f.summary,
    samples: f.samples.map((sample) => ({
      at: sample.at,
      entries: sample.count,
      max: sample.max,
      drop: sample.drop,
    })),
    lines: lines.map((event) => ({ ...event, source: 'host sampler' })),
  };
}

/** The guardrails' decisions from `$.guardrails`; a malformed one becomes a note, never an exception. */
function guardrailsOf(value: unknown, notes: string[]): GuardrailDecision[] {
  const decisions = (value as { decisions?: unknown } | undefined)?.decisions;
  if (decisions === undefined) return [];
  if (!Array.isArray(decisions)) {
    notes.push('guardrails.decisions is not a list; the guardrail decisions were not recorded');
    return [];
  }
  const kept: GuardrailDecision[] = [];
  decisions.forEach((decision, index) => {
    const parsed = GuardrailDecisionSchema.safeParse(decision);
    if (parsed.success) kept.push(parsed.data as GuardrailDecision);
    else notes.push(`guardrails.decisions[${index}] is malformed and was left out`);
  });
  return kept;
}

/** Times of state transitions, from either history form. */
class History {
  private readonly events: { type: string; name: string | null; at: string }[];

  constructor(events: readonly unknown[]) {
    this.events = events.flatMap((raw) => {
      if (typeof raw !== 'object' || raw === null) return [];
      const event = raw as Record<string, unknown>;
      const at = toIso(event.timestamp);
      if (at === null || typeof event.type !== 'string') return [];
      const details = (event.stateEnteredEventDetails ?? event.stateExitedEventDetails) as
        | { name?: unknown }
        | undefined;
      const name =
        typeof event.state === 'string'
          ? event.state
          : typeof details?.name === 'string'
            ? details.name
            : null;
      return [{ type: event.type, name, at }];
    });
  }

  /** Last time the state was entered (AWS: …StateEntered; local: StateEntered). */
  entered(name: string): string | null {
    return (
      this.events.filter((event) => event.name === name && /Entered$/.test(event.type)).at(-1)?.at ?? null
    );
  }

  /** Last time the state was left, normally or by failing. */
  exited(name: string): string | null {
    return (
      this.events
        .filter((event) => event.name === name && /(Exited|Failed|Aborted|TimedOut)$/.test(event.type))
        .at(-1)?.at ?? null
    );
  }

  started(): string | null {
    return this.events.find((event) => event.type === 'ExecutionStarted')?.at ?? null;
  }
}

function toIso(value: unknown): string | null {
  if (typeof value === 'number' && Number.isFinite(value)) return new Date(value).toISOString();
  if (typeof value === 'string' && !Number.isNaN(Date.parse(value))) return new Date(value).toISOString();
  if (value instanceof Date && !Number.isNaN(value.getTime())) return value.toISOString();
  return null;
}
