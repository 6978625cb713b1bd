import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DiagnosticsReport, DiagnosticsReportSchema } from '../../functions/core/diagnostics/report.js';
import { FIREWALL_BACKENDS } from '../../functions/local/firewall.js';
import { execInNetns } from '../../functions/local/netns.js';
import { runDocument } from '../../functions/local/ssm-executor.js';
import {
  type ChurnResult,
  churnConnections,
  startTcpService,
  type TcpService,
} from '../../functions/local/traffic.js';
import { createServedLabHosts, keepTimeWaitEntries, type ServedLabHosts } from './support/lab.js';
import { labUnavailable } from './support/prerequisites.js';
import {
  createRemediationDirs,
  type RemediationDirs,
  type RemediationRun,
  type RulesSnapshot,
  rulesSnapshot,
  runRemediation,
} from './support/remediation.js';

/**
 * The host scripts on IPv6, on the real kernel: the instance and clients namespaces share a ULA
 * /64 next to their IPv4 /30, and the instance firewall filters both families.
 */

const SERVICE_PORT = 8080;
const OTHER_PORT = 9090;
const BACKEND_PORT = 11211; // served by the clients namespace, the instance is its client

/** `[addr]` as the 16 groups of 4 hex digits: /proc/net/nf_conntrack and conntrack -L differ in form. */
function expand6(address: string): string {
  const [left = '', right = ''] = address.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const missing = 8 - groups(left).length - groups(right).length;
  return [...groups(left), ...Array<string>(missing).fill('0'), ...groups(right)]
    .map((group) => group.padStart(4, '0'))
    .join(':')
    .toLowerCase();
}

function sameAddress(reported: string, address: string): boolean {
  return reported.includes(':') ? expand6(reported) === expand6(address) : reported === address;
}

/** The namespace's IPv6 TCP entries whose original direction goes to `port` (conntrack -L -f ipv6). */
async function ipv6EntriesToPort(namespace: string, port: number): Promise<number> {
  const { stdout } = await execInNetns(namespace, 'conntrack', ['-L', '-f', 'ipv6', '-p', 'tcp']);
  return stdout.split('\n').filter((line) => /\bdport=(\d+)/.exec(line)?.[1] === String(port)).length;
}

function allSucceeded(result: ChurnResult | undefined, count: number): void {
  expect(result).toMatchObject({ attempted: count, succeeded: count, failed: 0 });
}

