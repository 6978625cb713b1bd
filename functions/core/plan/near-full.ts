import type { DiagnosticsReport } from '../diagnostics/report.js';
import { formatDuration, formatRate } from '../forecast/forecast.js';
import type { Policy } from './policy.js';
import { percent, type Signals } from './signals.js';
import type { Alert } from './types.js';

/**
 * Confirming a `near-full` incident on the host itself (docs/forecast.md). The incident was opened
 * by the host sampler's lines, which any local user can write, so its forecast is never trusted:
 * only the diagnostics the workflow ran over SSM count. Confirmation means rising usage, not drops:
 *
 *   confirmed  ⇔  usage ≥ nearFullRatio
 *               ∨ (the count rose between the report's two samples
 *                  ∧ at the rate between them the table is full within the horizon)
 *
 * The growth is measured over the report's sampling interval (SampleSeconds, 3 s by default): a
 * short look, so a noisy table can read flat; then the incident ends "not confirmed", nothing is
 * changed, and the next forecast after the cooldown tries again. The predicted demand the planner
 * sizes for is the host's count plus that growth over the horizon.
 */

/** The horizon when the incident does not carry one (the forecast's default). */
export const DEFAULT_HORIZON_SECONDS = 30 * 60;
const HORIZON_BOUNDS = { min: 60, max: 24 * 3600 } as const;

export interface NearFullReading {
  readonly confirmed: boolean;
  readonly horizonSeconds: number;
  /** Entries added between the report's two samples (null when the report has no entries column). */
  readonly rise: number | null;
  readonly growthPerSecond: number | null;
  /** At the host's own growth, seconds until count reaches max; null when not growing. */
  readonly secondsToFull: number | null;
  /** count + growth × horizon: what the table is expected to need at the horizon. */
  readonly predictedEntries: number | null;
  /** What the host's counters show, in plain words (the plan's confirmation). */
  readonly statements: readonly string[];
}

export function horizonOf(alert: Alert): number {
  const claimed = alert.forecast?.horizonSeconds;
  if (typeof claimed !== 'number' || !Number.isFinite(claimed)) return DEFAULT_HORIZON_SECONDS;
  return Math.min(HORIZON_BOUNDS.max, Math.max(HORIZON_BOUNDS.min, Math.round(claimed)));
}

export function readNearFull(
  report: DiagnosticsReport,
  signals: Signals,
  alert: Alert,
  policy: Pick<Policy, 'nearFullRatio'>,
): NearFullReading {
  const horizonSeconds = horizonOf(alert);
  const { first, second } = report.conntrack.stats;
  const interval = signals.intervalSeconds;
  const rise =
    first.entries !== undefined && second.entries !== undefined ? second.entries - first.entries : null;
  const growthPerSecond = rise !== null && interval > 0 ? rise / interval : null;
  const count = signals.count;
  const max = signals.max;
  const secondsToFull =
    growthPerSecond !== null && growthPerSecond > 0 && count !== null && max !== null
      ? Math.max(0, (max - count) / growthPerSecond)
      : null;
  const predictedEntries =
    count === null ? null : Math.round(count + Math.max(0, growthPerSecond ?? 0) * horizonSeconds);
  const high = signals.usage !== null && signals.usage >= policy.nearFullRatio;
  const rising = rise !== null && rise > 0;
  const soon = secondsToFull !== null && secondsToFull <= horizonSeconds;
  const statements: string[] = [];
  const level = `${count ?? 'unknown'} of ${max ?? 'unknown'} entries (${percent(signals.usage)})`;
  const riseText =
    rise === null
      ? 'the report has no entry counts for its two samples, so the growth cannot be measured'
      : `${rise >= 0 ? '+' : ''}${rise} entries in ${interval} s between the report's two samples`;
  if (high) {
    statements.push(
      `the table is at ${level}, at or above ${percent(policy.nearFullRatio)}: the kernel starts dropping new flows near its limit (its GC early-drops above 95 %)`,
    );
  }
  if (rising) {
    statements.push(
      `the table is growing on the host: ${riseText} (${formatRate(growthPerSecond ?? 0)})${secondsToFull === null ? '' : `; at that rate it is full in ${formatDuration(secondsToFull)}${soon ? `, within the ${formatDuration(horizonSeconds)} horizon` : `, beyond the ${formatDuration(horizonSeconds)} horizon`}`}`,
    );
  } else if (!high) {
    statements.push(`the host's own counters do not show the table filling: ${riseText}, at ${level}`);
  }
  if (alert.forecast?.predictedFullAt) {
    statements.push(
      `the host sampler's lines predicted it full at ${alert.forecast.predictedFullAt} (a claim only: any local user can write such a line, so only the counters above count)`,
    );
  }
  return {
    confirmed: high || (rising && soon),
    horizonSeconds,
    rise,
    growthPerSecond,
    secondsToFull,
    predictedEntries,
    statements,
  };
}
