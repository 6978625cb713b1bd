import type { DiagnosticsReport } from '../diagnostics/report.js';
import type { EvidenceReference } from '../evidence/reference.js';
import type { ApprovalRecord, RecordedDecision } from './approval.js';
import { USER_ID_PATTERN } from './authorize.js';
import {
  type ActionsBlock,
  BLOCK_KIT_LIMITS,
  type Block,
  type Button,
  code,
  codeSections,
  context,
  divider,
  escapeMrkdwn,
  fields,
  fitBlocks,
  header,
  plain,
  type SlackMessage,
  section,
  sections,
  truncate,
} from './block-kit.js';
import { previewChange } from './change-preview.js';
import { evidenceView } from './evidence-view.js';
import { actionIdFor, buttonValue } from './interaction.js';

/**
 * The Slack messages of one incident's thread: the opening message, a line per workflow step, the
 * approval request (evidence, exact change, cost, risk, buttons), the decision, and the result.
 * Every value that comes from a host, a log line or a report is escaped; every message is cut to
 * Block Kit's limits (see block-kit.ts) and checked by the tests.
 */

export interface IncidentView {
  readonly incidentId: string;
  readonly instanceId: string | null;
  readonly host: string | null;
  readonly kind: string;
  readonly mode: string | null;
  readonly openedAt: string | null;
  readonly dropLines: number | null;
  readonly suppressed: number | null;
  readonly netns: string | null;
  readonly executionId: string | null;
}

export interface ActionView {
  readonly id: string;
  readonly kind: string;
  readonly title: string;
  readonly document: string;
  readonly parameters: Readonly<Record<string, string>>;
  readonly persistParameters?: Readonly<Record<string, string>> | null;
  readonly reason?: string;
  readonly risk?: string;
  readonly memoryCostBytes?: number;
  readonly expectedEffect?: string;
  readonly unsafeIf?: readonly string[];
  readonly requires?: readonly string[];
}

export interface ApprovalView {
  readonly record: ApprovalRecord;
  readonly incident: IncidentView;
  readonly classification: string;
  readonly summary: string;
  readonly confirmation: readonly string[];
  readonly actions: readonly ActionView[];
  readonly report: DiagnosticsReport | null;
}

/** block_id of the approval buttons, replaced by the decision when one is made. */
export const APPROVAL_BUTTONS_BLOCK = 'conntrack-responder-approval-buttons';
export const APPROVAL_STATUS_BLOCK = 'conntrack-responder-approval-status';

const RISK_ORDER: Record<string, number> = { low: 0, medium: 1, high: 2 };
const RISK_ICON: Record<string, string> = {
  low: ':large_green_circle:',
  medium: ':large_orange_circle:',
  high: ':red_circle:',
};

