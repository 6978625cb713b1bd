import type { DiagnosticsReport } from '../diagnostics/report.js';
import type {
  ApprovalRecord,
  CommandRecord,
  CommandStep,
  IncidentEvidence,
  LogEvent,
} from '../evidence/incident.js';
import type { Plan } from '../plan/index.js';
import type { VerificationResult } from '../plan/verify.js';
import { readDiagnostics } from './assess.js';
import { DOCUMENT } from './documents.js';
import { alertOf, WorkflowIncidentSchema } from './incident.js';
import type { Outcome } from './outcome.js';

/**
 * "Write the evidence bundle": the workflow's final state (plus its execution history) mapped onto
 * the evidence bundle's contents. It never throws for a missing or broken part — the bundle of a
 * failed incident matters most — it records what is there and says what is not.
 */

type Fields = Record<string, unknown>;

function fields(value: unknown): Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Fields) : {};
}

function list(value: unknown): Fields[] {
  return Array.isArray(value) ? value.map(fields) : [];
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/**
 * A command as the machine that ran it saw it. The local twin knows every command, failed and
 * timed-out ones included (the state only keeps those that succeeded), and when each ran.
 */
export interface ObservedCommand {
  readonly commandId: string;
  readonly document: string;
  readonly parameters: Readonly<Record<string, string>>;
  readonly sentAt: string | null;
  readonly finishedAt: string | null;
  readonly status: string;
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface EvidenceInput {
  readonly state: unknown;
  readonly history: readonly unknown[];
  readonly closedAt: string;
  /** Every command in the order sent; when given, the bundle's command list comes from it. */
  readonly observedCommands?: readonly ObservedCommand[];
}

function stepOf(command: ObservedCommand, collectedBefore: boolean): CommandStep {
  if (command.document === DOCUMENT.collectDiagnostics)
    return collectedBefore ? 'collect-after' : 'collect-before';
  if (command.document === DOCUMENT.rollback) return 'rollback';
  return command.parameters.Persist === 'true' ? 'persist' : 'apply';
}

function flatParameters(parameters: unknown): Record<string, string> {
  return Object.fromEntries(
    Object.entries(fields(parameters)).map(([name, value]) => [
      name,
      Array.isArray(value) ? value.map(String).join(',') : String(value),
    ]),
  );
}

function diagnosticsOrNull(output: unknown, which: string, problems: string[]): DiagnosticsReport | null {
  if (output === undefined) return null;
  try {
    return readDiagnostics(output, which);
  } catch (error) {
    problems.push((error as Error).message);
    return null;
  }
}

export function evidenceFromState(input: EvidenceInput): { evidence: IncidentEvidence; problems: string[] } {
  const state = fields(input.state);
  const problems: string[] = [];
  const parsedIncident = WorkflowIncidentSchema.safeParse(state.incident);
  if (!parsedIncident.success)
    problems.push('the incident in the state does not parse; the alert is recorded as empty');
  const rawIncident = fields(state.incident);
  const incidentId = text(rawIncident.incidentId) || 'unknown-incident';
  const trigger = fields(rawIncident.trigger);
  const source = [text(trigger.logGroup), text(trigger.logStream)].filter(Boolean).join('/');
  const logEvents: LogEvent[] = list(trigger.events).map((event) => ({
    timestamp: new Date(Number(event.timestamp)).toISOString(),
    message: text(event.message),
    ...(source ? { source } : {}),
  }));

  const commands: CommandRecord[] = [];
  const actionIds = new Map<string, string>();
  const addCommand = (
    step: CommandStep,
    output: Fields,
    request: Fields,
    invocation: Fields,
    commandId: string,
  ) => {
    if (text(request.id)) actionIds.set(commandId, text(request.id));
    commands.push({
      step,
      document: text(request.document) || DOCUMENT.collectDiagnostics,
      actionId: text(request.id) || null,
      parameters: flatParameters(request.parameters),
      commandId: commandId || null,
      startedAt: null,
      finishedAt: null,
      status: text(invocation.status) || text(output.status) || 'Unknown',
      exitCode: typeof invocation.responseCode === 'number' ? invocation.responseCode : null,
      stdout: text(invocation.stdout ?? output.stdout),
      stderr: text(invocation.stderr ?? output.stderr),
    });
  };
  const collect = (step: CommandStep, output: unknown) => {
    if (output === undefined) return;
    const result = fields(output);
    addCommand(step, result, { document: DOCUMENT.collectDiagnostics }, result, text(result.commandId));
  };
  const blocks = (step: CommandStep, outputs: unknown) => {
    for (const output of list(outputs)) {
      addCommand(
        step,
        output,
        fields(output.request),
        fields(output.invocation),
        text(fields(output.command).commandId),
      );
    }
  };
  collect('collect-before', state.before);
  blocks('apply', state.applied);
  collect('collect-after', state.after);
  blocks('persist', state.persisted);
  blocks('rollback', state.rollback);
  if (input.observedCommands !== undefined) {
    const byChangeId = new Map(
      list(fields(state.gate).toApply).map((action) => [text(action.changeId), text(action.id)] as const),
    );
    commands.length = 0;
    let collectedBefore = false;
    for (const observed of input.observedCommands) {
      const step = stepOf(observed, collectedBefore);
      if (step === 'collect-before') collectedBefore = true;
      commands.push({
        step,
        document: observed.document,
        actionId:
          actionIds.get(observed.commandId) ?? byChangeId.get(observed.parameters.ChangeId ?? '') ?? null,
        parameters: observed.parameters,
        commandId: observed.commandId,
        startedAt: observed.sentAt,
        finishedAt: observed.finishedAt,
        status: observed.status,
        exitCode: observed.exitCode,
        stdout: observed.stdout,
        stderr: observed.stderr,
      });
    }
  }

  const approvals: ApprovalRecord[] = [];
  const approval = fields(state.approval);
  const gate = fields(state.gate);
  const awaitingIds = list(gate.awaitingApproval).map((action) => text(action.id));
  if (approval.decision === 'approved' || approval.decision === 'rejected') {
    const approver = fields(approval.approver);
    approvals.push({
      decision: approval.decision,
      actionIds: Array.isArray(approval.actionIds) ? approval.actionIds.map(String) : awaitingIds,
      by: text(approver.name) || text(approver.id) || null,
      at: text(approval.decidedAt) || input.closedAt,
      channel: text(approver.via) || 'unknown',
    });
  } else if (fields(state.error).Error === 'States.Timeout' && gate.decision === 'approve') {
    approvals.push({
      decision: 'timed-out',
      actionIds: awaitingIds,
      by: null,
      at: input.closedAt,
      channel: 'timeout',
    });
  }

  const verification = fields(state.verification);
  const outcomeFields = fields(state.outcome);
  const outcome: Outcome =
    typeof outcomeFields.status === 'string'
      ? (outcomeFields as unknown as Outcome)
      : {
          status: 'failed',
          hostChanged: true,
          summary: 'The workflow recorded no outcome; treat the host as possibly changed.',
        };
  const execution = fields(state.execution);

  const evidence: IncidentEvidence = {
    incidentId,
    instanceId: typeof rawIncident.instanceId === 'string' ? rawIncident.instanceId : null,
    alert: parsedIncident.success
      ? alertOf(parsedIncident.data)
      : { kind: 'table-full', netns: null, dropLines: 0, suppressed: 0 },
    detectedAt: text(rawIncident.openedAt) || text(execution.startedAt) || input.closedAt,
    closedAt: input.closedAt,
    outcome,
    logEvents,
    before: diagnosticsOrNull(state.before, 'before', problems),
    after: diagnosticsOrNull(state.after, 'after', problems),
    plan: (fields(state.assessment).plan as Plan | undefined) ?? null,
    approvals,
    commands,
    verification:
      typeof verification.held === 'boolean'
        ? ({
            passed: verification.held,
            reasons: verification.reasons ?? [],
            checks: verification.checks ?? [],
          } as VerificationResult)
        : null,
    executionHistory: input.history,
  };
  return { evidence, problems };
}
