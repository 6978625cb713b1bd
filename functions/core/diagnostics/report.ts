import { z } from 'zod';

/**
 * The JSON document printed by the `collect-diagnostics` SSM document
 * (runbooks/scripts/collect-diagnostics.sh), version 1. It is the contract between the host
 * script, the decision engine and the evidence bundle; `runbooks/diagnostics-schema.md` explains
 * every field for humans. A host report is untrusted input: it is always parsed with this schema,
 * and no value from it ever reaches shell text.
 *
 * Bounded by design: every list is top-N, so the document stays under SSM's 24,000-character
 * stdout limit whatever the table size.
 */
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
});

export const DiagnosticsReportSchema = z.object({
  schemaVersion: z.literal(DIAGNOSTICS_SCHEMA_VERSION),
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
    }),
  }),
  table: z.object({
    /** Where the entries were read from. */
    source: z.enum(['procfs', 'conntrack-tool', 'unavailable']),
    /** Entries actually read (may differ slightly from conntrack.count: the table moves while read). */
    entries: count,
    /** N in every top-N list below. */
    topN: z.number().int().positive(),
    byState: z.array(z.object({ protocol, state: z.string(), entries: count })),
    /** Inbound flows to a port this host listens on (original direction dport, local destination). */
    byLocalServicePort: z.array(PortAggregateSchema),
    /** Outbound flows from this host to a remote service port (original direction from a local address). */
    byRemotePort: z.array(PortAggregateSchema),
    /** Peer addresses with the most entries. */
    byRemoteAddress: z.array(z.object({ address: z.string(), entries: count })),
  }),
  firewall: z.object({
    backend: z.enum(['iptables-legacy', 'iptables-nft', 'nftables', 'legacy-and-nft', 'none']),
    /** `iptables -V` output, null when iptables is not installed. */
    iptablesVersion: z.string().nullable(),
    /** Raw-table rules as printed by iptables-save (-t raw) or nft, bounded. */
    rawRules: z.array(z.string()),
    /** Ports touched by nat rules (DNAT/SNAT/MASQUERADE/REDIRECT); `allPorts` when a nat rule matches no port. */
    nat: z.object({
      allPorts: z.boolean(),
      ports: z.array(z.object({ protocol: protocol.nullable(), port })),
      owners: z.array(z.enum(['docker', 'kube-proxy', 'other'])),
    }),
    /** Whether filter INPUT/OUTPUT accept ctstate UNTRACKED packets, or need not (policy ACCEPT, no rules). */
    untrackedAccepted: z.boolean(),
  }),
  /** Listening sockets (TCP LISTEN and bound UDP), bounded. */
  listeners: z.array(z.object({ protocol, address: z.string(), port, process: z.string().nullable() })),
  /** Programs that rewrite conntrack sysctls (kube-proxy, Bottlerocket settings, sysctl.d files, ...). */
  sysctlOwners: z.array(z.object({ name: z.string(), detail: z.string() })),
  /** ENA allowance counters per interface where `ethtool -S` has them, sampled with the conntrack stats. */
  ena: z.array(
    z.object({
      interface: z.string(),
      first: z.object({ exceeded: count.nullable(), available: count.nullable() }),
      second: z.object({ exceeded: count.nullable(), available: count.nullable() }),
    }),
  ),
  /** Anything the script could not read, in plain words. */
  warnings: z.array(z.string()),
});

export type DiagnosticsReport = z.infer<typeof DiagnosticsReportSchema>;
export type PortAggregate = z.infer<typeof PortAggregateSchema>;
export type ConntrackStats = z.infer<typeof ConntrackStatsSchema>;