function mib(bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(bytes < 10 * 1_048_576 ? 1 : 0)} MiB`;
}

/** Slack renders this in the reader's time zone; the fallback is UTC. */
export function slackDate(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return escapeMrkdwn(iso);
  const fallback = new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return `<!date^${Math.floor(ms / 1000)}^{date_short_pretty} at {time_secs}|${fallback}>`;
}

/** A mention for a real user id; anything else is shown as escaped text. */
export function mention(userId: string, name: string | null = null): string {
  if (USER_ID_PATTERN.test(userId)) return `<@${userId}>`;
  return escapeMrkdwn(name ?? userId);
}

function where(incident: IncidentView): string {
  return incident.instanceId ?? incident.host ?? 'an unknown host';
}

const CLASSIFICATION_TEXT: Record<string, string> = {
  'table-full': 'conntrack table full',
  'expect-table-full': 'expectation table full',
  'insert-races': 'conntrack insert races',
  'hash-chains-too-long': 'conntrack hash chains too long',
  'ec2-allowance': 'EC2 conntrack allowance exceeded',
  'near-full': 'conntrack table filling',
  'not-confirmed': 'alert not confirmed',
};

const KIND_TEXT: Record<string, string> = {
  'table-full': 'conntrack table full',
  'expect-table-full': 'conntrack expectation table full',
  'ec2-allowance': 'EC2 connection-tracking allowance exhausted',
  'near-full': 'conntrack table predicted full (no drop yet)',
};

export function openingMessage(incident: IncidentView): SlackMessage {
  const kind = KIND_TEXT[incident.kind] ?? incident.kind;
  const facts = [
    `*Instance*\n${code(incident.instanceId ?? 'not an EC2 instance')}`,
    `*Host*\n${escapeMrkdwn(incident.host ?? 'unknown')}`,
    `*Incident*\n${code(incident.incidentId)}`,
    `*Mode*\n${escapeMrkdwn(incident.mode ?? 'default')}`,
  ];
  if (incident.dropLines !== null) {
    facts.push(
      `*Kernel lines*\n${incident.dropLines} drop line(s)${incident.suppressed ? `, ${incident.suppressed} suppressed repeats` : ''}`,
    );
  }
  if (incident.netns !== null) facts.push(`*Network namespace*\n${code(incident.netns)}`);
  const blocks: Block[] = [
    header(`:rotating_light: ${kind} on ${where(incident)}`),
    section(
      `The kernel reported \`${escapeMrkdwn(kind)}\` and conntrack-responder opened an incident. Progress follows in this thread; nothing changes on the host before its own counters confirm the drops.`,
    ),
    fields(facts),
  ];
  const notes = [];
  if (incident.openedAt) notes.push(`Opened ${slackDate(incident.openedAt)}`);
  if (incident.executionId) notes.push(`Execution ${code(incident.executionId)}`);
  if (notes.length > 0) blocks.push(context(notes));
  return {
    text: truncate(
      `conntrack-responder: ${kind} on ${where(incident)} (incident ${incident.incidentId})`,
      BLOCK_KIT_LIMITS.fallbackText,
    ),
    blocks,
  };
}

export type StepStatus = 'started' | 'succeeded' | 'failed' | 'info';

const STEP_ICON: Record<StepStatus, string> = {
  started: ':hourglass_flowing_sand:',
  succeeded: ':white_check_mark:',
  failed: ':x:',
  info: ':information_source:',
};

/** One line in the thread per workflow step ("Collect diagnostics: done"). */
export function stepMessage(step: {
  readonly title: string;
  readonly status: StepStatus;
  readonly detail?: string | null;
}): SlackMessage {
  const line = `${STEP_ICON[step.status]} *${escapeMrkdwn(step.title)}*${step.status === 'started' ? '…' : ''}`;
  const text = step.detail ? `${line}\n${escapeMrkdwn(step.detail)}` : line;
  return {
    text: truncate(`${step.title}: ${step.status}`, BLOCK_KIT_LIMITS.fallbackText),
    blocks: [section(text)],
  };
}

function actionBlocks(action: ActionView, index: number, report: DiagnosticsReport | null) {
  const risk = action.risk ?? 'unknown';
  const facts = [
    `${RISK_ICON[risk] ?? ':white_circle:'} risk *${escapeMrkdwn(risk)}*`,
    action.memoryCostBytes ? `memory up to +${mib(action.memoryCostBytes)}` : 'no added memory',
    `document ${code(action.document)}`,
  ];
  if (action.requires && action.requires.length > 0)
    facts.push(`after ${action.requires.map((id) => code(id)).join(', ')}`);
  const title = section(
    `*${index}. ${escapeMrkdwn(action.title)}*\n${facts.join(' · ')}${action.reason ? `\n${escapeMrkdwn(truncate(action.reason, 1500))}` : ''}`,
  );
  const preview = previewChange(action, report);
  const lines: string[] = [];
  for (const sysctl of preview.sysctls) {
    lines.push(
      `• ${code(sysctl.name)}  ${sysctl.before === null ? '(unknown)' : escapeMrkdwn(sysctl.before)} → *${escapeMrkdwn(sysctl.after)}*${sysctl.note ? `  _${escapeMrkdwn(sysctl.note)}_` : ''}`,
    );
  }
  for (const rule of preview.rules) {
    lines.push(`• ${escapeMrkdwn(rule.where)}: ${code(rule.rule)}`);
  }
  for (const note of preview.notes) lines.push(`_${escapeMrkdwn(note)}_`);
  const change = sections(`*Exact change*\n${lines.join('\n')}`);
  const optional: Block[] = [];
  if (action.expectedEffect) optional.push(context([`Expected: ${escapeMrkdwn(action.expectedEffect)}`]));
  if (action.unsafeIf && action.unsafeIf.length > 0) {
    optional.push(
      section(
        `*Check before approving: unsafe if*\n${action.unsafeIf.map((item) => `• ${escapeMrkdwn(item)}`).join('\n')}`,
      ),
    );
  }
  return { required: [title, ...change], optional };
}

