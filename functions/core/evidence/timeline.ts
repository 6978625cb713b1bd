import { readSignals } from '../plan/signals.js';
import { type IncidentEvidence, iso, timeOf } from './incident.js';

export type TimelineKey =
  | 'forecast'
  | 'first-drop'
  | 'detected'
  | 'diagnosed'
  | 'approved'
  | 'rejected'
  | 'approval-timed-out'
  | 'remediated'
  | 'verified'
  | 'verification-failed'
  | 'rolled-back'
  | 'closed';

/** The order in which the events of an incident can happen; ties in time are shown in this order. */
const CAUSAL_ORDER: readonly TimelineKey[] = [
  'forecast',
  'first-drop',
  'detected',
  'diagnosed',
  'approved',
  'rejected',
  'approval-timed-out',
  'remediated',
  'verified',
  'verification-failed',
  'rolled-back',
  'closed',
];

export interface TimelineEvent {
  readonly key: TimelineKey;
  readonly at: string;
  readonly label: string;
  /** Which input the time comes from. */
  readonly source: string;
}

export interface Timeline {
  /** Sorted by time, ties in causal order. */
  readonly events: readonly TimelineEvent[];
  /** Pairs of events whose times contradict the order in which they must have happened. */
  readonly problems: readonly string[];
  /** Time of each key's event (the first one when several), for the summary and the chart. */
  readonly at: Partial<Record<TimelineKey, string>>;
}

/**
 * The incident's timeline, derived from the evidence itself (log events, reports, approvals,
 * command results) rather than from a separate list of times, so that it cannot disagree with
 * what the bundle contains. Contradictions are reported, never silently reordered away.
 */
