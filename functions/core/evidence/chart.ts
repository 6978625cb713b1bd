import type { CounterSample } from './incident.js';
import type { TimelineEvent } from './timeline.js';

/**
 * The incident chart, as a self-contained SVG string: conntrack entries (line) against the limit
 * (dashed step line) on the left axis, and the drop rate between consecutive samples (bars) on
 * the right axis, with the timeline's events as vertical markers. Every series carries
 * `data-series` and its values in `data-values`, so tests (and people) can read the numbers back.
 */

const WIDTH = 880;
const HEIGHT = 430;
const PLOT = { left: 90, right: 800, top: 90, bottom: 350 };
const COLORS = {
  count: '#1f6feb',
  max: '#cf222e',
  drops: '#f0883e',
  marker: '#6e7781',
  grid: '#d8dee4',
  text: '#24292f',
};

export interface ChartInput {
  readonly title: string;
  readonly samples: readonly CounterSample[];
  readonly markers: readonly TimelineEvent[];
  /**
   * A near-full forecast: the line from the last sample it used to the predicted full time, drawn
   * dashed (series `forecast`); cut at the chart's right edge when the full time lies far beyond.
   */
  readonly projection?: {
    readonly from: { readonly at: string; readonly entries: number };
    readonly fullAt: string;
    readonly max: number;
  };
}

export interface DropInterval {
  readonly from: string;
  readonly to: string;
  readonly drops: number;
  readonly ratePerSecond: number;
}

/** Drop rate between consecutive samples with a known, non-decreasing counter. */
export function dropIntervals(all: readonly CounterSample[]): DropInterval[] {
  const samples = all.filter((sample) => sample.drop !== null);
  const intervals: DropInterval[] = [];
  for (let index = 1; index < samples.length; index++) {
    const a = samples[index - 1];
    const b = samples[index];
    if (!a || !b || a.drop === null || b.drop === null || b.drop < a.drop) continue;
    const seconds = (Date.parse(b.at) - Date.parse(a.at)) / 1000;
    if (seconds <= 0) continue;
    intervals.push({
      from: a.at,
      to: b.at,
      drops: b.drop - a.drop,
      ratePerSecond: (b.drop - a.drop) / seconds,
    });
  }
  return intervals;
}

export function renderChart(input: ChartInput): string {
  const samples = [...input.samples].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  const times = [
    ...samples.map((sample) => Date.parse(sample.at)),
    ...input.markers.map((marker) => Date.parse(marker.at)),
  ];
  const parts: string[] = [];
  parts.push(
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="Helvetica, Arial, sans-serif" font-size="12" role="img" aria-labelledby="chart-title">`,
    `<title id="chart-title">${escapeXml(input.title)}</title>`,
    `<rect x="0" y="0" width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`,
    `<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold" fill="${COLORS.text}">${escapeXml(input.title)}</text>`,
  );
  if (times.length === 0) {
    parts.push(
      `<text x="${WIDTH / 2}" y="${HEIGHT / 2}" text-anchor="middle" fill="${COLORS.text}">No counter samples were collected for this incident.</text>`,
      '</svg>',
    );
    return `${parts.join('\n')}\n`;
  }

  const intervals = dropIntervals(samples);
  const scales = chartScales(samples, times, intervals, input.projection);
  parts.push(
    ...axes(scales),
    ...dropBars(intervals, scales),
    ...limitLine(samples, scales),
    ...countLine(samples, scales),
    ...(input.projection ? forecastLine(input.projection, scales) : []),
    ...markerLines(input.markers, scales),
    ...legend(),
  );
  return `${parts.join('\n')}\n`;
}

/** Where a time and a value fall on the plot: time across, entries on the left, drops/s on the right. */
interface ChartScales {
  readonly tMin: number;
  readonly tMax: number;
  readonly leftMax: number;
  readonly rightMax: number;
  x(ms: number): number;
  yLeft(value: number): number;
  yRight(value: number): number;
}

function chartScales(
  samples: readonly CounterSample[],
  times: readonly number[],
  intervals: readonly DropInterval[],
  projection: ChartInput['projection'],
): ChartScales {
  let tMin = Math.min(...times);
  let tMax = Math.max(...times);
  if (projection && times.length > 0) {
    // Show the predicted full time when it is near; otherwise at most as far again as the data.
    const full = Date.parse(projection.fullAt);
    if (Number.isFinite(full) && full > tMax) tMax = Math.min(full, tMax + Math.max(tMax - tMin, 10_000));
  }
  if (tMax - tMin < 10_000) {
    tMin -= 5_000;
    tMax += 5_000;
  }
  const levels = samples
    .flatMap((sample) => [sample.entries, sample.max])
    .filter((value): value is number => value !== null);
  const leftMax = niceCeiling(Math.max(1, ...levels) * 1.1);
  const rightMax = niceCeiling(Math.max(1, ...intervals.map((interval) => interval.ratePerSecond)) * 1.15);
  return {
    tMin,
    tMax,
    leftMax,
    rightMax,
    x: (ms) => PLOT.left + ((ms - tMin) / (tMax - tMin)) * (PLOT.right - PLOT.left),
    yLeft: (value) => PLOT.bottom - (value / leftMax) * (PLOT.bottom - PLOT.top),
    yRight: (value) => PLOT.bottom - (value / rightMax) * (PLOT.bottom - PLOT.top),
  };
}

