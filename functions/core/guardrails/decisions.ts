import type { ResponseMode } from '../incident/settings.js';
import { stricterMode } from '../workflow/incident.js';
import { type GuardrailSettings, INSTANCE_MODES, isInstanceMode, MANUAL_RUNBOOK } from './settings.js';
import { isAtLeast } from './version.js';

/**
 * The guardrails' decisions, purely. Each guardrail looks at facts gathered by an adapter and says
 * what it did in one record, so the evidence bundle can show which guardrail decided what:
 *
 * - before any SSM call (`decideBeforeSsm`): the instance's own policy (its mode tag), the
 *   preconditions (managed, online, Linux, an SSM Agent that exports ENV_VAR parameters), the
 *   change calendar, the fleet breaker and the cooldown after a previous change. The result is the
 *   most the workflow may do on its own (`mode`), which the policy gate uses as its ceiling.
 * - right before a change (`decideBeforeChange`): the calendar and the breaker again, because an
 *   automatic change decided minutes earlier must not start after the calendar closed or the
 *   breaker tripped.
 */

/** Every guardrail that records decisions (the evidence bundle keeps the decisions of each one listed here). */
export const GUARDRAIL_NAMES = [
  'dedupe',
  'fleet-breaker',
  'instance-policy',
  'preconditions',
  'change-calendar',
  'remediation-cooldown',
  'concurrency',
] as const;
export type GuardrailName = (typeof GUARDRAIL_NAMES)[number];

export type GuardrailEffect =
  /** Looked, found nothing to do. */
  | 'pass'
  /** Set the mode (the instance's tag replaces the fleet default). */
  | 'set-mode'
  /** Lowered the most the workflow may do on its own. */
  | 'cap-mode'
  | 'opt-out'
  | 'escalate'
  /** Fleet breaker: the incident's workflow starts / is held / the breaker tripped. */
  | 'admit'
  | 'hold'
  | 'trip'
  /** Remediation slots: taken, not free yet, given back. */
  | 'grant'
  | 'wait'
  | 'release';

/** Where in an incident's life a guardrail decided. */
export const GUARDRAIL_STEPS = ['detect', 'before-ssm', 'before-change', 'end'] as const;
export type GuardrailStep = (typeof GUARDRAIL_STEPS)[number];

export interface GuardrailDecision {
  readonly guardrail: GuardrailName;
  readonly step: GuardrailStep;
  readonly effect: GuardrailEffect;
  /** The mode this decision set or capped to, where it did. */
  readonly mode?: ResponseMode;
  /** In plain words, with the numbers that decided it. */
  readonly detail: string;
  readonly at: string;
}

/** One entry of DescribeInstanceInformation's InstanceInformationList (only what is read here). */
export interface InstanceInformation {
  readonly PingStatus?: string;
  readonly AgentVersion?: string;
  readonly PlatformType?: string;
  readonly LastPingDateTime?: string | number;
}

export interface BreakerStatus {
  readonly status: 'open' | 'closed';
  readonly trippedAt?: string | null;
  readonly reason?: string | null;
}

export interface LastChange {
  readonly at: string;
  readonly incidentId: string;
  readonly outcome: string;
}

export interface BeforeSsmFacts {
  readonly incident: {
    readonly incidentId: string;
    readonly instanceId: string;
    readonly mode: ResponseMode;
  };
  /** DescribeInstanceInformation filtered on the instance id: empty when SSM does not know it. */
  readonly information: readonly InstanceInformation[];
  /** The mode tag; `value` null when the instance has none. */
  readonly tag: { readonly key: string; readonly value: string | null; readonly source: 'ec2' | 'ssm' };
  /** Null when no change calendar is configured. */
  readonly calendar: { readonly name: string; readonly state: string } | null;
  readonly breaker: BreakerStatus;
  readonly lastChange: LastChange | null;
  readonly now: Date;
  readonly settings: GuardrailSettings;
}

export type NextStep = 'collect' | 'opted-out' | 'escalate';

