/**
 * How big nf_conntrack_max (and the hash table) should become when the table is full.
 * docs/sizing.md is the long version of this comment, with worked examples.
 *
 * Sources
 * - Kernel defaults (nf_conntrack_core.c; d532bcd0b269 "sanitize table size default settings",
 *   5.15): buckets = RAM/16384/8, 65536 on 1–4 GiB hosts, 262144 above 4 GiB; max = buckets since
 *   5.15 (4 × buckets before). So 262144 is what most EC2 instances start with.
 * - kube-proxy (cmd/kube-proxy/app/server_linux.go, pkg/proxy/conntrack/sysctls.go):
 *   max = max(32768 × CPUs, 131072), and hashsize raised to max/4 when smaller. It is the most
 *   widely deployed automatic sizing rule, and it scales with CPUs because connection rates do.
 * - Memory per entry (nf_conntrack_core.c kmem_cache "nf_conntrack", nf_conntrack_extend.c):
 *   one slab object (256–384 B; the report's `entryBytes` from /proc/slabinfo) plus a 128-byte
 *   extension area preallocated as soon as NAT, helpers, accounting or events attach one, plus
 *   8 B per hash bucket. Memory is used only by live entries, so the budget is the cost if the
 *   new limit is ever reached.
 *
 * Rule
 *   observed  = max(conntrack.count, entries read from the table)
 *   perEntry  = (entryBytes ?? 384) + 128 (extension) + 8 (one bucket per entry at a 1:1 ratio)
 *   wanted    = roundUp(max(2 × observed, 2 × currentMax, 32768 × CPUs, 131072
 *                            [, predicted demand / target usage for a filling table]), 65536)
 *   ceilings  = budgetPercent × MemTotal / perEntry,  maxRaiseFactor × currentMax,
 *               maxEntriesCeiling,  2^31 - 1
 *   newMax    = min(wanted, ceilings), rounded down to a multiple of 1024 when a ceiling binds
 *   refuse when newMax <= currentMax (the budget is already spent: relief must come from timeouts or
 *   NOTRACK, or from a bigger instance)
 *   buckets   = untouched while newMax/buckets <= 4 (kube-proxy's ratio: average chain of 8 entries
 *               at a full table, far below the 50–80 the kernel refuses since 5.15); otherwise
 *               newMax rounded up to 512 (the kernel's own 1:1 ratio since 5.15; the kernel rounds
 *               the size up to 512 anyway). Resizing rehashes every entry under the conntrack locks,
 *               a short stall, so it is done only when the ratio is bad.
 *
 * Why doubling: while the table is full, the drops hide the real demand; the observed count is
 * only a lower bound. Doubling is the step operators take by hand (and the facts checklist's
 * clamp(2 × max … budget)); when it is not enough, verification sees drops continue and the next
 * round doubles again, each step bounded by the budget and maxRaiseFactor.
 */

/** Bytes of the per-entry extension area the kernel preallocates when any extension attaches (NF_CT_EXT_PREALLOC). */
export const EXTENSION_BYTES = 128;
/** Slab object size assumed when /proc/slabinfo was unreadable: the top of the observed 256–384 B range. */
export const FALLBACK_ENTRY_BYTES = 384;
export const BUCKET_BYTES = 8;
export const KUBE_PROXY_MAX_PER_CORE = 32_768;
export const KUBE_PROXY_MIN = 131_072;
/** Above this max/buckets ratio the hash table is resized. */
export const MAX_ENTRIES_PER_BUCKET = 4;
const INT_MAX = 2_147_483_647;
const HASH_ROUNDING = 512;

export interface SizingInput {
  readonly observedCount: number;
  readonly currentMax: number;
  readonly currentBuckets: number | null;
  readonly cpuCount: number;
  readonly memTotalBytes: number;
  readonly entryBytes: number | null;
  readonly memoryBudgetPercent: number;
  readonly maxRaiseFactor: number;
  readonly maxEntriesCeiling: number;
  /**
   * For a table that is filling (a near-full incident): the entries it is expected to need at the
   * end of the horizon. The limit is then also at least predictedEntries / targetUsage, so the
   * predicted demand lands at the verification's usage ceiling, not at the limit.
   */
  readonly predictedEntries?: number;
  /** The usage the predicted demand may reach under the new limit (the policy's verify.maxUsageRatio). */
  readonly targetUsage?: number;
}

export interface SizingResult {
  /** null when no raise is possible within the limits (see `limitedBy`). */
  readonly newMax: number | null;
  /** null: leave the hash size as it is. */
  readonly newBuckets: number | null;
  readonly bytesPerEntry: number;
  readonly budgetBytes: number;
  /** Worst-case extra memory if the new limit is reached: (newMax - currentMax) entries plus new buckets. */
  readonly addedBytesIfFull: number;
  /** Worst-case memory of the whole table at newMax. */
  readonly totalBytesIfFull: number;
  readonly wanted: number;
  readonly kubeProxyFloor: number;
  /** Which ceiling decided the value ('wanted' when none bound). */
  readonly limitedBy: 'wanted' | 'memory-budget' | 'raise-factor' | 'ceiling';
  /** Every step of the computation in plain words, for the plan and the postmortem. */
  readonly explanation: readonly string[];
}

