/**
 * The JSON document printed by the `collect-diagnostics` SSM document
 * (runbooks/scripts/collect-diagnostics.sh), version 1. It is the contract between the host
 * script, the decision engine and the evidence bundle; `runbooks/diagnostics-schema.md` explains
 * every field for humans. A host report is untrusted input: it is always parsed with this schema,
 * and no value from it ever reaches shell text.
 *
 * Bounded by design: every list is top-N, so the document stays under SSM's 24,000-character
 * stdout limit whatever the table size.
 *
 * Changes stay additive within version 1: fields added after the first version are optional here
 * (a report from an older script still parses), although the current script always prints them.
 */

import { z } from 'zod';
import { formatIssues, type IssueFormat } from '../zod-issues.js';

export const DIAGNOSTICS_SCHEMA_VERSION = 1 as const;

const count = z.number().int().nonnegative();
const port = z.number().int().min(0).max(65535);
const protocol = z.enum(['tcp', 'udp', 'sctp', 'dccp', 'icmp', 'icmpv6', 'other']);

/** Summed per-CPU counters of /proc/net/stat/nf_conntrack (or `conntrack -S`), keyed by column name. */
export const ConntrackStatsSchema = z.record(z.string(), count);

export const PortAggregateSchema = z.object({
  protocol,
  port,
  /** Table entries for this port. */
  entries: count,
  /** Entries in short-lived states: TCP SYN_SENT, SYN_RECV, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE; UDP. */
  shortLived: count,
  /** Of those, TCP TIME_WAIT entries (what nf_conntrack_tcp_timeout_time_wait governs). (Later addition, optional.) */
  timeWait: count.optional(),
});

/** A filter-hook verdict on untracked packets (`notrack` makes packets ctstate UNTRACKED). */
export const UntrackedVerdictSchema = z.enum([
  /** A rule accepts ctstate UNTRACKED without a port restriction. */
  'accepted',
  /** Policy accept and no drop/reject rule reachable: untracked packets pass anyway. */
  'not-needed',
  /** UNTRACKED is accepted only for some ports (listed in `untracked.ports`). */
  'port-scoped',
  /** Untracked packets would be dropped. */
  'missing',
]);

const portRef = z.object({ protocol: protocol.nullable(), port });

