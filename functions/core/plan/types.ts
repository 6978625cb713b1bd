import type { NetworkFacts } from '../allowance/network.js';
import type { DiagnosticsReport } from '../diagnostics/report.js';
import type { Ec2Diagnosis, EniActionDraft, TablesDiagnosis } from './ec2.js';
import type { DocumentName } from './parameters.js';
import type { ActionKind, ActionMode, Policy } from './policy.js';
import type { Signals } from './signals.js';
import type { SizingResult } from './sizing.js';

export const PLAN_SCHEMA_VERSION = 1 as const;

/**
 * What can open an incident: a kernel log line (a full conntrack or expectation table), the host
 * sampler's EC2 allowance counters, or (`near-full`) the host sampler's forecast of a filling table.
 */
export const ALERT_KINDS = ['table-full', 'expect-table-full', 'ec2-allowance', 'near-full'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

/** What detection claimed (a kernel log line, or the host sampler's counters); never trusted on its own. */
export interface Alert {
  readonly kind: AlertKind;
  /** Inode the kernel named ("table full in netns N", kernels >= 6.17); null when the line names none. */
  readonly netns: string | null;
  /** Matching log lines, and the repeats the kernel's ratelimit suppressed (an upper bound, shared by all callers). */
  readonly dropLines: number;
  readonly suppressed: number;
  /**
   * For `near-full`: what the host sampler's lines predicted (functions/core/forecast), a claim
   * anyone on the host could have written; the planner takes only the horizon from it.
   */
  readonly forecast?: AlertForecast;
}

export interface AlertForecast {
  readonly horizonSeconds?: number;
  readonly predictedFullAt?: string | null;
  readonly secondsToFull?: number | null;
  readonly usage?: number;
  readonly growthPerSecond?: number | null;
}

export interface PlanInput {
  readonly before: DiagnosticsReport;
  readonly alert: Alert;
  readonly policy: Policy;
  /** Prefix of every ChangeId (an incident id); derived from the report when absent. */
  readonly changeIdPrefix?: string;
  /** What EC2 said about the instance's ENIs (the workflow's describe step); absent outside AWS or when not asked. */
  readonly network?: NetworkFacts | null;
  /** Why there are no EC2 facts when the describe step failed. */
  readonly networkProblem?: string | null;
}

/**
 * - `not-confirmed`: the host's counters do not show the problem: nothing is changed.
 * - `ec2-allowance`: the instance's EC2 connection-tracking allowance is exhausted, not the kernel table.
 * - `insert-races`: insert_failed rises without a full table (parallel packets of one new flow, typically UDP/DNS).
 * - `hash-chains-too-long`: inserts refused because hash chains are too long (kernel >= 5.15), not the table size.
 * - `expect-table-full`: the expectation table (conntrack helpers) is full, a different limit.
 * - `table-full`: the conntrack table is full and dropping new flows.
 * - `near-full`: nothing dropped yet, but the host's counters show the table filling within the
 *   horizon (or above the near-full ratio): sized for the predicted demand, NOTRACK never automatic.
 */
export type Classification =
  | 'not-confirmed'
  | 'ec2-allowance'
  | 'insert-races'
  | 'hash-chains-too-long'
  | 'expect-table-full'
  | 'table-full'
  | 'near-full';

export type RiskLevel = 'low' | 'medium' | 'high';

export interface PlannedAction {
  /** Unique within the plan; also the suffix of its ChangeId. */
  readonly id: string;
  readonly kind: ActionKind;
  readonly document: DocumentName;
  /** Exactly the document's parameters, as strings, ready for SSM or the local executor. */
  readonly parameters: Readonly<Record<string, string>>;
  /** The same change with Persist=true, to run once verification passed; null when the policy never persists. */
  readonly persistParameters: Readonly<Record<string, string>> | null;
  /** From the policy for this kind of action. */
  readonly mode: ActionMode;
  /** Ids of actions that must have been applied before this one may be (its parameters assume them). */
  readonly requires: readonly string[];
  readonly title: string;
  readonly reason: string;
  /** Worst-case additional kernel memory if the change is used to the full, in bytes (0 when none). */
  readonly memoryCostBytes: number;
  readonly expectedEffect: string;
  readonly risk: RiskLevel;
  /** Conditions under which this action would do harm; an operator approving it should check them. */
  readonly unsafeIf: readonly string[];
  /** For an eni-timeouts action: the ENI, its guest interface and the timeouts before and after. */
  readonly eni?: EniActionDraft['eni'];
}

export type RecommendationScope =
  | 'ec2'
  | 'kube-proxy'
  | 'launch-template'
  | 'application'
  | 'kernel'
  | 'conntrack-helpers'
  | 'monitoring'
  | 'other-sysctl-owner'
  /** A host firewall change for a person to decide (NOTRACK before any drop). */
  | 'firewall';

/** A fix outside what the responder may change on the host (or the durable form of what it changed). */
export interface Recommendation {
  readonly scope: RecommendationScope;
  readonly title: string;
  readonly detail: string;
  /** A configuration or command snippet to copy, when there is one. */
  readonly snippet?: string;
}

/** Something the planner considered and decided against. */
export interface Refusal {
  readonly considered: string;
  readonly reason: string;
}

export interface Plan {
  readonly schemaVersion: typeof PLAN_SCHEMA_VERSION;
  readonly classification: Classification;
  /** True when the host's counters show a real problem (whether or not a host change can fix it). */
  readonly confirmed: boolean;
  /** What the counters show, in plain words: the evidence for `confirmed` and `classification`. */
  readonly confirmation: readonly string[];
  readonly summary: string;
  readonly alert: Alert;
  readonly signals: Signals;
  /** Which table is in trouble: the kernel's, EC2's allowance, or both. (Later addition, optional in stored plans.) */
  readonly tables?: TablesDiagnosis;
  /** The EC2 side: each ENA interface, its ENI, timeouts and tracked flows; null when EC2's allowance is not involved. */
  readonly ec2?: Ec2Diagnosis | null;
  readonly actions: readonly PlannedAction[];
  readonly recommendations: readonly Recommendation[];
  readonly refusals: readonly Refusal[];
  /** The sizing computation when a raise was considered. */
  readonly sizing: SizingResult | null;
  readonly policy: Policy;
}
