import { z } from 'zod';
import { ENI_TIMEOUTS_DOCUMENT } from '../allowance/eni-change.js';
import { RESPONSE_MODES, type ResponseMode } from '../incident/settings.js';
import type { ActionMode, Plan, PlannedAction } from '../plan/index.js';
import { DOCUMENT, isRemediationDocument } from './documents.js';
import { parseWith, stricterMode, WorkflowIncidentSchema, WorkflowInputError } from './incident.js';
import type { WorkflowSettings } from './settings.js';

/**
 * The policy gate: which of the plan's actions may run now, which wait for a person, and which are
 * only recorded. An action's mode comes from the policy (planRemediation sets it per kind); the
 * incident's mode caps it (an `approve` incident never changes a host on its own, a `dry-run`
 * incident never changes it at all). An action runs only together with the actions it requires.
 */

/** An action in the form the state machine's SSM blocks take: parameters as SSM string lists. */
export interface WorkflowAction {
  readonly id: string;
  readonly kind: string;
  readonly document: string;
  readonly changeId: string;
  readonly title: string;
  readonly mode: ActionMode;
  readonly parameters: Readonly<Record<string, readonly string[]>>;
}

/**
 * Undoing one change: the host's rollback document for SSM changes, the ENI timeouts' own rollback
 * (an EC2 call restoring the saved values) for an eni-timeouts change.
 */
export interface RollbackStep {
  readonly document: typeof DOCUMENT.rollback | typeof ENI_TIMEOUTS_DOCUMENT;
  readonly changeId: string;
  readonly parameters: { readonly ChangeId: readonly [string] };
}

export type GateDecisionKind = 'apply' | 'approve' | 'dry-run' | 'nothing' | 'rejected';

export interface GateDecision {
  readonly decision: GateDecisionKind;
  /** Why, in plain words, one line per action or fact. */
  readonly reasons: readonly string[];
  readonly toApply: readonly WorkflowAction[];
  /** Actions shown to the approver (the whole plan waits for one decision). */
  readonly awaitingApproval: readonly WorkflowAction[];
  /** Actions that will not run, with the reason. */
  readonly notApplied: ReadonlyArray<{ readonly id: string; readonly title: string; readonly why: string }>;
  /** The same changes with Persist=true, run once verification passed. */
  readonly toPersist: readonly WorkflowAction[];
  /** Rollback of every change that may be applied, newest first. */
  readonly rollback: readonly RollbackStep[];
  readonly soakSeconds: number;
  readonly incidentMode: ResponseMode;
}

/** What SendTaskSuccess carries back from the approver (Slack, the approval URL with IAM, the terminal, or a flag). */
export const ApprovalDecisionSchema = z.object({
  decision: z.enum(['approved', 'rejected']),
  /** Approve only these actions (a "safer alternative" button); absent = every action shown. */
  actionIds: z.array(z.string()).optional(),
  approver: z.looseObject({
    id: z.string().min(1),
    name: z.string().optional(),
    via: z.enum(['slack', 'terminal', 'flag', 'api', 'iam']),
  }),
  decidedAt: z.string(),
  approvalId: z.string().optional(),
  comment: z.string().max(2000).optional(),
});
export type ApprovalDecision = z.infer<typeof ApprovalDecisionSchema>;

const GateInputSchema = z.object({
  incident: z.unknown(),
  /**
   * The guardrails' verdict (functions/core/guardrails): its `mode` replaces the incident's as the
   * ceiling, because it already took the incident's mode, the instance's tag, the change calendar,
   * the fleet breaker and the cooldown after a change into account.
   */
  guardrails: z.looseObject({ mode: z.enum(RESPONSE_MODES) }).optional(),
  assessment: z.looseObject({ plan: z.looseObject({ actions: z.array(z.unknown()) }) }),
  approval: z.unknown().optional(),
});

function asSsmParameters(parameters: Readonly<Record<string, string>>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(parameters).map(([name, value]) => [name, [value]]));
}

function toWorkflowAction(action: PlannedAction, mode: ActionMode, persist = false): WorkflowAction {
  const parameters = persist && action.persistParameters ? action.persistParameters : action.parameters;
  const changeId = parameters.ChangeId;
  if (changeId === undefined) throw new WorkflowInputError(`action ${action.id} has no ChangeId`);
  if (!isRemediationDocument(action.document) && action.document !== ENI_TIMEOUTS_DOCUMENT) {
    throw new WorkflowInputError(
      `action ${action.id} names document '${action.document}', which the workflow may not run`,
    );
  }
  return {
    id: action.id,
    kind: action.kind,
    document: action.document,
    changeId,
    title: action.title,
    mode,
    parameters: asSsmParameters(parameters),
  };
}