export const DiagnosticsReportSchema = z.object({
  schemaVersion: z.literal(DIAGNOSTICS_SCHEMA_VERSION),
  /** Always "collect-diagnostics" (like the remediation documents' `document`). (Later addition, optional.) */
  document: z.literal('collect-diagnostics').optional(),
  /** ISO 8601 UTC time of the first counter sample. */
  collectedAt: z.string(),
  host: z.object({
    hostname: z.string(),
    kernel: z.string(),
    /** From /etc/os-release: ID, VERSION_ID, PRETTY_NAME ("unknown" when absent). */
    distribution: z.object({ id: z.string(), versionId: z.string(), prettyName: z.string() }),
    cpuCount: z.number().int().positive(),
    memTotalBytes: count,
    /** Inode of the network namespace the script ran in (what kernels >= 6.17 print as "in netns N"). */
    netnsInode: z.string().nullable(),
    /**
     * net.ipv4.tcp_keepalive_{time,intvl,probes} of the namespace: how long a kept-alive idle TCP
     * connection goes without a packet, which bounds EC2's idle tracking timeout (docs/sizing.md).
     * Null when unreadable. (Later addition, optional.)
     */
    tcpKeepalive: z
      .object({ timeSeconds: count, intervalSeconds: count, probes: count })
      .nullable()
      .optional(),
  }),
  conntrack: z.object({
    /** False when the nf_conntrack module is not loaded (no /proc/sys/net/netfilter/nf_conntrack_max). */
    loaded: z.boolean(),
    max: count.nullable(),
    count: count.nullable(),
    buckets: count.nullable(),
    /** Every conntrack sysctl found, by full dotted name, including old net.ipv4.netfilter.ip_conntrack_* names. */
    sysctls: z.record(z.string(), z.number()),
    /** Size of one entry's slab object in bytes (/proc/slabinfo), null when unreadable. */
    entryBytes: count.nullable(),
    /** Two samples of the summed counters, `intervalSeconds` apart; `entries` is not summed (it is per netns). */
    stats: z.object({
      first: ConntrackStatsSchema,
      second: ConntrackStatsSchema,
      intervalSeconds: z.number().positive(),
      /** Where the counters came from (`conntrack -S` when /proc/net/stat/nf_conntrack is missing). (Later addition, optional.) */
      source: z.enum(['procfs', 'conntrack-tool', 'unavailable']).optional(),
    }),
  }),
  table: z.object({
    /** Where the entries were read from. */
    source: z.enum(['procfs', 'conntrack-tool', 'unavailable']),
    /** Entries actually read (may differ slightly from conntrack.count: the table moves while read). */
    entries: count,
    /** N in every top-N list below. */
    topN: z.number().int().positive(),
    /**
     * TCP (and SCTP/DCCP) by conntrack state; protocols without states by flag: `UNREPLIED` (no reply
     * seen: early_drop may evict it), `ASSURED`, or `REPLIED`.
     */
    byState: z.array(z.object({ protocol, state: z.string(), entries: count })),
    /** Inbound flows to a port this host listens on (original direction dport, local destination). */
    byLocalServicePort: z.array(PortAggregateSchema),
    /** Outbound flows from this host to a remote service port (original direction from a local address). */
    byRemotePort: z.array(PortAggregateSchema),
    /** Peer addresses with the most entries. */
    byRemoteAddress: z.array(z.object({ address: z.string(), entries: count })),
    /** Lines of the table that could not be parsed (0 on a healthy read). (Later addition, optional.) */
    unparsed: count.optional(),
    /** Entries by direction: to a local listening port, to a local non-listening port, from a local address, neither (routed/NATed). (Later addition, optional.) */
    flows: z
      .object({ inboundToListener: count, inboundOther: count, outbound: count, forwarded: count })
      .optional(),
    /**
     * True when byRemotePort/byRemoteAddress had more distinct keys than the bounded summary holds:
     * their counts are then lower bounds (the order is still the heavy hitters). (Later addition, optional.)
     */
    approximate: z.boolean().optional(),
    /** Seconds spent reading the table (centisecond resolution). (Later addition, optional.) */
    readSeconds: z.number().nonnegative().optional(),
  }),
  firewall: z.object({
    backend: z.enum(['iptables-legacy', 'iptables-nft', 'nftables', 'legacy-and-nft', 'none']),
    /** `iptables -V` output, null when iptables is not installed. */
    iptablesVersion: z.string().nullable(),
    /** Tables present in this namespace, as "family name" (legacy: /proc/net/ip{,6}_tables_names; nft: nft list tables). (Later addition, optional.) */
    tables: z.object({ legacy: z.array(z.string()), nft: z.array(z.string()) }).optional(),
    /** Raw-table rules as printed by iptables-save (-t raw) or nft, bounded. */
    rawRules: z.array(z.string()),
    /** Ports touched by nat rules (DNAT/SNAT/MASQUERADE/REDIRECT); `allPorts` when a nat rule matches no port. */
    nat: z.object({
      /**
       * True when a nat rule matches no port, and also when the port list had to be truncated or a
       * range spans more than 64 ports: a reader of `ports` alone never misses a NATed port.
       */
      allPorts: z.boolean(),
      /**
       * Ports matched or produced (`--to-destination :8080`) by nat rules; ranges of up to 64 ports
       * are listed port by port. `protocol: null` means the port counts for any protocol.
       */
      ports: z.array(portRef),
      /** The port ranges as written (e.g. `--dport 30000:32767`). (Later addition, optional.) */
      portRanges: z.array(z.object({ protocol: protocol.nullable(), from: port, to: port })).optional(),
      owners: z.array(z.enum(['docker', 'kube-proxy', 'other'])),
      /** The nat rules themselves, bounded, prefixed with the tool that printed them. (Later addition, optional.) */
      rules: z.array(z.string()).optional(),
    }),
    /** Whether filter INPUT/OUTPUT accept ctstate UNTRACKED packets, or need not (policy ACCEPT, no rules). */
    untrackedAccepted: z.boolean(),
    /** The verdict per hook (the worst over every table with a filter chain there) and port-scoped accepts. (Later addition, optional.) */
    untracked: z
      .object({ input: UntrackedVerdictSchema, output: UntrackedVerdictSchema, ports: z.array(portRef) })
      .optional(),
  }),
  /** Listening sockets (TCP LISTEN and bound UDP), bounded. */
  listeners: z.array(z.object({ protocol, address: z.string(), port, process: z.string().nullable() })),
  /** Programs that rewrite conntrack sysctls (kube-proxy, Bottlerocket settings, sysctl.d files, ...). */
  sysctlOwners: z.array(z.object({ name: z.string(), detail: z.string() })),
  /** ENA allowance counters per interface where `ethtool -S` has them, sampled with the conntrack stats. */
  ena: z.array(
    z.object({
      interface: z.string(),
      /**
       * The interface's MAC address (/sys/class/net/IF/address, lower case), which names its ENI in
       * DescribeNetworkInterfaces; null when unreadable. (Later addition, optional.)
       */
      mac: z
        .string()
        .regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/)
        .nullable()
        .optional(),
      first: z.object({ exceeded: count.nullable(), available: count.nullable() }),
      second: z.object({ exceeded: count.nullable(), available: count.nullable() }),
    }),
  ),
  /** Anything the script could not read, in plain words. */
  warnings: z.array(z.string()),
  /** Lists cut to keep the document under the size limit (e.g. "listener", "rawrule"). (Later addition, optional.) */
  truncated: z.array(z.string()).optional(),
});

export type DiagnosticsReport = z.infer<typeof DiagnosticsReportSchema>;
export type PortAggregate = z.infer<typeof PortAggregateSchema>;
export type ConntrackStats = z.infer<typeof ConntrackStatsSchema>;
export type UntrackedVerdict = z.infer<typeof UntrackedVerdictSchema>;

/** What reading a report gave: the report, or why the text is not one (in words fit for a message). */
export type DiagnosticsReading =
  | { readonly ok: true; readonly report: DiagnosticsReport }
  | {
      readonly ok: false;
      /** `not-json`: the text does not parse; `not-a-report`: it parses but breaks the contract. */
      readonly reason: 'not-json' | 'not-a-report';
      /** The JSON parser's message, or the first schema issues as `path: message; …`. */
      readonly detail: string;
    };

/**
 * The one reader of collect-diagnostics' stdout as the report contract. The text is untrusted host
 * output: it never throws, and what it says about a bad report is bounded (the first five schema
 * issues unless `format` says otherwise). Callers word the failure for their audience.
 */
export function readDiagnosticsReport(text: string, format: IssueFormat = {}): DiagnosticsReading {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: 'not-json', detail: (error as Error).message };
  }
  const parsed = DiagnosticsReportSchema.safeParse(json);
  if (parsed.success) return { ok: true, report: parsed.data };
  return { ok: false, reason: 'not-a-report', detail: formatIssues(parsed.error, { limit: 5, ...format }) };
}
