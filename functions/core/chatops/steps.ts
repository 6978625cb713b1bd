import { STATE } from '../workflow/state-names.js';
import type { StepStatus } from './messages.js';

/**
 * Which workflow steps get a line in the incident's thread, and what the line says. Shared by the
 * local twin (fed by the interpreter's events) and AWS (fed by the state machine's execution log).
 */
export const THREAD_STEPS: ReadonlyMap<string, string> = new Map([
  [STATE.lookUpInstance, 'Look up the instance'],
  [STATE.collectDiagnostics, 'Collect diagnostics'],
  [STATE.assess, 'Confirm the drops and plan'],
  [STATE.checkPolicy, 'Check the policy'],
  [STATE.applyRemediation, 'Apply the remediation'],
  [STATE.collectDiagnosticsAfter, 'Collect diagnostics after the soak'],
  [STATE.verify, 'Verify the fix'],
  [STATE.persist, 'Make the fix permanent'],
  [STATE.rollBack, 'Roll back'],
]);

type Fields = Record<string, unknown>;
const fields = (value: unknown): Fields =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Fields) : {};

function detailOf(state: string, output: Fields): string | null {
  switch (state) {
    case STATE.lookUpInstance: {
      const information = fields(output.instance).information;
      const first = Array.isArray(information) ? fields(information[0]) : {};
      return typeof first.PingStatus === 'string' ? `SSM agent ${first.PingStatus}` : 'not managed by SSM';
    }
    case STATE.assess: {
      const assessment = fields(output.assessment);
      return `${String(assessment.classification)}: ${String(assessment.summary)}`;
    }
    case STATE.checkPolicy: {
      const gate = fields(output.gate);
      return `decision: ${String(gate.decision)}`;
    }
    case STATE.verify: {
      const verification = fields(output.verification);
      const reasons = Array.isArray(verification.reasons) ? verification.reasons.map(String) : [];
      return `${verification.held === true ? 'held' : 'did not hold'}${reasons.length > 0 ? `: ${reasons.join('; ')}` : ''}`;
    }
    default:
      return null;
  }
}

export interface StepUpdate {
  readonly title: string;
  readonly status: StepStatus;
  readonly detail: string | null;
}

/** The thread line for a step that finished or failed; null for every other event. */
export function stepUpdateOf(event: {
  readonly kind: 'exited' | 'failed' | 'other';
  readonly state: string | undefined;
  readonly output?: unknown;
  readonly error?: string | undefined;
  readonly cause?: unknown;
}): StepUpdate | null {
  const title = THREAD_STEPS.get(event.state ?? '');
  if (title === undefined || event.kind === 'other') return null;
  if (event.kind === 'failed') {
    return {
      title,
      status: 'failed',
      detail: `${event.error ?? 'error'}: ${String(event.cause ?? '').slice(0, 500)}`,
    };
  }
  return { title, status: 'succeeded', detail: detailOf(event.state ?? '', fields(event.output)) };
}
