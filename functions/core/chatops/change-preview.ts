import type { DiagnosticsReport } from '../diagnostics/report.js';
import { KERNEL_DEFAULT_TIMEOUTS } from '../plan/timeouts.js';

/**
 * The exact change an action makes, as an approver needs to see it: every sysctl with its value
 * before and after, and every firewall rule the document inserts, in the syntax of the host's
 * firewall backend. Derived from the action's document parameters (what will really be sent) and
 * the diagnostics report (what the host has now).
 */

export interface SysctlChange {
  readonly name: string;
  /** The current value, or null when the report does not have it. */
  readonly before: string | null;
  readonly after: string;
  /** E.g. "kernel default assumed". */
  readonly note: string | null;
}

export interface RuleChange {
  /** Where it goes, e.g. "raw PREROUTING" or "inet conntrack_responder prerouting". */
  readonly where: string;
  readonly rule: string;
  /** Rules that are inserted only where the host's filter chains would otherwise drop the packets. */
  readonly conditional: boolean;
}

export interface ChangePreview {
  readonly sysctls: readonly SysctlChange[];
  readonly rules: readonly RuleChange[];
  /** Notes that apply to the whole change (families, comments, persistence). */
  readonly notes: readonly string[];
}

export interface PreviewableAction {
  readonly document: string;
  readonly parameters: Readonly<Record<string, string>>;
  /** Non-null when the change is made permanent once verified. */
  readonly persistParameters?: Readonly<Record<string, string>> | null;
}

const SYSCTL_PREFIX = 'net.netfilter.nf_conntrack_';

function sysctlValue(report: DiagnosticsReport | null, name: string): number | undefined {
  return report?.conntrack.sysctls[name];
}

function raiseLimitsPreview(action: PreviewableAction, report: DiagnosticsReport | null): ChangePreview {
  const p = action.parameters;
  const sysctls: SysctlChange[] = [];
  const currentMax = report?.conntrack.max ?? sysctlValue(report, `${SYSCTL_PREFIX}max`) ?? null;
  if (p.MaxEntries && String(currentMax) !== p.MaxEntries) {
    sysctls.push({
      name: `${SYSCTL_PREFIX}max`,
      before: currentMax === null ? null : String(currentMax),
      after: p.MaxEntries,
      note: null,
    });
  }
  if (p.HashSize) {
    const buckets = report?.conntrack.buckets ?? null;
    sysctls.push({
      name: `${SYSCTL_PREFIX}buckets`,
      before: buckets === null ? null : String(buckets),
      after: p.HashSize,
      note: 'hash table size (also /sys/module/nf_conntrack/parameters/hashsize)',
    });
  }
  for (const pair of (p.Timeouts ?? '').split(',').filter((item) => item !== '')) {
    const [name = '', seconds = ''] = pair.split('=');
    const full = `${SYSCTL_PREFIX}${name}`;
    const reported = sysctlValue(report, full);
    const fallback = KERNEL_DEFAULT_TIMEOUTS[name];
    sysctls.push({
      name: full,
      before: reported !== undefined ? String(reported) : fallback !== undefined ? String(fallback) : null,
      after: seconds,
      note: reported === undefined && fallback !== undefined ? 'kernel default assumed' : null,
    });
  }
  const notes: string[] = [];
  if (p.MemoryBudgetPercent)
    notes.push(
      `the host script refuses the change if a full table would use more than ${p.MemoryBudgetPercent}% of RAM`,
    );
  notes.push(
    action.persistParameters
      ? 'applied at runtime first; written to /etc/sysctl.d only after verification passes'
      : 'runtime only: nothing is written under /etc',
  );
  return { sysctls, rules: [], notes };
}

type Side = 'dport' | 'sport';

function notrackPreview(action: PreviewableAction, report: DiagnosticsReport | null): ChangePreview {
  const p = action.parameters;
  const protocol = p.Protocol ?? 'tcp';
  const inbound = p.Direction !== 'outbound';
  const specs = (p.Ports ?? '').split(',').filter((item) => item !== '');
  // Which side of a packet carries the port: a served port is the destination of what comes in.
  const inSide: Side = inbound ? 'dport' : 'sport';
  const outSide: Side = inbound ? 'sport' : 'dport';
  const backend = report?.firewall.backend ?? 'iptables-nft';
  const untrackedAccepted = report?.firewall.untrackedAccepted ?? false;
  const rules: RuleChange[] = [];
  const nft = backend === 'nftables';
  const nftPort = (spec: string) => spec.replace(':', '-');
  const iptMatch = (side: Side, spec: string) => `-p ${protocol} -m ${protocol} --${side} ${spec}`;
  const nftMatch = (side: Side, spec: string) => `${protocol} ${side} ${nftPort(spec)}`;

  if (!untrackedAccepted) {
    for (const spec of specs) {
      const replyOnly = inbound ? '' : ' (replies to ephemeral ports only, never a new SYN)';
      if (nft) {
        rules.push({
          where: 'each filter input chain that drops by default',
          rule: `${nftMatch(inSide, spec)} ct state untracked accept${replyOnly}`,
          conditional: true,
        });
        rules.push({
          where: 'each filter output chain that drops by default',
          rule: `${nftMatch(outSide, spec)} ct state untracked accept`,
          conditional: true,
        });
      } else {
        rules.push({
          where: 'filter INPUT (if it drops by default)',
          rule: `${iptMatch(inSide, spec)} -m conntrack --ctstate UNTRACKED -j ACCEPT${replyOnly}`,
          conditional: true,
        });
        rules.push({
          where: 'filter OUTPUT (if it drops by default)',
          rule: `${iptMatch(outSide, spec)} -m conntrack --ctstate UNTRACKED -j ACCEPT`,
          conditional: true,
        });
      }
    }
  }
  for (const spec of specs) {
    if (nft) {
      rules.push({
        where: 'inet conntrack_responder prerouting (raw priority)',
        rule: `${nftMatch(inSide, spec)} notrack`,
        conditional: false,
      });
      rules.push({
        where: 'inet conntrack_responder output (raw priority)',
        rule: `${nftMatch(outSide, spec)} notrack`,
        conditional: false,
      });
    } else {
      rules.push({
        where: 'raw PREROUTING',
        rule: `${iptMatch(inSide, spec)} -j CT --notrack`,
        conditional: false,
      });
      rules.push({
        where: 'raw OUTPUT',
        rule: `${iptMatch(outSide, spec)} -j CT --notrack`,
        conditional: false,
      });
    }
  }
  const notes = [
    `firewall backend ${backend}${nft ? '' : '; inserted for IPv4 and IPv6'}; every rule carries the comment conntrack-responder:${p.ChangeId ?? '<change id>'}, which the rollback removes`,
    untrackedAccepted
      ? 'the filter table already accepts UNTRACKED packets, so only the NOTRACK pair is added'
      : 'UNTRACKED accept rules go in first: without them the NOTRACK pair would drop every new connection on these ports',
    action.persistParameters
      ? 'runtime first; made permanent (a systemd unit) only after verification passes'
      : 'runtime only: nothing is written under /etc',
  ];
  return { sysctls: [], rules, notes };
}

export function previewChange(action: PreviewableAction, report: DiagnosticsReport | null): ChangePreview {
  switch (action.document) {
    case 'raise-limits':
      return raiseLimitsPreview(action, report);
    case 'notrack-ports':
      return notrackPreview(action, report);
    default:
      return {
        sysctls: [],
        rules: [],
        notes: [
          `document ${action.document} with ${Object.entries(action.parameters)
            .map(([name, value]) => `${name}=${value}`)
            .join(' ')}`,
        ],
      };
  }
}
