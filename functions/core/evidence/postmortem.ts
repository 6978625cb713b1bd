import type { Ec2AllowanceState, KernelTableState } from '../plan/ec2.js';
import type { Plan, PlannedAction, Recommendation } from '../plan/types.js';
import type { ImpactEstimate } from './impact.js';
import type { IncidentEvidence } from './incident.js';
import type { Timeline } from './timeline.js';

/**
 * postmortem.md: what a person reads first. Everything that came from the host, a log line or a
 * person (host names, process names, log messages, command output, approver names) is escaped or
 * fenced, so that a hostile value cannot inject markup into the rendered document.
 */

const CLASSIFICATION_STORY: Record<string, string> = {
  'table-full':
    'The connection-tracking table reached its limit. The kernel then drops the first packet of every new flow (a SYN, a first UDP datagram) while established flows keep working — which is why new connections failed or stalled while existing ones did not.',
  'expect-table-full':
    'The expectation table, where conntrack helpers (FTP, SIP, TFTP, …) register the related connections they expect, reached nf_conntrack_expect_max. Connections that depend on a helper failed; raising nf_conntrack_max would not have helped.',
  'hash-chains-too-long':
    'Inserts into the conntrack hash table were refused because chains grew too long (kernels ≥ 5.15 refuse chains beyond 50–80 entries). The table itself was not full; it had too few hash buckets for its size.',
  'insert-races':
    'Two packets of the same new flow (typically the A and AAAA DNS queries glibc sends together from one socket) raced to create the same entry, and the loser was dropped. The table was not full.',
  'ec2-allowance':
    "The instance's EC2 connection-tracking allowance was exhausted: the Nitro hypervisor dropped packets before the guest saw them. The kernel table was not full, and no change inside the instance can fix it.",
  'near-full':
    'The connection-tracking table was filling towards its limit. Nothing had been dropped yet: the host sampler’s samples predicted the table full within the horizon (or showed it above the usage threshold), and the host’s own counters, read over SSM, confirmed the growth before anything was changed. Once full, the kernel would have dropped the first packet of every new flow.',
  'not-confirmed':
    "The host's own counters did not confirm the alert: no drops were counted between the two samples and the table was not near its limit. The log line was stale (the burst was over), from another namespace, or forged. Nothing was changed.",
};

export interface PostmortemInput {
  readonly evidence: IncidentEvidence;
  readonly timeline: Timeline;
  readonly impact: ImpactEstimate;
  /** Bundle-relative paths of the other files, listed at the end. */
  readonly files: readonly string[];
  readonly chartPath: string;
}

type Line = (text?: string) => void;

export function renderPostmortem(input: PostmortemInput): string {
  const { evidence, timeline, impact } = input;
  const out: string[] = [];
  const line: Line = (text = '') => out.push(text);
  renderHeader(evidence, timeline, line);
  renderSummary(evidence, line);
  if (evidence.forecast) renderForecast(evidence, timeline, impact, line);
  line('## Impact');
  line();
  renderImpact(impact, line);
  line();
  renderTimeline(timeline, input.chartPath, line);
  renderRootCause(evidence, line);
  renderGuardrails(evidence, line);
  renderActions(evidence, line);
  renderVerification(evidence, line);
  renderErrorsAndGaps(evidence, line);
  renderFollowUps(evidence, line);
  renderFiles(input.files, line);
  return out.join('\n');
}

