import { z } from 'zod';
import { ResponderError, TASK_ERROR } from '../errors.js';
import { RESPONSE_MODES, type ResponseMode } from '../incident/settings.js';
import { formatIssues } from '../zod-issues.js';
import type { PortCount } from './breaker.js';
import {
  type BreakerStatus,
  decideBeforeChange,
  decideBeforeSsm,
  type GuardrailDecision,
  type GuardrailVerdict,
  type LastChange,
} from './decisions.js';
import { topPortsOfReport } from './ports.js';
import type { GuardrailSettings } from './settings.js';

/**
 * The guardrails' steps in the incident workflow, written once for both places they run: the
 * `guardrails` Lambda function (ports bound to DynamoDB, EC2 and SSM) and the local twin (ports
 * bound to one machine). Each step receives the workflow's state and returns the new
 * `$.guardrails`, which carries every decision so far for the evidence bundle:
 *
 * - `check`, before any SSM call: the instance's policy, the preconditions, the calendar, the
 *   breaker, the cooldown after a change. `next` tells the workflow where to go; `mode` is the
 *   policy gate's ceiling.
 * - `take-slot`, right before a change: stops an automatic change the calendar or the breaker now
 *   forbids (back to the policy gate, capped to approve), else takes a remediation slot or throws
 *   `RemediationSlotsBusy`, which the state's Retry block waits out with backoff and jitter.
 * - `release`, on every path right before the notification: gives the slot back, records a change
 *   for the cooldown, and keeps the instance's top ports for the fleet view.
 */

/** What the steps need from the outside world. */
export interface GuardrailPorts {
  modeTag(instanceId: string, key: string): Promise<{ value: string | null; source: 'ec2' | 'ssm' }>;
  /** Null when no calendar is configured. */
  calendarState(): Promise<{ name: string; state: string } | null>;
  breaker(): Promise<BreakerStatus>;
  lastChange(instanceId: string): Promise<LastChange | null>;
  acquireSlot(
    holder: string,
    now: Date,
  ): Promise<
    { granted: true; leaseEndsAt: number; holders: number } | { granted: false; holders: readonly string[] }
  >;
  releaseSlot(holder: string): Promise<boolean>;
  recordChange(instanceId: string, change: LastChange): Promise<void>;
  recordTopPorts(incidentId: string, ports: readonly PortCount[]): Promise<void>;
}

/** `$.guardrails`: the verdict before SSM, then what the later steps added. */
export interface GuardrailState {
  readonly next: GuardrailVerdict['next'];
  readonly mode: ResponseMode;
  readonly decisions: readonly GuardrailDecision[];
  readonly escalation: GuardrailVerdict['escalation'];
  /** Set by take-slot: whether the change may start now, or must go back to the policy gate. */
  readonly slot?: { readonly granted: boolean; readonly recheck: boolean; readonly leaseEndsAt?: number };
  readonly released?: boolean;
}

/** Every slot is held: the state's Retry block waits, with backoff and jitter, then escalates. */
export class RemediationSlotsBusyError extends ResponderError {
  override readonly name = TASK_ERROR.slotsBusy;
}

/** The step received a state it cannot work with; names what is wrong. */
export class GuardrailInputError extends ResponderError {
  override readonly name = TASK_ERROR.guardrailInput;
}

const IncidentSchema = z.looseObject({
  incidentId: z.string().min(1),
  instanceId: z.string().nullable(),
  mode: z.enum(RESPONSE_MODES).default('approve'),
});

const GuardrailStateSchema = z.looseObject({
  next: z.enum(['collect', 'opted-out', 'escalate']),
  mode: z.enum(RESPONSE_MODES),
  decisions: z.array(z.looseObject({ guardrail: z.string(), effect: z.string() })),
  escalation: z.unknown().optional(),
});

const StepInputSchema = z.discriminatedUnion('operation', [
  z.object({
    operation: z.literal('check'),
    state: z.looseObject({ incident: IncidentSchema, instance: z.unknown() }),
  }),
  z.object({
    operation: z.literal('take-slot'),
    state: z.looseObject({
      incident: IncidentSchema,
      guardrails: GuardrailStateSchema,
      approval: z.looseObject({ decision: z.string() }).optional(),
    }),
  }),
  z.object({
    operation: z.literal('release'),
    state: z.looseObject({
      incident: IncidentSchema,
      guardrails: GuardrailStateSchema.optional(),
      outcome: z.looseObject({ status: z.string(), hostChanged: z.boolean() }).optional(),
      before: z.looseObject({ stdout: z.string().optional() }).nullable().optional(),
    }),
  }),
]);

