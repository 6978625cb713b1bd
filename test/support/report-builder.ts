import {
  type DiagnosticsReport,
  DiagnosticsReportSchema,
  type PortAggregate,
  type UntrackedVerdict,
} from '../../functions/core/diagnostics/report.js';

type Protocol = PortAggregate['protocol'];
type Backend = DiagnosticsReport['firewall']['backend'];
type NatOwner = DiagnosticsReport['firewall']['nat']['owners'][number];

const GIB = 1024 ** 3;

/**
 * Builds diagnostics reports for tests: a healthy host by default, changed one fact at a time,
 * and always validated against the real schema so that fixtures break loudly when the contract
 * changes instead of drifting from it.
 */
export class ReportBuilder {
  private readonly draft: DiagnosticsReport;

  private constructor() {
    this.draft = {
      schemaVersion: 1,
      collectedAt: '2026-11-21T10:00:00.000Z',
      host: {
        hostname: 'ip-10-0-1-5',
        kernel: '6.18.0-1-cloud-amd64',
        distribution: { id: 'debian', versionId: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)' },
        cpuCount: 4,
        memTotalBytes: 16 * GIB,
        netnsInode: '4026532177',
      },
      conntrack: {
        loaded: true,
        max: 262_144,
        count: 10_000,
        buckets: 262_144,
        sysctls: {},
        entryBytes: 256,
        stats: {
          first: {
            entries: 10_000,
            drop: 1_000,
            insert_failed: 5,
            clashres: 40,
            early_drop: 0,
            chaintoolong: 0,
          },
          second: {
            entries: 10_000,
            drop: 1_000,
            insert_failed: 5,
            clashres: 40,
            early_drop: 0,
            chaintoolong: 0,
          },
          intervalSeconds: 3,
        },
      },
      table: {
        source: 'procfs',
        entries: 10_000,
        topN: 10,
        byState: [{ protocol: 'tcp', state: 'ESTABLISHED', entries: 10_000 }],
        byLocalServicePort: [],
        byRemotePort: [],
        byRemoteAddress: [],
      },
      firewall: {
        backend: 'iptables-nft',
        iptablesVersion: 'iptables v1.8.9 (nf_tables)',
        rawRules: [],
        nat: { allPorts: false, ports: [], owners: [] },
        untrackedAccepted: true,
      },
      listeners: [{ protocol: 'tcp', address: '0.0.0.0', port: 22, process: 'sshd' }],
      sysctlOwners: [],
      ena: [
        {
          interface: 'eth0',
          first: { exceeded: 0, available: 100_000 },
          second: { exceeded: 0, available: 100_000 },
        },
      ],
      warnings: [],
    };
  }

  static healthy(): ReportBuilder {
    return new ReportBuilder();
  }

  host(changes: Partial<DiagnosticsReport['host']>): this {
    Object.assign(this.draft.host, changes);
    return this;
  }

  collectedAt(iso: string): this {
    this.draft.collectedAt = iso;
    return this;
  }

  /** Sets the limit, the current count (also the `entries` stat) and optionally the hash size. */
  table(options: { max: number | null; count: number | null; buckets?: number | null }): this {
    const { conntrack } = this.draft;
    conntrack.max = options.max;
    conntrack.count = options.count;
    if (options.buckets !== undefined) conntrack.buckets = options.buckets;
    if (options.count !== null) {
      conntrack.stats.first.entries = options.count;
      conntrack.stats.second.entries = options.count;
    }
    return this;
  }

  notLoaded(): this {
    Object.assign(this.draft.conntrack, {
      loaded: false,
      max: null,
      count: null,
      buckets: null,
      entryBytes: null,
    });
    this.draft.conntrack.stats = { first: {}, second: {}, intervalSeconds: 3 };
    this.draft.table = { ...this.draft.table, source: 'unavailable', entries: 0, byState: [] };
    return this;
  }

  /** A counter's value in both samples (cumulative since module load, as the kernel reports it). */
  stat(name: string, first: number, second: number): this {
    this.draft.conntrack.stats.first[name] = first;
    this.draft.conntrack.stats.second[name] = second;
    return this;
  }