/** The title and the table of facts at the top. */
function renderHeader(evidence: IncidentEvidence, timeline: Timeline, line: Line): void {
  const { plan, before } = evidence;
  line(`# Postmortem: conntrack incident ${inline(evidence.incidentId)}`);
  line();
  line('| | |');
  line('|---|---|');
  line(`| Instance | ${inline(evidence.instanceId ?? 'unknown')} |`);
  if (before) {
    line(
      `| Host | ${inline(before.host.hostname)} — ${inline(before.host.distribution.prettyName)}, kernel ${inline(before.host.kernel)}, ${before.host.cpuCount} CPUs, ${gib(before.host.memTotalBytes)} |`,
    );
    line(
      `| Network namespace | ${inline(before.host.netnsInode ?? 'unknown')}${evidence.alert.netns ? ` (the kernel named ${inline(evidence.alert.netns)})` : ''} |`,
    );
  }
  line(`| Outcome | **${inline(evidence.outcome.status)}** — ${inline(evidence.outcome.summary)} |`);
  line(`| Classification | ${plan ? `\`${plan.classification}\`` : 'no plan (no diagnostics)'} |`);
  const start = timeline.events[0]?.at;
  line(
    `| Window | ${start ?? '?'} → ${evidence.closedAt}${start ? ` (${duration((Date.parse(evidence.closedAt) - Date.parse(start)) / 1000)})` : ''} |`,
  );
  line();
}

function renderSummary(evidence: IncidentEvidence, line: Line): void {
  const { plan } = evidence;
  line('## Summary');
  line();
  const summary = [plan ? inline(plan.summary) : 'No diagnostics could be collected, so no plan was made.'];
  summary.push(inline(evidence.outcome.summary));
  if (evidence.verification) {
    summary.push(
      evidence.verification.passed
        ? 'Verification after the soak passed.'
        : `Verification after the soak failed: ${inline(evidence.verification.reasons.join('; '))}.`,
    );
  }
  line(summary.join(' '));
  line();
}

function renderTimeline(timeline: Timeline, chartPath: string, line: Line): void {
  const start = timeline.events[0]?.at;
  line('## Timeline');
  line();
  line('| Time (UTC) | T+ | Event | Source |');
  line('|---|---|---|---|');
  const origin = start ? Date.parse(start) : 0;
  for (const event of timeline.events) {
    line(
      `| ${event.at.replace('T', ' ').replace('Z', '')} | ${duration((Date.parse(event.at) - origin) / 1000)} | ${inline(event.label)} | ${inline(event.source)} |`,
    );
  }
  line();
  if (timeline.problems.length > 0) {
    line('> **Timeline inconsistencies** (clock skew between host and AWS, or a recording fault):');
    for (const problem of timeline.problems) line(`> - ${inline(problem)}`);
    line();
  }
  line(`![Conntrack entries against the limit, and the drop rate, over the incident](${chartPath})`);
  line();
}

function renderRootCause(evidence: IncidentEvidence, line: Line): void {
  const { plan, before } = evidence;
  line('## Root cause');
  line();
  line(plan ? (CLASSIFICATION_STORY[plan.classification] ?? '') : 'Unknown: no diagnostics were collected.');
  line();
  if (plan) {
    line("What the host's counters showed:");
    line();
    for (const statement of plan.confirmation) line(`- ${inline(statement)}`);
    line();
  }
  if (plan?.tables) renderTables(plan, line);
  if (before && before.table.entries > 0) renderTableShape(evidence, line);
}

function renderGuardrails(evidence: IncidentEvidence, line: Line): void {
  const guardrails = evidence.guardrails ?? [];
  if (guardrails.length > 0) {
    line('## Guardrails');
    line();
    line('What each guardrail decided, in order (see guardrails.json):');
    line();
    line('| When | Guardrail | Effect | Why |');
    line('|---|---|---|---|');
    for (const decision of guardrails) {
      const effect = decision.mode ? `${decision.effect} → ${decision.mode}` : decision.effect;
      line(`| ${decision.step} | ${decision.guardrail} | ${inline(effect)} | ${inline(decision.detail)} |`);
    }
    line();
  }
}

function renderActions(evidence: IncidentEvidence, line: Line): void {
  const { plan } = evidence;
  line('## Actions taken');
  line();
  if (!plan || plan.actions.length === 0) {
    line('No change was planned for the host.');
    line();
  } else {
    line('| Action | Mode | Result | Risk | Change id |');
    line('|---|---|---|---|---|');
    for (const action of plan.actions) {
      line(
        `| ${inline(action.title)} | ${action.mode} | ${inline(actionResult(action, evidence))} | ${action.risk} | ${codeSpan(action.parameters.ChangeId ?? '')} |`,
      );
    }
    line();
    for (const action of plan.actions) renderAction(action, line);
  }
  if (plan && plan.refusals.length > 0) {
    line('### Considered and refused');
    line();
    for (const refusal of plan.refusals)
      line(`- **${inline(refusal.considered)}**: ${inline(refusal.reason)}`);
    line();
  }
}

function renderVerification(evidence: IncidentEvidence, line: Line): void {
  line('## Verification');
  line();
  if (!evidence.verification) {
    line('Not run (nothing was changed, or the workflow ended before the soak).');
  } else {
    for (const check of evidence.verification.checks)
      line(`- ${check.passed ? '✅' : '❌'} ${check.name}: ${inline(check.detail)}`);
  }
  line();
}

function renderErrorsAndGaps(evidence: IncidentEvidence, line: Line): void {
  const errors = evidence.errors ?? [];
  const notes = evidence.notes ?? [];
  if (errors.length > 0 || notes.length > 0) {
    line('## Errors and gaps');
    line();
    for (const error of errors) {
      line(`- ${codeSpan(error.where)}: **${inline(error.error)}**`);
      line();
      line(fence(error.cause));
      line();
    }
    for (const note of notes) line(`- ${inline(note)}`);
    line();
  }
}

function renderFollowUps(evidence: IncidentEvidence, line: Line): void {
  const { plan } = evidence;
  line('## Follow-ups');
  line();
  const recommendations = plan?.recommendations ?? [];
  if (recommendations.length === 0) {
    line('None from the plan.');
    line();
  }
  const durable = recommendations.filter(
    (r) => r.scope === 'launch-template' || r.scope === 'kube-proxy' || r.scope === 'other-sysctl-owner',
  );
  const others = recommendations.filter((r) => !durable.includes(r));
  if (durable.length > 0) {
    line('### The durable fix');
    line();
    for (const recommendation of durable) renderRecommendation(recommendation, line);
  }
  if (others.length > 0) {
    line('### Other follow-ups');
    line();
    for (const recommendation of others) renderRecommendation(recommendation, line);
  }
}

function renderFiles(files: readonly string[], line: Line): void {
  line('## Evidence in this bundle');
  line();
  line(
    'Every file below is listed with its sha256 in `manifest.json`; check them with `npx conntrack-responder bundle verify <this folder or its .tar.gz>`.',
  );
  line();
  for (const file of files) line(`- ${codeSpan(file)}`);
  line();
}

/** The story ahead of the outage: what was predicted, when the fix landed, how much lead it had. */
function renderForecast(
  evidence: IncidentEvidence,
  timeline: Timeline,
  impact: ImpactEstimate,
  line: (text?: string) => void,
): void {
  const forecast = evidence.forecast;
  if (!forecast) return;
  line('## Ahead of the outage');
  line();
  const growth =
    forecast.growthPerSecond === null
      ? 'no steady growth yet'
      : `growing ${round(forecast.growthPerSecond)} entries/s`;
  const why =
    forecast.trigger === 'usage'
      ? `usage at or above ${forecast.usageThreshold === null ? 'the threshold' : `${Math.round(forecast.usageThreshold * 100)}%`}`
      : `predicted full within the ${forecast.horizonSeconds === null ? '' : `${duration(forecast.horizonSeconds)} `}horizon`;
  line(
    `- At ${forecast.sampledAt} the host samples showed ${forecast.count} of ${forecast.max} entries (${Math.round(forecast.usage * 100)}%), ${growth}${forecast.secondsToFull === null ? '' : `: full in ${duration(forecast.secondsToFull)}`}. The incident opened because of ${why}.`,
  );
  if (forecast.predictedFullAt) line(`- Predicted full at **${forecast.predictedFullAt}**.`);
  line(
    '- Sample lines can be written by any local user, so they only opened the incident; what the host’s own counters showed over SSM is under "Root cause".',
  );
  const landed = timeline.at.remediated;
  if (landed && forecast.predictedFullAt) {
    const lead = (Date.parse(forecast.predictedFullAt) - Date.parse(landed)) / 1000;
    line(
      lead >= 0
        ? `- The fix landed at ${landed}: **${duration(lead)} before** the table would have been full (lead time gained).`
        : `- The fix landed at ${landed}, ${duration(-lead)} after the predicted full time.`,
    );
  } else if (!landed) {
    line('- No fix was applied (see the outcome).');
  }
  if (impact.measured) {
    line(
      `- Dropped packets counted by the kernel over the incident: **${impact.measured.drops}**${impact.measured.drops === 0 ? ' (none: the fix came before the first drop)' : ''}.`,
    );
  }
  line(
    `- The curve: ${forecast.samples.length} host samples and the projection to the predicted full time are in the chart (series \`forecast\`).`,
  );
  line();
}