function approvalButtons(record: ApprovalRecord, instance: string): ActionsBlock {
  const count = record.actions.length;
  const buttons: Button[] = [
    {
      type: 'button',
      text: plain(count > 1 ? `Approve all ${count} changes` : 'Approve', BLOCK_KIT_LIMITS.buttonText),
      action_id: actionIdFor('approve'),
      value: buttonValue('approve', record.approvalId),
      style: 'primary',
      confirm: {
        title: plain('Change the host now?', BLOCK_KIT_LIMITS.confirmTitle),
        text: plain(
          `This applies ${count} change(s) on ${instance} at once. Every change is verified after the soak period and rolled back if it does not hold.`,
          BLOCK_KIT_LIMITS.confirmText,
        ),
        confirm: plain('Apply', BLOCK_KIT_LIMITS.confirmButton),
        deny: plain('Cancel', BLOCK_KIT_LIMITS.confirmButton),
      },
    },
  ];
  if (record.alternative !== null) {
    buttons.push({
      type: 'button',
      text: plain(record.alternative.label, BLOCK_KIT_LIMITS.buttonText),
      action_id: actionIdFor('alternative'),
      value: buttonValue('alternative', record.approvalId),
      confirm: {
        title: plain(`${record.alternative.label}?`, BLOCK_KIT_LIMITS.confirmTitle),
        text: plain(
          `Applies only ${record.alternative.actionIds.join(', ')} on ${instance}; the other changes are recorded as not approved.`,
          BLOCK_KIT_LIMITS.confirmText,
        ),
        confirm: plain('Apply', BLOCK_KIT_LIMITS.confirmButton),
        deny: plain('Cancel', BLOCK_KIT_LIMITS.confirmButton),
      },
    });
  }
  buttons.push({
    type: 'button',
    text: plain('Reject', BLOCK_KIT_LIMITS.buttonText),
    action_id: actionIdFor('reject'),
    value: buttonValue('reject', record.approvalId),
    style: 'danger',
  });
  return { type: 'actions', block_id: APPROVAL_BUTTONS_BLOCK, elements: buttons };
}

