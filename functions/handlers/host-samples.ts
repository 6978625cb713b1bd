import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { AllowanceBaselineStore } from '../adapters/allowance-baseline-store.js';
import type { IncidentStore } from '../adapters/incident-store.js';
import type { RecordedSamples, SampleWindowStore } from '../adapters/sample-window-store.js';
import { allowanceRecord } from '../core/allowance/detect.js';
import type { CloudWatchLogsData } from '../core/detect/index.js';
import {
  type ForecastSettings,
  forecastRecord,
  type SampleGroup,
  samplesInSubscription,
} from '../core/forecast/index.js';
import type { DropObservation, IncidentPolicy } from '../core/incident/incident.js';
import { logger } from './powertools.js';

/**
 * The detect function's part for the host sampler's lines (issues 13 and 14, docs/forecast.md):
 * each host's samples go into its stored window, the forecast is made from it, and a host
 * predicted to fill within the horizon (or above the usage threshold) becomes a `near-full`
 * observation; its ENA counters, against its stored reading, become an `ec2-allowance` observation
 * when EC2's allowance is exhausted or low. The handler opens, dedupes, admits past the breaker
 * and starts both exactly as it does drops. Each sample is also published as per-instance metrics
 * (embedded metric format).
 *
 * A sample only ever opens an incident: nothing is changed because of one (the workflow confirms
 * on the host's own counters over SSM first).
 */

export interface HostSampleContext {
  readonly data: CloudWatchLogsData;
  readonly now: Date;
  readonly instanceIdPattern: RegExp;
  readonly samples: SampleWindowStore;
  readonly incidents: IncidentStore;
  readonly policy: Pick<IncidentPolicy, 'cooldownMinutes'>;
  readonly settings: ForecastSettings;
  /** The function's own metrics (counts of what happened to the lines). */
  readonly metrics: Metrics;
  /** Per-instance metrics of each sample, or null when turned off. */
  readonly hostMetrics: Metrics | null;
  /** Hosts with drop lines in this same delivery: the table-full incident covers them. */
  readonly hostsWithDrops: ReadonlySet<string>;
  /** Each host's last ENA allowance reading (the baseline of the counters' rise). */
  readonly allowance: AllowanceBaselineStore;
}

export async function hostSampleObservations(context: HostSampleContext): Promise<DropObservation[]> {
  const { data, now, metrics } = context;
  const sampled = samplesInSubscription(data, { instanceIdPattern: context.instanceIdPattern });
  const rejected = Object.values(sampled.rejected).reduce((sum, count) => sum + count, 0);
  if (rejected > 0) {
    // The reasons only, never the lines: anyone on a host can write one.
    metrics.addMetric('SampleLinesRejected', MetricUnit.Count, rejected);
    logger.warn('Refused host sample lines', { reasons: sampled.rejected, logStream: data.logStream });
  }
  const observations: DropObservation[] = [];
  for (const group of sampled.groups) {
    metrics.addMetric('SamplesSeen', MetricUnit.Count, group.samples.length);
    // EC2's allowance is another table: its incident neither covers nor is covered by the kernel's.
    const allowance = await allowanceObservation(context, group);
    if (allowance !== null) observations.push(allowance);
    const recorded = await context.samples.record(group, now);
    if (context.hostMetrics) publishHostMetrics(context.hostMetrics, group, now);
    const { forecast } = recorded;
    logger.info('Recorded host samples', {
      host: group.host,
      netns: group.netns,
      samples: group.samples.length,
      stored: recorded.stored,
      windowSamples: recorded.window.length,
      skipped: recorded.skipped,
      forecast: forecast?.summary ?? null,
      trigger: forecast?.trigger ?? null,
    });
    if (forecast?.trigger == null) continue;
    metrics.addMetric('NearFullForecasts', MetricUnit.Count, 1);
    const covered = await coveringIncident(context, group);
    if (covered !== null) {
      logger.info('Near-full forecast covered by an open table-full incident', {
        host: group.host,
        incidentId: covered,
      });
      continue;
    }
    observations.push(observationOf(data, group, recorded, context.settings));
  }
  return observations;
}

