import {
  DEFAULT_FORECAST_SETTINGS,
  type Forecast,
  type ForecastRecord,
  type ForecastSettings,
  forecastRecord,
  forecastTable,
  mergeSamples,
  type SampleGroup,
  samplesInSubscription,
  type WindowSample,
  worthStoring,
} from '../../core/forecast/index.js';
import { startHostSampler } from '../host-sampler.js';
import type { LocalTrigger } from './watch.js';

/**
 * The twin's path for the host sampler (issue 13): the host-sampler document's own script runs in
 * the namespace, and each line it prints goes through the code the detect function runs on a
 * CloudWatch Logs delivery: `samplesInSubscription` reads it, the window is merged as
 * `SampleWindowStore` merges it (nothing kept for an idle table), and `forecastTable` decides. The
 * only differences are where the window lives (memory, not DynamoDB) and the pace (one sample a
 * second by default, not one a minute), so a lab fill that takes a minute is seen in seconds.
 */

/** What opened a near-full incident in the twin: a `LocalTrigger` with the forecast it came from. */
export interface NearFullTrigger extends LocalTrigger {
  readonly kind: 'near-full';
  readonly forecast: ForecastRecord;
  readonly detectedAt: string;
}

export interface ForecastWatchOptions {
  readonly netns: string;
  /** Seconds between samples. @default 1 */
  readonly intervalSeconds?: number;
  /** @default DEFAULT_FORECAST_SETTINGS (30 min horizon, 90 %) */
  readonly settings?: ForecastSettings;
  /** Every forecast made (one per tracked sample), for progress lines and the bench. */
  readonly onForecast?: (forecast: Forecast) => void;
}

export interface ForecastWatcher {
  /**
   * Resolves with the first forecast that triggers; rejects if the sampler stops by itself before.
   * The sampler keeps running (and `onForecast` keeps being called) until `stop()`.
   */
  readonly nearFull: Promise<NearFullTrigger>;
  /** Stops the sampler (idempotent). */
  stop(): Promise<void>;
}

export async function watchTableForecast(options: ForecastWatchOptions): Promise<ForecastWatcher> {
  const settings = options.settings ?? DEFAULT_FORECAST_SETTINGS;
  let window: readonly WindowSample[] = [];
  let lineNumber = 0;
  let done = false;
  let settle: (trigger: NearFullTrigger) => void = () => {};
  let fail: (error: Error) => void = () => {};
  const nearFull = new Promise<NearFullTrigger>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  // A sampler that fails before anyone awaits must not count as unhandled.
  nearFull.catch(() => {});

  /** The last sample lines, the incident's events (as the detect function keeps a group's). */
  const recentEvents: Array<{ timestamp: number; message: string }> = [];
  let triggered = false;
  const onLine = (line: string, receivedAtMs: number) => {
    if (done) return;
    lineNumber += 1;
    // One line is one delivery of one event, from a stream named after the namespace.
    const delivery = samplesInSubscription({
      logStream: options.netns,
      logEvents: [{ id: String(lineNumber), timestamp: receivedAtMs, message: line }],
    });
    for (const group of delivery.groups) {
      const forecast = record(group, receivedAtMs);
      if (forecast === null) continue;
      options.onForecast?.(forecast);
      // Sampling goes on (progress, the lab's figures) until stop(); the first trigger settles.
      if (forecast.trigger === null || triggered) continue;
      triggered = true;
      const first = window[0];
      settle({
        kind: 'near-full',
        firstSeen: first === undefined ? null : new Date(first.t).toISOString(),
        lastSeen: forecast.sampledAt,
        dropLines: 0,
        suppressed: 0,
        events: [...recentEvents],
        forecast: forecastRecord(forecast, window, settings),
        detectedAt: new Date(receivedAtMs).toISOString(),
      });
    }
  };
  const record = (group: SampleGroup, nowMs: number): Forecast | null => {
    for (const event of group.events) {
      recentEvents.push({ timestamp: event.timestamp, message: event.message });
      if (recentEvents.length > 20) recentEvents.shift();
    }
    // As SampleWindowStore.record: an idle delivery leaves the window as it was.
    if (!worthStoring(group.samples, settings)) return null;
    window = mergeSamples(window, group.samples, settings, nowMs).samples;
    return forecastTable(window, settings);
  };

  const sampler = await startHostSampler({
    netns: options.netns,
    intervalSeconds: options.intervalSeconds ?? 1,
    onLine,
    onExit: (code, stderr) => {
      if (done || triggered) return;
      done = true;
      fail(new Error(`the host sampler in ${options.netns} ended (exit ${code}): ${stderr.trim()}`));
    },
  });
  return {
    nearFull,
    stop: async () => {
      done = true;
      await sampler.stop();
    },
  };
}
