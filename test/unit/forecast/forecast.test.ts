import { describe, expect, it } from 'vitest';
import {
  DEFAULT_FORECAST_SETTINGS,
  type ForecastSettings,
  forecastSettingsFromEnvironment,
  forecastTable,
  type HostSample,
  mergeSamples,
  theilSen,
  type WindowSample,
} from '../../../functions/core/forecast/index.js';

const START = Date.parse('2026-12-05T12:00:00Z');
const MAX = 262_144;

/** A window of samples every `interval` seconds with counts from `countAt(i)`. */
function series(
  length: number,
  countAt: (index: number) => number,
  options: {
    interval?: number;
    max?: number | ((index: number) => number);
    drop?: (index: number) => number;
  } = {},
): WindowSample[] {
  const interval = options.interval ?? 60;
  return Array.from({ length }, (_, index) => ({
    t: START + index * interval * 1000,
    count: Math.round(countAt(index)),
    max: typeof options.max === 'function' ? options.max(index) : (options.max ?? MAX),
    drop: options.drop ? options.drop(index) : 0,
    boot: 'a1b2c3d4',
  }));
}

function random(seed: number) {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4_294_967_296;
  };
}

describe('Theil–Sen', () => {
  it('finds the slope of a line and ignores a wild point that moves least squares', () => {
    const points = Array.from({ length: 10 }, (_, x) => ({ x, y: 100 + 5 * x }));
    points[7] = { x: 7, y: 10_000 };
    const fit = theilSen(points);
    expect(fit?.slope).toBe(5);
    expect(fit?.intercept).toBe(100);
    const meanX = 4.5;
    const meanY = points.reduce((sum, point) => sum + point.y, 0) / points.length;
    const leastSquares =
      points.reduce((sum, point) => sum + (point.x - meanX) * (point.y - meanY), 0) /
      points.reduce((sum, point) => sum + (point.x - meanX) ** 2, 0);
    expect(leastSquares).toBeGreaterThan(100);
  });

  it('has no fit for one point or points at one time', () => {
    expect(theilSen([{ x: 1, y: 1 }])).toBeNull();
    expect(
      theilSen([
        { x: 1, y: 1 },
        { x: 1, y: 2 },
      ]),
    ).toBeNull();
  });
});