  /** The drop counter rises by `delta` between the samples. */
  drops(delta: number): this {
    return this.stat('drop', 1_000, 1_000 + delta);
  }

  insertFailed(delta: number): this {
    return this.stat('insert_failed', 5, 5 + delta);
  }

  interval(seconds: number): this {
    this.draft.conntrack.stats.intervalSeconds = seconds;
    return this;
  }

  entryBytes(bytes: number | null): this {
    this.draft.conntrack.entryBytes = bytes;
    return this;
  }

  sysctl(name: string, value: number): this {
    this.draft.conntrack.sysctls[`net.netfilter.nf_conntrack_${name}`] = value;
    return this;
  }

  /** Replaces the per-state breakdown, e.g. { 'tcp TIME_WAIT': 200000 }; table.entries becomes the sum. */
  states(rows: Record<string, number>): this {
    this.draft.table.byState = Object.entries(rows).map(([key, entries]) => {
      const [protocol, state = ''] = key.split(' ');
      return { protocol: protocol as Protocol, state, entries };
    });
    this.draft.table.entries = Object.values(rows).reduce((sum, value) => sum + value, 0);
    return this;
  }

  localPort(protocol: Protocol, port: number, entries: number, shortLived: number): this {
    this.draft.table.byLocalServicePort.push({ protocol, port, entries, shortLived });
    return this;
  }

  remotePort(protocol: Protocol, port: number, entries: number, shortLived: number): this {
    this.draft.table.byRemotePort.push({ protocol, port, entries, shortLived });
    return this;
  }

  listener(protocol: Protocol, port: number, process: string | null = null): this {
    this.draft.listeners.push({ protocol, address: '0.0.0.0', port, process });
    return this;
  }

  backend(backend: Backend): this {
    this.draft.firewall.backend = backend;
    return this;
  }

  iptablesVersion(version: string | null): this {
    this.draft.firewall.iptablesVersion = version;
    return this;
  }

  untrackedAccepted(value: boolean): this {
    this.draft.firewall.untrackedAccepted = value;
    return this;
  }

  nat(options: {
    allPorts?: boolean;
    ports?: { protocol: Protocol | null; port: number }[];
    owners?: NatOwner[];
  }): this {
    Object.assign(this.draft.firewall.nat, options);
    return this;
  }

  natRange(protocol: Protocol | null, from: number, to: number): this {
    const nat = this.draft.firewall.nat;
    nat.portRanges = [...(nat.portRanges ?? []), { protocol, from, to }];
    return this;
  }

  /** Per-hook UNTRACKED verdicts (schema v1.1); `ports` are the port-scoped accepts. */
  untracked(
    input: UntrackedVerdict,
    output: UntrackedVerdict,
    ports: { protocol: Protocol | null; port: number }[] = [],
  ): this {
    this.draft.firewall.untracked = { input, output, ports };
    this.draft.firewall.untrackedAccepted = input !== 'missing' && output !== 'missing';
    return this;
  }

  flows(flows: NonNullable<DiagnosticsReport['table']['flows']>): this {
    this.draft.table.flows = flows;
    return this;
  }

  truncated(...lists: string[]): this {
    this.draft.truncated = lists;
    return this;
  }

  sysctlOwner(name: string, detail: string): this {
    this.draft.sysctlOwners.push({ name, detail });
    return this;
  }

  /** ENA conntrack_allowance_exceeded rises by `delta` on the interface (whose MAC names its ENI). */
  enaExceeded(iface: string, delta: number, available = 0, mac?: string): this {
    this.draft.ena = this.draft.ena.filter((entry) => entry.interface !== iface);
    this.draft.ena.push({
      interface: iface,
      ...(mac === undefined ? {} : { mac }),
      first: { exceeded: 50, available },
      second: { exceeded: 50 + delta, available },
    });
    return this;
  }

  /** The namespace's TCP keepalive settings (net.ipv4.tcp_keepalive_*). */
  keepalive(timeSeconds: number, intervalSeconds = 75, probes = 9): this {
    this.draft.host.tcpKeepalive = { timeSeconds, intervalSeconds, probes };
    return this;
  }

  build(): DiagnosticsReport {
    return DiagnosticsReportSchema.parse(structuredClone(this.draft));
  }
}