describe.skipIf(labUnavailable)('collect-diagnostics on a table with IPv6 and IPv4 entries', () => {
  const V6_IN = 40;
  const V4_IN = 15;
  const V6_OUT = 10;
  let hosts: ServedLabHosts;
  let backendService: TcpService;
  let emptyRoot: string;
  const churn: { v6In?: ChurnResult; v4In?: ChurnResult; v6Out?: ChurnResult } = {};
  const reports: { procfs?: DiagnosticsReport; tool?: DiagnosticsReport } = {};

  const collect = async (env: Record<string, string>) => {
    const result = await runDocument({
      name: 'collect-diagnostics',
      parameters: { SampleSeconds: '1' },
      netns: hosts.instance,
      env: { CONNTRACK_RESPONDER_ROOT: emptyRoot, ...env },
    });
    if (result.status !== 'Success') throw new Error(`collect-diagnostics failed:\n${result.stderr}`);
    return DiagnosticsReportSchema.parse(JSON.parse(result.stdout));
  };

  beforeAll(async () => {
    emptyRoot = await mkdtemp(join(tmpdir(), 'ctr-v6-root-'));
    hosts = await createServedLabHosts({
      role: 'v6d',
      backend: 'iptables-nft',
      servicePorts: [SERVICE_PORT],
      ipv6: true,
    });
    const { instance, clients, instanceAddress, instanceAddress6, clientAddress6 } = hosts;
    backendService = await startTcpService(clients, clientAddress6 as string, BACKEND_PORT);
    // Each connection leaves one TIME_WAIT entry, kept for the whole test: the counts below are exact.
    await keepTimeWaitEntries(instance);
    const options = { concurrency: 8, timeoutMs: 5000 };
    churn.v6In = await churnConnections(clients, instanceAddress6 as string, SERVICE_PORT, {
      count: V6_IN,
      ...options,
    });
    churn.v4In = await churnConnections(clients, instanceAddress, SERVICE_PORT, { count: V4_IN, ...options });
    churn.v6Out = await churnConnections(instance, clientAddress6 as string, BACKEND_PORT, {
      count: V6_OUT,
      ...options,
    });
    reports.procfs = await collect({});
    reports.tool = await collect({ CONNTRACK_RESPONDER_PROC_NET: '/nonexistent' });
  });
  afterAll(async () => {
    await backendService?.stop();
    await hosts?.destroy();
    if (emptyRoot) await rm(emptyRoot, { recursive: true, force: true });
  });

  it('made the connections it counts on (IPv6 in and out, IPv4 in)', () => {
    allSucceeded(churn.v6In, V6_IN);
    allSucceeded(churn.v4In, V4_IN);
    allSucceeded(churn.v6Out, V6_OUT);
  });

  describe.each(['procfs', 'tool'] as const)('reading the table from %s', (source) => {
    it('counts every entry of both families and parses every line', () => {
      const report = reports[source] as DiagnosticsReport;
      expect(report.table.source).toBe(source === 'procfs' ? 'procfs' : 'conntrack-tool');
      expect(report.table.unparsed).toBe(0);
      expect(report.table.entries).toBe(V6_IN + V4_IN + V6_OUT);
    });

    it('puts IPv6 and IPv4 clients of the local service under one port, each peer with its own count', () => {
      const { table } = reports[source] as DiagnosticsReport;
      expect(table.byLocalServicePort).toEqual([
        expect.objectContaining({ protocol: 'tcp', port: SERVICE_PORT, entries: V6_IN + V4_IN }),
      ]);
      expect(table.flows).toEqual({
        inboundToListener: V6_IN + V4_IN,
        inboundOther: 0,
        outbound: V6_OUT,
        forwarded: 0,
      });
      const peers = table.byRemoteAddress;
      expect(peers).toHaveLength(2);
      const v6Peer = peers.find((peer) => sameAddress(peer.address, hosts.clientAddress6 as string));
      const v4Peer = peers.find((peer) => peer.address === hosts.clientAddress);
      expect(v6Peer?.entries).toBe(V6_IN + V6_OUT);
      expect(v4Peer?.entries).toBe(V4_IN);
    });

    it('sees the instance as an IPv6 client of the remote port', () => {
      const { table } = reports[source] as DiagnosticsReport;
      expect(table.byRemotePort).toEqual([
        expect.objectContaining({ protocol: 'tcp', port: BACKEND_PORT, entries: V6_OUT }),
      ]);
      // Every connection ended with both FINs acknowledged; a stray RST would leave one in CLOSE.
      expect(table.byState[0]).toMatchObject({ protocol: 'tcp', state: 'TIME_WAIT' });
      const tcpEntries = table.byState.reduce(
        (sum, row) => sum + (row.protocol === 'tcp' ? row.entries : 0),
        0,
      );
      expect(tcpEntries).toBe(V6_IN + V4_IN + V6_OUT);
    });
  });

  it('lists the IPv6 listener next to the IPv4 one', () => {
    const listeners = (reports.procfs as DiagnosticsReport).listeners.filter(
      (listener) => listener.port === SERVICE_PORT,
    );
    const addresses = listeners.map((listener) =>
      listener.address.includes(':') ? expand6(listener.address) : listener.address,
    );
    expect(addresses.sort()).toEqual(
      [hosts.instanceAddress, expand6(hosts.instanceAddress6 as string)].sort(),
    );
  });
});