export function kubeProxyConntrackMax(cpuCount: number): number {
  return Math.max(KUBE_PROXY_MAX_PER_CORE * cpuCount, KUBE_PROXY_MIN);
}

export function bytesPerEntry(entryBytes: number | null): number {
  return (entryBytes ?? FALLBACK_ENTRY_BYTES) + EXTENSION_BYTES + BUCKET_BYTES;
}

const roundUp = (value: number, step: number) => Math.ceil(value / step) * step;
const roundDown = (value: number, step: number) => Math.floor(value / step) * step;

export function sizeConntrackTable(input: SizingInput): SizingResult {
  const perEntry = bytesPerEntry(input.entryBytes);
  const budgetBytes = Math.floor((input.memTotalBytes * input.memoryBudgetPercent) / 100);
  const kubeProxyFloor = kubeProxyConntrackMax(input.cpuCount);
  const forDemand =
    input.predictedEntries !== undefined && input.predictedEntries > 0
      ? Math.ceil(input.predictedEntries / Math.min(1, Math.max(0.1, input.targetUsage ?? 0.8)))
      : 0;
  const wanted = roundUp(
    Math.max(2 * input.observedCount, 2 * input.currentMax, kubeProxyFloor, forDemand),
    65_536,
  );
  const ceilings = [
    { name: 'memory-budget' as const, value: Math.floor(budgetBytes / perEntry) },
    { name: 'raise-factor' as const, value: Math.floor(input.currentMax * input.maxRaiseFactor) },
    { name: 'ceiling' as const, value: Math.min(input.maxEntriesCeiling, INT_MAX) },
  ];
  const binding = ceilings.reduce((lowest, next) => (next.value < lowest.value ? next : lowest));
  const limitedBy = binding.value < wanted ? binding.name : 'wanted';
  const chosen = limitedBy === 'wanted' ? wanted : roundDown(binding.value, 1024);

  const explanation = [
    `observed ${input.observedCount} entries against a limit of ${input.currentMax}`,
    forDemand > 0
      ? `wanted max(2 × observed, 2 × current limit, kube-proxy's max(32768 × ${input.cpuCount} CPUs, 131072) = ${kubeProxyFloor}, predicted demand ${input.predictedEntries} / ${input.targetUsage ?? 0.8} = ${forDemand}) = ${wanted} (rounded up to a multiple of 65536)`
      : `wanted max(2 × observed, 2 × current limit, kube-proxy's max(32768 × ${input.cpuCount} CPUs, 131072) = ${kubeProxyFloor}) = ${wanted} (rounded up to a multiple of 65536)`,
    `worst-case cost per entry ${perEntry} B (slab object ${input.entryBytes ?? `${FALLBACK_ENTRY_BYTES} assumed`} + ${EXTENSION_BYTES} extension + ${BUCKET_BYTES} bucket)`,
    `memory budget ${input.memoryBudgetPercent}% of ${input.memTotalBytes} B = ${budgetBytes} B → at most ${ceilings[0]?.value} entries`,
    `one step may multiply the limit by at most ${input.maxRaiseFactor} → at most ${ceilings[1]?.value} entries`,
  ];
  if (limitedBy !== 'wanted') explanation.push(`limited by ${limitedBy}: ${chosen} entries`);

  if (chosen <= input.currentMax) {
    explanation.push(`no raise possible: ${chosen} is not above the current limit ${input.currentMax}`);
    return {
      newMax: null,
      newBuckets: null,
      bytesPerEntry: perEntry,
      budgetBytes,
      addedBytesIfFull: 0,
      totalBytesIfFull: input.currentMax * perEntry,
      wanted,
      kubeProxyFloor,
      limitedBy,
      explanation,
    };
  }

  let newBuckets: number | null = null;
  const buckets = input.currentBuckets;
  if (buckets === null || chosen / buckets > MAX_ENTRIES_PER_BUCKET) {
    newBuckets = roundUp(chosen, HASH_ROUNDING);
    explanation.push(
      buckets === null
        ? `hash size unknown: set it to ${newBuckets} buckets (1:1, the kernel's ratio since 5.15)`
        : `${chosen} entries over ${buckets} buckets is ${(chosen / buckets).toFixed(1)} per bucket (> ${MAX_ENTRIES_PER_BUCKET}): resize to ${newBuckets} (1:1)`,
    );
  } else {
    explanation.push(
      `${chosen} entries over ${buckets} buckets is ${(chosen / buckets).toFixed(1)} per bucket (≤ ${MAX_ENTRIES_PER_BUCKET}): hash size left alone, no resize stall`,
    );
  }
  const addedBuckets =
    newBuckets !== null && buckets !== null ? Math.max(0, newBuckets - buckets) : (newBuckets ?? 0);
  const addedBytesIfFull =
    (chosen - input.currentMax) * (perEntry - BUCKET_BYTES) + addedBuckets * BUCKET_BYTES;
  return {
    newMax: chosen,
    newBuckets,
    bytesPerEntry: perEntry,
    budgetBytes,
    addedBytesIfFull,
    totalBytesIfFull: chosen * perEntry,
    wanted,
    kubeProxyFloor,
    limitedBy,
    explanation,
  };
}
