import type { DiagnosticsReport } from '../../functions/core/diagnostics/report.js';
import { planRemediation } from '../../functions/core/plan/plan.js';
import { resolvePolicy } from '../../functions/core/plan/policy.js';
import type { Plan } from '../../functions/core/plan/types.js';
import { ReportBuilder } from './report-builder.js';

/**
 * The input of the workflow's "Wait for approval" task, built from a real plan: a host whose table
 * is full of TIME_WAIT churn on its own service port 8080, so the planner proposes a raise (low
 * risk) and a NOTRACK pair (needs approval), which is what the approval message must explain.
 */
export function churnReport(): DiagnosticsReport {
  return ReportBuilder.healthy()
    .table({ max: 262_144, count: 262_144 })
    .sysctl('tcp_timeout_time_wait', 30)
    .states({ 'tcp TIME_WAIT': 200_000, 'tcp ESTABLISHED': 62_144 })
    .localPort('tcp', 8080, 210_000, 198_000)
    .localPort('tcp', 22, 40, 0)
    .listener('tcp', 8080, 'nginx')
    .drops(2_500)
    .build();
}

export function planFor(report: DiagnosticsReport, incidentId: string): Plan {
  return planRemediation({
    before: report,
    alert: { kind: 'table-full', netns: report.host.netnsInode, dropLines: 12, suppressed: 340 },
    policy: resolvePolicy({}),
    changeIdPrefix: incidentId,
  });
}

export interface ApprovalTaskOptions {
  readonly incidentId?: string;
  readonly taskToken?: string;
  readonly timeoutSeconds?: number;
  readonly report?: DiagnosticsReport;
  /** Leave the diagnostics out of the task input. */
  readonly withoutDiagnostics?: boolean;
}

export function approvalTaskPayload(options: ApprovalTaskOptions = {}): Record<string, unknown> {
  const incidentId = options.incidentId ?? 'inc-i-0abc1234def567890-20261121T100000Z';
  const report = options.report ?? churnReport();
  const plan = planFor(report, incidentId);
  return {
    taskToken: options.taskToken ?? `AQCEAAAAKgAAAAMAAAAAAAAAA${'x'.repeat(600)}`,
    timeoutSeconds: options.timeoutSeconds ?? 1800,
    execution: {
      id: `arn:aws:states:eu-west-1:111122223333:execution:IncidentWorkflow:${incidentId}`,
      name: incidentId,
      startedAt: '2026-11-21T10:00:05.000Z',
    },
    incident: {
      incidentId,
      host: 'ip-10-0-1-5',
      instanceId: 'i-0abc1234def567890',
      kind: 'table-full',
      mode: 'approve',
      openedAt: '2026-11-21T10:00:01.000Z',
      trigger: { netns: null, dropLines: 12, suppressed: 340, events: [] },
    },
    assessment: {
      confirmed: plan.confirmed,
      classification: plan.classification,
      summary: plan.summary,
      confirmation: plan.confirmation,
      plan,
    },
    gate: {
      decision: 'approve',
      awaitingApproval: plan.actions.map((action) => ({
        id: action.id,
        kind: action.kind,
        document: action.document,
        changeId: action.parameters.ChangeId,
        title: action.title,
        mode: action.mode,
        parameters: Object.fromEntries(
          Object.entries(action.parameters).map(([name, value]) => [name, [value]]),
        ),
      })),
    },
    ...(options.withoutDiagnostics
      ? {}
      : {
          diagnostics: {
            commandId: 'local-collect-1',
            status: 'Success',
            stdout: JSON.stringify(report),
            stderr: '',
          },
        }),
  };
}