describe.skipIf(labUnavailable)('notrack-ports inbound for an IPv6-served port', () => {
  describe.each(FIREWALL_BACKENDS)('%s', (backend) => {
    const PROBE = 12;
    let hosts: ServedLabHosts;
    let dirs: RemediationDirs;
    const change = {
      ChangeId: `nt-v6-${backend}`,
      Ports: String(SERVICE_PORT),
      Protocol: 'tcp',
      Direction: 'inbound',
    };
    const seen: {
      before?: RulesSnapshot;
      trackedBefore?: { probe: ChurnResult; added: number };
      first?: RemediationRun;
      afterFirst?: RulesSnapshot;
      untracked?: { probe: ChurnResult; added: number };
      otherPort?: { probe: ChurnResult; added: number };
      second?: RemediationRun;
      afterSecond?: RulesSnapshot;
      rollback?: RemediationRun;
      afterRollback?: RulesSnapshot;
      trackedAfter?: { probe: ChurnResult; added: number };
    } = {};

    /** New IPv6 connections to `port`, and how many IPv6 entries for that port they added. */
    const connectV6 = async (port: number) => {
      const before = await ipv6EntriesToPort(hosts.instance, port);
      const probe = await churnConnections(hosts.clients, hosts.instanceAddress6 as string, port, {
        count: PROBE,
        concurrency: 4,
        timeoutMs: 5000,
      });
      return { probe, added: (await ipv6EntriesToPort(hosts.instance, port)) - before };
    };

    beforeAll(async () => {
      hosts = await createServedLabHosts({
        role: 'v6n',
        backend,
        servicePorts: [SERVICE_PORT, OTHER_PORT],
        ipv6: true,
      });
      // `added` compares counts taken up to minutes apart on a loaded machine: no entry may expire.
      await keepTimeWaitEntries(hosts.instance);
      dirs = await createRemediationDirs();
      seen.before = await rulesSnapshot(hosts.instance);
      seen.trackedBefore = await connectV6(SERVICE_PORT);
      seen.first = await runRemediation('notrack-ports', change, hosts.instance, dirs);
      seen.afterFirst = await rulesSnapshot(hosts.instance);
      seen.untracked = await connectV6(SERVICE_PORT);
      seen.otherPort = await connectV6(OTHER_PORT);
      seen.second = await runRemediation('notrack-ports', change, hosts.instance, dirs);
      seen.afterSecond = await rulesSnapshot(hosts.instance);
      seen.rollback = await runRemediation('rollback', { ChangeId: change.ChangeId }, hosts.instance, dirs);
      seen.afterRollback = await rulesSnapshot(hosts.instance);
      seen.trackedAfter = await connectV6(SERVICE_PORT);
    });
    afterAll(async () => {
      await hosts?.destroy();
      await dirs?.remove();
    });

    it('tracks IPv6 connections to the port before the change (each leaves a TIME_WAIT entry)', () => {
      allSucceeded(seen.trackedBefore?.probe, PROBE);
      expect(seen.trackedBefore?.added).toBe(PROBE);
    });

    it('adds the IPv6 raw pair and the UNTRACKED accept to the IPv6 filter', () => {
      const { result, exitCode } = seen.first as RemediationRun;
      expect(exitCode, JSON.stringify(result)).toBe(0);
      expect(result).toMatchObject({ status: 'applied', backend, reasons: [] });
      const tag = `conntrack-responder:${change.ChangeId}`;
      const after = seen.afterFirst as RulesSnapshot;
      if (backend === 'nftables') {
        // One inet table serves both families; the accept goes into the inet filter that drops.
        expect(seen.before?.nftables).not.toContain(tag);
        expect(after.nftables).toMatch(/table inet \S+ \{[\s\S]*type filter hook prerouting priority raw/);
        expect(after.nftables).toContain(`tcp dport ${SERVICE_PORT} notrack comment "${tag}"`);
        expect(after.nftables).toContain(`tcp sport ${SERVICE_PORT} notrack comment "${tag}"`);
        expect(after.nftables).toContain(
          `tcp dport ${SERVICE_PORT} ct state untracked accept comment "${tag}"`,
        );
      } else {
        const comment = `-m comment --comment "${tag}"`;
        const save6 = backend === 'iptables-nft' ? after.ip6tablesNft : after.ip6tablesLegacy;
        const before6 = backend === 'iptables-nft' ? seen.before?.ip6tablesNft : seen.before?.ip6tablesLegacy;
        expect(save6).toContain('*raw');
        const raw = save6.slice(save6.indexOf('*raw'));
        expect(before6).not.toContain(tag);
        expect(raw).toContain(
          `-A PREROUTING -p tcp -m tcp --dport ${SERVICE_PORT} ${comment} -j CT --notrack`,
        );
        expect(raw).toContain(`-A OUTPUT -p tcp -m tcp --sport ${SERVICE_PORT} ${comment} -j CT --notrack`);
        const accept = `-A INPUT -p tcp -m tcp --dport ${SERVICE_PORT} -m conntrack --ctstate UNTRACKED ${comment} -j ACCEPT`;
        expect(save6).toContain(accept);
        expect(save6.indexOf(accept)).toBeLessThan(save6.indexOf('--ctstate RELATED,ESTABLISHED -j ACCEPT'));
      }
    });

    it('no longer tracks new IPv6 connections to the port, and they still succeed', () => {
      allSucceeded(seen.untracked?.probe, PROBE);
      expect(seen.untracked?.added).toBe(0);
    });

    it('still tracks IPv6 connections to another port', () => {
      allSucceeded(seen.otherPort?.probe, PROBE);
      expect(seen.otherPort?.added).toBe(PROBE);
    });

    it('adds nothing when run again', () => {
      expect(seen.second?.result).toMatchObject({ status: 'unchanged', rulesAdded: [] });
      expect(seen.afterSecond).toEqual(seen.afterFirst);
    });

    it('rolls back to exactly the rules before, IPv6 included, and the port is tracked again', () => {
      expect(seen.rollback?.result).toMatchObject({ status: 'rolled-back', rulesetMatchesSaved: true });
      expect(seen.afterRollback).toEqual(seen.before);
      allSucceeded(seen.trackedAfter?.probe, PROBE);
      expect(seen.trackedAfter?.added).toBe(PROBE);
    });
  });
});
