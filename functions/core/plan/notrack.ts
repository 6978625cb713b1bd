import type { DiagnosticsReport, PortAggregate } from '../diagnostics/report.js';
import type { NotrackPolicy, ProtectedPort } from './policy.js';

/**
 * Which ports to exempt from connection tracking, if any. NOTRACK is the fix that removes the
 * churn for good, and also the one that breaks traffic when it is wrong (facts §3.3): untracked
 * packets are never NATed, stop matching ESTABLISHED rules, and lose RELATED ICMP. So a port is
 * chosen only when every pre-flight check passes, and the set is the smallest one that relieves
 * the table.
 */

export type Direction = 'inbound' | 'outbound';

export interface PortCandidate {
  readonly protocol: 'tcp' | 'udp';
  readonly port: number;
  /** inbound: this host serves the port; outbound: this host is a client of a remote port. */
  readonly direction: Direction;
  readonly entries: number;
  readonly shortLived: number;
  /** shortLived / entries in the whole table. */
  readonly tableShare: number;
}

export interface PortSelection {
  readonly chosen: readonly PortCandidate[];
  /** Share of the table's entries the chosen ports hold in short-lived states. */
  readonly coveredShare: number;
  /** Why a port (or NOTRACK as a whole) was not chosen. */
  readonly refusals: readonly { readonly subject: string; readonly reason: string }[];
}

/**
 * Whether the filter table lets UNTRACKED packets of these ports through in both directions today:
 * from the per-hook verdicts when the report has them, else from its single flag.
 */
export function untrackedAcceptedFor(
  report: DiagnosticsReport,
  protocol: 'tcp' | 'udp',
  ports: readonly number[],
): boolean {
  const untracked = report.firewall.untracked;
  if (!untracked) return report.firewall.untrackedAccepted;
  const covered = (port: number) =>
    untracked.ports.some((ref) => ref.port === port && (ref.protocol === null || ref.protocol === protocol));
  const passes = (verdict: typeof untracked.input) =>
    verdict === 'accepted' || verdict === 'not-needed' || (verdict === 'port-scoped' && ports.every(covered));
  return passes(untracked.input) && passes(untracked.output);
}

export function describePort(candidate: Pick<PortCandidate, 'protocol' | 'port' | 'direction'>): string {
  return candidate.direction === 'inbound'
    ? `${candidate.protocol}/${candidate.port} (served here)`
    : `${candidate.protocol}/${candidate.port} (remote service)`;
}

function protectedBy(
  candidate: PortCandidate,
  protectedPorts: readonly ProtectedPort[],
): ProtectedPort | undefined {
  return protectedPorts.find(
    (rule) =>
      rule.port === candidate.port &&
      (rule.protocol === 'any' || rule.protocol === candidate.protocol) &&
      (rule.direction === 'any' || rule.direction === candidate.direction),
  );
}

/** Reasons that rule NOTRACK out on this host whatever the ports; empty when it may be considered. */
export function hostWideNotrackBlockers(report: DiagnosticsReport, policy: NotrackPolicy): string[] {
  const blockers: string[] = [];
  const { firewall } = report;
  if (policy.maxPorts === 0) blockers.push('the policy allows no NOTRACK ports (notrack.maxPorts = 0)');
  if (firewall.backend === 'none') {
    // 'none' means no ruleset was found; the tool itself may well be installed.
    blockers.push(
      firewall.iptablesVersion === null
        ? 'no firewall ruleset and no iptables were found: there is no backend to write raw-table rules with'
        : 'no firewall ruleset is loaded on this host (iptables is installed): a first ruleset is not written automatically, as its effect on the host cannot be judged',
    );
  }
  if (firewall.backend === 'legacy-and-nft') {
    blockers.push(
      'both iptables-legacy and nftables rules are active: rules added to one are invisible to the other and to operators reading the other, so the firewall is not touched automatically',
    );
  }
  if (firewall.nat.allPorts) {
    blockers.push(
      'a NAT rule matches every port (e.g. MASQUERADE): untracked packets are never NATed, so any port could break',
    );
  }
  const owners = firewall.nat.owners.filter((owner) => policy.refuseWithNatOwners.includes(owner));
  if (owners.length > 0) {
    blockers.push(
      `NAT on this host is managed by ${owners.join(' and ')}: container and Service traffic is NATed on ports the host cannot enumerate reliably`,
    );
  }
  if (report.table.source === 'unavailable' || report.table.entries === 0) {
    blockers.push('the table could not be read, so no port can be shown to hold the churn');
  }
  return blockers;
}

