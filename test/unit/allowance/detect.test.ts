import { describe, expect, it } from 'vitest';
import type { InterfaceCounters } from '../../../functions/core/allowance/counters.js';
import {
  type AllowanceReading,
  allowanceRecord,
  checkAllowance,
  DEFAULT_ALLOWANCE_DETECT_SETTINGS,
} from '../../../functions/core/allowance/detect.js';
import type { HostSample } from '../../../functions/core/forecast/index.js';

const NOW = Date.parse('2026-03-13T20:10:00Z');
const BOOT = '1f0e2d3c';

function sample(timeMs: number, ena: InterfaceCounters[], boot: string | null = BOOT): HostSample {
  return {
    version: 1,
    seq: null,
    timeMs,
    boot,
    netns: '4026531840',
    loaded: false,
    count: null,
    max: null,
    drop: null,
    earlyDrop: null,
    insertFailed: null,
    searchRestart: null,
    cpus: null,
    ena,
  };
}

const eth0 = (exceeded: number | null, available: number | null = 100_000): InterfaceCounters => ({
  name: 'eth0',
  exceeded,
  available,
});

function stored(at: number, interfaces: InterfaceCounters[], boot: string | null = BOOT): AllowanceReading[] {
  return [{ at, boot, interfaces }];
}

describe('checkAllowance: EC2 allowance findings from sample lines', () => {
  it('takes the first reading of a host as a baseline only, and keeps it', () => {
    const result = checkAllowance([], [sample(NOW - 1000, [eth0(5000)])], NOW);
    expect(result.findings).toEqual([]);
    expect(result.write).toBe(true);
    expect(result.reading).toEqual({ at: NOW - 1000, boot: BOOT, interfaces: [eth0(5000)] });
  });

  it('finds a rise against the stored reading of an earlier delivery, naming the interface', () => {
    const result = checkAllowance(
      stored(NOW - 61_000, [eth0(5000), { name: 'eth1', exceeded: 7, available: null }]),
      [sample(NOW - 1000, [eth0(5600), { name: 'eth1', exceeded: 7, available: null }])],
      NOW,
    );
    expect(result.findings.map((finding) => [finding.name, finding.exhausted, finding.low])).toEqual([
      ['eth0', true, false],
    ]);
    expect(result.findings[0]?.allowance).toMatchObject({
      exceededIncrease: 600,
      coveredSeconds: 60,
      exceededPerSecond: 10,
    });
    expect(result.write).toBe(true);
  });

  it('finds a rise within one delivery without any stored reading', () => {
    const result = checkAllowance([], [sample(NOW - 2000, [eth0(10)]), sample(NOW - 1000, [eth0(12)])], NOW);
    expect(result.findings).toHaveLength(1);
  });

  it('counts across a driver reset (the counter went backwards) from zero again', () => {
    const reset = checkAllowance(stored(NOW - 61_000, [eth0(5000)]), [sample(NOW - 1000, [eth0(30)])], NOW);
    expect(reset.findings[0]?.allowance).toMatchObject({ exceededIncrease: 30, resets: 1 });
    expect(reset.findings[0]?.detail).toMatch(/across 1 driver reset/);
    const quietReset = checkAllowance(
      stored(NOW - 61_000, [eth0(5000)]),
      [sample(NOW - 1000, [eth0(0)])],
      NOW,
    );
    expect(quietReset.findings).toEqual([]);
  });

  it('starts a new baseline after a reboot or a gap longer than the limit', () => {
    const rebooted = checkAllowance(
      stored(NOW - 61_000, [eth0(5)], 'aaaaaaaa'),
      [sample(NOW - 1000, [eth0(9000)])],
      NOW,
    );
    expect(rebooted.findings).toEqual([]);
    expect(rebooted.write).toBe(true);
    const gap = DEFAULT_ALLOWANCE_DETECT_SETTINGS.maxGapSeconds * 1000;
    const late = checkAllowance(stored(NOW - gap - 2000, [eth0(5)]), [sample(NOW - 1000, [eth0(9000)])], NOW);
    expect(late.findings).toEqual([]);
    expect(late.reading?.at).toBe(NOW - 1000);
  });

  it('finds a low conntrack_allowance_available at once, from one sample', () => {
    const result = checkAllowance([], [sample(NOW - 1000, [eth0(0, 800)])], NOW);
    expect(result.findings.map((finding) => [finding.name, finding.exhausted, finding.low])).toEqual([
      ['eth0', false, true],
    ]);
    expect(checkAllowance([], [sample(NOW - 1000, [eth0(0, 1001)])], NOW).findings).toEqual([]);
  });

  it('rewrites a quiet reading only when it is due for a refresh', () => {
    const refresh = DEFAULT_ALLOWANCE_DETECT_SETTINGS.refreshSeconds * 1000;
    const quiet = checkAllowance(
      stored(NOW - 61_000, [eth0(5)]),
      [sample(NOW - 1000, [eth0(5, 90_000)])],
      NOW,
    );
    expect(quiet).toMatchObject({ findings: [], write: false });
    const due = checkAllowance(stored(NOW - refresh - 1000, [eth0(5)]), [sample(NOW - 1000, [eth0(5)])], NOW);
    expect(due).toMatchObject({ findings: [], write: true });
    const newInterface = checkAllowance(
      stored(NOW - 61_000, [eth0(5)]),
      [sample(NOW - 1000, [eth0(5), { name: 'eth1', exceeded: 0, available: null }])],
      NOW,
    );
    expect(newInterface.write).toBe(true);
  });

  it('finds the same rise again for a retried delivery, against the reading before it', () => {
    const delivery = [sample(NOW - 1000, [eth0(5600)])];
    const first = checkAllowance(stored(NOW - 61_000, [eth0(5000)]), delivery, NOW);
    expect(first.previous?.at).toBe(NOW - 61_000);
    const kept = [first.reading, first.previous].filter((reading) => reading !== null);
    const retry = checkAllowance(kept, delivery, NOW + 60_000);
    expect(retry.findings.map((finding) => finding.detail)).toEqual(
      first.findings.map((finding) => finding.detail),
    );
    expect(retry.write).toBe(false);
  });

  it('leaves a newer stored reading in place for a late, retried delivery', () => {
    const result = checkAllowance(stored(NOW - 1000, [eth0(50)]), [sample(NOW - 61_000, [eth0(5)])], NOW);
    expect(result.write).toBe(false);
  });

  it('ignores samples without ENA counters and samples from the future', () => {
    expect(checkAllowance([], [sample(NOW - 1000, [])], NOW)).toEqual({
      reading: null,
      previous: null,
      write: false,
      rates: [],
      findings: [],
    });
    const future = checkAllowance(
      stored(NOW - 61_000, [eth0(5)]),
      [sample(NOW + 3_600_000, [eth0(9000)])],
      NOW,
    );
    expect(future).toMatchObject({ reading: null, findings: [] });
  });

  it('records what opened the incident, one detail per interface', () => {
    const { findings } = checkAllowance(
      stored(NOW - 61_000, [eth0(5000, 500)]),
      [sample(NOW - 1000, [eth0(5600, 400)])],
      NOW,
    );
    const record = allowanceRecord(findings, NOW - 1000, DEFAULT_ALLOWANCE_DETECT_SETTINGS);
    expect(record).toMatchObject({
      sampledAt: new Date(NOW - 1000).toISOString(),
      lowAvailable: 1000,
      interfaces: [{ name: 'eth0', exhausted: true, low: true, exceededIncrease: 600, available: 400 }],
    });
    expect(record.summary).toMatch(
      /^eth0: conntrack_allowance_exceeded rose by 600 in 60 s \(10\.0\/s\); conntrack_allowance_available is 400/,
    );
  });
});
