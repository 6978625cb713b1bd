import type { DiagnosticsReport } from '../diagnostics/report.js';
import type { GuardrailDecision } from '../guardrails/decisions.js';
import type { Alert, Plan } from '../plan/types.js';
import type { VerificationResult } from '../plan/verify.js';
import type { Outcome } from '../workflow/outcome.js';

/**
 * Everything the evidence bundle records about one incident. The workflow's evidence step (and
 * the local twin) map their state onto this; the bundle builder turns it into files. Times are
 * ISO 8601 strings.
 */
export interface IncidentEvidence {
  readonly incidentId: string;
  readonly instanceId: string | null;
  readonly alert: Alert;
  /** When detection opened the incident. */
  readonly detectedAt: string;
  /** When the workflow finished (the bundle's creation time). */
  readonly closedAt: string;
  readonly outcome: Outcome;
  /** The log events that triggered the incident, as received. */
  readonly logEvents: readonly LogEvent[];
  readonly before: DiagnosticsReport | null;
  readonly after: DiagnosticsReport | null;
  readonly plan: Plan | null;
  readonly approvals: readonly ApprovalRecord[];
  /** Every SSM command run for the incident, diagnostics included, in the order they ran. */
  readonly commands: readonly CommandRecord[];
  readonly verification: VerificationResult | null;
  /** The state machine's execution history (GetExecutionHistory events, or the local interpreter's). */
  readonly executionHistory: readonly unknown[];
  /** Further counter samples (e.g. from a watcher), merged with the reports' own into the chart. */
  readonly samples?: readonly CounterSample[];
  /** Errors the workflow caught on the way (a failed command, a timeout), as Step Functions reported them. */
  readonly errors?: readonly WorkflowError[];
  /** What the evidence could not record, in plain words (e.g. an after report that was not JSON). */
  readonly notes?: readonly string[];
  /**
   * For a `near-full` incident: the forecast that opened it and the host samples it was made from
   * (lines anyone on the host could write: the plan's confirmation is what the host's own
   * counters showed).
   */
  readonly forecast?: ForecastEvidence;
  /** Which guardrail decided what (instance policy, preconditions, calendar, breaker, slots, cooldown). */
  readonly guardrails?: readonly GuardrailDecision[];
}

export interface ForecastEvidence {
  /** Time of the latest sample the forecast used (the host's clock). */
  readonly sampledAt: string;
  readonly count: number;
  readonly max: number;
  readonly usage: number;
  readonly growthPerSecond: number | null;
  readonly secondsToFull: number | null;
  /** When the table would have been full at that growth. */
  readonly predictedFullAt: string | null;
  readonly horizonSeconds: number | null;
  readonly usageThreshold: number | null;
  /** `usage` or `horizon`. */
  readonly trigger: string | null;
  readonly summary: string;
  readonly samples: readonly CounterSample[];
  /** The sample lines as received. */
  readonly lines: readonly LogEvent[];
}

export interface WorkflowError {
  /** Where the workflow stored it ($.error, $.rollbackError, …). */
  readonly where: string;
  readonly error: string;
  readonly cause: string;
}

export interface LogEvent {
  readonly timestamp: string;
  readonly message: string;
  /** Log group/stream, or "dmesg" locally. */
  readonly source?: string;
}

export interface ApprovalRecord {
  readonly decision: 'approved' | 'rejected' | 'timed-out';
  /** Plan action ids the decision covers. */
  readonly actionIds: readonly string[];
  /** Who decided (Slack user, terminal user); null for a timeout. */
  readonly by: string | null;
  readonly at: string;
  /** slack, terminal, cli-flag, … */
  readonly channel: string;
  /**
   * Who decided, as the channel identifies them: for Slack the user id (U…/W…), the workspace id
   * and the display name at the time; absent for a timeout.
   */
  readonly approver?: {
    readonly id: string;
    readonly name?: string;
    readonly teamId?: string;
    readonly via: string;
    /** Why this person could decide (allowlist, user-group, local-operator). */
    readonly basis?: string;
  };
  readonly comment?: string;
}

export type CommandStep = 'collect-before' | 'collect-after' | 'apply' | 'persist' | 'rollback';

export interface CommandRecord {
  readonly step: CommandStep;
  readonly document: string;
  /** The plan action this command carried out (null for diagnostics). */
  readonly actionId: string | null;
  readonly parameters: Readonly<Record<string, string>>;
  readonly commandId: string | null;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  /** SSM invocation status: Success, Failed, TimedOut, Cancelled, … */
  readonly status: string;
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CounterSample {
  readonly at: string;
  readonly entries: number | null;
  readonly max: number | null;
  /** The cumulative `drop` counter. */
  readonly drop: number | null;
}

/** Parses an ISO time, naming the field when it is not one. */
export function timeOf(value: string, field: string): number {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new Error(`evidence: ${field} is not a valid time: ${JSON.stringify(value)}`);
  return ms;
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** The two counter samples a diagnostics report carries. */
export function samplesOf(report: DiagnosticsReport, field: string): CounterSample[] {
  const start = timeOf(report.collectedAt, `${field}.collectedAt`);
  const { stats } = report.conntrack;
  const max = report.conntrack.loaded ? report.conntrack.max : null;
  return [
    {
      at: iso(start),
      entries: stats.first.entries ?? report.conntrack.count,
      max,
      drop: stats.first.drop ?? null,
    },
    {
      at: iso(start + stats.intervalSeconds * 1000),
      entries: stats.second.entries ?? report.conntrack.count,
      max,
      drop: stats.second.drop ?? null,
    },
  ];
}

/**
 * Every counter sample of the incident, in time order: the reports' own, extra samples, and a
 * limit-only point where a raise-limits command succeeded (the limit changed then, not at the next
 * report).
 */
export function allSamples(evidence: IncidentEvidence): CounterSample[] {
  const limitChanges = evidence.commands
    .filter(
      (command) =>
        command.step === 'apply' &&
        command.document === 'raise-limits' &&
        command.status === 'Success' &&
        command.finishedAt !== null &&
        /^[1-9][0-9]*$/.test(command.parameters.MaxEntries ?? ''),
    )
    .map((command) => ({
      at: iso(timeOf(command.finishedAt ?? '', `commands[${command.actionId}].finishedAt`)),
      entries: null,
      max: Number(command.parameters.MaxEntries),
      drop: null,
    }));
  const samples = [
    ...(evidence.before ? samplesOf(evidence.before, 'before') : []),
    ...(evidence.after ? samplesOf(evidence.after, 'after') : []),
    ...limitChanges,
    ...(evidence.forecast?.samples ?? []).map((sample, index) => ({
      ...sample,
      at: iso(timeOf(sample.at, `forecast.samples[${index}].at`)),
    })),
    ...(evidence.samples ?? []).map((sample, index) => ({
      ...sample,
      at: iso(timeOf(sample.at, `samples[${index}].at`)),
    })),
  ];
  return samples.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
}
