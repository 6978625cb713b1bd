import { z } from 'zod';
import { formatIssues } from '../zod-issues.js';

/**
 * What the responder may do on its own. Every field has a default chosen for a production fleet
 * where a wrong automatic change costs more than a slow one; `docs/policy.md` explains each.
 */

/**
 * The kinds of change the planner can propose; each has its own mode. The first three run on the
 * host through SSM documents; `eni-timeouts` shortens the idle tracking timeouts of the instance's
 * ENIs through the EC2 API.
 */
export const ACTION_KINDS = ['raise-limits', 'shorten-timeouts', 'notrack-ports', 'eni-timeouts'] as const;
export type ActionKind = (typeof ACTION_KINDS)[number];

/** The kinds that run as SSM commands on the host (the rest are EC2 API calls). */
export const HOST_ACTION_KINDS = [
  'raise-limits',
  'shorten-timeouts',
  'notrack-ports',
] as const satisfies readonly ActionKind[];

/**
 * `auto`: applied without asking. `approve`: applied only after a human approves it.
 * `dry-run`: planned, explained and recorded, never applied.
 */
export const ACTION_MODES = ['auto', 'approve', 'dry-run'] as const;
export type ActionMode = (typeof ACTION_MODES)[number];

export interface ProtectedPort {
  readonly port: number;
  readonly protocol: 'tcp' | 'udp' | 'any';
  readonly direction: 'inbound' | 'outbound' | 'any';
  /** Shown in the plan's refusal when the port would otherwise have been chosen. */
  readonly why: string;
}

export interface NotrackPolicy {
  /** At most this many ports per plan (the notrack-ports document accepts 15). */
  readonly maxPorts: number;
  /** Stop adding ports once the chosen ones hold this share of the table's entries in short-lived states. */
  readonly targetShare: number;
  /** A port holding less than this share of the table is never worth a NOTRACK rule. */
  readonly minPortShare: number;
  /** A port qualifies only if at least this share of its own entries are in short-lived states (churn). */
  readonly minShortLivedRatio: number;
  /** Ports never exempted from tracking, whatever the numbers say. */
  readonly protectedPorts: readonly ProtectedPort[];
  /** NAT owners on the host that rule NOTRACK out entirely (container NAT can reach any port). */
  readonly refuseWithNatOwners: readonly ('docker' | 'kube-proxy' | 'other')[];
}

export interface Policy {
  readonly modes: Readonly<Record<ActionKind, ActionMode>>;
  /** nf_conntrack_max × worst-case bytes per entry must stay under this share of MemTotal (1–50). */
  readonly memoryBudgetPercent: number;
  /** count/max at or above this confirms "table full" even when the drop counter is flat between samples. */
  readonly nearFullRatio: number;
  /** One automatic raise multiplies nf_conntrack_max by at most this factor. */
  readonly maxRaiseFactor: number;
  /** nf_conntrack_max is never raised above this, whatever the budget allows. */
  readonly maxEntriesCeiling: number;
  /** A state group holding at least this share of the table counts as "dominating" (timeouts rule). */
  readonly dominantStateShare: number;
  readonly notrack: NotrackPolicy;
  /**
   * `after-verify`: changes are applied with Persist=false, and the workflow re-applies them with
   * Persist=true once verification passed. `never`: nothing is written under /etc (config
   * management owns it; the plan's recommendations carry the files to add there).
   */
  readonly persist: 'after-verify' | 'never';
  /** EC2's own connection-tracking allowance (the ENA counters). */
  readonly allowance: {
    /**
     * conntrack_allowance_available at or below this confirms "nearly exhausted" even before a
     * drop (detection uses the same threshold for the host sampler's counters).
     */
    readonly lowAvailable: number;
  };
  readonly verify: {
    /** After remediation count/max must be below this. */
    readonly maxUsageRatio: number;
    /** The drop counter may rise by at most this many packets per second between the two samples. */
    readonly maxDropsPerSecond: number;
    /** After ENI timeouts were shortened, conntrack_allowance_exceeded may rise by at most this many packets per second. */
    readonly maxAllowanceExceededPerSecond: number;
  };
}