function renderImpact(impact: ImpactEstimate, line: (text?: string) => void): void {
  if (impact.measured) {
    line(
      `- Packets dropped by conntrack, counted by the kernel (\`drop\` in /proc/net/stat/nf_conntrack): **${impact.measured.drops}** between ${impact.measured.from} and ${impact.measured.to}.`,
    );
  }
  if (impact.beforeDiagnosis) {
    const b = impact.beforeDiagnosis;
    line(
      `- Estimated before the first sample: **${b.drops}** (${round(b.ratePerSecond)}/s measured at diagnosis × ${round(b.seconds)} s since the first drop line${b.cappedAtCounterTotal ? ', capped at the counter’s total since the module was loaded' : ''}).`,
    );
  }
  if (impact.totalEstimate !== null) {
    line(
      `- **Total: about ${impact.totalEstimate} dropped packets.** Each was the first packet of a new connection attempt (a SYN or a first UDP datagram); clients retried or failed.`,
    );
  }
  if (impact.counterAtFirstSample !== null) {
    line(
      `- The counter stood at ${impact.counterAtFirstSample} at the first sample (everything since the module was loaded: an upper bound for the drops before it).`,
    );
  }
  if (impact.peakUsage !== null)
    line(`- Peak table usage seen: ${Math.round(impact.peakUsage * 100)}% of the limit.`);
  if (impact.duration?.until === 'mitigated') {
    line(
      `- Time to mitigate: ${duration(impact.duration.seconds)} from the first drop line to the remediation; the diagnostics at ${impact.duration.confirmedAt} confirmed the drops had stopped.`,
    );
  } else if (impact.duration) {
    line(
      `- Drops were not shown to stop: ${duration(impact.duration.seconds)} from the first drop line to the close of the incident.`,
    );
  }
  line(
    `- Kernel log: ${impact.logLines.lines} drop lines and ${impact.logLines.suppressed} suppressed repeats. Not used for the estimate: the kernel ratelimits these messages (10 per 5 s) and counts the suppressed messages of every caller together.`,
  );
  for (const note of impact.notes) line(`- Note: ${inline(note)}.`);
}