/** Drops actions whose required actions are not in the set, repeatedly, and says why. */
function withRequirementsMet(
  chosen: readonly PlannedAction[],
  notApplied: Array<{ id: string; title: string; why: string }>,
): PlannedAction[] {
  let kept = [...chosen];
  for (;;) {
    const ids = new Set(kept.map((action) => action.id));
    const missing = kept.filter((action) => action.requires.some((id) => !ids.has(id)));
    if (missing.length === 0) return kept;
    for (const action of missing) {
      const absent = action.requires.filter((id) => !ids.has(id));
      notApplied.push({
        id: action.id,
        title: action.title,
        why: `it needs ${absent.join(', ')} applied first`,
      });
    }
    kept = kept.filter((action) => !missing.includes(action));
  }
}

export function gateIncident(payload: unknown, settings: WorkflowSettings): GateDecision {
  const input = parseWith(GateInputSchema, payload, 'the policy gate input');
  const incident = parseWith(WorkflowIncidentSchema, input.incident, 'the incident');
  const plan = input.assessment.plan as unknown as Plan;
  const approval =
    input.approval === undefined
      ? undefined
      : parseWith(ApprovalDecisionSchema, input.approval, 'the approval');
  const incidentMode = input.guardrails?.mode ?? incident.mode;
  const reasons: string[] = [];
  const notApplied: Array<{ id: string; title: string; why: string }> = [];
  const modeOf = (action: PlannedAction) => stricterMode(action.mode, incidentMode);
  const modes = new Map(plan.actions.map((action) => [action.id, modeOf(action)]));

  const decide = (
    decision: GateDecisionKind,
    applying: readonly PlannedAction[],
    awaiting: readonly PlannedAction[],
  ) => {
    const toApply = applying.map((action) => toWorkflowAction(action, modes.get(action.id) ?? 'auto'));
    return {
      decision,
      reasons,
      toApply,
      awaitingApproval: awaiting.map((action) => toWorkflowAction(action, modes.get(action.id) ?? 'approve')),
      notApplied,
      toPersist: applying
        .filter((action) => action.persistParameters !== null)
        .map((action) => toWorkflowAction(action, modes.get(action.id) ?? 'auto', true)),
      rollback: [...toApply].reverse().map(
        (action): RollbackStep => ({
          document: action.document === ENI_TIMEOUTS_DOCUMENT ? ENI_TIMEOUTS_DOCUMENT : DOCUMENT.rollback,
          changeId: action.changeId,
          parameters: { ChangeId: [action.changeId] },
        }),
      ),
      soakSeconds: settings.soakSeconds,
      incidentMode,
    } satisfies GateDecision;
  };

  if (plan.actions.length === 0) {
    reasons.push('the plan has no host change');
    return decide('nothing', [], []);
  }
  for (const action of plan.actions) {
    const mode = modes.get(action.id);
    const capped =
      mode !== action.mode
        ? ` (the policy says ${action.mode}; ${input.guardrails ? 'the guardrails allow' : 'this incident allows'} at most ${incidentMode})`
        : '';
    reasons.push(`${action.title}: ${mode}${capped}`);
  }
  const dryRun = plan.actions.filter((action) => modes.get(action.id) === 'dry-run');
  for (const action of dryRun)
    notApplied.push({ id: action.id, title: action.title, why: 'dry-run: recorded, never applied' });
  const runnable = plan.actions.filter((action) => modes.get(action.id) !== 'dry-run');

  if (approval === undefined) {
    if (runnable.length === 0) return decide('dry-run', [], []);
    if (runnable.some((action) => modes.get(action.id) === 'approve')) {
      reasons.push('at least one change needs a person, so the whole plan waits for one decision');
      return decide('approve', [], withRequirementsMet(runnable, notApplied));
    }
    const applying = withRequirementsMet(runnable, notApplied);
    return decide(applying.length > 0 ? 'apply' : 'nothing', applying, []);
  }

  if (approval.decision === 'rejected') {
    reasons.push(
      `rejected by ${approval.approver.name ?? approval.approver.id} via ${approval.approver.via}`,
    );
    for (const action of runnable) notApplied.push({ id: action.id, title: action.title, why: 'rejected' });
    return decide('rejected', [], []);
  }
  const known = new Set(runnable.map((action) => action.id));
  const unknown = (approval.actionIds ?? []).filter((id) => !known.has(id));
  if (unknown.length > 0)
    reasons.push(`ignored approval of actions that are not in the plan: ${unknown.join(', ')}`);
  const approvedIds = new Set(approval.actionIds ?? runnable.map((action) => action.id));
  const approved = runnable.filter((action) => approvedIds.has(action.id));
  for (const action of runnable) {
    if (!approvedIds.has(action.id))
      notApplied.push({ id: action.id, title: action.title, why: 'not approved' });
  }
  reasons.push(`approved by ${approval.approver.name ?? approval.approver.id} via ${approval.approver.via}`);
  const applying = withRequirementsMet(approved, notApplied);
  return decide(applying.length > 0 ? 'apply' : 'rejected', applying, []);
}
