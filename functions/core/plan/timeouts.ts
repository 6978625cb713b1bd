import type { DiagnosticsReport } from '../diagnostics/report.js';

/**
 * Shorter conntrack timeouts for the states that fill the table. Each target value is chosen to be
 * safe on any host, and explained where it is defined. Only values lower than the current one are
 * ever proposed; CLOSE_WAIT is never shortened (kube-proxy raises it to 3600 s: kubernetes#32551
 * showed that a short CLOSE_WAIT breaks long half-closed connections); its growth means an
 * application that does not close its sockets, which the recommendations say.
 */

/** Kernel defaults (nf_conntrack-sysctl.rst, current mainline), used when the report lacks a sysctl. */
export const KERNEL_DEFAULT_TIMEOUTS: Readonly<Record<string, number>> = {
  tcp_timeout_established: 432_000,
  tcp_timeout_syn_sent: 120,
  tcp_timeout_syn_recv: 60,
  tcp_timeout_fin_wait: 120,
  tcp_timeout_close_wait: 60,
  tcp_timeout_last_ack: 30,
  tcp_timeout_time_wait: 120,
  tcp_timeout_close: 10,
  udp_timeout: 30,
  udp_timeout_stream: 120,
  generic_timeout: 600,
};

interface TimeoutRule {
  readonly sysctl: string;
  /** The entries it governs, as an operator names them. */
  readonly label: string;
  /** Which table states the timeout governs. */
  readonly matches: (protocol: string, state: string) => boolean;
  readonly target: number;
  readonly why: string;
  /** What would make the shorter value harmful. */
  readonly unsafeIf: string;
  readonly risk: 'low' | 'medium';
  /** Short-lived states drain within their old timeout; ESTABLISHED entries keep their timers until their next packet. */
  readonly shortLived: boolean;
  /** Not proposed on hosts that NAT (a NAT mapping dies with its entry). */
  readonly unsafeWithNat?: boolean;
}

const tcp = (state: string) => (protocol: string, s: string) =>
  protocol === 'tcp' && s.toUpperCase() === state;
const UDP_STREAM_STATES = new Set(['ASSURED', 'STREAM', 'REPLIED_STREAM']);

export const TIMEOUT_RULES: readonly TimeoutRule[] = [
  {
    sysctl: 'tcp_timeout_time_wait',
    label: 'TIME_WAIT',
    unsafeIf:
      'a peer retransmits its last FIN or ACK more than 30 s late: the packet is then seen as INVALID, which matters only where INVALID packets are logged or answered',
    matches: tcp('TIME_WAIT'),
    target: 30,
    why: 'the connection is over; the entry only absorbs a last retransmitted FIN/ACK, which arrives within seconds (Linux keeps its own TIME_WAIT socket for 60 s and handles a reused port by itself)',
    risk: 'low',
    shortLived: true,
  },
  {
    sysctl: 'tcp_timeout_fin_wait',
    label: 'FIN_WAIT',
    unsafeIf:
      'an application half-closes a connection and keeps sending in the other direction after more than 60 s of silence',
    matches: tcp('FIN_WAIT'),
    target: 60,
    why: 'one side has closed; 60 s is how long Linux itself keeps a half-closed socket (net.ipv4.tcp_fin_timeout), and every packet refreshes the entry',
    risk: 'low',
    shortLived: true,
  },
  {
    sysctl: 'tcp_timeout_syn_sent',
    label: 'SYN_SENT',
    unsafeIf:
      'a connect is retried less often than every 30 s and relies on its first SYN’s entry (no common TCP stack does)',
    matches: tcp('SYN_SENT'),
    target: 30,
    why: 'a SYN that got no answer; every retransmitted SYN refreshes the entry, so a connect still in progress keeps it',
    risk: 'low',
    shortLived: true,
  },
  {
    sysctl: 'tcp_timeout_syn_recv',
    label: 'SYN_RECV',
    unsafeIf: 'a client takes more than 30 s to complete a handshake (extreme packet loss)',
    matches: tcp('SYN_RECV'),
    target: 30,
    why: 'a handshake waiting for its final ACK; a SYN-ACK retransmission refreshes the entry',
    risk: 'low',
    shortLived: true,
  },
  {
    sysctl: 'udp_timeout',
    label: 'one-shot UDP',
    unsafeIf:
      'a UDP protocol answers more than 10 s after the request, or sends less often than every 10 s and depends on stateful firewall rules',
    matches: (protocol, state) => protocol === 'udp' && !UDP_STREAM_STATES.has(state.toUpperCase()),
    target: 10,
    why: 'one-shot UDP exchanges (DNS, metrics): a reply comes within the resolver’s 5 s retry timeout, and each packet refreshes the entry',
    risk: 'low',
    shortLived: true,
    unsafeWithNat: true,
  },
  {
    sysctl: 'generic_timeout',
    label: 'other-protocol',
    unsafeIf: 'a tunnel (GRE, ESP, …) is idle for more than 120 s and depends on stateful firewall rules',
    matches: (protocol) => protocol === 'other',
    target: 120,
    why: 'protocols conntrack does not understand (GRE without its helper, ESP, …); 120 s is what Bottlerocket ships',
    risk: 'low',
    shortLived: true,
  },
  {
    sysctl: 'tcp_timeout_established',
    label: 'ESTABLISHED',
    unsafeIf:
      'an application keeps connections idle for more than a day without keepalives and relies on stateful firewall rules or NAT: its next packet is treated as a new flow',
    matches: tcp('ESTABLISHED'),
    target: 86_400,
    why: 'one day, the value kube-proxy sets on every Kubernetes node; connections idle for longer than a day without keepalives lose their entry',
    risk: 'medium',
    shortLived: false,
    unsafeWithNat: false,
  },
];

