import { STATE } from '../../core/workflow/state-names.js';
import type { WorkflowEvent } from './runner.js';

/**
 * Turns the workflow's events into the lines `respond` prints as it goes: which step it entered,
 * what it found, what it did. Inner SSM loop states stay quiet except the commands themselves.
 */

const TOP_LEVEL = new Set<string>(Object.values(STATE));
const SEND = /: send ([a-z0-9-]+)$/;
const SUCCEEDED = /^(.*): succeeded$/;

type Fields = Record<string, unknown>;

function fields(value: unknown): Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Fields) : {};
}

function scriptResult(stdout: unknown): string {
  if (typeof stdout !== 'string') return '';
  try {
    const json = fields(JSON.parse(stdout));
    const reasons = Array.isArray(json.reasons) ? json.reasons.slice(0, 3).map(String) : [];
    return [json.status, ...reasons].filter((part) => part !== undefined && part !== '').join('; ');
  } catch {
    return '';
  }
}

export function progressPrinter(write: (line: string) => void, started = Date.now()) {
  const stamp = (event: WorkflowEvent) =>
    `[${((event.timestamp - started) / 1000).toFixed(1).padStart(5)} s]`;
  return (event: WorkflowEvent): void => {
    const state = event.state ?? '';
    const output = fields(event.output);
    if (event.type === 'StateEntered') {
      if (TOP_LEVEL.has(state) && !state.endsWith('?')) write(`${stamp(event)} ${state}`);
      const document = SEND.exec(state)?.[1];
      if (document !== undefined) {
        const parameters = Object.entries(fields(fields(event.input).parameters))
          .map(([name, values]) => `${name}=${Array.isArray(values) ? values.join(',') : String(values)}`)
          .join(' ');
        write(`${stamp(event)}   running ${document}${parameters ? ` (${parameters})` : ''}`);
      }
      return;
    }
    if (event.type === 'StateFailed' || event.type === 'StateCaught') {
      if (event.error)
        write(`${stamp(event)}   ${state}: ${event.error}: ${String(event.cause ?? '').slice(0, 300)}`);
      return;
    }
    if (event.type !== 'StateExited') return;
    const block = SUCCEEDED.exec(state)?.[1];
    if (block !== undefined) {
      const invocation = fields(output.invocation);
      const request = fields(output.request);
      const result = scriptResult(invocation.stdout);
      write(
        `${stamp(event)}   ${String(request.document ?? block)}: ${String(invocation.status)}${result ? ` (${result})` : ''}`,
      );
      return;
    }
    switch (state) {
      case STATE.lookUpInstance: {
        const information = (fields(output.instance).information as Fields[] | undefined) ?? [];
        write(
          `${stamp(event)}   ${information.length > 0 ? `managed, ${String(information[0]?.PingStatus)}` : 'not managed'}`,
        );
        break;
      }
      case STATE.assess: {
        const assessment = fields(output.assessment);
        write(`${stamp(event)}   ${String(assessment.classification)}: ${String(assessment.summary)}`);
        const actions = (fields(assessment.plan).actions as Fields[] | undefined) ?? [];
        for (const action of actions)
          write(`${stamp(event)}   planned: ${String(action.title)} [${String(action.mode)}]`);
        break;
      }
      case STATE.checkPolicy:
      case STATE.settleApproval: {
        const gate = fields(output.gate);
        write(`${stamp(event)}   decision: ${String(gate.decision)}`);
        break;
      }
      case STATE.waitForApproval: {
        const approval = fields(output.approval);
        const approver = fields(approval.approver);
        write(
          `${stamp(event)}   ${String(approval.decision)} by ${String(approver.name ?? approver.id)} via ${String(approver.via)}`,
        );
        break;
      }
      case STATE.verify: {
        const verification = fields(output.verification);
        write(`${stamp(event)}   ${verification.held ? 'the fix held' : 'the fix did NOT hold'}`);
        for (const reason of (verification.reasons as string[] | undefined) ?? [])
          write(`${stamp(event)}     - ${reason}`);
        break;
      }
      case STATE.notify:
      case STATE.writeEvidence: {
        const result = fields(output[state === STATE.notify ? 'notification' : 'evidence']);
        if (result.location) write(`${stamp(event)}   wrote ${String(result.location)}`);
        if (typeof result.manifestSha256 === 'string')
          write(`${stamp(event)}   manifest sha256 ${result.manifestSha256}`);
        break;
      }
      default: {
        const outcome = fields(output.outcome);
        if (
          state !== '' &&
          TOP_LEVEL.has(state) &&
          outcome.summary &&
          fields(event.input).outcome === undefined
        ) {
          write(`${stamp(event)}   outcome: ${String(outcome.status)}: ${String(outcome.summary)}`);
        }
      }
    }
  };
}
