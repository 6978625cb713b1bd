import { describe, expect, it } from 'vitest';
import { buildEvidenceBundle } from '../../../functions/core/evidence/bundle.js';
import { estimateImpact } from '../../../functions/core/evidence/impact.js';
import type { IncidentEvidence } from '../../../functions/core/evidence/incident.js';
import { buildTimeline, type Timeline } from '../../../functions/core/evidence/timeline.js';
import { resolvePolicy } from '../../../functions/core/plan/policy.js';
import { verifyRemediation } from '../../../functions/core/plan/verify.js';
import { OUTCOMES } from '../../../functions/core/workflow/outcome.js';
import { at, remediatedIncident } from '../../support/evidence-builder.js';
import { ReportBuilder } from '../../support/report-builder.js';

describe('buildTimeline', () => {
  it('orders the events of a remediated incident', () => {
    const timeline = buildTimeline(remediatedIncident());
    expect(timeline.events.map((event) => event.key)).toEqual([
      'first-drop',
      'detected',
      'diagnosed',
      'approved',
      'remediated',
      'verified',
      'closed',
    ]);
    const times = timeline.events.map((event) => Date.parse(event.at));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(timeline.problems).toEqual([]);
  });

  it('takes each time from the input that records it', () => {
    const evidence = remediatedIncident();
    const { at: times } = buildTimeline(evidence);
    // The log events arrive out of order; the first drop is the earliest of them.
    expect(times['first-drop']).toBe(at(0));
    expect(times.detected).toBe(evidence.detectedAt);
    expect(times.diagnosed).toBe(evidence.commands.find((c) => c.step === 'collect-before')?.finishedAt);
    expect(times.approved).toBe(evidence.approvals[0]?.at);
    expect(times.remediated).toBe(
      evidence.commands
        .filter((c) => c.step === 'apply')
        .map((c) => c.finishedAt)
        .sort()
        .at(-1),
    );
    expect(times.verified).toBe(evidence.commands.find((c) => c.step === 'collect-after')?.finishedAt);
    expect(times.closed).toBe(evidence.closedAt);
  });

  it('falls back to the report times when no command times were recorded', () => {
    const evidence = { ...remediatedIncident(), commands: [] };
    const { at: times } = buildTimeline(evidence);
    // before.collectedAt (T+10) plus its 3-second sample interval
    expect(times.diagnosed).toBe(at(13));
    expect(times.remediated).toBeUndefined();
  });

  it('reports contradictions instead of hiding them', () => {
    const evidence = remediatedIncident();
    const late = { ...evidence, approvals: [{ ...evidence.approvals[0], at: at(50) }] } as IncidentEvidence;
    const timeline = buildTimeline(late);
    expect(timeline.problems).toEqual([`remediated (${at(45)}) is before approved (${at(50)})`]);
    const postmortem = String(buildEvidenceBundle(late).files.get('postmortem.md'));
    expect(postmortem).toContain('Timeline inconsistencies');
    expect(postmortem).toContain(`remediated (${at(45)}) is before approved (${at(50)})`);
  });

  it('records a failed verification and the rollback', () => {
    const evidence = remediatedIncident();
    const stillDropping = ReportBuilder.healthy()
      .collectedAt(at(120))
      .table({ max: 524_288, count: 524_000 })
      .stat('drop', 71_000, 73_000)
      .listener('tcp', 8080)
      .build();
    const failed: IncidentEvidence = {
      ...evidence,
      after: stillDropping,
      verification: verifyRemediation(evidence.before ?? stillDropping, stillDropping, resolvePolicy()),
      outcome: OUTCOMES.rolledBack,
      commands: [
        ...evidence.commands,
        {
          step: 'rollback',
          document: 'rollback',
          actionId: 'limits',
          parameters: { ChangeId: 'inc-42-limits' },
          commandId: 'cmd-rb',
          startedAt: at(123),
          finishedAt: at(124),
          status: 'Success',
          exitCode: 0,
          stdout: '',
          stderr: '',
        },
      ],
    };
    const timeline = buildTimeline(failed);
    expect(timeline.events.map((event) => event.key)).toEqual([
      'first-drop',
      'detected',
      'diagnosed',
      'approved',
      'remediated',
      'verification-failed',
      'rolled-back',
      'closed',
    ]);
    const impact = estimateImpact(failed, timeline);
    expect(impact.duration).toEqual({ seconds: 125, until: 'closed', confirmedAt: null });
    const postmortem = String(buildEvidenceBundle(failed).files.get('postmortem.md'));
    expect(postmortem).toContain('| applied, then rolled back |');
    expect(postmortem).toContain('Drops were not shown to stop');
  });
});