export function buildTimeline(evidence: IncidentEvidence): Timeline {
  const events: TimelineEvent[] = [];
  const add = (key: TimelineKey, ms: number, label: string, source: string) =>
    events.push({ key, at: iso(ms), label, source });

  if (evidence.logEvents.length > 0) {
    const first = Math.min(
      ...evidence.logEvents.map((event, index) => timeOf(event.timestamp, `logEvents[${index}].timestamp`)),
    );
    add(
      'first-drop',
      first,
      'First kernel drop message',
      `earliest of ${evidence.logEvents.length} log events`,
    );
  }
  if (evidence.forecast) {
    add(
      'forecast',
      timeOf(evidence.forecast.sampledAt, 'forecast.sampledAt'),
      `Host samples predicted the table full${evidence.forecast.predictedFullAt ? ` at ${evidence.forecast.predictedFullAt}` : ''}: ${evidence.forecast.summary}`,
      `forecast from ${evidence.forecast.samples.length} host samples`,
    );
  }
  add(
    'detected',
    timeOf(evidence.detectedAt, 'detectedAt'),
    'Incident opened by detection',
    'incident record',
  );

  const collected = (step: 'collect-before' | 'collect-after') =>
    evidence.commands.filter((command) => command.step === step && command.finishedAt !== null).at(-1);
  if (evidence.before) {
    const command = collected('collect-before');
    const ms = command?.finishedAt
      ? timeOf(command.finishedAt, 'commands[collect-before].finishedAt')
      : timeOf(evidence.before.collectedAt, 'before.collectedAt') +
        evidence.before.conntrack.stats.intervalSeconds * 1000;
    const classification = evidence.plan ? `: ${evidence.plan.classification}` : '';
    add(
      'diagnosed',
      ms,
      `Diagnostics collected and plan made${classification}`,
      command ? 'collect-diagnostics command' : 'diagnostics report',
    );
  }

  evidence.approvals.forEach((approval, index) => {
    const key =
      approval.decision === 'approved'
        ? 'approved'
        : approval.decision === 'rejected'
          ? 'rejected'
          : 'approval-timed-out';
    const who = approval.by ? ` by ${approval.by}` : '';
    const label =
      approval.decision === 'timed-out'
        ? 'Approval timed out'
        : `${approval.decision === 'approved' ? 'Approved' : 'Rejected'}${who} (${approval.actionIds.join(', ')})`;
    add(key, timeOf(approval.at, `approvals[${index}].at`), label, `approval via ${approval.channel}`);
  });

  const applied = evidence.commands.filter(
    (command) => command.step === 'apply' && command.status === 'Success' && command.finishedAt,
  );
  if (applied.length > 0) {
    const last = Math.max(
      ...applied.map((command) =>
        timeOf(command.finishedAt ?? '', `commands[${command.actionId}].finishedAt`),
      ),
    );
    add(
      'remediated',
      last,
      `Remediation applied (${applied.map((command) => command.actionId ?? command.document).join(', ')})`,
      'remediation commands',
    );
  }

  if (evidence.after && evidence.verification) {
    const command = collected('collect-after');
    const ms = command?.finishedAt
      ? timeOf(command.finishedAt, 'commands[collect-after].finishedAt')
      : timeOf(evidence.after.collectedAt, 'after.collectedAt') +
        evidence.after.conntrack.stats.intervalSeconds * 1000;
    const drops = readSignals(evidence.after).drop;
    if (evidence.verification.passed) {
      add(
        'verified',
        ms,
        `Verified: drops stopped (${drops ?? '?'} in the last sample), usage below threshold`,
        'diagnostics after the soak',
      );
    } else {
      add(
        'verification-failed',
        ms,
        `Verification failed: ${evidence.verification.reasons.join('; ')}`,
        'diagnostics after the soak',
      );
    }
  }

  const rollbacks = evidence.commands.filter((command) => command.step === 'rollback' && command.finishedAt);
  if (rollbacks.length > 0) {
    const last = Math.max(
      ...rollbacks.map((command) => timeOf(command.finishedAt ?? '', 'commands[rollback].finishedAt')),
    );
    const ok = rollbacks.every((command) => command.status === 'Success');
    add(
      'rolled-back',
      last,
      ok ? 'Changes rolled back' : 'Rollback attempted and FAILED',
      'rollback commands',
    );
  }
  add('closed', timeOf(evidence.closedAt, 'closedAt'), `Closed: ${evidence.outcome.status}`, 'workflow end');

  const rank = (key: TimelineKey) => CAUSAL_ORDER.indexOf(key);
  events.sort((a, b) => Date.parse(a.at) - Date.parse(b.at) || rank(a.key) - rank(b.key));

  const at: Partial<Record<TimelineKey, string>> = {};
  for (const event of events) at[event.key] ??= event.at;

  return { events, problems: causalProblems(at), at };
}

/** Event pairs that must happen in this order when both are present. */
const MUST_PRECEDE: readonly [TimelineKey, TimelineKey][] = [
  // Host and detection clocks differ; a skew shows here rather than being hidden.
  ['forecast', 'detected'],
  ['forecast', 'diagnosed'],
  ['first-drop', 'detected'],
  ['first-drop', 'diagnosed'],
  ['detected', 'diagnosed'],
  ['diagnosed', 'approved'],
  ['diagnosed', 'rejected'],
  ['diagnosed', 'remediated'],
  ['approved', 'remediated'],
  ['remediated', 'verified'],
  ['remediated', 'verification-failed'],
  ['first-drop', 'closed'],
  ['detected', 'closed'],
  ['diagnosed', 'closed'],
  ['remediated', 'closed'],
  ['verified', 'closed'],
  ['rolled-back', 'closed'],
];

function causalProblems(at: Partial<Record<TimelineKey, string>>): string[] {
  const problems: string[] = [];
  for (const [earlier, later] of MUST_PRECEDE) {
    const a = at[earlier];
    const b = at[later];
    if (a && b && Date.parse(a) > Date.parse(b)) problems.push(`${later} (${b}) is before ${earlier} (${a})`);
  }
  return problems;
}