describe('the forecast', () => {
  const settings = DEFAULT_FORECAST_SETTINGS;

  it('predicts the time to full of a steady fill and opens within the horizon', () => {
    // 131072 entries (50 %) growing by 100 per second: full in 1310.72 s, inside 30 min.
    const window = series(10, (index) => 131_072 + 6000 * index);
    const forecast = forecastTable(window, settings);
    expect(forecast?.growthPerSecond).toBeCloseTo(100, 5);
    expect(forecast?.secondsToFull).toBeCloseTo((MAX - 131_072 - 54_000) / 100, 3);
    expect(forecast?.trigger).toBe('horizon');
    expect(forecast?.predictedFullAt).toBe(
      new Date(START + 9 * 60_000 + (forecast?.secondsToFull ?? 0) * 1000).toISOString(),
    );
    expect(forecast?.summary).toMatch(/growing 100 entries\/s over the last 10 samples .* full in/);
  });

  it('does not open for a slow fill that is hours from full', () => {
    const forecast = forecastTable(
      series(10, (index) => 131_072 + 600 * index),
      settings,
    );
    expect(forecast?.secondsToFull).toBeGreaterThan(3 * 3600);
    expect(forecast?.trigger).toBeNull();
  });

  it('opens on usage above the threshold whatever the trend', () => {
    const forecast = forecastTable(
      series(3, () => 0.93 * MAX),
      settings,
    );
    expect(forecast?.trigger).toBe('usage');
    expect(forecast?.growthPerSecond).toBeNull();
    expect(forecast?.summary).toMatch(/too few samples for a trend \(3 of 5/);
  });

  it('sees no trend in noise around a flat table, at any level below the threshold (seeded)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const next = random(seed);
      const level = 0.3 + next() * 0.55;
      const window = series(15, () => level * MAX + (next() - 0.5) * 0.02 * MAX);
      const forecast = forecastTable(window, settings);
      expect(forecast?.trigger, `seed ${seed}: ${forecast?.summary}`).toBeNull();
    }
  });

  it('has no time to full for a shrinking table', () => {
    const forecast = forecastTable(
      series(10, (index) => 200_000 - 3000 * index),
      settings,
    );
    expect(forecast?.secondsToFull).toBeNull();
    expect(forecast?.trigger).toBeNull();
    expect(forecast?.summary).toMatch(/no steady growth \(0% of sample pairs rising\)/);
  });

  it('sees a fill that began a few samples ago, before it dominates the window', () => {
    // 10 flat minutes at 40 %, then 5 minutes rising 200 entries/s: full in about 10 min.
    const window = series(15, (index) => 0.4 * MAX + Math.max(0, index - 10) * 12_000);
    const forecast = forecastTable(window, settings);
    expect(forecast?.trigger).toBe('horizon');
    expect(forecast?.samplesUsed).toBe(5);
    expect(forecast?.growthPerSecond).toBeCloseTo(200, 5);
  });

  it('counts a raised limit at once: the same growth is far from the new limit', () => {
    const growth = (index: number) => 0.6 * MAX + 6000 * index;
    const before = forecastTable(series(8, growth), settings);
    const raised = forecastTable(
      series(8, growth, { max: (index) => (index < 7 ? MAX : 4 * MAX) }),
      settings,
    );
    expect(before?.trigger).toBe('horizon');
    expect(raised?.max).toBe(4 * MAX);
    expect(raised?.secondsToFull).toBeGreaterThan(2 * 3600);
    expect(raised?.trigger).toBeNull();
  });

  it('fits only after a gap in the samples', () => {
    const window = [
      ...series(6, () => 0.2 * MAX),
      ...series(5, (index) => 0.5 * MAX + 6000 * index).map((sample) => ({
        ...sample,
        t: sample.t + 3_600_000,
      })),
    ];
    const forecast = forecastTable(window, settings);
    expect(forecast?.samplesInWindow).toBe(11);
    expect(forecast?.samplesUsed).toBe(5);
    expect(forecast?.growthPerSecond).toBeCloseTo(100, 5);
  });

  it('is not fooled by a forged or burst sample among a steady fill', () => {
    const window = series(12, (index) => 0.5 * MAX + 3000 * index);
    window[9] = { ...(window[9] as WindowSample), count: 10 };
    window[5] = { ...(window[5] as WindowSample), count: MAX };
    const forecast = forecastTable(window, settings);
    expect(forecast?.growthPerSecond).toBeCloseTo(50, 5);
  });

  it('counts the drops over the samples used, skipping a counter reset', () => {
    const drops = [0, 5, 9, 2, 4, 4];
    const forecast = forecastTable(
      series(6, (index) => 0.95 * MAX + index, { drop: (index) => drops[index] ?? 0 }),
      settings,
    );
    expect(forecast?.dropsInWindow).toBe(5 + 4 + 2);
  });

  it('works at the lab scale: one sample a second, a 4096-entry table', () => {
    const window = series(8, (index) => 900 + 100 * index, { interval: 1, max: 4096 });
    const forecast = forecastTable(window, settings);
    expect(forecast?.secondsToFull).toBeCloseTo((4096 - 1600) / 100, 5);
    expect(forecast?.trigger).toBe('horizon');
  });
});

function hostSample(timeMs: number, count: number, extra: Partial<HostSample> = {}): HostSample {
  return {
    version: 1,
    seq: null,
    timeMs,
    boot: 'a1b2c3d4',
    netns: '4026531840',
    loaded: true,
    count,
    max: MAX,
    drop: 0,
    earlyDrop: 0,
    insertFailed: 0,
    searchRestart: 0,
    cpus: 2,
    ena: [],
    ...extra,
  };
}

