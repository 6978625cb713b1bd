import { describe, expect, it } from 'vitest';
import { readDiagnosticsReport } from '../../../functions/core/diagnostics/report.js';
import { ReportBuilder } from '../../support/report-builder.js';

describe('readDiagnosticsReport (the one reader of collect-diagnostics output)', () => {
  it('reads a report that follows the contract', () => {
    const report = ReportBuilder.healthy().build();
    expect(readDiagnosticsReport(JSON.stringify(report))).toEqual({ ok: true, report });
  });

  it('says the text is not JSON, with the parser message', () => {
    const reading = readDiagnosticsReport('{"schemaVersion": 1,');
    expect(reading).toMatchObject({ ok: false, reason: 'not-json' });
    expect(reading.ok ? '' : reading.detail).toMatch(/JSON/);
  });

  it('names the fields that break the contract, at most five unless told otherwise', () => {
    const reading = readDiagnosticsReport(JSON.stringify({ schemaVersion: 1 }));
    expect(reading.ok).toBe(false);
    if (reading.ok) return;
    expect(reading.reason).toBe('not-a-report');
    const problems = reading.detail.split('; ');
    expect(problems).toHaveLength(5);
    expect(problems[0]).toMatch(/^collectedAt: /);
    const first = readDiagnosticsReport(JSON.stringify({ schemaVersion: 1 }), { limit: 1, root: '' });
    expect(first).toEqual({ ok: false, reason: 'not-a-report', detail: problems[0] });
  });

  it('labels a report that is not an object at all by the label given', () => {
    expect(readDiagnosticsReport('[]', { root: '(report)' })).toEqual({
      ok: false,
      reason: 'not-a-report',
      detail: '(report): Invalid input: expected object, received array',
    });
  });
});
