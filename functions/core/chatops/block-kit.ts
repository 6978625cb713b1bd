/**
 * The small part of Block Kit that conntrack-responder's messages use, with Slack's limits, so that
 * every message is cut to fit before it is sent instead of being refused by chat.postMessage
 * (`invalid_blocks`) in the middle of an incident.
 */

/**
 * Limits from the Block Kit reference (docs.slack.dev/reference/block-kit): a message holds at most
 * 50 blocks; header text ≤ 150; section text ≤ 3000, ≤ 10 fields of ≤ 2000; context ≤ 10
 * elements; actions ≤ 25 elements; button text ≤ 75, action_id ≤ 255, value ≤ 2000; confirm dialog
 * title ≤ 100, text ≤ 300, confirm/deny ≤ 30; block_id ≤ 255. The top-level `text` (notification
 * and screen-reader fallback) is truncated by Slack past 40,000 characters; we keep it far shorter.
 */
export const BLOCK_KIT_LIMITS = {
  blocksPerMessage: 50,
  headerText: 150,
  sectionText: 3000,
  sectionFields: 10,
  sectionFieldText: 2000,
  contextElements: 10,
  contextText: 2000,
  actionsElements: 25,
  buttonText: 75,
  buttonValue: 2000,
  actionId: 255,
  blockId: 255,
  confirmTitle: 100,
  confirmText: 300,
  confirmButton: 30,
  fallbackText: 4000,
} as const;

export interface PlainText {
  readonly type: 'plain_text';
  readonly text: string;
  readonly emoji?: boolean;
}

export interface Mrkdwn {
  readonly type: 'mrkdwn';
  readonly text: string;
}

export type TextObject = PlainText | Mrkdwn;

export interface ConfirmDialog {
  readonly title: PlainText;
  readonly text: PlainText | Mrkdwn;
  readonly confirm: PlainText;
  readonly deny: PlainText;
  readonly style?: 'primary' | 'danger';
}

export interface Button {
  readonly type: 'button';
  readonly text: PlainText;
  readonly action_id: string;
  readonly value: string;
  readonly style?: 'primary' | 'danger';
  readonly confirm?: ConfirmDialog;
}

export interface HeaderBlock {
  readonly type: 'header';
  readonly block_id?: string;
  readonly text: PlainText;
}

export interface SectionBlock {
  readonly type: 'section';
  readonly block_id?: string;
  readonly text?: TextObject;
  readonly fields?: readonly TextObject[];
}

export interface DividerBlock {
  readonly type: 'divider';
  readonly block_id?: string;
}

export interface ContextBlock {
  readonly type: 'context';
  readonly block_id?: string;
  readonly elements: readonly TextObject[];
}

export interface ActionsBlock {
  readonly type: 'actions';
  readonly block_id?: string;
  readonly elements: readonly Button[];
}

export type Block = HeaderBlock | SectionBlock | DividerBlock | ContextBlock | ActionsBlock;

/** What chat.postMessage / chat.update take besides the channel (and what the local twin writes to files). */
export interface SlackMessage {
  /** Notification and accessibility fallback; mrkdwn. */
  readonly text: string;
  readonly blocks: readonly Block[];
}

const ELLIPSIS = '…';

/** Cuts text to at most `max` UTF-16 code units (Slack counts characters), marking the cut. */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = text.slice(0, Math.max(0, max - ELLIPSIS.length));
  // Never leave half of a surrogate pair (an emoji cut in two renders as garbage).
  const last = cut.charCodeAt(cut.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut = cut.slice(0, -1);
  return `${cut}${ELLIPSIS}`;
}

/**
 * Escapes text for mrkdwn: Slack reads `<…>` as links and mentions (`<!channel>`, `<@U…>`), so
 * anything that comes from a host, a log line or a report is escaped before it is shown.
 * https://docs.slack.dev/messaging/formatting-message-text#escaping
 */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Inline code for untrusted text: escaped, and without backticks that would end the span early. */
export function code(text: string): string {
  return `\`${escapeMrkdwn(text).replace(/`/g, 'ˋ')}\``;
}

export function plain(text: string, max: number): PlainText {
  return { type: 'plain_text', text: truncate(text, max), emoji: true };
}

export function mrkdwn(text: string, max: number): Mrkdwn {
  return { type: 'mrkdwn', text: truncate(text, max) };
}

export function header(text: string, blockId?: string): HeaderBlock {
  return {
    type: 'header',
    ...(blockId ? { block_id: blockId } : {}),
    text: plain(text, BLOCK_KIT_LIMITS.headerText),
  };
}

export function section(text: string, blockId?: string): SectionBlock {
  return {
    type: 'section',
    ...(blockId ? { block_id: blockId } : {}),
    text: mrkdwn(text, BLOCK_KIT_LIMITS.sectionText),
  };
}

/** A section of two-column fields; more than 10 are folded into the last one. */
export function fields(values: readonly string[], blockId?: string): SectionBlock {
  const max = BLOCK_KIT_LIMITS.sectionFields;
  const kept =
    values.length <= max ? values : [...values.slice(0, max - 1), values.slice(max - 1).join('\n')];
  return {
    type: 'section',
    ...(blockId ? { block_id: blockId } : {}),
    fields: kept.map((value) => mrkdwn(value, BLOCK_KIT_LIMITS.sectionFieldText)),
  };
}

export function context(texts: readonly string[]): ContextBlock {
  const max = BLOCK_KIT_LIMITS.contextElements;
  const kept = texts.length <= max ? texts : [...texts.slice(0, max - 1), texts.slice(max - 1).join(' · ')];
  return { type: 'context', elements: kept.map((text) => mrkdwn(text, BLOCK_KIT_LIMITS.contextText)) };
}

export const divider: DividerBlock = { type: 'divider' };

