import { theilSen } from './fit.js';
import type { ForecastSettings } from './settings.js';
import type { WindowSample } from './window.js';

/**
 * When will this table be full? From one host's window of samples: the usage now, the growth
 * rate, and the predicted time to full, with the reason it opens a `near-full` incident or not.
 * Pure; docs/forecast.md explains every rule.
 *
 * - The fit starts after the last gap in the samples (a spacing over `gapFactor` times the usual
 *   one: the sampler or its shipping stopped, and what happened meanwhile is unknown).
 * - Growth is a Theil–Sen fit of the count over time, tried on the trailing `minSamples`,
 *   2 × `minSamples`, … samples up to all of them, so that a fill that started recently is seen
 *   before it dominates the whole window. A candidate counts only when it is a trend, not noise:
 *   at least `minRisingShare` of its sample pairs rise, and the fitted rise over it is at least
 *   `minRiseRatio` of the limit. Of the candidates that count, the one predicting the earliest
 *   full table is taken (the cautious reading: acting early costs a confirmed, bounded change).
 * - Time to full = (the latest limit − the fitted count now) / growth: a raised limit moves it out
 *   at once; a table that shrinks or stays flat has none.
 * - Counter resets (the drop counter going backwards: module reloaded) are skipped when counting
 *   the drops in the window; a reboot already emptied the window (see `mergeSamples`).
 */

export type ForecastTrigger = 'usage' | 'horizon';

export interface Forecast {
  readonly method: 'theil-sen';
  /** Time of the latest sample (the host's clock), ISO 8601. */
  readonly sampledAt: string;
  readonly count: number;
  readonly max: number;
  /** The latest count / max. */
  readonly usage: number;
  /** Samples in the window, and the ones the chosen fit used (after the last gap). */
  readonly samplesInWindow: number;
  readonly samplesUsed: number;
  readonly spanSeconds: number;
  /** Entries per second; null until a trend is seen. */
  readonly growthPerSecond: number | null;
  readonly risingShare: number | null;
  /** Seconds from the latest sample until the table is full at that growth; null when it is not growing. */
  readonly secondsToFull: number | null;
  readonly predictedFullAt: string | null;
  /** Drops the kernel counted over the samples used (counter resets skipped); null without a counter. */
  readonly dropsInWindow: number | null;
  /** Why it opens an incident, or null. */
  readonly trigger: ForecastTrigger | null;
  /** The reading in one sentence, for logs, the incident and the postmortem. */
  readonly summary: string;
}

export function forecastTable(window: readonly WindowSample[], settings: ForecastSettings): Forecast | null {
  const latest = window.at(-1);
  if (latest === undefined || latest.max <= 0) return null;
  const segment = afterLastGap(window, settings.gapFactor);
  const usage = latest.count / latest.max;
  const sampledAt = new Date(latest.t).toISOString();

  let best: { growth: number; secondsToFull: number | null; used: number; risingShare: number } | null = null;
  let lastShare: number | null = null;
  for (const size of candidateSizes(segment.length, settings.minSamples)) {
    const points = segment.slice(-size);
    const origin = (points[0] as WindowSample).t;
    const fit = theilSen(points.map((sample) => ({ x: (sample.t - origin) / 1000, y: sample.count })));
    if (fit === null) continue;
    lastShare = fit.risingShare;
    const span = ((points.at(-1) as WindowSample).t - origin) / 1000;
    const rise = fit.slope * span;
    if (
      fit.slope <= 0 ||
      fit.risingShare < settings.minRisingShare ||
      rise < settings.minRiseRatio * latest.max
    ) {
      continue;
    }
    const fittedNow = fit.intercept + fit.slope * span;
    const secondsToFull = Math.max(0, (latest.max - fittedNow) / fit.slope);
    // Sizes grow: on a tie the fit over more samples wins.
    if (best === null || secondsToFull <= (best.secondsToFull ?? Number.POSITIVE_INFINITY) * (1 + 1e-9)) {
      best = { growth: fit.slope, secondsToFull, used: points.length, risingShare: fit.risingShare };
    }
  }

  const used = best?.used ?? segment.length;
  const usedSamples = segment.slice(-used);
  const spanSeconds = usedSamples.length > 1 ? (latest.t - (usedSamples[0] as WindowSample).t) / 1000 : 0;
  const secondsToFull = best?.secondsToFull ?? null;
  const trigger: ForecastTrigger | null =
    usage >= settings.usageThreshold
      ? 'usage'
      : secondsToFull !== null && secondsToFull <= settings.horizonSeconds
        ? 'horizon'
        : null;
  const percent = (ratio: number) => `${(ratio * 100).toFixed(ratio >= 0.995 && ratio < 1 ? 1 : 0)}%`;
  const growthText =
    best === null
      ? segment.length < settings.minSamples
        ? `too few samples for a trend (${segment.length} of ${settings.minSamples} since the last gap)`
        : `no steady growth (${lastShare === null ? 'no fit' : `${percent(lastShare)} of sample pairs rising`})`
      : `growing ${formatRate(best.growth)} over the last ${usedSamples.length} samples (${Math.round(spanSeconds)} s, ${percent(best.risingShare)} of pairs rising), full in ${formatDuration(best.secondsToFull ?? 0)}`;
  return {
    method: 'theil-sen',
    sampledAt,
    count: latest.count,
    max: latest.max,
    usage,
    samplesInWindow: window.length,
    samplesUsed: usedSamples.length,
    spanSeconds,
    growthPerSecond: best?.growth ?? null,
    risingShare: best?.risingShare ?? lastShare,
    secondsToFull,
    predictedFullAt: secondsToFull === null ? null : new Date(latest.t + secondsToFull * 1000).toISOString(),
    dropsInWindow: dropsIn(usedSamples),
    trigger,
    summary: `${latest.count} of ${latest.max} entries (${percent(usage)}), ${growthText}`,
  };
}