export function approvalMessage(view: ApprovalView): SlackMessage {
  const { record, incident, report } = view;
  const instance = where(incident);
  const byId = new Map(view.actions.map((action) => [action.id, action]));
  const actions = record.actions.map(
    (shown) =>
      byId.get(shown.id) ?? {
        id: shown.id,
        kind: 'unknown',
        title: shown.title,
        document: 'unknown',
        parameters: {},
      },
  );
  const parts: Array<{ block: Block; required: boolean }> = [];
  const add = (block: Block, required: boolean) => parts.push({ block, required });

  add(
    header(
      `:raising_hand: Approval needed: ${CLASSIFICATION_TEXT[view.classification] ?? view.classification} on ${instance}`,
    ),
    true,
  );
  const confirmation = view.confirmation.slice(0, 5).map((line) => `• ${escapeMrkdwn(line)}`);
  add(
    section(`${escapeMrkdwn(view.summary)}${confirmation.length > 0 ? `\n${confirmation.join('\n')}` : ''}`),
    true,
  );
  add(
    fields([
      `*Instance*\n${code(incident.instanceId ?? 'unknown')}`,
      `*Incident*\n${code(incident.incidentId)}`,
      `*Decide by*\n${slackDate(record.expiresAt)}`,
      '*If nobody decides*\nnothing changes; the incident is escalated',
    ]),
    true,
  );

  if (report !== null) {
    const evidence = evidenceView(report);
    add(
      fields([
        `*Usage*\n${escapeMrkdwn(evidence.usage)}`,
        `*Drops*\n${escapeMrkdwn(evidence.drops)}`,
        `*Firewall*\n${escapeMrkdwn(evidence.firewall)}`,
        `*NAT*\n${escapeMrkdwn(evidence.nat)}`,
        `*Memory*\n${escapeMrkdwn(evidence.memory)}`,
        `*Host*\n${escapeMrkdwn(evidence.host)}`,
      ]),
      false,
    );
    const lists = [];
    if (evidence.topStates.length > 0)
      lists.push(`*Top states*\n${evidence.topStates.map((line) => `• ${escapeMrkdwn(line)}`).join('\n')}`);
    if (evidence.topPorts.length > 0)
      lists.push(`*Top ports*\n${evidence.topPorts.map((line) => `• ${escapeMrkdwn(line)}`).join('\n')}`);
    if (lists.length > 0) add(section(lists.join('\n')), false);
    if (evidence.warnings.length > 0)
      add(context(evidence.warnings.map((warning) => `:warning: ${escapeMrkdwn(warning)}`)), false);
  } else {
    add(
      context(['The diagnostics report was not available to this message; see the evidence bundle.']),
      false,
    );
  }

  add(divider, false);
  actions.forEach((action, index) => {
    const blocks = actionBlocks(action, index + 1, report);
    for (const block of blocks.required) add(block, true);
    for (const block of blocks.optional) add(block, false);
  });
  add(divider, false);

  const memory = actions.reduce((sum, action) => sum + (action.memoryCostBytes ?? 0), 0);
  const worst = actions
    .map((action) => action.risk ?? 'unknown')
    .sort((a, b) => (RISK_ORDER[b] ?? 3) - (RISK_ORDER[a] ?? 3))[0];
  add(
    section(
      `*Total* ${actions.length} change(s) · memory up to +${mib(memory)} · highest risk *${escapeMrkdwn(worst ?? 'unknown')}*`,
    ),
    true,
  );
  add(approvalButtons(record, instance), true);
  const notes = [`Approval ${code(record.approvalId)} · single use · only listed approvers`];
  if (record.alternative !== null)
    notes.push(`*${escapeMrkdwn(record.alternative.label)}*: ${escapeMrkdwn(record.alternative.why)}`);
  // A context block keeps its place so that the status line replaces it after the decision.
  parts.push({ block: { ...context(notes), block_id: APPROVAL_STATUS_BLOCK }, required: true });

  const blocks = fitBlocks(
    parts,
    (omitted) => `${omitted} more block(s) of evidence are in the evidence bundle.`,
  );
  return {
    text: truncate(
      `Approval needed on ${instance} (incident ${incident.incidentId}): ${actions.map((action) => action.title).join('; ')}`,
      BLOCK_KIT_LIMITS.fallbackText,
    ),
    blocks,
  };
}

const CHOICE_TEXT = {
  approve: ':white_check_mark: *Approved*',
  alternative: ':large_green_circle: *Approved in part*',
  reject: ':no_entry: *Rejected*',
} as const;

export function decisionLine(record: ApprovalRecord, decision: RecordedDecision): string {
  const who = mention(decision.approver.id, decision.approver.name);
  const what =
    decision.choice === 'alternative' && record.alternative !== null
      ? ` (${escapeMrkdwn(record.alternative.label.toLowerCase())}: ${decision.actionIds?.map((id) => code(id)).join(', ')})`
      : '';
  const then =
    decision.decision === 'rejected'
      ? 'Nothing will be changed.'
      : 'Applying now; verification follows after the soak period.';
  return `${CHOICE_TEXT[decision.choice]}${what} by ${who} on ${slackDate(decision.decidedAt)}. ${then}`;
}

