import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { Readable, Writable } from 'node:stream';
import { type ApprovalRequest, approvalRequestFrom, approvalText } from '../../core/workflow/approval.js';
import { assessIncident } from '../../core/workflow/assess.js';
import { type ApprovalDecision, gateIncident } from '../../core/workflow/gate.js';
import { incidentNotification, type WorkflowState } from '../../core/workflow/notify.js';
import type { WorkflowSettings } from '../../core/workflow/settings.js';
import { verifyFix } from '../../core/workflow/verify.js';
import { type LocalGuardrails, localGuardrails } from './guardrails.js';
import type { LambdaBindings } from './runner.js';

/**
 * The workflow's Lambda tasks on one machine: the same core functions the handlers call, with the
 * AWS side effects (SNS, the approval store, Slack) replaced by files under the output folder and
 * the approval taken from the terminal or a flag.
 */

/** How the local approval is decided: ask on the terminal, or a decision given up front. */
export type LocalApproval = 'prompt' | 'approve' | 'reject';

export interface LocalFunctionsOptions {
  readonly outDir: string;
  readonly settings: WorkflowSettings;
  readonly approval: LocalApproval;
  readonly stdin: Readable;
  readonly stdout: Writable;
  /** Writes the evidence bundle from the final state (set by the respond command). */
  readonly writeEvidence: (state: unknown) => Promise<unknown>;
  readonly now?: () => Date;
  /** The guardrails' records for this run (in memory); @default a fresh set with the default settings */
  readonly guardrails?: LocalGuardrails;
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
}

async function askOnTerminal(request: ApprovalRequest, options: LocalFunctionsOptions): Promise<boolean> {
  const prompt = createInterface({ input: options.stdin, output: options.stdout, terminal: false });
  try {
    options.stdout.write(`\n${approvalText(request)}\n`);
    const answer = await prompt.question(
      'Apply these changes? Type "yes" to approve, anything else rejects: ',
    );
    return answer.trim().toLowerCase() === 'yes';
  } finally {
    prompt.close();
  }
}

export function localFunctions(options: LocalFunctionsOptions): LambdaBindings {
  const now = options.now ?? (() => new Date());
  const guardrails = options.guardrails ?? localGuardrails({ now });
  let notifications = 0;
  return {
    guardrails: guardrails.step,
    assess: async (payload) => assessIncident(payload, options.settings),
    policyGate: async (payload) => gateIncident(payload, options.settings),
    verify: async (payload) => verifyFix(payload),

    requestApproval: async (payload) => {
      const { request } = approvalRequestFrom(payload, now(), randomUUID());
      const folder = join(options.outDir, 'approvals');
      await mkdir(folder, { recursive: true });
      // The request as Slack or SNS would carry it: the approval id, never the task token.
      await writeJson(join(folder, `${request.approvalId}.request.json`), request);
      await writeFile(join(folder, `${request.approvalId}.request.txt`), `${approvalText(request)}\n`);
      const approved =
        options.approval === 'prompt'
          ? await askOnTerminal(request, options)
          : options.approval === 'approve';
      const decision: ApprovalDecision = {
        decision: approved ? 'approved' : 'rejected',
        approver: {
          id: process.env.SUDO_USER ?? process.env.USER ?? 'local-operator',
          via: options.approval === 'prompt' ? 'terminal' : 'flag',
        },
        decidedAt: now().toISOString(),
        approvalId: request.approvalId,
      };
      await writeJson(join(folder, `${request.approvalId}.decision.json`), decision);
      return decision;
    },

    notify: async (payload) => {
      const notification = incidentNotification(payload as WorkflowState);
      const folder = join(options.outDir, 'notifications');
      await mkdir(folder, { recursive: true });
      notifications += 1;
      const file = join(folder, `sns-${String(notifications).padStart(2, '0')}.json`);
      // What SNS Publish would receive.
      await writeJson(file, {
        Subject: notification.subject,
        Message: `${notification.text}\n\n${JSON.stringify(notification.summary)}`,
        MessageAttributes: Object.fromEntries(
          Object.entries(notification.attributes).map(([name, value]) => [
            name,
            { DataType: 'String', StringValue: value },
          ]),
        ),
      });
      return { channel: 'file', location: file, subject: notification.subject };
    },

    writeEvidence: async (payload) => options.writeEvidence(payload),
  };
}
