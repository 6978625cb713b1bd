import type { LastChange } from '../../core/guardrails/decisions.js';
import { decideAcquire } from '../../core/guardrails/semaphore.js';
import { DEFAULT_GUARDRAILS, type GuardrailSettings } from '../../core/guardrails/settings.js';
import type { GuardrailPorts } from '../../core/guardrails/steps.js';
import { runGuardrailStep } from '../../core/guardrails/steps.js';

/**
 * The guardrails on one machine: the same steps as the Lambda function (runGuardrailStep), with
 * their records kept in memory for the run. A namespace has no EC2 tags and no change calendar,
 * and one local run is one incident, so the fleet breaker stays closed; the remediation slots,
 * the cooldown after a change and the preconditions work as on AWS.
 */

export interface LocalGuardrails {
  readonly ports: GuardrailPorts;
  /** The step, as the local interpreter's binding for the guardrails Task states. */
  readonly step: (payload: unknown) => Promise<unknown>;
  /** Incidents holding a remediation slot right now. */
  readonly holders: () => string[];
}

export interface LocalGuardrailOptions {
  readonly settings?: GuardrailSettings;
  /** What the instance's mode tag says, as if read from EC2 (null: no tag). */
  readonly modeTag?: string | null;
  readonly breaker?: 'open' | 'closed';
  readonly now?: () => Date;
}

export function localGuardrails(options: LocalGuardrailOptions = {}): LocalGuardrails {
  const settings = options.settings ?? DEFAULT_GUARDRAILS;
  const now = options.now ?? (() => new Date());
  const slots = new Map<string, number>();
  const changes = new Map<string, LastChange>();
  const guardrailPorts: GuardrailPorts = {
    modeTag: async () => ({ value: options.modeTag ?? null, source: 'ec2' }),
    calendarState: async () => null,
    breaker: async () => ({ status: options.breaker ?? 'closed' }),
    lastChange: async (instanceId) => changes.get(instanceId) ?? null,
    acquireSlot: async (holder, at) => {
      const nowSeconds = Math.floor(at.getTime() / 1000);
      const decision = decideAcquire(
        Object.fromEntries(slots),
        holder,
        nowSeconds,
        settings.maxConcurrentRemediations,
        settings.slotLeaseSeconds,
      );
      if (decision.action === 'busy') return { granted: false, holders: decision.holders };
      if (decision.action === 'acquire') {
        for (const expired of decision.expired) slots.delete(expired);
        slots.set(holder, decision.leaseEndsAt);
      }
      return { granted: true, leaseEndsAt: slots.get(holder) ?? decision.leaseEndsAt, holders: slots.size };
    },
    releaseSlot: async (holder) => slots.delete(holder),
    recordChange: async (instanceId, change) => {
      changes.set(instanceId, change);
    },
    // The fleet view's top ports matter only across many instances; the twin has one.
    recordTopPorts: async () => {},
  };
  return {
    ports: guardrailPorts,
    step: (payload) => runGuardrailStep(payload, guardrailPorts, settings, now()),
    holders: () => [...slots.keys()].sort(),
  };
}