export function expiryLine(record: ApprovalRecord, reason: string | null): string {
  return `:hourglass: *No decision* by ${slackDate(record.expiresAt)}: nothing was changed, and the incident is escalated.${reason ? ` ${escapeMrkdwn(reason)}` : ''}`;
}

/** The approval message once settled: the buttons give way to who decided and when (or the expiry). */
export function settledApprovalMessage(original: SlackMessage, statusLine: string): SlackMessage {
  const blocks = original.blocks
    .filter((block) => block.block_id !== APPROVAL_STATUS_BLOCK)
    .map((block) =>
      block.block_id === APPROVAL_BUTTONS_BLOCK
        ? { ...section(statusLine), block_id: APPROVAL_STATUS_BLOCK }
        : block,
    );
  if (!blocks.some((block) => block.block_id === APPROVAL_STATUS_BLOCK))
    blocks.push({ ...section(statusLine), block_id: APPROVAL_STATUS_BLOCK });
  return { text: truncate(`${original.text} — ${statusLine}`, BLOCK_KIT_LIMITS.fallbackText), blocks };
}

/** A short notice for one user (chat.postEphemeral) or the thread. */
export function noticeMessage(text: string): SlackMessage {
  return { text: truncate(text, BLOCK_KIT_LIMITS.fallbackText), blocks: [section(text)] };
}

export interface ResultView {
  readonly outcome: string;
  /** One sentence: what happened and why. */
  readonly headline: string;
  /** The notification's human-readable text (plain). */
  readonly text: string;
  readonly hostChanged: boolean | null;
  /** Where the bundle is and its manifest's sha256, recorded here so a reviewer can check it. */
  readonly evidence: EvidenceReference | null;
  readonly escalated: boolean;
}

const OUTCOME_ICON: Record<string, string> = {
  remediated: ':white_check_mark:',
  'rolled-back': ':leftwards_arrow_with_hook:',
  'rollback-failed': ':sos:',
  'not-confirmed': ':grey_question:',
  'no-host-change': ':information_source:',
  'dry-run': ':memo:',
  rejected: ':no_entry:',
  escalated: ':rotating_light:',
  failed: ':x:',
};

/** The last message of the thread: the outcome, the notification text, and where the evidence is. */
export function resultMessage(result: ResultView): SlackMessage {
  const icon = OUTCOME_ICON[result.outcome] ?? ':grey_question:';
  const parts: Array<{ block: Block; required: boolean }> = [
    { block: header(`${icon} Outcome: ${result.outcome}`), required: true },
    { block: section(escapeMrkdwn(result.headline)), required: true },
  ];
  const body = result.text.trim();
  if (body !== '') {
    for (const block of codeSections(escapeMrkdwn(body))) {
      parts.push({ block, required: false });
    }
  }
  const notes: string[] = [];
  if (result.escalated) notes.push(':rotating_light: *Escalated*: a person needs to look at this incident.');
  if (result.hostChanged !== null)
    notes.push(result.hostChanged ? 'The host was changed.' : 'The host was not changed.');
  if (result.evidence) {
    notes.push(`Evidence bundle: ${code(result.evidence.location)}`);
    notes.push(
      `Manifest sha256: ${code(result.evidence.manifestSha256)}${result.evidence.signedBy ? ` (signed by ${code(result.evidence.signedBy)})` : ''}`,
    );
  }
  if (notes.length > 0) parts.push({ block: context(notes), required: true });
  return {
    text: truncate(`${result.outcome}: ${result.headline}`, BLOCK_KIT_LIMITS.fallbackText),
    blocks: fitBlocks(parts, (omitted) => `${omitted} more block(s) are in the evidence bundle.`),
  };
}