/** The samples after the last gap: a spacing over `factor` times the median spacing. */
export function afterLastGap(window: readonly WindowSample[], factor: number): readonly WindowSample[] {
  if (window.length < 3) return window;
  const spacings = window.slice(1).map((sample, index) => sample.t - (window[index] as WindowSample).t);
  const sorted = [...spacings].sort((a, b) => a - b);
  const usual = sorted[sorted.length >> 1] as number;
  for (let index = spacings.length - 1; index >= 0; index--) {
    if ((spacings[index] as number) > factor * usual) return window.slice(index + 1);
  }
  return window;
}

function candidateSizes(length: number, minSamples: number): number[] {
  const sizes: number[] = [];
  for (let size = minSamples; size < length; size *= 2) sizes.push(size);
  if (length >= minSamples) sizes.push(length);
  return sizes;
}

function dropsIn(samples: readonly WindowSample[]): number | null {
  let total: number | null = null;
  for (let index = 1; index < samples.length; index++) {
    const a = (samples[index - 1] as WindowSample).drop;
    const b = (samples[index] as WindowSample).drop;
    if (a === null || b === null) continue;
    total = (total ?? 0) + (b >= a ? b - a : 0);
  }
  return total;
}

export function formatRate(perSecond: number): string {
  return perSecond >= 1
    ? `${perSecond.toFixed(perSecond >= 10 ? 0 : 1)} entries/s`
    : `${(perSecond * 60).toFixed(1)} entries/min`;
}

export function formatDuration(seconds: number): string {
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** At most this many samples travel with an incident (the window's cap). */
export const MAX_RECORD_SAMPLES = 64;

/**
 * What a `near-full` incident carries from detection to the workflow and the postmortem: the
 * forecast, the settings it was made with, and the samples it was made from. All of it came from
 * lines anyone on the host could write: the workflow confirms on the host before any change.
 */
export interface ForecastRecord extends Forecast {
  readonly horizonSeconds: number;
  readonly usageThreshold: number;
  readonly samples: readonly {
    readonly at: string;
    readonly count: number;
    readonly max: number;
    readonly drop: number | null;
  }[];
}

export function forecastRecord(
  forecast: Forecast,
  window: readonly WindowSample[],
  settings: Pick<ForecastSettings, 'horizonSeconds' | 'usageThreshold'>,
): ForecastRecord {
  return {
    ...forecast,
    horizonSeconds: settings.horizonSeconds,
    usageThreshold: settings.usageThreshold,
    samples: window.slice(-MAX_RECORD_SAMPLES).map((sample) => ({
      at: new Date(sample.t).toISOString(),
      count: sample.count,
      max: sample.max,
      drop: sample.drop,
    })),
  };
}
