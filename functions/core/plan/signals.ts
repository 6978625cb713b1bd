import { allowanceRates, type InterfaceAllowance } from '../allowance/counters.js';
import type { ConntrackStats, DiagnosticsReport } from '../diagnostics/report.js';

/**
 * The numbers every decision rests on, read from one diagnostics report. Counters in
 * /proc/net/stat/nf_conntrack are cumulative since the module was loaded, so only the difference
 * between the report's two samples says what is happening now.
 */
export interface Signals {
  readonly loaded: boolean;
  readonly netnsInode: string | null;
  readonly intervalSeconds: number;
  readonly count: number | null;
  /** null when the module is not loaded or nf_conntrack_max is 0 (0 means "no limit"). */
  readonly max: number | null;
  readonly buckets: number | null;
  /** count / max, null when either is unknown. */
  readonly usage: number | null;
  /** Deltas between the two samples; null when a counter is missing or went backwards (module reloaded). */
  readonly drop: number | null;
  readonly insertFailed: number | null;
  readonly clashResolved: number | null;
  readonly chainTooLong: number | null;
  readonly earlyDrop: number | null;
  /**
   * Drops attributable to a full table: the kernel counts a failed allocation (table full) in `drop`,
   * and a lost insert race or an over-long hash chain in `insert_failed` (clash drops count in both),
   * so `drop - insert_failed` is what the table's size caused.
   */
  readonly tableFullDrops: number | null;
  readonly ena: readonly {
    readonly interface: string;
    readonly mac: string | null;
    readonly exceededDelta: number | null;
    readonly available: number | null;
  }[];
  /** Sum of the ENA `conntrack_allowance_exceeded` deltas over all interfaces. */
  readonly enaExceeded: number;
  /**
   * The same counters as rates over the report's two samples (functions/core/allowance): the first
   * sample is the baseline, a counter that went backwards (driver reset) counts from zero.
   */
  readonly allowance: readonly InterfaceAllowance[];
  /** Expectations in use, estimated as expect_create - expect_delete; null when the counters are absent. */
  readonly expectationsInUse: number | null;
  readonly expectMax: number | null;
  /** Problems found while reading the counters, in plain words. */
  readonly notes: readonly string[];
}

const STAT_ALIASES = {
  drop: ['drop'],
  insertFailed: ['insert_failed'],
  // /proc/net/stat names the column `clashres` (it replaced `searched`); `conntrack -S` says `clash_resolve`.
  clashResolved: ['clashres', 'clash_resolve'],
  // /proc prints the chaintoolong counter under the header `chainlength` (kernel >= 5.15).
  chainTooLong: ['chaintoolong', 'chainlength'],
  earlyDrop: ['early_drop'],
} as const;

function read(stats: ConntrackStats, names: readonly string[]): number | undefined {
  for (const name of names) {
    const value = stats[name];
    if (value !== undefined) return value;
  }
  return undefined;
}

export function readSignals(report: DiagnosticsReport): Signals {
  const notes: string[] = [];
  const { conntrack } = report;
  const { first, second, intervalSeconds } = conntrack.stats;

  const delta = (label: string, names: readonly string[]): number | null => {
    const a = read(first, names);
    const b = read(second, names);
    if (a === undefined || b === undefined) return null;
    if (b < a) {
      notes.push(`counter ${label} went backwards between the samples (${a} → ${b}): module reloaded?`);
      return null;
    }
    return b - a;
  };

  const drop = delta('drop', STAT_ALIASES.drop);
  const insertFailed = delta('insert_failed', STAT_ALIASES.insertFailed);
  const clashResolved = delta('clashres', STAT_ALIASES.clashResolved);
  const chainTooLong = delta('chaintoolong', STAT_ALIASES.chainTooLong);
  const earlyDrop = delta('early_drop', STAT_ALIASES.earlyDrop);
  if (drop === null && conntrack.loaded) notes.push('the report has no usable drop counter');

  const max = conntrack.loaded && conntrack.max !== null && conntrack.max > 0 ? conntrack.max : null;
  if (conntrack.loaded && conntrack.max === 0)
    notes.push('nf_conntrack_max is 0, which the kernel treats as "no limit"');
  const count = conntrack.loaded ? conntrack.count : null;
  const usage = max !== null && count !== null ? count / max : null;

  const allowance = allowanceRates([
    {
      at: 0,
      interfaces: report.ena.map((entry) => ({ name: entry.interface, ...entry.first })),
    },
    {
      at: intervalSeconds * 1000,
      interfaces: report.ena.map((entry) => ({ name: entry.interface, ...entry.second })),
    },
  ]);
  const ena = report.ena.map((entry) => {
    const rate = allowance.find((item) => item.name === entry.interface);
    const a = entry.first.exceeded;
    const b = entry.second.exceeded;
    const exceededDelta = a === null || b === null ? null : (rate?.exceededIncrease ?? null);
    if (a !== null && b !== null && b < a) {
      notes.push(
        `conntrack_allowance_exceeded of ${entry.interface} went backwards between the samples (${a} → ${b}): the ENA driver was reset, so it counts from zero again`,
      );
    }
    return {
      interface: entry.interface,
      mac: entry.mac ?? null,
      exceededDelta,
      available: entry.second.available,
    };
  });
  const enaExceeded = ena.reduce((sum, entry) => sum + (entry.exceededDelta ?? 0), 0);

  const created = second.expect_create;
  const deleted = second.expect_delete;
  const expectationsInUse =
    created !== undefined && deleted !== undefined ? Math.max(0, created - deleted) : null;
  const expectMax = conntrack.sysctls['net.netfilter.nf_conntrack_expect_max'] ?? null;

  return {
    loaded: conntrack.loaded,
    netnsInode: report.host.netnsInode,
    intervalSeconds,
    count,
    max,
    buckets: conntrack.buckets,
    usage,
    drop,
    insertFailed,
    clashResolved,
    chainTooLong,
    earlyDrop,
    tableFullDrops: drop === null ? null : Math.max(0, drop - (insertFailed ?? 0)),
    ena,
    enaExceeded,
    allowance,
    expectationsInUse,
    expectMax,
    notes,
  };
}

export function percent(ratio: number | null): string {
  return ratio === null ? 'unknown' : `${(ratio * 100).toFixed(ratio >= 0.995 && ratio < 1 ? 1 : 0)}%`;
}

export function mebibytes(bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(bytes < 10 * 1_048_576 ? 1 : 0)} MiB`;
}
