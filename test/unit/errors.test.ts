import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EniChangeRefusedError } from '../../functions/core/allowance/eni-change.js';
import { ApprovalTaskInputError } from '../../functions/core/chatops/approval-task.js';
import { NotificationNotPublishedError } from '../../functions/core/chatops/outcome.js';
import { ResponderError, TASK_ERROR } from '../../functions/core/errors.js';
import { GuardrailInputError, RemediationSlotsBusyError } from '../../functions/core/guardrails/steps.js';
import { DiagnosticsUnreadableError } from '../../functions/core/workflow/assess.js';
import { WorkflowInputError } from '../../functions/core/workflow/incident.js';
import { WORKFLOW_ERROR } from '../../functions/core/workflow/state-names.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)));
}

describe('the error hierarchy', () => {
  it('every error class the project declares extends ResponderError and is named …Error', () => {
    const declared: string[] = [];
    for (const file of [...sources('functions'), ...sources('infra')]) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      for (const match of text.matchAll(/class (\w+) extends (\w*Error)\b/g)) {
        if (match[1] === 'ResponderError') continue; // the base itself
        declared.push(`${file}: ${match[1]} extends ${match[2]}`);
        expect(match[2], `${file}: ${match[1]}`).not.toBe('Error');
        expect(match[1], file).toMatch(/Error$/);
      }
    }
    expect(declared.length).toBeGreaterThan(15);
  });

  it('the errors Step Functions sees keep their names (one constant each) and keep a cause', () => {
    const cause = new Error('the SDK said no');
    const cases: [ResponderError, string][] = [
      [new WorkflowInputError('w', { cause }), 'WorkflowInputError'],
      [new DiagnosticsUnreadableError('d', { cause }), 'DiagnosticsUnreadable'],
      [new RemediationSlotsBusyError('r', { cause }), 'RemediationSlotsBusy'],
      [new GuardrailInputError('g', { cause }), 'GuardrailInputError'],
      [new ApprovalTaskInputError('a', { cause }), 'ApprovalTaskInputError'],
      [new NotificationNotPublishedError('n', { cause }), 'NotificationNotPublished'],
      [new EniChangeRefusedError('e', { cause }), 'EniChangeRefused'],
    ];
    for (const [error, name] of cases) {
      expect(error).toBeInstanceOf(ResponderError);
      expect(error.name).toBe(name);
      expect(error.cause).toBe(cause);
    }
    expect(Object.values(TASK_ERROR).sort()).toEqual(cases.map(([, name]) => name).sort());
    expect(WORKFLOW_ERROR.slotsBusy).toBe(new RemediationSlotsBusyError('busy').name);
  });
});
