import type { HostSample } from '../forecast/sample-line.js';
import {
  type AllowanceFinding,
  type AllowanceSample,
  allowanceFindings,
  allowanceRates,
  DEFAULT_ALLOWANCE_THRESHOLDS,
  type InterfaceAllowance,
} from './counters.js';

/**
 * Detection of an exhausted EC2 allowance from the host sampler's lines (issue 14): the ENA
 * counters of one host's samples, compared with the last reading the detect function kept for it,
 * become an `ec2-allowance` finding when `conntrack_allowance_exceeded` rose or
 * `conntrack_allowance_available` is low. Pure; the detect function stores the baseline
 * (functions/adapters/allowance-baseline-store.ts). docs/forecast.md, "EC2's allowance".
 *
 * - The first reading of a host is only a baseline: a cumulative counter says nothing on its own.
 * - Two readings are kept, the latest and the one before it, so that a retried delivery (whose
 *   samples are the latest reading) is compared with the same baseline again and finds the same
 *   rise: its incident and workflow start exactly as on the first attempt.
 * - Driver resets (the counter going backwards) count from zero again (allowanceRates).
 * - A reboot (another `boot`) or a gap longer than `maxGapSeconds` starts a new baseline: what
 *   happened in between is unknown.
 * - Like every sample, this only ever opens an incident: the workflow's diagnostics confirm on the
 *   host's own counters before anything changes.
 */

export interface AllowanceDetectSettings {
  /** conntrack_allowance_available at or below this opens an incident (the policy's default). */
  readonly lowAvailable: number;
  /** A stored reading older than this before the next sample is not a baseline. */
  readonly maxGapSeconds: number;
  /** The stored reading is rewritten at least this often, even when nothing changed. */
  readonly refreshSeconds: number;
  /** Samples stamped further ahead of the receiving clock than this are ignored. */
  readonly maxClockSkewSeconds: number;
}

export const DEFAULT_ALLOWANCE_DETECT_SETTINGS: AllowanceDetectSettings = {
  lowAvailable: DEFAULT_ALLOWANCE_THRESHOLDS.lowAvailable,
  maxGapSeconds: 15 * 60,
  refreshSeconds: 5 * 60,
  maxClockSkewSeconds: 300,
};

/** The last ENA reading of one host's namespace, as the detect function keeps it. */
export interface AllowanceReading extends AllowanceSample {
  readonly boot: string | null;
}

export interface AllowanceCheck {
  /** What to keep as the next baseline; null when the delivery had no ENA counters. */
  readonly reading: AllowanceReading | null;
  /** The reading to keep before it (the baseline this delivery was compared with, if any). */
  readonly previous: AllowanceReading | null;
  /** Whether the stored reading needs writing (new, changed, or due for a refresh). */
  readonly write: boolean;
  readonly rates: readonly InterfaceAllowance[];
  /** The interfaces whose allowance is exhausted or low; empty: no incident. */
  readonly findings: readonly AllowanceFinding[];
}

/** `stored`: the readings kept for the host (the latest and the one before it), in any order. */
export function checkAllowance(
  stored: readonly AllowanceReading[],
  samples: readonly HostSample[],
  nowMs: number,
  settings: AllowanceDetectSettings = DEFAULT_ALLOWANCE_DETECT_SETTINGS,
): AllowanceCheck {
  const latest = samples
    .filter((sample) => sample.ena.length > 0 && sample.timeMs <= nowMs + settings.maxClockSkewSeconds * 1000)
    .sort((a, b) => a.timeMs - b.timeMs);
  const newest = latest.at(-1);
  if (newest === undefined) return { reading: null, previous: null, write: false, rates: [], findings: [] };
  const readings: AllowanceReading[] = latest
    .filter((sample) => sample.boot === newest.boot)
    .map((sample) => ({ at: sample.timeMs, boot: sample.boot, interfaces: sample.ena }));
  const first = readings[0] as AllowanceReading;
  const sameBoot = stored.filter((reading) => reading.boot === newest.boot);
  const baseline =
    sameBoot
      .filter((reading) => reading.at < first.at && first.at - reading.at <= settings.maxGapSeconds * 1000)
      .sort((a, b) => b.at - a.at)[0] ?? null;
  const series = baseline === null ? readings : [baseline, ...readings];
  const rates = allowanceRates(series, { maxGapMs: settings.maxGapSeconds * 1000 });
  const findings = allowanceFindings(rates, {
    lowAvailable: settings.lowAvailable,
    maxExceededPerSecond: 0,
  });
  const reading = readings.at(-1) as AllowanceReading;
  const write =
    baseline === null ||
    reading.at - baseline.at >= settings.refreshSeconds * 1000 ||
    !sameExceeded(baseline, reading);
  // A stored reading as new as this delivery's (a retried or late delivery) stays where it is.
  const stale = sameBoot.some((kept) => kept.at >= reading.at);
  return { reading, previous: baseline, write: write && !stale, rates, findings };
}

function sameExceeded(a: AllowanceSample, b: AllowanceSample): boolean {
  if (a.interfaces.length !== b.interfaces.length) return false;
  return a.interfaces.every((item) =>
    b.interfaces.some((other) => other.name === item.name && other.exceeded === item.exceeded),
  );
}

/**
 * What an `ec2-allowance` incident carries from detection to the workflow and the postmortem.
 * Everything in it came from lines anyone on the host could write.
 */
export interface AllowanceRecord {
  /** Time of the latest sample (the host's clock), ISO 8601. */
  readonly sampledAt: string;
  readonly lowAvailable: number;
  readonly interfaces: readonly {
    readonly name: string;
    readonly exhausted: boolean;
    readonly low: boolean;
    readonly exceededIncrease: number;
    readonly coveredSeconds: number;
    readonly exceededPerSecond: number | null;
    readonly available: number | null;
    readonly resets: number;
  }[];
  /** One sentence per interface, for logs, the incident and the postmortem. */
  readonly summary: string;
}

export function allowanceRecord(
  findings: readonly AllowanceFinding[],
  sampledAtMs: number,
  settings: Pick<AllowanceDetectSettings, 'lowAvailable'>,
): AllowanceRecord {
  return {
    sampledAt: new Date(sampledAtMs).toISOString(),
    lowAvailable: settings.lowAvailable,
    interfaces: findings.map((finding) => ({
      name: finding.name,
      exhausted: finding.exhausted,
      low: finding.low,
      exceededIncrease: finding.allowance.exceededIncrease,
      coveredSeconds: finding.allowance.coveredSeconds,
      exceededPerSecond: finding.allowance.exceededPerSecond,
      available: finding.allowance.available,
      resets: finding.allowance.resets,
    })),
    summary: findings.map((finding) => finding.detail).join('; '),
  };
}
