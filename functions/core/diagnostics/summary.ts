import type { DiagnosticsReport, PortAggregate } from './report.js';

/**
 * A diagnostics report in a few lines a human reads during an incident: how full the table is,
 * whether packets are being dropped right now, which ports and peers hold the entries, and what
 * the firewall would allow. Pure: the same text for the same report.
 */

const number = (value: number) => value.toLocaleString('en-US');
const percent = (part: number, whole: number) => (whole > 0 ? `${Math.round((part / whole) * 100)}%` : '-');

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

/** `+N (R/s)` for a counter between the two samples, `n/a` when missing, `reset` when it went back. */
function counterDelta(report: DiagnosticsReport, name: string): string {
  const { first, second, intervalSeconds } = report.conntrack.stats;
  const a = first[name];
  const b = second[name];
  if (a === undefined || b === undefined) return `${name} n/a`;
  if (b < a) return `${name} reset`;
  const rate = (b - a) / intervalSeconds;
  return `${name} +${number(b - a)} (${rate >= 10 ? Math.round(rate) : rate.toFixed(1)}/s)`;
}

function portLine(row: PortAggregate, total: number, process?: string | null): string {
  const timeWait = row.timeWait === undefined ? '' : `, ${number(row.timeWait)} TIME_WAIT`;
  const owner = process ? ` [${process}]` : '';
  return `${row.protocol}/${row.port}${owner}: ${number(row.entries)} (${percent(row.entries, total)}), ${number(row.shortLived)} short-lived${timeWait}`;
}

function list(items: readonly string[], empty = 'none'): string {
  return items.length > 0 ? items.join('; ') : empty;
}

export function summarizeReport(report: DiagnosticsReport): string {
  const { host, conntrack, table, firewall } = report;
  const lines: string[] = [];
  const dist =
    host.distribution.prettyName !== 'unknown' ? host.distribution.prettyName : host.distribution.id;
  lines.push(
    `host ${host.hostname} (${dist}, kernel ${host.kernel}, ${host.cpuCount} CPUs, ${gib(host.memTotalBytes)})` +
      `${host.netnsInode ? `, netns ${host.netnsInode}` : ''}, collected ${report.collectedAt}`,
  );
  if (!conntrack.loaded) {
    lines.push('conntrack: the nf_conntrack module is not loaded (nothing is tracked, no table to fill)');
  } else {
    const usage = conntrack.max ? ` (${percent(conntrack.count ?? 0, conntrack.max)} full)` : '';
    const entry = conntrack.entryBytes === null ? '' : `, ${conntrack.entryBytes} B per entry`;
    lines.push(
      `conntrack: ${number(conntrack.count ?? 0)} of ${conntrack.max === null ? '?' : number(conntrack.max)} entries${usage}, ` +
        `${conntrack.buckets === null ? '?' : number(conntrack.buckets)} buckets${entry}`,
    );
    lines.push(
      `counters over ${conntrack.stats.intervalSeconds} s: ${['drop', 'early_drop', 'insert_failed']
        .map((name) => counterDelta(report, name))
        .join(', ')}`,
    );
  }
  if (table.source === 'unavailable') {
    lines.push('table: not read');
  } else {
    const read = table.readSeconds === undefined ? '' : ` in ${table.readSeconds} s`;
    const approximate = table.approximate ? ' (remote ports/peers: lower bounds)' : '';
    lines.push(`table (${table.source}, ${number(table.entries)} entries read${read})${approximate}:`);
    lines.push(
      `  states: ${list(table.byState.map((row) => `${row.protocol} ${row.state} ${number(row.entries)} (${percent(row.entries, table.entries)})`))}`,
    );
    if (table.flows) {
      const { inboundToListener, inboundOther, outbound, forwarded } = table.flows;
      lines.push(
        `  directions: served here ${number(inboundToListener)}, inbound to other ports ${number(inboundOther)}, ` +
          `outbound ${number(outbound)}, routed ${number(forwarded)}`,
      );
    }
    const processOf = (row: PortAggregate) =>
      report.listeners.find((listener) => listener.protocol === row.protocol && listener.port === row.port)
        ?.process;
    lines.push(
      `  served here: ${list(table.byLocalServicePort.map((row) => portLine(row, table.entries, processOf(row))))}`,
    );
    lines.push(`  remote services: ${list(table.byRemotePort.map((row) => portLine(row, table.entries)))}`);
    lines.push(
      `  peers: ${list(table.byRemoteAddress.map((row) => `${row.address} ${number(row.entries)} (${percent(row.entries, table.entries)})`))}`,
    );
  }
  const nat = firewall.nat;
  const natPorts = nat.allPorts
    ? 'every port (a rule matches no port)'
    : list(nat.ports.map((entry) => `${entry.protocol ?? 'any'}/${entry.port}`));
  const untracked = firewall.untracked
    ? `input ${firewall.untracked.input}, output ${firewall.untracked.output}`
    : firewall.untrackedAccepted
      ? 'accepted'
      : 'not accepted';
  lines.push(
    `firewall: ${firewall.backend}${firewall.iptablesVersion ? ` (${firewall.iptablesVersion})` : ''}; ` +
      `raw rules: ${firewall.rawRules.length}; NAT ports: ${natPorts}` +
      `${nat.owners.length > 0 ? ` (owners: ${nat.owners.join(', ')})` : ''}; UNTRACKED: ${untracked}`,
  );
  lines.push(`sysctl owners: ${list(report.sysctlOwners.map((owner) => `${owner.name}: ${owner.detail}`))}`);
  if (report.ena.length > 0) {
    lines.push(
      `ENA: ${report.ena
        .map((entry) => {
          const { first, second } = entry;
          const exceeded =
            first.exceeded === null || second.exceeded === null
              ? 'n/a'
              : `+${number(second.exceeded - first.exceeded)}`;
          const available = second.available === null ? '' : `, ${number(second.available)} available`;
          return `${entry.interface} conntrack_allowance_exceeded ${exceeded}${available}`;
        })
        .join('; ')}`,
    );
  }
  for (const warning of report.warnings) lines.push(`warning: ${warning}`);
  if (report.truncated && report.truncated.length > 0)
    lines.push(`cut to fit: ${report.truncated.join(', ')}`);
  return `${lines.join('\n')}\n`;
}
