import { readSignals } from '../plan/signals.js';
import { type IncidentEvidence, timeOf } from './incident.js';
import type { Timeline } from './timeline.js';

/**
 * How many packets conntrack dropped, from the kernel's own `drop` counter. Log lines are not
 * used: the kernel ratelimits them to 10 per 5 s and counts suppressed repeats for every
 * net_ratelimit caller together, so they neither count drops nor bound them.
 */
export interface ImpactEstimate {
  /** Counted by the kernel between the first diagnostics sample and the last one. */
  readonly measured: { readonly drops: number; readonly from: string; readonly to: string } | null;
  /**
   * From the first drop line to the first sample, assumed to run at the rate measured during
   * diagnosis, and never more than the counter's total since the module was loaded.
   */
  readonly beforeDiagnosis: {
    readonly drops: number;
    readonly ratePerSecond: number;
    readonly seconds: number;
    readonly cappedAtCounterTotal: boolean;
  } | null;
  readonly totalEstimate: number | null;
  /** The `drop` counter at the first sample: everything since the module was loaded (an upper bound for before). */
  readonly counterAtFirstSample: number | null;
  readonly logLines: { readonly lines: number; readonly suppressed: number };
  /** Highest count/max seen in any sample. */
  readonly peakUsage: number | null;
  /**
   * How long the drops lasted: first drop line → the remediation that verification showed to have
   * stopped them (`mitigated`), or → the close of the incident when nothing was shown to stop them.
   */
  readonly duration: {
    readonly seconds: number;
    readonly until: 'mitigated' | 'closed';
    /** When the after-soak diagnostics confirmed drops had stopped (mitigated only). */
    readonly confirmedAt: string | null;
  } | null;
  readonly notes: readonly string[];
}

export function estimateImpact(evidence: IncidentEvidence, timeline: Timeline): ImpactEstimate {
  const notes: string[] = [];
  const { before, after } = evidence;
  const logLines = { lines: evidence.alert.dropLines, suppressed: evidence.alert.suppressed };
  const firstDrop =
    evidence.logEvents.length > 0
      ? Math.min(
          ...evidence.logEvents.map((event, index) =>
            timeOf(event.timestamp, `logEvents[${index}].timestamp`),
          ),
        )
      : null;
  const mitigated = timeline.at.verified && timeline.at.remediated ? timeline.at.remediated : undefined;
  const end = mitigated ?? timeline.at.closed;
  const duration: ImpactEstimate['duration'] =
    firstDrop !== null && end
      ? {
          seconds: Math.max(0, (timeOf(end, 'end of impact') - firstDrop) / 1000),
          until: mitigated ? 'mitigated' : 'closed',
          confirmedAt: mitigated ? (timeline.at.verified ?? null) : null,
        }
      : null;

  if (!before) {
    notes.push('no diagnostics were collected, so the kernel counters are unknown');
    return {
      measured: null,
      beforeDiagnosis: null,
      totalEstimate: null,
      counterAtFirstSample: null,
      logLines,
      peakUsage: null,
      duration,
      notes,
    };
  }
  const firstDropCounter = before.conntrack.stats.first.drop ?? null;
  const start = timeOf(before.collectedAt, 'before.collectedAt');
  let measured: ImpactEstimate['measured'] = null;
  const sameHost =
    after && after.host.hostname === before.host.hostname && after.host.netnsInode === before.host.netnsInode;
  const afterDrop = after?.conntrack.stats.second.drop;
  if (
    after &&
    sameHost &&
    firstDropCounter !== null &&
    afterDrop !== undefined &&
    afterDrop >= firstDropCounter
  ) {
    const end = timeOf(after.collectedAt, 'after.collectedAt') + after.conntrack.stats.intervalSeconds * 1000;
    measured = {
      drops: afterDrop - firstDropCounter,
      from: before.collectedAt,
      to: new Date(end).toISOString(),
    };
  } else {
    if (after && afterDrop !== undefined && firstDropCounter !== null && afterDrop < firstDropCounter) {
      notes.push(
        'the drop counter went backwards between the reports (module reloaded?): only the first report is counted',
      );
    }
    const signals = readSignals(before);
    if (signals.drop !== null) {
      measured = {
        drops: signals.drop,
        from: before.collectedAt,
        to: new Date(start + signals.intervalSeconds * 1000).toISOString(),
      };
    }
  }

  let beforeDiagnosis: ImpactEstimate['beforeDiagnosis'] = null;
  const rateSignals = readSignals(before);
  if (firstDrop !== null && rateSignals.drop !== null) {
    const seconds = Math.max(0, (start - firstDrop) / 1000);
    const ratePerSecond = rateSignals.drop / rateSignals.intervalSeconds;
    const raw = Math.round(ratePerSecond * seconds);
    const capped = firstDropCounter !== null && raw > firstDropCounter;
    beforeDiagnosis = {
      drops: capped ? (firstDropCounter ?? raw) : raw,
      ratePerSecond,
      seconds,
      cappedAtCounterTotal: capped,
    };
  } else if (firstDrop === null) {
    notes.push('no log event times: the drops before diagnosis cannot be estimated');
  }

  const usages = [before, after]
    .filter((report) => report !== null)
    .map((report) => readSignals(report).usage)
    .filter((usage): usage is number => usage !== null);
  const sampleUsages = (evidence.samples ?? [])
    .filter((sample) => sample.entries !== null && sample.max)
    .map((sample) => (sample.entries ?? 0) / (sample.max ?? 1));
  const all = [...usages, ...sampleUsages];
  const totalEstimate =
    measured === null && beforeDiagnosis === null
      ? null
      : (measured?.drops ?? 0) + (beforeDiagnosis?.drops ?? 0);
  return {
    measured,
    beforeDiagnosis,
    totalEstimate,
    counterAtFirstSample: firstDropCounter,
    logLines,
    peakUsage: all.length > 0 ? Math.max(...all) : null,
    duration,
    notes,
  };
}
