import { describe, expect, it } from 'vitest';
import { buildEvidenceBundle } from '../../../functions/core/evidence/bundle.js';
import { dropIntervals, renderChart } from '../../../functions/core/evidence/chart.js';
import { allSamples } from '../../../functions/core/evidence/incident.js';
import { buildTimeline } from '../../../functions/core/evidence/timeline.js';
import { at, remediatedIncident } from '../../support/evidence-builder.js';
import { findAll, parseXml } from '../../support/xml.js';

const series = (svg: string, name: string) => {
  const found = findAll(parseXml(svg), (element) => element.attributes['data-series'] === name);
  expect(found, `series ${name}`).toHaveLength(1);
  return (found[0]?.attributes['data-values'] ?? '').split(',').filter(Boolean).map(Number);
};

describe('the incident chart', () => {
  const svg = String(buildEvidenceBundle(remediatedIncident()).files.get('chart.svg'));

  it('is well-formed SVG', () => {
    const root = parseXml(svg);
    expect(root.name).toBe('svg');
    expect(root.attributes.xmlns).toBe('http://www.w3.org/2000/svg');
  });

  it('plots the entries of every report sample', () => {
    // before: two samples at 262144; after: two at 180000
    expect(series(svg, 'count')).toEqual([262_144, 262_144, 180_000, 180_000]);
    const circles = findAll(parseXml(svg), (element) => element.name === 'circle');
    expect(circles).toHaveLength(4);
  });

  it('steps the limit up when the raise was applied, not at the next report', () => {
    // before samples, the two raise-limits commands (T+42, T+45), the after samples
    expect(series(svg, 'max')).toEqual([262_144, 262_144, 524_288, 524_288, 524_288, 524_288]);
    const samples = allSamples(remediatedIncident());
    expect(samples.filter((sample) => sample.entries === null).map((sample) => sample.at)).toEqual([
      at(42),
      at(45),
    ]);
  });

  it('draws the drop rate from the kernel counter between samples', () => {
    // 6000 drops in the 3 s of the first report, 15000 between T+13 and T+120, none after
    expect(series(svg, 'drops')).toEqual([2000, Math.round((15_000 / 107) * 100) / 100, 0]);
    const bars = findAll(
      parseXml(svg),
      (element) => element.name === 'rect' && 'data-rate' in element.attributes,
    );
    expect(bars).toHaveLength(3);
  });

  it('marks every timeline event', () => {
    const markers = findAll(parseXml(svg), (element) => 'data-marker' in element.attributes).map(
      (element) => element.attributes['data-marker'],
    );
    expect(markers).toEqual(buildTimeline(remediatedIncident()).events.map((event) => event.key));
  });

  it('escapes hostile text and stays well-formed', () => {
    const hostile = renderChart({
      title: 'host <script>alert(1)</script> & "friends" \u0007',
      samples: [{ at: at(0), entries: 1, max: 2, drop: 0 }],
      markers: [],
    });
    const root = parseXml(hostile);
    expect(hostile).not.toContain('<script');
    expect(findAll(root, (element) => element.name === 'title')[0]?.text).toBe(
      'host <script>alert(1)</script> & "friends" \uFFFD',
    );
  });

  it('says so when there is nothing to plot', () => {
    const empty = renderChart({ title: 'nothing', samples: [], markers: [] });
    expect(parseXml(empty).name).toBe('svg');
    expect(empty).toContain('No counter samples');
  });
});

describe('dropIntervals', () => {
  it('skips a counter that went backwards and samples without a drop value', () => {
    const intervals = dropIntervals([
      { at: at(0), entries: 1, max: 1, drop: 100 },
      { at: at(10), entries: null, max: 5, drop: null },
      { at: at(20), entries: 1, max: 5, drop: 300 },
      { at: at(30), entries: 1, max: 5, drop: 5 },
      { at: at(40), entries: 1, max: 5, drop: 25 },
    ]);
    expect(intervals.map((interval) => [interval.from, interval.to, interval.ratePerSecond])).toEqual([
      [at(0), at(20), 10],
      [at(30), at(40), 2],
    ]);
  });
});

describe('the XML checker used above', () => {
  it.each([
    ['<svg><g></svg>', /closes <g>/],
    ['<svg a=1/>', /not quoted/],
    ['<svg>a & b</svg>', /bad entity/],
    ['<svg/><svg/>', /after the root/],
    ['<svg a="1" a="2"/>', /duplicate attribute/],
    ['<svg><g>', /never closed/],
  ])('rejects %s', (source, message) => {
    expect(() => parseXml(source)).toThrow(message);
  });
});