export interface GuardrailVerdict {
  readonly next: NextStep;
  /** The most the workflow may do on its own for this incident: the policy gate's ceiling. */
  readonly mode: ResponseMode;
  readonly decisions: readonly GuardrailDecision[];
  /** Why a person must take over, and how; null unless `next` is `escalate`. */
  readonly escalation: { readonly reasons: readonly string[]; readonly runbook: string } | null;
}

function minutesBetween(from: string, to: Date): number {
  return (to.getTime() - Date.parse(from)) / 60_000;
}

/** Why the instance cannot run our SSM documents, one reason per failed precondition (empty = it can). */
export function preconditionFailures(
  information: readonly InstanceInformation[],
  minAgentVersion: string,
): string[] {
  const [node] = information;
  if (node === undefined) {
    return [
      'SSM does not know the instance (no DescribeInstanceInformation entry): the SSM Agent is not installed or not registered, or the instance profile lacks AmazonSSMManagedInstanceCore',
    ];
  }
  const failures: string[] = [];
  if (node.PingStatus !== 'Online') {
    failures.push(
      `the SSM Agent is not online (PingStatus ${node.PingStatus ?? 'absent'}${node.LastPingDateTime === undefined ? '' : `, last ping ${String(node.LastPingDateTime)}`})`,
    );
  }
  if (node.PlatformType !== undefined && node.PlatformType !== 'Linux') {
    failures.push(`the platform is ${node.PlatformType}, and the runbooks are for Linux`);
  }
  const version = node.AgentVersion ?? '';
  if (!isAtLeast(version, minAgentVersion)) {
    failures.push(
      `SSM Agent ${version === '' ? '(version unknown)' : version} is older than ${minAgentVersion}, the first to pass document parameters as environment variables (ENV_VAR); an older agent would silently ignore them`,
    );
  }
  return failures;
}

export function decideBeforeSsm(facts: BeforeSsmFacts): GuardrailVerdict {
  const at = facts.now.toISOString();
  const decisions: GuardrailDecision[] = [];
  const record = (decision: Omit<GuardrailDecision, 'at' | 'step'>) =>
    decisions.push({ ...decision, step: 'before-ssm', at });
  let mode: ResponseMode = facts.incident.mode;

  // The instance's own policy first: an opted-out instance is not touched, not even to diagnose it.
  const { tag } = facts;
  const tagValue = tag.value?.trim().toLowerCase() ?? null;
  const where = `${tag.source === 'ec2' ? 'EC2' : 'SSM'} tag ${tag.key}`;
  if (tagValue === null) {
    record({
      guardrail: 'instance-policy',
      effect: 'pass',
      detail: `no ${where}: the default mode ${mode} applies`,
    });
  } else if (!isInstanceMode(tagValue)) {
    mode = stricterMode(mode, 'approve');
    record({
      guardrail: 'instance-policy',
      effect: 'cap-mode',
      mode,
      detail: `${where} is '${tag.value}', which is not one of ${INSTANCE_MODES.join(', ')}: treated as approve`,
    });
  } else if (tagValue === 'off') {
    record({
      guardrail: 'instance-policy',
      effect: 'opt-out',
      detail: `${where} is off: the instance opted out, nothing is collected or changed`,
    });
    return { next: 'opted-out', mode: 'dry-run', decisions, escalation: null };
  } else {
    record({
      guardrail: 'instance-policy',
      effect: 'set-mode',
      mode: tagValue,
      detail: `${where} is ${tagValue}${tagValue === mode ? '' : ` (the default is ${mode})`}`,
    });
    mode = tagValue;
  }

  const failures = preconditionFailures(facts.information, facts.settings.minAgentVersion);
  if (failures.length > 0) {
    record({ guardrail: 'preconditions', effect: 'escalate', detail: failures.join('; ') });
    return { next: 'escalate', mode, decisions, escalation: { reasons: failures, runbook: MANUAL_RUNBOOK } };
  }
  const node = facts.information[0];
  record({
    guardrail: 'preconditions',
    effect: 'pass',
    detail: `managed and online, ${node?.PlatformType ?? 'Linux'}, SSM Agent ${node?.AgentVersion} (≥ ${facts.settings.minAgentVersion})`,
  });

  const capped = (guardrail: GuardrailName, detail: string) => {
    const next = stricterMode(mode, 'approve');
    record({ guardrail, effect: next === mode ? 'pass' : 'cap-mode', mode: next, detail });
    mode = next;
  };

  const calendar = calendarDecision(facts.calendar);
  if (calendar.blocks) capped('change-calendar', calendar.detail);
  else record({ guardrail: 'change-calendar', effect: 'pass', detail: calendar.detail });

  if (facts.breaker.status === 'open') capped('fleet-breaker', breakerDetail(facts.breaker));
  else record({ guardrail: 'fleet-breaker', effect: 'pass', detail: 'the fleet breaker is closed' });

  const cooldown = facts.settings.remediationCooldownMinutes;
  const last = facts.lastChange;
  if (last !== null && cooldown > 0 && minutesBetween(last.at, facts.now) < cooldown) {
    capped(
      'remediation-cooldown',
      `incident ${last.incidentId} changed this instance ${Math.max(0, Math.round(minutesBetween(last.at, facts.now)))} min ago (${last.outcome}); within ${cooldown} min a further change needs a person`,
    );
  } else {
    record({
      guardrail: 'remediation-cooldown',
      effect: 'pass',
      detail:
        last === null
          ? 'no earlier change recorded on this instance'
          : `the last change (incident ${last.incidentId}) is older than ${cooldown} min`,
    });
  }
  return { next: 'collect', mode, decisions, escalation: null };
}

