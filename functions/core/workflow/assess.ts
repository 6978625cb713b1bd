import { z } from 'zod';
import { readNetworkFacts } from '../allowance/network.js';
import { type DiagnosticsReport, readDiagnosticsReport } from '../diagnostics/report.js';
import { ResponderError, TASK_ERROR } from '../errors.js';
import { type Classification, type Plan, planRemediation } from '../plan/index.js';
import { alertOf, parseWith, WorkflowIncidentSchema, WorkflowInputError } from './incident.js';
import type { WorkflowSettings } from './settings.js';

/** What an SSM command block leaves in the state (see infra/workflow/definition.ts). */
export const CommandOutputSchema = z.looseObject({
  commandId: z.string(),
  status: z.string(),
  stdout: z.string(),
  stderr: z.string(),
});

export class DiagnosticsUnreadableError extends ResponderError {
  override readonly name = TASK_ERROR.diagnosticsUnreadable;
}

/** The collect-diagnostics output, parsed as the report contract (untrusted host output). */
export function readDiagnostics(output: unknown, which: string): DiagnosticsReport {
  const command = parseWith(CommandOutputSchema, output, `the ${which} diagnostics command output`);
  const reading = readDiagnosticsReport(command.stdout);
  if (reading.ok) return reading.report;
  if (reading.reason === 'not-json') {
    throw new DiagnosticsUnreadableError(
      `the ${which} diagnostics are not JSON (command ${command.commandId}): ${command.stdout.slice(0, 200)}`,
    );
  }
  throw new DiagnosticsUnreadableError(
    `the ${which} diagnostics do not follow the report contract (command ${command.commandId}): ${reading.detail}`,
  );
}

export interface Assessment {
  /** The alert is confirmed by the host's own counters (and names the right namespace). */
  readonly confirmed: boolean;
  readonly classification: Classification;
  readonly summary: string;
  readonly confirmation: readonly string[];
  readonly plan: Plan;
}

const AssessInputSchema = z.object({
  incident: z.unknown(),
  diagnostics: z.unknown(),
  /** The describe step's facts about the instance's ENIs, a reason they were not read, or its caught error. */
  network: z.unknown().optional(),
});

/** "Confirm the drops and plan the remediation": the diagnostics before any change, into a plan. */
export function assessIncident(payload: unknown, settings: WorkflowSettings): Assessment {
  const input = parseWith(AssessInputSchema, payload, 'the assess input');
  const incident = parseWith(WorkflowIncidentSchema, input.incident, 'the incident');
  const before = readDiagnostics(input.diagnostics, 'before');
  if (incident.instanceId === null)
    throw new WorkflowInputError('the incident has no instance id to plan for');
  const network = readNetworkFacts(input.network);
  const plan = planRemediation({
    before,
    alert: alertOf(incident),
    policy: settings.policy,
    changeIdPrefix: incident.incidentId,
    network: network.facts,
    networkProblem: network.problem,
  });
  return {
    confirmed: plan.confirmed && plan.classification !== 'not-confirmed',
    classification: plan.classification,
    summary: plan.summary,
    confirmation: plan.confirmation,
    plan,
  };
}
