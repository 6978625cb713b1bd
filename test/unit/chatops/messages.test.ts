import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { newApprovalRecord, saferAlternativeOf } from '../../../functions/core/chatops/approval.js';
import { approvalTaskFrom } from '../../../functions/core/chatops/approval-task.js';
import {
  type ActionsBlock,
  type Block,
  blockKitProblems,
  escapeMrkdwn,
  type SlackMessage,
} from '../../../functions/core/chatops/block-kit.js';
import { APPROVAL_ID_PATTERN, parseButtonValue } from '../../../functions/core/chatops/interaction.js';
import {
  type ActionView,
  APPROVAL_BUTTONS_BLOCK,
  approvalMessage,
  decisionLine,
  openingMessage,
  resultMessage,
  settledApprovalMessage,
  stepMessage,
} from '../../../functions/core/chatops/messages.js';
import { approvalTaskPayload, churnReport } from '../../support/approval-task.js';
import { ReportBuilder } from '../../support/report-builder.js';

const NOW = new Date('2026-11-21T10:02:00.000Z');

function allText(message: SlackMessage): string {
  return JSON.stringify(message);
}

function buttonsOf(message: SlackMessage): ActionsBlock {
  const block = message.blocks.find((candidate) => candidate.type === 'actions');
  if (block?.type !== 'actions') throw new Error('no actions block');
  return block;
}

function viewFrom(payload: Record<string, unknown>) {
  const task = approvalTaskFrom(payload);
  const record = newApprovalRecord({
    approvalId: randomUUID(),
    incidentId: task.incident.incidentId,
    instanceId: task.incident.instanceId,
    executionId: task.executionId,
    now: NOW,
    timeoutSeconds: task.timeoutSeconds,
    actions: task.actions,
    alternative: saferAlternativeOf(task.actions),
  });
  return {
    task,
    record,
    view: {
      record,
      incident: task.incident,
      classification: task.classification,
      summary: task.summary,
      confirmation: task.confirmation,
      actions: task.actions,
      report: task.report,
    },
  };
}