describe('the window of samples', () => {
  const settings: ForecastSettings = { ...DEFAULT_FORECAST_SETTINGS, maxSamples: 8, windowSeconds: 600 };
  const now = START + 3_600_000;

  it('merges in time order, once per time, and keeps the latest within the window and the cap', () => {
    const stored = series(6, () => 0.5 * MAX).map((sample) => ({
      ...sample,
      t: now - 700_000 + sample.t - START,
    }));
    const incoming = [
      hostSample(now - 1000, 0.6 * MAX),
      hostSample(now - 2000, 0.6 * MAX),
      hostSample(now - 1000, 0.7 * MAX),
    ];
    const merged = mergeSamples(stored, incoming, settings, now);
    expect(merged.samples.map((sample) => sample.t)).toEqual([
      ...stored.map((sample) => sample.t).filter((t) => t >= now - 1000 - 600_000),
      now - 2000,
      now - 1000,
    ]);
    expect(merged.skipped.duplicate).toBe(1);
    expect(merged.skipped.stale).toBeGreaterThan(0);
    const many = Array.from({ length: 20 }, (_, index) => hostSample(now - 20_000 + index * 1000, 0.5 * MAX));
    expect(mergeSamples([], many, settings, now).samples).toHaveLength(8);
  });

  it('refuses samples from the future and ignores tables below the tracking threshold', () => {
    const merged = mergeSamples(
      [],
      [hostSample(now + 3_600_000, 0.6 * MAX), hostSample(now, 0.01 * MAX), hostSample(now - 1, 0.6 * MAX)],
      settings,
      now,
    );
    expect(merged.samples).toHaveLength(1);
    expect(merged.skipped).toMatchObject({ future: 1, untracked: 1 });
  });

  it('keeps only the newest boot: a reboot emptied the table and restarted the counters', () => {
    const stored = series(4, () => 0.8 * MAX, { interval: 10 }).map((sample) => ({
      ...sample,
      t: now - 100_000 + sample.t - START,
    }));
    const merged = mergeSamples(stored, [hostSample(now, 0.3 * MAX, { boot: 'ffffffff' })], settings, now);
    expect(merged.samples.map((sample) => sample.boot)).toEqual(['ffffffff']);
    expect(merged.skipped['other-boot']).toBe(4);
  });

  it('empties the window when the module is reported unloaded', () => {
    const stored = series(3, () => 0.8 * MAX, { interval: 10 }).map((sample) => ({
      ...sample,
      t: now - 100_000 + sample.t - START,
    }));
    const merged = mergeSamples(
      stored,
      [hostSample(now, 0, { loaded: false, count: null, max: null })],
      settings,
      now,
    );
    expect(merged).toMatchObject({ samples: [], unloaded: true });
  });

  it('stays bounded and ordered whatever is merged (seeded random deliveries)', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const next = random(seed);
      let window: readonly WindowSample[] = [];
      for (let delivery = 0; delivery < 10; delivery++) {
        const incoming = Array.from({ length: Math.floor(next() * 30) }, () =>
          hostSample(now + Math.floor((next() - 0.8) * 2_000_000), Math.floor(next() * MAX), {
            boot: next() < 0.05 ? 'ffffffff' : 'a1b2c3d4',
          }),
        );
        window = mergeSamples(window, incoming, settings, now).samples;
        expect(window.length).toBeLessThanOrEqual(settings.maxSamples);
        const times = window.map((sample) => sample.t);
        expect(times).toEqual([...new Set(times)].sort((a, b) => a - b));
        expect(new Set(window.map((sample) => sample.boot)).size).toBeLessThanOrEqual(1);
        if (window.length > 0) {
          expect((times.at(-1) ?? 0) - (times[0] ?? 0)).toBeLessThanOrEqual(settings.windowSeconds * 1000);
          expect(times.at(-1)).toBeLessThanOrEqual(now + settings.maxClockSkewSeconds * 1000);
          expect(forecastTable(window, settings)).not.toBeNull();
        }
      }
    }
  });
});

describe('forecast settings from the environment', () => {
  it('takes the horizon and the usage threshold, and names a bad value', () => {
    expect(forecastSettingsFromEnvironment({})).toEqual(DEFAULT_FORECAST_SETTINGS);
    expect(
      forecastSettingsFromEnvironment({ NEAR_FULL_HORIZON_MINUTES: '10', NEAR_FULL_USAGE_PERCENT: '85' }),
    ).toMatchObject({ horizonSeconds: 600, usageThreshold: 0.85 });
    expect(() => forecastSettingsFromEnvironment({ NEAR_FULL_USAGE_PERCENT: '100' })).toThrow(
      /environment variable NEAR_FULL_USAGE_PERCENT must be a whole number from 50 to 99, got '100'/,
    );
  });
});