export interface TimeoutChange {
  readonly sysctl: string;
  readonly label: string;
  readonly unsafeIf: string;
  readonly from: number;
  readonly to: number;
  /** Entries now in the states this timeout governs. */
  readonly entries: number;
  readonly share: number;
  readonly why: string;
  readonly risk: 'low' | 'medium';
  readonly shortLived: boolean;
  readonly currentAssumed: boolean;
}

export interface TimeoutPlan {
  readonly changes: readonly TimeoutChange[];
  /** Entries expected in the table at the same connection rate once the short-lived changes took effect. */
  readonly projectedEntries: number;
  readonly skipped: readonly string[];
}

export interface TimeoutOptions {
  readonly dominantStateShare: number;
  /** A state holding less than this share is not worth changing a global timeout for. */
  readonly minStateShare: number;
  readonly natInUse: boolean;
}

export function planTimeouts(report: DiagnosticsReport, options: TimeoutOptions): TimeoutPlan {
  const total = report.table.entries;
  const skipped: string[] = [];
  if (total === 0 || report.table.byState.length === 0) {
    return {
      changes: [],
      projectedEntries: total,
      skipped: ['the report has no per-state breakdown of the table'],
    };
  }
  const entriesFor = (rule: TimeoutRule) =>
    report.table.byState
      .filter((row) => rule.matches(row.protocol, row.state))
      .reduce((sum, row) => sum + row.entries, 0);

  const shortLivedTotal = TIMEOUT_RULES.filter((rule) => rule.shortLived).reduce(
    (sum, rule) => sum + entriesFor(rule),
    0,
  );
  const shortLivedDominate = shortLivedTotal / total >= options.dominantStateShare;

  const changes: TimeoutChange[] = [];
  for (const rule of TIMEOUT_RULES) {
    const entries = entriesFor(rule);
    const share = entries / total;
    if (entries === 0 || share < options.minStateShare) continue;
    const dominant = rule.shortLived ? shortLivedDominate : share >= options.dominantStateShare;
    if (!dominant) continue;
    const key = `net.netfilter.nf_conntrack_${rule.sysctl}`;
    const reported = report.conntrack.sysctls[key];
    const current = reported ?? KERNEL_DEFAULT_TIMEOUTS[rule.sysctl];
    if (current === undefined) continue;
    if (current <= rule.target) {
      skipped.push(`${rule.sysctl} is already ${current} s (≤ ${rule.target} s)`);
      continue;
    }
    if (rule.unsafeWithNat && options.natInUse) {
      skipped.push(`${rule.sysctl}: not shortened on a host that NATs (a NAT mapping dies with its entry)`);
      continue;
    }
    changes.push({
      sysctl: rule.sysctl,
      label: rule.label,
      unsafeIf: rule.unsafeIf,
      from: current,
      to: rule.target,
      entries,
      share,
      why: rule.why,
      risk: rule.risk,
      shortLived: rule.shortLived,
      currentAssumed: reported === undefined,
    });
  }
  // At a steady connection rate, entries in a state are proportional to how long they stay there.
  const removed = changes
    .filter((change) => change.shortLived)
    .reduce((sum, change) => sum + change.entries * (1 - change.to / change.from), 0);
  return { changes, projectedEntries: Math.round(total - removed), skipped };
}

export function formatTimeoutsParameter(changes: readonly TimeoutChange[]): string {
  return changes.map((change) => `${change.sysctl}=${change.to}`).join(',');
}
