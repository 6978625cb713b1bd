import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { type FleetView, fleetEscalation } from '../core/guardrails/breaker.js';
import { DEFAULT_GUARDRAILS, type GuardrailSettings } from '../core/guardrails/settings.js';
import type { BreakerRecord } from './breaker-store.js';
import { breakerCommands } from './fleet-escalation.js';
import { GuardrailStore } from './guardrail-store.js';

/**
 * What a person does with the fleet breaker, for every place a person can do it: the CLI
 * (`npx conntrack-responder breaker status|reset|open`) and Slack (the chatops handler calls
 * `resetBreaker` with the Slack identity of an allowed approver as `by`). Every reset is recorded
 * with who, when and why.
 */

export interface BreakerReport {
  readonly breaker: BreakerRecord;
  readonly view: FleetView;
  readonly slots: { readonly live: readonly string[]; readonly max: number };
  /** The fleet view as text (what the escalation said, as it stands now). */
  readonly text: string;
}

export interface BreakerAction {
  /** Who: a person's name, or `slack:<user id> (<name>)` from Slack. */
  readonly by: string;
  readonly reason: string;
}

export interface BreakerControl {
  status(now?: Date): Promise<BreakerReport>;
  /** Closes an open breaker; `changed` is false when it was not open. */
  reset(
    action: BreakerAction,
    now?: Date,
  ): Promise<{ readonly changed: boolean; readonly report: BreakerReport }>;
  /** Opens it by hand: every automatic change stops until a reset. */
  open(
    action: BreakerAction,
    now?: Date,
  ): Promise<{ readonly changed: boolean; readonly report: BreakerReport }>;
}

/** A by or reason a person typed: one line, printable, bounded, never empty. */
export function checkActionText(name: 'by' | 'reason', value: string): string {
  const text = value.trim();
  if (text === '') throw new Error(`${name} must not be empty: say who you are and why`);
  if (text.length > 300) throw new Error(`${name} is longer than 300 characters`);
  if ([...text].some((char) => char.charCodeAt(0) < 0x20 || char.charCodeAt(0) === 0x7f)) {
    throw new Error(`${name} must be one line of printable text`);
  }
  return text;
}

export function breakerControl(
  client: DynamoDBDocumentClient,
  tableName: string,
  options: { readonly settings?: GuardrailSettings; readonly region?: string } = {},
): BreakerControl {
  const store = new GuardrailStore(client, tableName, options.settings ?? DEFAULT_GUARDRAILS);
  const commands = breakerCommands(tableName, options.region);
  const status = async (now = new Date()): Promise<BreakerReport> => {
    const [breaker, view, slots] = await Promise.all([
      store.getBreaker(),
      store.fleetView(now),
      store.slotHolders(now),
    ]);
    return { breaker, view, slots, text: fleetEscalation(view, commands).text };
  };
  return {
    status,
    async reset(action, now = new Date()) {
      const changed = await store.reset(
        checkActionText('by', action.by),
        checkActionText('reason', action.reason),
        now,
      );
      return { changed, report: await status(now) };
    },
    async open(action, now = new Date()) {
      const changed = await store.openByHand(
        checkActionText('by', action.by),
        checkActionText('reason', action.reason),
        now,
      );
      return { changed, report: await status(now) };
    },
  };
}