/**
 * Splits long mrkdwn into sections of at most 3000 characters, at line ends where possible, so that
 * a long list (every rule to be inserted) is shown whole rather than cut.
 */
export function sections(text: string): SectionBlock[] {
  const max = BLOCK_KIT_LIMITS.sectionText;
  const out: SectionBlock[] = [];
  let current = '';
  for (const line of text.split('\n')) {
    const candidate = current === '' ? line : `${current}\n${line}`;
    if (candidate.length <= max) {
      current = candidate;
      continue;
    }
    if (current !== '') out.push(section(current));
    current = line.length <= max ? line : truncate(line, max);
  }
  if (current !== '') out.push(section(current));
  return out;
}

/** Preformatted text (already escaped) in as many sections as it needs, each its own code block. */
export function codeSections(escapedText: string): SectionBlock[] {
  const fence = '```';
  const inner = BLOCK_KIT_LIMITS.sectionText - 2 * fence.length;
  const safe = escapedText.replace(/```/g, 'ˋˋˋ');
  const chunks: string[] = [];
  let current = '';
  for (const line of safe.split('\n')) {
    const piece = line.length <= inner ? line : truncate(line, inner);
    const candidate = current === '' ? piece : `${current}\n${piece}`;
    if (candidate.length <= inner) current = candidate;
    else {
      chunks.push(current);
      current = piece;
    }
  }
  if (current !== '') chunks.push(current);
  return chunks.map((chunk) => section(`${fence}${chunk}${fence}`));
}

/**
 * Keeps a message within 50 blocks: blocks marked as required (the header, the change, the
 * buttons) always stay; the others are dropped from the end of the optional ones, and a context
 * line says what was left out and where to find it.
 */
export function fitBlocks(
  parts: ReadonlyArray<{ readonly block: Block; readonly required: boolean }>,
  omittedNote: (omitted: number) => string,
): Block[] {
  const max = BLOCK_KIT_LIMITS.blocksPerMessage;
  if (parts.length <= max) return parts.map((part) => part.block);
  const required = parts.filter((part) => part.required).length;
  // One slot is kept for the note that says what was left out.
  let optionalRoom = Math.max(0, max - required - 1);
  const omitted = parts.length - required - optionalRoom;
  const kept: Block[] = [];
  for (const part of parts) {
    if (part.required) kept.push(part.block);
    else if (optionalRoom > 0) {
      kept.push(part.block);
      optionalRoom -= 1;
    }
  }
  if (kept.length >= max) {
    throw new Error(`a message needs ${kept.length} required blocks, more than Slack's ${max}`);
  }
  kept.push(context([omittedNote(omitted)]));
  return kept;
}

/** Every way a message breaks Block Kit's limits, in plain words (empty when it fits). */
export function blockKitProblems(message: SlackMessage): string[] {
  const L = BLOCK_KIT_LIMITS;
  const problems: string[] = [];
  const check = (what: string, length: number, max: number) => {
    if (length > max) problems.push(`${what} has ${length} characters (max ${max})`);
  };
  check('text', message.text.length, L.fallbackText);
  if (message.blocks.length > L.blocksPerMessage)
    problems.push(`${message.blocks.length} blocks (max ${L.blocksPerMessage})`);
  message.blocks.forEach((block, index) => {
    const where = `block ${index} (${block.type})`;
    if (block.block_id !== undefined) check(`${where} block_id`, block.block_id.length, L.blockId);
    switch (block.type) {
      case 'header':
        check(`${where} text`, block.text.text.length, L.headerText);
        if (block.text.type !== 'plain_text') problems.push(`${where} text must be plain_text`);
        break;
      case 'section':
        if (block.text === undefined && (block.fields ?? []).length === 0)
          problems.push(`${where} has neither text nor fields`);
        if (block.text) check(`${where} text`, block.text.text.length, L.sectionText);
        if ((block.fields ?? []).length > L.sectionFields)
          problems.push(`${where} has ${block.fields?.length} fields (max ${L.sectionFields})`);
        for (const [i, field] of (block.fields ?? []).entries())
          check(`${where} field ${i}`, field.text.length, L.sectionFieldText);
        break;
      case 'context':
        if (block.elements.length > L.contextElements)
          problems.push(`${where} has ${block.elements.length} elements (max ${L.contextElements})`);
        if (block.elements.length === 0) problems.push(`${where} has no elements`);
        break;
      case 'actions': {
        if (block.elements.length > L.actionsElements)
          problems.push(`${where} has ${block.elements.length} elements (max ${L.actionsElements})`);
        const ids = new Set<string>();
        for (const button of block.elements) {
          const b = `${where} button '${button.action_id}'`;
          check(`${b} text`, button.text.text.length, L.buttonText);
          check(`${b} value`, button.value.length, L.buttonValue);
          check(`${b} action_id`, button.action_id.length, L.actionId);
          if (ids.has(button.action_id)) problems.push(`${b} repeats an action_id in its block`);
          ids.add(button.action_id);
          if (button.confirm) {
            check(`${b} confirm title`, button.confirm.title.text.length, L.confirmTitle);
            check(`${b} confirm text`, button.confirm.text.text.length, L.confirmText);
            check(`${b} confirm button`, button.confirm.confirm.text.length, L.confirmButton);
            check(`${b} deny button`, button.confirm.deny.text.length, L.confirmButton);
          }
        }
        break;
      }
      case 'divider':
        break;
    }
  });
  return problems;
}

/** Throws with every problem listed: a message that breaks a limit is a bug in its builder. */
export function assertFitsBlockKit(message: SlackMessage, what: string): void {
  const problems = blockKitProblems(message);
  if (problems.length > 0) throw new Error(`${what} breaks Block Kit limits: ${problems.join('; ')}`);
}
