import type { DiagnosticsReport, PortAggregate } from '../diagnostics/report.js';
import { readSignals } from '../plan/signals.js';

/**
 * The evidence an approver reads before deciding, as short plain-text facts taken from the
 * diagnostics report: how full the table is, how fast it drops, what fills it (states, ports), and
 * what makes a change risky (firewall backend, NAT). Plain text here; the message builder escapes
 * and formats it.
 */
export interface EvidenceView {
  readonly host: string;
  readonly usage: string;
  readonly drops: string;
  readonly memory: string;
  readonly firewall: string;
  readonly nat: string;
  readonly topStates: readonly string[];
  readonly topPorts: readonly string[];
  readonly warnings: readonly string[];
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

function share(part: number, whole: number): string {
  if (whole <= 0) return '?%';
  const ratio = (part / whole) * 100;
  return `${ratio >= 10 || ratio === 0 ? integer.format(ratio) : oneDecimal.format(ratio)}%`;
}

function mib(bytes: number): string {
  return `${oneDecimal.format(bytes / 1_048_576)} MiB`;
}

function portLine(port: PortAggregate, direction: 'in' | 'out', total: number): string {
  const arrow = direction === 'in' ? 'served here' : 'remote';
  return `${port.protocol}/${port.port} (${arrow}): ${integer.format(port.entries)} entries, ${share(port.entries, total)} of the table, ${share(port.shortLived, port.entries)} short-lived`;
}

export function evidenceView(report: DiagnosticsReport, topN = 5): EvidenceView {
  const s = readSignals(report);
  const total = Math.max(report.table.entries, 1);
  const usage =
    s.count === null
      ? 'conntrack count unknown'
      : s.max === null
        ? `${integer.format(s.count)} entries (no limit read)`
        : `${integer.format(s.count)} / ${integer.format(s.max)} entries (${share(s.count, s.max)})`;
  const rate = (delta: number | null) =>
    delta === null ? 'unknown' : `${oneDecimal.format(delta / s.intervalSeconds)}/s`;
  const drops =
    s.drop === null
      ? 'drop counter unavailable'
      : `${integer.format(s.tableFullDrops ?? 0)} dropped for a full table in ${s.intervalSeconds} s (${rate(s.tableFullDrops)}); insert_failed ${rate(s.insertFailed)}, early_drop ${rate(s.earlyDrop)}`;
  const entryBytes = report.conntrack.entryBytes;
  const memory =
    entryBytes === null
      ? `${mib(report.host.memTotalBytes)} RAM, entry size unknown`
      : `${mib(report.host.memTotalBytes)} RAM, ${entryBytes} B per entry; the current limit costs up to ${mib((s.max ?? 0) * entryBytes)}`;
  const { firewall } = report;
  const untracked = firewall.untrackedAccepted
    ? 'UNTRACKED packets accepted'
    : 'UNTRACKED packets would be dropped';
  const nat = firewall.nat;
  const natText =
    !nat.allPorts && nat.ports.length === 0 && nat.owners.length === 0
      ? 'no NAT rules found'
      : [
          nat.owners.length > 0 ? `NAT owned by ${nat.owners.join(', ')}` : 'NAT rules present',
          nat.allPorts
            ? 'a NAT rule matches every port'
            : `ports ${nat.ports
                .slice(0, 10)
                .map((port) => `${port.protocol ?? 'any'}/${port.port}`)
                .join(', ')}${nat.ports.length > 10 ? ` and ${nat.ports.length - 10} more` : ''}`,
        ].join('; ');
  const states = [...report.table.byState]
    .sort((a, b) => b.entries - a.entries)
    .slice(0, topN)
    .map(
      (row) => `${row.protocol} ${row.state}: ${integer.format(row.entries)} (${share(row.entries, total)})`,
    );
  const ports = [
    ...report.table.byLocalServicePort.map((port) => ({ port, direction: 'in' as const })),
    ...report.table.byRemotePort.map((port) => ({ port, direction: 'out' as const })),
  ]
    .sort((a, b) => b.port.entries - a.port.entries)
    .slice(0, topN)
    .map(({ port, direction }) => portLine(port, direction, total));
  return {
    host: `${report.host.hostname} · ${report.host.distribution.prettyName} · kernel ${report.host.kernel} · ${report.host.cpuCount} CPUs`,
    usage,
    drops,
    memory,
    firewall: `${firewall.backend}; ${untracked}`,
    nat: natText,
    topStates: states,
    topPorts: ports,
    warnings: [...s.notes, ...report.warnings].slice(0, 5),
  };
}