const KERNEL_STATE: Record<KernelTableState, string> = {
  full: '**full** (or at the near-full ratio)',
  'not-full': 'not full',
  'not-loaded': 'not loaded: the guest tracks nothing',
};
const EC2_STATE: Record<Ec2AllowanceState, string> = {
  exhausted: '**exhausted**: conntrack_allowance_exceeded rose',
  low: '**nearly exhausted**: conntrack_allowance_available low',
  'not-exhausted': 'not exhausted',
  'no-counters': 'unknown: no ENA allowance counters',
};
const TIMEOUT_SOURCE: Record<string, string> = {
  eni: 'set on the ENI',
  'instance-type': 'instance type default',
  unknown: 'unknown',
};

/**
 * Which of the two connection-tracking tables dropped packets, and on the EC2 side, which ENIs,
 * which flows EC2 tracks at all, and their idle timeouts when the diagnosis was made.
 */
function renderTables(plan: Plan, line: (text?: string) => void): void {
  const tables = plan.tables;
  if (!tables) return;
  line('### Which table');
  line();
  line(
    'Two tables track connections on an EC2 instance: the kernel’s (nf_conntrack, inside the guest; it logs "table full") and EC2’s own per-instance allowance (outside the guest, for security groups; it logs nothing, only the ENA driver counts its drops).',
  );
  line();
  line('| Table | At diagnosis |');
  line('|---|---|');
  line(`| Kernel (nf_conntrack) | ${KERNEL_STATE[tables.kernel]} |`);
  line(`| EC2 allowance (ENA counters) | ${EC2_STATE[tables.ec2]} |`);
  line();
  line(inline(tables.summary));
  line();
  const ec2 = plan.ec2;
  if (!ec2 || ec2.interfaces.length === 0) return;
  line(
    `The EC2 side${ec2.instanceType ? ` (instance type ${inline(ec2.instanceType)})` : ''}: EC2 does not track a TCP or UDP flow only when a security group rule allows it from anywhere and a rule of the other direction allows all traffic on every port to anywhere; everything else, and all ICMP, counts against the allowance.`,
  );
  line();
  line(
    '| Interface | MAC | ENI | Security groups | Flows EC2 tracks | TCP established | UDP stream | UDP | Allowance |',
  );
  line('|---|---|---|---|---|---|---|---|---|');
  for (const view of ec2.interfaces) {
    const timeout = (field: 'tcpEstablished' | 'udpStream' | 'udp') => {
      const current = view.timeouts?.[field];
      if (!current) return 'unknown';
      return `${current.value === null ? 'unknown' : `${current.value} s`} (${TIMEOUT_SOURCE[current.source] ?? 'unknown'})`;
    };
    const groups = view.securityGroups;
    line(
      `| ${inline(view.interface)} | ${inline(view.mac ?? 'unknown')} | ${inline(view.networkInterfaceId ?? 'not described')} | ${groups == null ? 'unknown' : groups.length === 0 ? 'none' : inline(groups.join(', '))} | ${inline(view.tracking ?? 'unknown')} | ${timeout('tcpEstablished')} | ${timeout('udpStream')} | ${timeout('udp')} | ${inline(view.finding ?? 'quiet')} |`,
    );
  }
  line();
  for (const note of ec2.notes) line(`- Note: ${inline(note)}`);
  if (ec2.notes.length > 0) line();
}