/**
 * An `ec2-allowance` observation when the group's ENA counters, against the host's stored
 * reading, show conntrack_allowance_exceeded rising or conntrack_allowance_available low.
 */
async function allowanceObservation(
  context: HostSampleContext,
  group: SampleGroup,
): Promise<DropObservation | null> {
  const checked = await context.allowance.check(group, context.now);
  if (checked.reading === null) return null;
  logger.info('Checked EC2 allowance counters', {
    host: group.host,
    netns: group.netns,
    interfaces: checked.rates.map((rate) => ({
      name: rate.name,
      exceededIncrease: rate.exceededIncrease,
      coveredSeconds: rate.coveredSeconds,
      available: rate.available,
      resets: rate.resets,
    })),
    stored: checked.stored,
    findings: checked.findings.length,
  });
  if (checked.findings.length === 0) return null;
  context.metrics.addMetric('Ec2AllowanceFindings', MetricUnit.Count, 1);
  const { data } = context;
  const first = group.samples.find((sample) => sample.ena.length > 0);
  const record = allowanceRecord(checked.findings, checked.reading.at, context.allowance.settings);
  return {
    host: group.host,
    kind: 'ec2-allowance',
    netns: group.netns,
    dropLines: 0,
    suppressed: 0,
    firstSeen: first === undefined ? null : new Date(first.timeMs).toISOString(),
    lastSeen: record.sampledAt,
    source: { owner: data.owner, logGroup: data.logGroup, logStream: data.logStream },
    events: group.events,
    allowance: record,
  };
}

/** A table-full incident already open for the host (or its drops in this delivery) covers it. */
async function coveringIncident(context: HostSampleContext, group: SampleGroup): Promise<string | null> {
  if (context.hostsWithDrops.has(group.host)) return 'this delivery';
  const open = await context.incidents.findOpenIncident(
    group.host,
    'table-full',
    context.now,
    context.policy,
  );
  return open?.incidentId ?? null;
}

function observationOf(
  data: CloudWatchLogsData,
  group: SampleGroup,
  recorded: RecordedSamples,
  settings: ForecastSettings,
): DropObservation {
  const forecast = recorded.forecast;
  if (forecast === null) throw new Error('observationOf needs a forecast');
  const first = recorded.window[0];
  return {
    host: group.host,
    kind: 'near-full',
    netns: group.netns,
    dropLines: 0,
    suppressed: 0,
    firstSeen: first === undefined ? null : new Date(first.t).toISOString(),
    lastSeen: forecast.sampledAt,
    source: { owner: data.owner, logGroup: data.logGroup, logStream: data.logStream },
    events: group.events,
    forecast: forecastRecord(forecast, recorded.window, settings),
  };
}

/**
 * One embedded-metric-format record per sample, at the sample's own time, dimension InstanceId:
 * entries, usage and the cumulative drop counter (use RATE() or DIFF() on it; it restarts at a
 * reboot). Chosen over metric filters on the log group because the instance id is in the stream
 * name, not in the line, and CloudWatch Logs may disable a metric filter whose dimensions take 1,000
 * different values within an hour (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutMetricFilter.html).
 */
function publishHostMetrics(hostMetrics: Metrics, group: SampleGroup, now: Date): void {
  for (const sample of group.samples) {
    if (!sample.loaded || sample.count === null || sample.max === null) continue;
    // CloudWatch takes metric times up to 2 h ahead and 2 weeks back; a stamp that far off is a
    // wrong clock or a forged line.
    if (Math.abs(sample.timeMs - now.getTime()) > 3_600_000) continue;
    hostMetrics.addDimension('InstanceId', group.host);
    hostMetrics.setTimestamp(sample.timeMs);
    hostMetrics.addMetric('ConntrackEntries', MetricUnit.Count, sample.count);
    if (sample.max > 0)
      hostMetrics.addMetric('ConntrackUsage', MetricUnit.Percent, (100 * sample.count) / sample.max);
    if (sample.drop !== null) hostMetrics.addMetric('ConntrackDropCounter', MetricUnit.Count, sample.drop);
    hostMetrics.publishStoredMetrics();
  }
}