export function selectNotrackPorts(report: DiagnosticsReport, policy: NotrackPolicy): PortSelection {
  const refusals: { subject: string; reason: string }[] = [];
  const total = report.table.entries;
  const blockers = hostWideNotrackBlockers(report, policy);
  if (blockers.length > 0) {
    return {
      chosen: [],
      coveredShare: 0,
      refusals: blockers.map((reason) => ({ subject: 'NOTRACK', reason })),
    };
  }

  const toCandidate = (row: PortAggregate, direction: Direction): PortCandidate | undefined =>
    row.protocol === 'tcp' || row.protocol === 'udp'
      ? {
          protocol: row.protocol,
          port: row.port,
          direction,
          entries: row.entries,
          shortLived: row.shortLived,
          tableShare: row.shortLived / total,
        }
      : undefined;
  const candidates = [
    ...report.table.byLocalServicePort.map((row) => toCandidate(row, 'inbound')),
    ...report.table.byRemotePort.map((row) => toCandidate(row, 'outbound')),
  ]
    .filter((candidate): candidate is PortCandidate => candidate !== undefined)
    // Ports too small to matter are neither chosen nor listed as refused: they were never in question.
    .filter((candidate) => candidate.tableShare >= policy.minPortShare)
    .sort((a, b) => b.shortLived - a.shortLived || a.port - b.port);

  const eligible: PortCandidate[] = [];
  for (const candidate of candidates) {
    const subject = `NOTRACK ${describePort(candidate)}`;
    const reason = portRefusal(candidate, report, policy);
    if (reason) refusals.push({ subject, reason });
    else eligible.push(candidate);
  }

  const chosen: PortCandidate[] = [];
  let covered = 0;
  for (const candidate of eligible) {
    if (covered / total >= policy.targetShare) break;
    if (chosen.length === policy.maxPorts) break;
    chosen.push(candidate);
    covered += candidate.shortLived;
  }
  const coveredShare = covered / total;
  if (chosen.length === 0) {
    refusals.push({
      subject: 'NOTRACK',
      reason:
        candidates.length === 0
          ? `no single port holds ${Math.round(policy.minPortShare * 100)}% or more of the table in short-lived states`
          : 'no port passed the pre-flight checks',
    });
    return { chosen: [], coveredShare: 0, refusals };
  }
  if (coveredShare < policy.targetShare) {
    refusals.push({
      subject: 'NOTRACK',
      reason: `the ${chosen.length} busiest eligible port(s) hold only ${Math.round(coveredShare * 100)}% of the table in short-lived states (the policy wants ${Math.round(policy.targetShare * 100)}% from at most ${policy.maxPorts} ports): no narrow set of ports would relieve the table`,
    });
    return { chosen: [], coveredShare: 0, refusals };
  }
  return { chosen, coveredShare, refusals };
}

function portRefusal(
  candidate: PortCandidate,
  report: DiagnosticsReport,
  policy: NotrackPolicy,
): string | undefined {
  const guard = protectedBy(candidate, policy.protectedPorts);
  if (guard) return `protected by policy: ${guard.why}`;
  const natted = report.firewall.nat.ports.find(
    (rule) =>
      rule.port === candidate.port && (rule.protocol === null || rule.protocol === candidate.protocol),
  );
  if (natted) return 'a NAT rule matches this port, and untracked packets are never NATed';
  const range = (report.firewall.nat.portRanges ?? []).find(
    (rule) =>
      candidate.port >= rule.from &&
      candidate.port <= rule.to &&
      (rule.protocol === null || rule.protocol === candidate.protocol),
  );
  if (range) {
    return `a NAT rule matches the port range ${range.from}:${range.to}, which holds this port, and untracked packets are never NATed`;
  }
  const churn = candidate.shortLived / Math.max(1, candidate.entries);
  if (churn < policy.minShortLivedRatio) {
    return `only ${Math.round(churn * 100)}% of its entries are in short-lived states: its connections are long-lived, and NOTRACK would drop them from ESTABLISHED-based firewall rules for little relief`;
  }
  if (candidate.direction === 'inbound') {
    const listening = report.listeners.some(
      (listener) => listener.port === candidate.port && listener.protocol === candidate.protocol,
    );
    if (!listening) {
      const truncated = (report.truncated ?? []).some((list) => /listener/i.test(list));
      return `no local socket listens on it: the flows may be forwarded or answered by something the report cannot see${truncated ? ' (the listener list was truncated, so it may only be missing from the report)' : ''}`;
    }
  }
  return undefined;
}
