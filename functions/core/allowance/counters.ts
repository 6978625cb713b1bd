/**
 * EC2's connection-tracking allowance, as the ENA driver counts it on each interface
 * (`ethtool -S`): `conntrack_allowance_exceeded`, packets dropped because the instance tracked as
 * many connections as its type allows, and `conntrack_allowance_available`, connections it can
 * still track (Nitro with ENA ≥ 2.8.1 only). Both are cumulative "since the last driver reset"
 * (AWS, "Monitor network performance for your EC2 instance",
 * https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-network-performance-ena.html):
 * only a rise between two samples says something is happening now.
 *
 * Pure: no clock, no I/O. The host sampler's lines (detection) and the two samples of a
 * diagnostics report (confirmation, verification) both come here.
 */

/** One reading of one interface's counters; null where the driver does not have the counter. */
export interface InterfaceCounters {
  readonly name: string;
  readonly exceeded: number | null;
  readonly available: number | null;
}

/** The counters of every interface of one host at one moment. */
export interface AllowanceSample {
  /** Milliseconds since the epoch. */
  readonly at: number;
  readonly interfaces: readonly InterfaceCounters[];
}

export interface InterfaceAllowance {
  readonly name: string;
  /** Drops counted between the first and the last usable sample (resets included, see below). */
  readonly exceededIncrease: number;
  /** Seconds those drops were counted over; 0 when fewer than two samples had the counter. */
  readonly coveredSeconds: number;
  /** exceededIncrease / coveredSeconds, null when nothing was covered (a single sample is only a baseline). */
  readonly exceededPerSecond: number | null;
  /** The newest reading of conntrack_allowance_available, null when the driver has none. */
  readonly available: number | null;
  /** Times the counter went backwards: the driver was reset (or the interface re-created) in between. */
  readonly resets: number;
}

export interface AllowanceRateOptions {
  /**
   * Two samples further apart than this are not compared (the host slept, the sampler stopped):
   * the later one is a new baseline. @default Infinity
   */
  readonly maxGapMs?: number;
}

/**
 * Per interface, how fast `conntrack_allowance_exceeded` rose over the samples (in any order; they
 * are sorted by time). The first sample of an interface is only a baseline. A counter that goes
 * backwards was reset by the driver and counts up from zero again, so the later value is what it
 * counted since the reset (the rule Prometheus' rate() uses for counter resets); a gap longer than
 * `maxGapMs` starts a new baseline instead, because nothing is known about what happened in it.
 */
export function allowanceRates(
  samples: readonly AllowanceSample[],
  options: AllowanceRateOptions = {},
): InterfaceAllowance[] {
  const maxGapMs = options.maxGapMs ?? Number.POSITIVE_INFINITY;
  const ordered = [...samples].filter((sample) => Number.isFinite(sample.at)).sort((a, b) => a.at - b.at);
  const byName = new Map<
    string,
    {
      last: { at: number; exceeded: number } | null;
      increase: number;
      coveredMs: number;
      available: number | null;
      resets: number;
    }
  >();
  for (const sample of ordered) {
    for (const counters of sample.interfaces) {
      let state = byName.get(counters.name);
      if (state === undefined) {
        state = { last: null, increase: 0, coveredMs: 0, available: null, resets: 0 };
        byName.set(counters.name, state);
      }
      if (counters.available !== null && validCount(counters.available)) state.available = counters.available;
      const exceeded = counters.exceeded;
      if (exceeded === null || !validCount(exceeded)) continue;
      const last = state.last;
      state.last = { at: sample.at, exceeded };
      if (last === null || sample.at - last.at > maxGapMs || sample.at === last.at) continue;
      if (exceeded >= last.exceeded) {
        state.increase += exceeded - last.exceeded;
      } else {
        state.resets++;
        state.increase += exceeded;
      }
      state.coveredMs += sample.at - last.at;
    }
  }
  return [...byName.entries()].map(([name, state]) => ({
    name,
    exceededIncrease: state.increase,
    coveredSeconds: state.coveredMs / 1000,
    exceededPerSecond: state.coveredMs > 0 ? state.increase / (state.coveredMs / 1000) : null,
    available: state.available,
    resets: state.resets,
  }));
}

function validCount(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

export interface AllowanceThresholds {
  /**
   * conntrack_allowance_available at or below this is "nearly exhausted" even before a drop: a
   * new connection needs a free entry, and bursts use hundreds within a second.
   */
  readonly lowAvailable: number;
  /** conntrack_allowance_exceeded rising faster than this (per second) is "exhausted". */
  readonly maxExceededPerSecond: number;
}

export const DEFAULT_ALLOWANCE_THRESHOLDS: AllowanceThresholds = {
  lowAvailable: 1000,
  maxExceededPerSecond: 0,
};

export interface AllowanceFinding {
  readonly name: string;
  readonly exhausted: boolean;
  readonly low: boolean;
  readonly allowance: InterfaceAllowance;
  /** One line for people. */
  readonly detail: string;
}

/** The interfaces whose allowance is exhausted (drops rising) or nearly so (available low). */
export function allowanceFindings(
  rates: readonly InterfaceAllowance[],
  thresholds: AllowanceThresholds = DEFAULT_ALLOWANCE_THRESHOLDS,
): AllowanceFinding[] {
  const findings: AllowanceFinding[] = [];
  for (const allowance of rates) {
    const rate = allowance.exceededPerSecond;
    const exhausted =
      rate !== null && allowance.exceededIncrease > 0 && rate > thresholds.maxExceededPerSecond;
    const low = allowance.available !== null && allowance.available <= thresholds.lowAvailable;
    if (!exhausted && !low) continue;
    const parts: string[] = [];
    if (exhausted) {
      parts.push(
        `conntrack_allowance_exceeded rose by ${allowance.exceededIncrease} in ${formatSeconds(allowance.coveredSeconds)} (${(rate ?? 0).toFixed(1)}/s)${allowance.resets > 0 ? `, across ${allowance.resets} driver reset${allowance.resets > 1 ? 's' : ''}` : ''}`,
      );
    }
    if (low) {
      parts.push(
        `conntrack_allowance_available is ${allowance.available} (at or below ${thresholds.lowAvailable})`,
      );
    }
    findings.push({
      name: allowance.name,
      exhausted,
      low,
      allowance,
      detail: `${allowance.name}: ${parts.join('; ')}`,
    });
  }
  return findings;
}

function formatSeconds(seconds: number): string {
  return seconds >= 120 ? `${(seconds / 60).toFixed(1)} min` : `${Number(seconds.toFixed(2))} s`;
}