function renderTableShape(evidence: IncidentEvidence, line: (text?: string) => void): void {
  const before = evidence.before;
  if (!before) return;
  const total = before.table.entries;
  const share = (entries: number) => `${Math.round((entries / total) * 100)}%`;
  line(`The table at diagnosis (${total} entries read from ${before.table.source}):`);
  line();
  const states = [...before.table.byState].sort((a, b) => b.entries - a.entries).slice(0, 6);
  if (states.length > 0) {
    line('| Protocol | State | Entries | Share |');
    line('|---|---|---|---|');
    for (const row of states)
      line(`| ${row.protocol} | ${inline(row.state || '—')} | ${row.entries} | ${share(row.entries)} |`);
    line();
  }
  const ports = [
    ...before.table.byLocalServicePort.map((row) => ({ ...row, direction: 'served here' })),
    ...before.table.byRemotePort.map((row) => ({ ...row, direction: 'remote service' })),
  ]
    .sort((a, b) => b.entries - a.entries)
    .slice(0, 6);
  if (ports.length > 0) {
    line('| Port | Direction | Entries | Short-lived | Share of table |');
    line('|---|---|---|---|---|');
    for (const row of ports)
      line(
        `| ${row.protocol}/${row.port} | ${row.direction} | ${row.entries} | ${row.shortLived} | ${share(row.entries)} |`,
      );
    line();
  }
}

function renderAction(action: PlannedAction, line: (text?: string) => void): void {
  line(`### ${inline(action.title)}`);
  line();
  line(`- Why: ${inline(action.reason)}`);
  line(`- Expected effect: ${inline(action.expectedEffect)}`);
  line(`- Memory cost if used to the full: ${action.memoryCostBytes} bytes`);
  line(`- Unsafe if: ${action.unsafeIf.map(inline).join('; ')}`);
  if (action.requires.length > 0) line(`- Requires: ${action.requires.map(inline).join(', ')}`);
  line(`- Document ${codeSpan(action.document)} with:`);
  line();
  line(fence(JSON.stringify(action.parameters, null, 2), 'json'));
  line();
}

function renderRecommendation(recommendation: Recommendation, line: (text?: string) => void): void {
  line(`#### ${inline(recommendation.title)} (${recommendation.scope})`);
  line();
  line(inline(recommendation.detail));
  line();
  if (recommendation.snippet) {
    line(fence(recommendation.snippet));
    line();
  }
}

/** What became of a planned action, from the commands that ran and the approvals given. */
export function actionResult(action: PlannedAction, evidence: IncidentEvidence): string {
  const mine = evidence.commands.filter((command) => command.actionId === action.id);
  const applied = mine.filter((command) => command.step === 'apply');
  const rollbacks = mine.filter((command) => command.step === 'rollback');
  const persisted = mine.some((command) => command.step === 'persist' && command.status === 'Success');
  if (applied.some((command) => command.status === 'Success')) {
    if (rollbacks.length > 0) {
      return rollbacks.every((command) => command.status === 'Success')
        ? 'applied, then rolled back'
        : 'applied; rollback FAILED';
    }
    return persisted ? 'applied and persisted' : 'applied';
  }
  const failed = applied.at(-1);
  if (failed) return `failed (${failed.status}, exit code ${failed.exitCode ?? '?'})`;
  if (action.mode === 'dry-run' || evidence.outcome.status === 'dry-run') return 'not applied (dry run)';
  const decision = evidence.approvals.filter((approval) => approval.actionIds.includes(action.id)).at(-1);
  if (decision?.decision === 'rejected') return `rejected${decision.by ? ` by ${decision.by}` : ''}`;
  if (decision?.decision === 'timed-out') return 'not applied (approval timed out)';
  return 'not applied';
}

/** Escapes text for a Markdown table cell or paragraph (no HTML, no links, no emphasis from data). */
export function inline(text: string): string {
  return text
    .replace(/\r?\n/g, ' ')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/([\\`*_[\]|#])/g, '\\$1');
}

/** An inline code span that no backtick in the text can close early. */
export function codeSpan(text: string): string {
  const flat = text.replace(/\r?\n/g, ' ').replace(/\|/g, '¦');
  const longest = Math.max(0, ...[...flat.matchAll(/`+/g)].map((match) => match[0].length));
  const marks = '`'.repeat(longest + 1);
  return longest > 0 ? `${marks} ${flat} ${marks}` : `${marks}${flat}${marks}`;
}

/** A fenced code block whose fence is longer than any backtick run inside it. */
export function fence(text: string, language = ''): string {
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((match) => match[0].length));
  const marks = '`'.repeat(longest + 1);
  return `${marks}${language}\n${text.replace(/\n$/, '')}\n${marks}`;
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB RAM`;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