function parseInput(payload: unknown) {
  const parsed = StepInputSchema.safeParse(payload);
  if (!parsed.success) {
    throw new GuardrailInputError(`guardrail step input is invalid: ${formatIssues(parsed.error)}`);
  }
  return parsed.data;
}

function informationOf(instance: unknown): Record<string, unknown>[] {
  const list = (instance as { information?: unknown } | null | undefined)?.information;
  return Array.isArray(list)
    ? (list.filter((entry) => typeof entry === 'object' && entry !== null) as never)
    : [];
}

export async function runGuardrailStep(
  payload: unknown,
  ports: GuardrailPorts,
  settings: GuardrailSettings,
  now: Date,
): Promise<GuardrailState> {
  const input = parseInput(payload);
  const { incident } = input.state;
  const at = now.toISOString();

  if (input.operation === 'check') {
    if (incident.instanceId === null) {
      throw new GuardrailInputError(`incident ${incident.incidentId} has no instance id to check`);
    }
    const instanceId = incident.instanceId;
    const [tag, calendar, breaker, lastChange] = await Promise.all([
      ports.modeTag(instanceId, settings.modeTagKey),
      ports.calendarState(),
      ports.breaker(),
      ports.lastChange(instanceId),
    ]);
    return decideBeforeSsm({
      incident: { incidentId: incident.incidentId, instanceId, mode: incident.mode },
      information: informationOf(input.state.instance),
      tag: { key: settings.modeTagKey, ...tag },
      calendar,
      breaker,
      lastChange,
      now,
      settings,
    });
  }

  if (input.operation === 'take-slot') {
    const guardrails = input.state.guardrails as unknown as GuardrailState;
    const approved = input.state.approval?.decision === 'approved';
    const [calendar, breaker] = await Promise.all([ports.calendarState(), ports.breaker()]);
    const check = decideBeforeChange({ approved, calendar, breaker, now });
    if (check.needsApproval) {
      return {
        ...guardrails,
        mode: 'approve',
        decisions: [...guardrails.decisions, ...check.decisions],
        slot: { granted: false, recheck: true },
      };
    }
    const slot = await ports.acquireSlot(incident.incidentId, now);
    if (!slot.granted) {
      throw new RemediationSlotsBusyError(
        `all ${settings.maxConcurrentRemediations} remediation slots are taken (${slot.holders.join(', ')}); waiting for one`,
      );
    }
    const decision: GuardrailDecision = {
      guardrail: 'concurrency',
      step: 'before-change',
      effect: 'grant',
      detail: `remediation slot taken (${slot.holders} of ${settings.maxConcurrentRemediations} in use), lease until ${new Date(slot.leaseEndsAt * 1000).toISOString()}`,
      at,
    };
    return {
      ...guardrails,
      decisions: [...guardrails.decisions, decision],
      slot: { granted: true, recheck: false, leaseEndsAt: slot.leaseEndsAt },
    };
  }

  // release: on every path, whatever happened before (the check may not even have run).
  const previous = (input.state.guardrails as unknown as GuardrailState | undefined) ?? {
    next: 'escalate' as const,
    mode: incident.mode,
    decisions: [],
    escalation: null,
  };
  const decisions: GuardrailDecision[] = [...previous.decisions];
  const released = await ports.releaseSlot(incident.incidentId);
  if (released) {
    decisions.push({
      guardrail: 'concurrency',
      step: 'end',
      effect: 'release',
      detail: 'remediation slot given back',
      at,
    });
  }
  const outcome = input.state.outcome;
  if (outcome?.hostChanged === true && incident.instanceId !== null) {
    await ports.recordChange(incident.instanceId, {
      at,
      incidentId: incident.incidentId,
      outcome: outcome.status,
    });
    decisions.push({
      guardrail: 'remediation-cooldown',
      step: 'end',
      effect: 'pass',
      detail:
        settings.remediationCooldownMinutes > 0
          ? `the instance was changed (${outcome.status}): further incidents on it need a person for ${settings.remediationCooldownMinutes} min`
          : `the instance was changed (${outcome.status}); no cooldown is configured`,
      at,
    });
  }
  const topPorts = topPortsOfReport(input.state.before?.stdout ?? null);
  if (topPorts.length > 0) await ports.recordTopPorts(incident.incidentId, topPorts);
  return { ...previous, decisions, released };
}
