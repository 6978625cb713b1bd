/**
 * How the forecast reads a host's recent samples and when it opens a `near-full` incident. One
 * object for the detect function (from its environment), the local twin and the tests. The reasons
 * for each default are in docs/forecast.md.
 */

import { type Environment, onOff, wholeNumber } from '../environment.js';

export interface ForecastSettings {
  /** Open an incident when the table is predicted full within this many seconds. */
  readonly horizonSeconds: number;
  /** ... or when the latest sample's count/max is at least this. */
  readonly usageThreshold: number;
  /** Samples older than this (before the newest one) leave the window. */
  readonly windowSeconds: number;
  /** At most this many samples are kept per host and namespace (the latest). */
  readonly maxSamples: number;
  /** A fit needs at least this many samples after the last gap. */
  readonly minSamples: number;
  /** Share of sample pairs that must rise for the growth to count as a trend, not noise. */
  readonly minRisingShare: number;
  /** ... and the fitted rise over the samples used must be at least this share of the limit. */
  readonly minRiseRatio: number;
  /**
   * Below this usage a sample is neither stored nor read (a mostly idle fleet costs no storage);
   * a table this empty is minutes from full only under a flood the kernel's own line will show.
   */
  readonly trackFromUsage: number;
  /** Samples stamped further ahead of the receiving clock than this are refused. */
  readonly maxClockSkewSeconds: number;
  /** Two samples further apart than this many times the usual spacing mark a gap: the fit starts after it. */
  readonly gapFactor: number;
}

export const DEFAULT_FORECAST_SETTINGS: ForecastSettings = {
  horizonSeconds: 30 * 60,
  usageThreshold: 0.9,
  windowSeconds: 15 * 60,
  maxSamples: 64,
  minSamples: 5,
  minRisingShare: 0.7,
  minRiseRatio: 0.01,
  trackFromUsage: 0.2,
  maxClockSkewSeconds: 300,
  gapFactor: 3,
};

/** The environment variables of the detect function that set the two operator-facing values. */
export const FORECAST_ENVIRONMENT = {
  horizonMinutes: 'NEAR_FULL_HORIZON_MINUTES',
  usagePercent: 'NEAR_FULL_USAGE_PERCENT',
  /** `off` stops the per-instance metrics (ConntrackEntries, ConntrackUsage, ConntrackDropCounter). */
  hostMetrics: 'HOST_SAMPLE_METRICS',
} as const;

/** Whether the detect function publishes each sample as per-instance metrics (default on). */
export function hostMetricsFromEnvironment(env: Environment): boolean {
  return onOff(env, FORECAST_ENVIRONMENT.hostMetrics, { fallback: true });
}

export const HORIZON_MINUTES_RANGE = { min: 1, max: 1440 } as const;
export const USAGE_PERCENT_RANGE = { min: 50, max: 99 } as const;

/**
 * The settings from the detect function's environment (defaults where unset); a value out of its
 * range throws, naming the variable, so a misconfigured function fails at init.
 */
export function forecastSettingsFromEnvironment(env: Environment): ForecastSettings {
  const horizonMinutes = wholeNumber(
    env,
    FORECAST_ENVIRONMENT.horizonMinutes,
    HORIZON_MINUTES_RANGE,
    DEFAULT_FORECAST_SETTINGS.horizonSeconds / 60,
  );
  const usagePercent = wholeNumber(
    env,
    FORECAST_ENVIRONMENT.usagePercent,
    USAGE_PERCENT_RANGE,
    DEFAULT_FORECAST_SETTINGS.usageThreshold * 100,
  );
  return {
    ...DEFAULT_FORECAST_SETTINGS,
    horizonSeconds: horizonMinutes * 60,
    usageThreshold: usagePercent / 100,
  };
}