function calendarDecision(calendar: BeforeSsmFacts['calendar']): { blocks: boolean; detail: string } {
  if (calendar === null) return { blocks: false, detail: 'no change calendar configured' };
  if (calendar.state === 'OPEN') return { blocks: false, detail: `change calendar ${calendar.name} is OPEN` };
  if (calendar.state === 'CLOSED') {
    return {
      blocks: true,
      detail: `change calendar ${calendar.name} is CLOSED: automatic changes are blocked`,
    };
  }
  // An answer we do not understand must not allow what a CLOSED one would block.
  return {
    blocks: true,
    detail: `change calendar ${calendar.name} reported state '${calendar.state}': treated as CLOSED`,
  };
}

function breakerDetail(breaker: BreakerStatus): string {
  const since = breaker.trippedAt ? ` since ${breaker.trippedAt}` : '';
  const why = breaker.reason ? ` (${breaker.reason})` : '';
  return `the fleet breaker is open${since}${why}: automatic changes are stopped everywhere until a person resets it`;
}

export interface BeforeChangeFacts {
  /** True when a person approved this change; an approved change is not automatic. */
  readonly approved: boolean;
  readonly calendar: BeforeSsmFacts['calendar'];
  readonly breaker: BreakerStatus;
  readonly now: Date;
}

/**
 * Right before an automatic change: does anything now stop it? When it does, the change goes back
 * to the policy gate with the mode capped to approve, so a person decides.
 */
export function decideBeforeChange(facts: BeforeChangeFacts): {
  readonly needsApproval: boolean;
  readonly decisions: readonly GuardrailDecision[];
} {
  const at = facts.now.toISOString();
  const decisions: GuardrailDecision[] = [];
  if (facts.approved) return { needsApproval: false, decisions };
  const calendar = calendarDecision(facts.calendar);
  if (calendar.blocks) {
    decisions.push({
      guardrail: 'change-calendar',
      step: 'before-change',
      effect: 'cap-mode',
      mode: 'approve',
      detail: `${calendar.detail} (it changed after the incident was checked)`,
      at,
    });
  }
  if (facts.breaker.status === 'open') {
    decisions.push({
      guardrail: 'fleet-breaker',
      step: 'before-change',
      effect: 'cap-mode',
      mode: 'approve',
      detail: `${breakerDetail(facts.breaker)} (it tripped after the incident was checked)`,
      at,
    });
  }
  return { needsApproval: decisions.length > 0, decisions };
}