describe('the approval message', () => {
  const payload = approvalTaskPayload();
  const { record, view, task } = viewFrom(payload);
  const message = approvalMessage(view);
  const text = allText(message);

  it('fits Block Kit', () => {
    expect(blockKitProblems(message)).toEqual([]);
    expect(message.blocks.length).toBeLessThanOrEqual(50);
  });

  it('shows the evidence: usage, drop rate, top states and ports, firewall backend, NAT findings', () => {
    expect(text).toContain('262,144 / 262,144 entries (100%)');
    expect(text).toMatch(/2,500 dropped for a full table in 3 s \(833\.3\/s\)/);
    expect(text).toContain('tcp TIME_WAIT: 200,000');
    expect(text).toContain('tcp/8080 (served here): 210,000 entries');
    expect(text).toContain('iptables-nft; UNTRACKED packets accepted');
    expect(text).toContain('no NAT rules found');
  });

  it('shows the exact change: every sysctl before → after, every rule to insert', () => {
    const raise = task.actions.find((action) => action.kind === 'raise-limits');
    expect(raise).toBeDefined();
    const newMax = raise?.parameters.MaxEntries;
    expect(text).toContain(`\`net.netfilter.nf_conntrack_max\`  262144 → *${newMax}*`);
    expect(text).toContain('raw PREROUTING: `-p tcp -m tcp --dport 8080 -j CT --notrack`');
    expect(text).toContain('raw OUTPUT: `-p tcp -m tcp --sport 8080 -j CT --notrack`');
  });

  it('shows memory cost and risk for each change and in total', () => {
    expect(text).toMatch(/memory up to \+\d+(\.\d)? MiB/);
    expect(text).toContain('risk *low*');
    expect(text).toContain('risk *medium*');
    expect(text).toContain('highest risk *medium*');
  });

  it('offers Approve, the safer alternative and Reject, carrying only the approval id and the decision', () => {
    const buttons = buttonsOf(message);
    expect(buttons.block_id).toBe(APPROVAL_BUTTONS_BLOCK);
    expect(buttons.elements.map((button) => button.text.text)).toEqual([
      'Approve all 2 changes',
      'Raise limits only',
      'Reject',
    ]);
    for (const button of buttons.elements) {
      const parsed = parseButtonValue(button.value);
      expect(parsed?.approvalId).toBe(record.approvalId);
      expect(APPROVAL_ID_PATTERN.test(parsed?.approvalId ?? '')).toBe(true);
    }
    expect(record.alternative?.actionIds).toEqual(['limits']);
  });

  it('never contains the task token', () => {
    expect(text).not.toContain(task.taskToken);
    expect(text).not.toContain('AQCEAAAAKgAAAAMAAAAAAAAAA');
  });

  it('offers no alternative when only one change waits', () => {
    const onlyNotrack = approvalTaskPayload();
    const gate = onlyNotrack.gate as { awaitingApproval: Array<{ id: string }> };
    gate.awaitingApproval = gate.awaitingApproval.filter((action) => action.id.startsWith('notrack-'));
    const single = viewFrom(onlyNotrack);
    expect(single.record.alternative).toBeNull();
    const labels = buttonsOf(approvalMessage(single.view)).elements.map((button) => button.text.text);
    expect(labels).toEqual(['Approve', 'Reject']);
  });

  it('says when the diagnostics are missing instead of inventing evidence', () => {
    const bare = viewFrom(approvalTaskPayload({ withoutDiagnostics: true }));
    const shown = allText(approvalMessage(bare.view));
    expect(shown).toContain('The diagnostics report was not available');
    expect(shown).toContain('(unknown) →');
  });

  it('escapes what comes from the host: no mention or link can be smuggled in', () => {
    const report = ReportBuilder.healthy()
      .host({ hostname: '<!channel> <https://evil.example|click> & co' })
      .table({ max: 262_144, count: 262_144 })
      .states({ 'tcp ESTABLISHED': 262_144 })
      .drops(10)
      .build();
    const shown = allText(approvalMessage(viewFrom(approvalTaskPayload({ report })).view));
    expect(shown).not.toContain('<!channel>');
    expect(shown).not.toContain('<https://evil.example');
    expect(shown).toContain(escapeMrkdwn('<!channel> <https://evil.example|click> & co'));
  });

  it('stays within 50 blocks and the text limits with many long actions, keeping every change and the buttons', () => {
    const long = 'x'.repeat(5000);
    const actions: ActionView[] = Array.from({ length: 14 }, (_, i) => ({
      id: `notrack-${i}`,
      kind: 'notrack-ports',
      title: `Stop tracking tcp port ${8000 + i} ${long}`,
      document: 'notrack-ports',
      parameters: {
        ChangeId: `inc-notrack-${i}`,
        Ports: Array.from({ length: 15 }, (_, p) => String(10000 + i * 100 + p)).join(','),
        Protocol: 'tcp',
        Direction: 'inbound',
        Persist: 'false',
      },
      reason: long,
      risk: 'high',
      expectedEffect: long,
      unsafeIf: Array.from({ length: 30 }, () => long.slice(0, 400)),
    }));
    const big = viewFrom(approvalTaskPayload({ report: churnReport() }));
    const recordWithAll = {
      ...big.record,
      actions: actions.map(({ id, title }) => ({ id, title })),
      alternative: null,
    };
    const huge = approvalMessage({ ...big.view, record: recordWithAll, actions });
    expect(blockKitProblems(huge)).toEqual([]);
    expect(huge.blocks.length).toBeLessThanOrEqual(50);
    const shown = allText(huge);
    for (let i = 0; i < 14; i += 1) expect(shown).toContain(`*${i + 1}. Stop tracking tcp port ${8000 + i}`);
    expect(buttonsOf(huge).elements.length).toBe(2);
    expect(shown).toMatch(/\d+ more block\(s\) of evidence are in the evidence bundle/);
  });
});

describe('the thread messages', () => {
  const payload = approvalTaskPayload();
  const { record, view, task } = viewFrom(payload);

  it('opening, step and result messages fit Block Kit', () => {
    const messages = [
      openingMessage(task.incident),
      stepMessage({ title: 'Collect diagnostics', status: 'succeeded', detail: 'x'.repeat(10_000) }),
      resultMessage({
        outcome: 'remediated',
        headline: 'The change was applied and verified.',
        text: 'line\n'.repeat(20_000),
        hostChanged: true,
        evidence: {
          location: 's3://evidence/incidents/x/',
          archive: null,
          manifestSha256: 'b'.repeat(64),
          signedBy: null,
        },
        escalated: false,
      }),
    ];
    for (const message of messages) expect(blockKitProblems(message)).toEqual([]);
  });

  it('after a decision the buttons give way to who decided and when', () => {
    const original = approvalMessage(view);
    const line = decisionLine(record, {
      choice: 'alternative',
      decision: 'approved',
      actionIds: ['limits'],
      approver: { id: 'U0APPROVER', name: 'alice', teamId: 'T0TESTTEAM', via: 'slack', basis: 'allowlist' },
      decidedAt: '2026-11-21T10:03:00.000Z',
      attemptId: 'a1',
    });
    const settled = settledApprovalMessage(original, line);
    expect(settled.blocks.some((block: Block) => block.type === 'actions')).toBe(false);
    const shown = allText(settled);
    expect(shown).toContain('<@U0APPROVER>');
    expect(shown).toContain('<!date^1795255380^');
    expect(shown).toContain('raise limits only');
    expect(blockKitProblems(settled)).toEqual([]);
    // Everything else of the request stays readable.
    expect(settled.blocks.length).toBe(original.blocks.length - 1);
  });
});