export const DEFAULT_POLICY: Policy = {
  modes: {
    'raise-limits': 'auto',
    'shorten-timeouts': 'approve',
    'notrack-ports': 'approve',
    'eni-timeouts': 'approve',
  },
  memoryBudgetPercent: 5,
  nearFullRatio: 0.9,
  maxRaiseFactor: 4,
  maxEntriesCeiling: 4_194_304,
  dominantStateShare: 0.5,
  notrack: {
    maxPorts: 4,
    targetShare: 0.5,
    minPortShare: 0.05,
    minShortLivedRatio: 0.8,
    protectedPorts: [
      {
        port: 22,
        protocol: 'tcp',
        direction: 'any',
        why: 'SSH is how operators reach the host when everything else failed; a firewall mistake there locks them out',
      },
      {
        port: 443,
        protocol: 'tcp',
        direction: 'outbound',
        why: 'the SSM Agent and every AWS API call use outbound HTTPS; breaking it also breaks the rollback channel',
      },
      {
        port: 53,
        protocol: 'any',
        direction: 'any',
        why: 'DNS is every service’s dependency and is often NATed (VPC resolver, container DNS); fix DNS churn with a local caching resolver instead',
      },
    ],
    refuseWithNatOwners: ['docker', 'kube-proxy'],
  },
  persist: 'after-verify',
  allowance: { lowAvailable: 1000 },
  verify: { maxUsageRatio: 0.8, maxDropsPerSecond: 0, maxAllowanceExceededPerSecond: 0 },
};

const mode = z.enum(ACTION_MODES);
const ratio = z.number().gt(0).lt(1);

const ProtectedPortSchema = z.object({
  port: z.number().int().min(1).max(65535),
  protocol: z.enum(['tcp', 'udp', 'any']),
  direction: z.enum(['inbound', 'outbound', 'any']),
  why: z.string().min(1),
});

/** A partial policy (configuration file, CDK context, CLI flags): anything left out keeps its default. */
export const PolicyOverridesSchema = z
  .object({
    modes: z
      .object({
        'raise-limits': mode,
        'shorten-timeouts': mode,
        'notrack-ports': mode,
        'eni-timeouts': mode,
      })
      .partial()
      .strict(),
    memoryBudgetPercent: z.number().int().min(1).max(50),
    nearFullRatio: ratio,
    maxRaiseFactor: z.number().min(1.1).max(64),
    maxEntriesCeiling: z.number().int().min(1024).max(2_147_483_647),
    dominantStateShare: ratio,
    notrack: z
      .object({
        maxPorts: z.number().int().min(0).max(15),
        targetShare: ratio,
        minPortShare: ratio,
        minShortLivedRatio: z.number().min(0).max(1),
        protectedPorts: z.array(ProtectedPortSchema),
        refuseWithNatOwners: z.array(z.enum(['docker', 'kube-proxy', 'other'])),
      })
      .partial()
      .strict(),
    persist: z.enum(['after-verify', 'never']),
    allowance: z
      .object({ lowAvailable: z.number().int().min(0).max(10_000_000) })
      .partial()
      .strict(),
    verify: z
      .object({
        maxUsageRatio: ratio,
        maxDropsPerSecond: z.number().min(0),
        maxAllowanceExceededPerSecond: z.number().min(0),
      })
      .partial()
      .strict(),
  })
  .partial()
  .strict();

export type PolicyOverrides = z.infer<typeof PolicyOverridesSchema>;

/** Validates overrides (naming the offending field) and fills in every default. */
export function resolvePolicy(overrides: unknown = {}): Policy {
  const parsed = PolicyOverridesSchema.safeParse(overrides);
  if (!parsed.success) {
    throw new Error(`invalid policy: ${formatIssues(parsed.error, { root: '(policy)' })}`);
  }
  const given = parsed.data;
  const policy: Policy = {
    ...DEFAULT_POLICY,
    ...stripUndefined({
      memoryBudgetPercent: given.memoryBudgetPercent,
      nearFullRatio: given.nearFullRatio,
      maxRaiseFactor: given.maxRaiseFactor,
      maxEntriesCeiling: given.maxEntriesCeiling,
      dominantStateShare: given.dominantStateShare,
      persist: given.persist,
    }),
    modes: { ...DEFAULT_POLICY.modes, ...stripUndefined(given.modes ?? {}) },
    notrack: { ...DEFAULT_POLICY.notrack, ...stripUndefined(given.notrack ?? {}) },
    allowance: { ...DEFAULT_POLICY.allowance, ...stripUndefined(given.allowance ?? {}) },
    verify: { ...DEFAULT_POLICY.verify, ...stripUndefined(given.verify ?? {}) },
  };
  if (policy.verify.maxUsageRatio > policy.nearFullRatio) {
    throw new Error(
      `invalid policy: verify.maxUsageRatio (${policy.verify.maxUsageRatio}) must not exceed nearFullRatio (${policy.nearFullRatio}): a table that counts as full cannot pass verification`,
    );
  }
  return policy;
}

/** The same policy with one mode for every action kind (the CLI's `--mode`). */
export function withMode(policy: Policy, actionMode: ActionMode): Policy {
  const modes = Object.fromEntries(ACTION_KINDS.map((kind) => [kind, actionMode])) as Record<
    ActionKind,
    ActionMode
  >;
  return { ...policy, modes };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