describe('the postmortem timeline', () => {
  const bundle = buildEvidenceBundle(remediatedIncident());
  const postmortem = String(bundle.files.get('postmortem.md'));
  const timeline = JSON.parse(String(bundle.files.get('timeline.json'))) as Timeline;

  it('lists the same events as timeline.json, in the same order, with the same times', () => {
    const section = postmortem.split('## Timeline')[1]?.split('\n## ')[0] ?? '';
    const rows = section
      .split('\n')
      .filter((line) => /^\| \d{4}-/.test(line))
      .map((line) => line.split('|')[1]?.trim());
    expect(rows).toEqual(timeline.events.map((event) => event.at.replace('T', ' ').replace('Z', '')));
    expect(rows.length).toBe(7);
  });

  it('agrees with the manifest times', () => {
    expect(bundle.manifest.times.firstDrop).toBe(timeline.at['first-drop']);
    expect(bundle.manifest.times.verified).toBe(timeline.at.verified);
  });

  it('has every section of the postmortem', () => {
    for (const heading of [
      '## Summary',
      '## Impact',
      '## Timeline',
      '## Root cause',
      '## Actions taken',
      '## Verification',
      '## Follow-ups',
    ]) {
      expect(postmortem).toContain(heading);
    }
    expect(postmortem).toContain(
      '![Conntrack entries against the limit, and the drop rate, over the incident](chart.svg)',
    );
    expect(postmortem).toContain('net.netfilter.nf_conntrack_max = 524288');
  });
});

describe('estimateImpact', () => {
  it('counts drops from the kernel counter, whatever the log lines say', () => {
    const evidence = remediatedIncident();
    const timeline = buildTimeline(evidence);
    const loud = { ...evidence, alert: { ...evidence.alert, dropLines: 1_000_000, suppressed: 9_999_999 } };
    const quiet = estimateImpact(evidence, timeline);
    const noisy = estimateImpact(loud, timeline);
    // after.second.drop (71000) - before.first.drop (50000)
    expect(quiet.measured?.drops).toBe(21_000);
    // 6000 drops in 3 s = 2000/s over the 10 s from the first drop line to the first sample
    expect(quiet.beforeDiagnosis).toMatchObject({ drops: 20_000, ratePerSecond: 2_000, seconds: 10 });
    expect(quiet.totalEstimate).toBe(41_000);
    expect(noisy.totalEstimate).toBe(quiet.totalEstimate);
    expect(quiet.duration).toEqual({ seconds: 45, until: 'mitigated', confirmedAt: at(123) });
  });

  it('never estimates more drops before diagnosis than the counter holds since module load', () => {
    const evidence = remediatedIncident();
    const early = {
      ...evidence,
      logEvents: [{ timestamp: '2026-11-21T09:00:00.000Z', message: 'table full' }],
    };
    const impact = estimateImpact(early, buildTimeline(early));
    expect(impact.beforeDiagnosis).toMatchObject({ drops: 50_000, cappedAtCounterTotal: true });
  });

  it('counts only the first report when the counter went backwards between reports', () => {
    const evidence = remediatedIncident();
    const reset = {
      ...evidence,
      after: ReportBuilder.healthy().collectedAt(at(120)).stat('drop', 10, 10).build(),
    };
    const impact = estimateImpact(reset, buildTimeline(reset));
    expect(impact.measured?.drops).toBe(6_000);
    expect(impact.notes.join()).toMatch(/went backwards/);
  });
});