/** Grid and axes. */
function axes({ tMin, tMax, leftMax, rightMax, x, yLeft, yRight }: ChartScales): string[] {
  const parts = ['<g data-part="axes">'];
  for (const tick of ticks(leftMax)) {
    const y = yLeft(tick).toFixed(1);
    parts.push(
      `<line x1="${PLOT.left}" x2="${PLOT.right}" y1="${y}" y2="${y}" stroke="${COLORS.grid}" stroke-width="1"/>`,
      `<text x="${PLOT.left - 8}" y="${y}" text-anchor="end" dominant-baseline="middle" fill="${COLORS.count}">${formatCount(tick)}</text>`,
    );
  }
  for (const tick of ticks(rightMax)) {
    parts.push(
      `<text x="${PLOT.right + 8}" y="${yRight(tick).toFixed(1)}" dominant-baseline="middle" fill="${COLORS.drops}">${formatCount(tick)}</text>`,
    );
  }
  for (let index = 0; index <= 5; index++) {
    const ms = tMin + ((tMax - tMin) * index) / 5;
    parts.push(
      `<text x="${x(ms).toFixed(1)}" y="${PLOT.bottom + 18}" text-anchor="middle" fill="${COLORS.text}">${new Date(ms).toISOString().slice(11, 19)}</text>`,
    );
  }
  parts.push(
    `<line x1="${PLOT.left}" x2="${PLOT.right}" y1="${PLOT.bottom}" y2="${PLOT.bottom}" stroke="${COLORS.text}"/>`,
    `<line x1="${PLOT.left}" x2="${PLOT.left}" y1="${PLOT.top}" y2="${PLOT.bottom}" stroke="${COLORS.text}"/>`,
    `<line x1="${PLOT.right}" x2="${PLOT.right}" y1="${PLOT.top}" y2="${PLOT.bottom}" stroke="${COLORS.text}"/>`,
    `<text x="${(PLOT.left + PLOT.right) / 2}" y="${PLOT.bottom + 38}" text-anchor="middle" fill="${COLORS.text}">time (UTC), ${new Date(tMin).toISOString().slice(0, 10)}</text>`,
    `<text transform="translate(22 ${(PLOT.top + PLOT.bottom) / 2}) rotate(-90)" text-anchor="middle" fill="${COLORS.count}">conntrack entries</text>`,
    `<text transform="translate(${WIDTH - 16} ${(PLOT.top + PLOT.bottom) / 2}) rotate(90)" text-anchor="middle" fill="${COLORS.drops}">dropped packets per second</text>`,
    '</g>',
  );
  return parts;
}

/** Drop-rate bars (drawn first, behind the lines). */
function dropBars(intervals: readonly DropInterval[], { x, yRight }: ChartScales): string[] {
  const parts = [
    `<g data-series="drops" data-values="${intervals.map((interval) => round(interval.ratePerSecond)).join(',')}" fill="${COLORS.drops}" fill-opacity="0.45">`,
  ];
  for (const interval of intervals) {
    const x1 = x(Date.parse(interval.from));
    const x2 = x(Date.parse(interval.to));
    const y = yRight(interval.ratePerSecond);
    parts.push(
      `<rect x="${x1.toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(1, x2 - x1).toFixed(1)}" height="${(PLOT.bottom - y).toFixed(1)}" data-rate="${round(interval.ratePerSecond)}"><title>${escapeXml(`${interval.drops} drops from ${interval.from} to ${interval.to} (${round(interval.ratePerSecond)}/s)`)}</title></rect>`,
    );
  }
  parts.push('</g>');
  return parts;
}

/** The limit as a step line: it changes only when someone sets it. */
function limitLine(samples: readonly CounterSample[], { x, yLeft }: ChartScales): string[] {
  const withMax = samples.filter((sample) => sample.max !== null);
  if (withMax.length === 0) return [];
  const [first, ...rest] = withMax;
  let d = `M${x(Date.parse(first?.at ?? '')).toFixed(1)} ${yLeft(first?.max ?? 0).toFixed(1)}`;
  for (const sample of rest)
    d += ` H${x(Date.parse(sample.at)).toFixed(1)} V${yLeft(sample.max ?? 0).toFixed(1)}`;
  return [
    `<path data-series="max" data-values="${withMax.map((sample) => sample.max).join(',')}" d="${d}" fill="none" stroke="${COLORS.max}" stroke-width="2" stroke-dasharray="7 4"/>`,
  ];
}

