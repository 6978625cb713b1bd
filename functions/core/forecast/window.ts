import type { HostSample } from './sample-line.js';
import type { ForecastSettings } from './settings.js';

/**
 * The recent samples of one host's table (one network namespace), as the forecast needs them and
 * as the detect function stores them between invocations (it is stateless). Pure.
 *
 * `mergeSamples` folds new samples into the stored ones and keeps the window bounded: at most
 * `maxSamples`, none older than `windowSeconds` before the newest, none from the future, one per
 * time, only those of the newest boot (a reboot empties the table and restarts every counter), and
 * nothing once the module reports itself unloaded.
 */

export interface WindowSample {
  /** The host's time of the sample, milliseconds since the epoch. */
  readonly t: number;
  readonly count: number;
  readonly max: number;
  /** The cumulative drop counter, null when the sampler had none. */
  readonly drop: number | null;
  readonly boot: string | null;
}

export interface MergeResult {
  readonly samples: readonly WindowSample[];
  /** What was left out, by reason (for the function's log; never an error). */
  readonly skipped: Readonly<Partial<Record<SkipReason, number>>>;
  /** True when a sample said nf_conntrack is not loaded (the window was emptied). */
  readonly unloaded: boolean;
}

export type SkipReason = 'future' | 'stale' | 'duplicate' | 'untracked' | 'other-boot' | 'over-limit';

/** Whether a sample is worth storing at all (see `trackFromUsage`). */
export function isTracked(sample: Pick<WindowSample, 'count' | 'max'>, settings: ForecastSettings): boolean {
  return sample.max > 0 && sample.count / sample.max >= settings.trackFromUsage;
}

export function toWindowSample(sample: HostSample): WindowSample | null {
  if (!sample.loaded || sample.count === null || sample.max === null) return null;
  return { t: sample.timeMs, count: sample.count, max: sample.max, drop: sample.drop, boot: sample.boot };
}

export function mergeSamples(
  stored: readonly WindowSample[],
  incoming: readonly HostSample[],
  settings: ForecastSettings,
  nowMs: number,
): MergeResult {
  const skipped: Partial<Record<SkipReason, number>> = {};
  const skip = (reason: SkipReason, count = 1) => {
    skipped[reason] = (skipped[reason] ?? 0) + count;
  };
  const latestFirst = [...incoming].sort((a, b) => b.timeMs - a.timeMs);
  const newestUnloaded = latestFirst.find(
    (sample) => !sample.loaded && sample.timeMs <= nowMs + settings.maxClockSkewSeconds * 1000,
  );
  const fresh: WindowSample[] = [];
  for (const sample of incoming) {
    const converted = toWindowSample(sample);
    if (converted === null) continue;
    if (converted.t > nowMs + settings.maxClockSkewSeconds * 1000) {
      skip('future');
      continue;
    }
    // A sample taken before the module was reported unloaded belongs to a table that is gone.
    if (newestUnloaded !== undefined && converted.t <= newestUnloaded.timeMs) {
      skip('stale');
      continue;
    }
    if (!isTracked(converted, settings)) {
      skip('untracked');
      continue;
    }
    fresh.push(converted);
  }
  const unloaded = newestUnloaded !== undefined && fresh.length === 0;
  const kept =
    newestUnloaded === undefined ? [...stored] : stored.filter((sample) => sample.t > newestUnloaded.timeMs);
  if (newestUnloaded !== undefined && kept.length < stored.length) skip('stale', stored.length - kept.length);

  const byTime = new Map<number, WindowSample>();
  for (const sample of kept) byTime.set(sample.t, sample);
  for (const sample of fresh) {
    if (byTime.has(sample.t)) skip('duplicate');
    else byTime.set(sample.t, sample);
  }
  let samples = [...byTime.values()].sort((a, b) => a.t - b.t);
  const newest = samples.at(-1);
  if (newest === undefined) return { samples: [], skipped, unloaded };

  const sameBoot = samples.filter((sample) => sample.boot === newest.boot);
  if (sameBoot.length < samples.length) skip('other-boot', samples.length - sameBoot.length);
  const recent = sameBoot.filter((sample) => sample.t >= newest.t - settings.windowSeconds * 1000);
  if (recent.length < sameBoot.length) skip('stale', sameBoot.length - recent.length);
  samples = recent;
  if (samples.length > settings.maxSamples) {
    skip('over-limit', samples.length - settings.maxSamples);
    samples = samples.slice(-settings.maxSamples);
  }
  return { samples, skipped, unloaded };
}

/** Whether a delivery holds anything worth keeping: a tracked sample, or the module unloaded. */
export function worthStoring(samples: readonly HostSample[], settings: ForecastSettings): boolean {
  return samples.some(
    (sample) =>
      !sample.loaded ||
      (sample.count !== null &&
        sample.max !== null &&
        isTracked({ count: sample.count, max: sample.max }, settings)),
  );
}