/** The entries as a line with a dot per sample. */
function countLine(samples: readonly CounterSample[], { x, yLeft }: ChartScales): string[] {
  const withCount = samples.filter((sample) => sample.entries !== null);
  if (withCount.length === 0) return [];
  const points = withCount.map(
    (sample) => `${x(Date.parse(sample.at)).toFixed(1)},${yLeft(sample.entries ?? 0).toFixed(1)}`,
  );
  return [
    `<g data-series="count" data-values="${withCount.map((sample) => sample.entries).join(',')}">`,
    `<polyline points="${points.join(' ')}" fill="none" stroke="${COLORS.count}" stroke-width="2.5"/>`,
    ...withCount.map(
      (sample, index) =>
        `<circle cx="${points[index]?.split(',')[0]}" cy="${points[index]?.split(',')[1]}" r="3.5" fill="${COLORS.count}"><title>${escapeXml(`${sample.entries} entries at ${sample.at}${sample.max ? ` (limit ${sample.max})` : ''}`)}</title></circle>`,
    ),
    '</g>',
  ];
}

/** A near-full forecast's dashed line, cut at the chart's right edge. */
function forecastLine(
  projection: NonNullable<ChartInput['projection']>,
  { tMax, x, yLeft }: ChartScales,
): string[] {
  const fromMs = Date.parse(projection.from.at);
  const fullMs = Date.parse(projection.fullAt);
  if (!(Number.isFinite(fromMs) && Number.isFinite(fullMs) && fullMs > fromMs)) return [];
  const endMs = Math.min(fullMs, tMax);
  const endEntries =
    projection.from.entries +
    ((projection.max - projection.from.entries) * (endMs - fromMs)) / (fullMs - fromMs);
  return [
    `<g data-series="forecast" data-values="${projection.from.entries},${Math.round(endEntries)}" data-full-at="${escapeXml(projection.fullAt)}">`,
    `<line x1="${x(fromMs).toFixed(1)}" y1="${yLeft(projection.from.entries).toFixed(1)}" x2="${x(endMs).toFixed(1)}" y2="${yLeft(endEntries).toFixed(1)}" stroke="${COLORS.count}" stroke-width="2" stroke-dasharray="3 4"><title>${escapeXml(`forecast: full at ${projection.fullAt}`)}</title></line>`,
    '</g>',
  ];
}

/** Timeline markers, labels staggered so that close events stay readable. */
function markerLines(markers: readonly TimelineEvent[], { x }: ChartScales): string[] {
  const parts = ['<g data-part="markers">'];
  markers.forEach((marker, index) => {
    const mx = x(Date.parse(marker.at)).toFixed(1);
    const labelY = PLOT.top - 6 - (index % 4) * 12;
    parts.push(
      `<g data-marker="${escapeXml(marker.key)}" data-at="${escapeXml(marker.at)}">`,
      `<line x1="${mx}" x2="${mx}" y1="${labelY + 3}" y2="${PLOT.bottom}" stroke="${COLORS.marker}" stroke-dasharray="2 3"/>`,
      `<text x="${(Number(mx) + 3).toFixed(1)}" y="${labelY}" font-size="10" fill="${COLORS.marker}">${escapeXml(marker.key)}</text>`,
      '</g>',
    );
  });
  parts.push('</g>');
  return parts;
}

/** The legend, and the end of the SVG. */
function legend(): string[] {
  const legendY = HEIGHT - 22;
  return [
    '<g data-part="legend">',
    `<line x1="${PLOT.left}" x2="${PLOT.left + 24}" y1="${legendY}" y2="${legendY}" stroke="${COLORS.count}" stroke-width="2.5"/>`,
    `<text x="${PLOT.left + 30}" y="${legendY}" dominant-baseline="middle" fill="${COLORS.text}">entries (nf_conntrack_count)</text>`,
    `<line x1="${PLOT.left + 230}" x2="${PLOT.left + 254}" y1="${legendY}" y2="${legendY}" stroke="${COLORS.max}" stroke-width="2" stroke-dasharray="7 4"/>`,
    `<text x="${PLOT.left + 260}" y="${legendY}" dominant-baseline="middle" fill="${COLORS.text}">limit (nf_conntrack_max)</text>`,
    `<rect x="${PLOT.left + 450}" y="${legendY - 6}" width="24" height="12" fill="${COLORS.drops}" fill-opacity="0.45"/>`,
    `<text x="${PLOT.left + 480}" y="${legendY}" dominant-baseline="middle" fill="${COLORS.text}">drops/s between samples (kernel counter)</text>`,
    '</g>',
    '</svg>',
  ];
}

export function escapeXml(text: string): string {
  return text
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD') // characters XML 1.0 forbids
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function niceCeiling(value: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10])
    if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

function ticks(maximum: number): number[] {
  return [0, 1, 2, 3, 4, 5].map((index) => (maximum * index) / 5);
}

function formatCount(value: number): string {
  if (value >= 1_000_000) return `${round(value / 1_000_000)}M`;
  if (value >= 10_000) return `${round(value / 1_000)}k`;
  return String(round(value));
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
