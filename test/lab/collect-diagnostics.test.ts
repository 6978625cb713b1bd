import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../functions/cli/main.js';
import { type DiagnosticsReport, DiagnosticsReportSchema } from '../../functions/core/diagnostics/report.js';
import { FIREWALL_BACKENDS, type FirewallBackend, snapshotFirewall } from '../../functions/local/firewall.js';
import {
  createLabHosts,
  execInNetns,
  type LabHosts,
  namespaceInode,
  withConntrackMax,
} from '../../functions/local/netns.js';
import { type RunDocumentResult, runDocument, STDOUT_LIMIT } from '../../functions/local/ssm-executor.js';
import {
  type ChurnResult,
  churnConnections,
  conntrackCount,
  reproduceTableFull,
  type TableFullResult,
} from '../../functions/local/traffic.js';
import { sendUdpFlows } from '../../functions/local/udp-flows.js';
import { createServedLabHosts, keepTimeWaitEntries, type ServedLabHosts } from './support/lab.js';
import { labUnavailable } from './support/prerequisites.js';

/**
 * collect-diagnostics through the local SSM executor, in namespaces that play the instance: the
 * report must describe that namespace's own table, counters and firewall, whatever the backend,
 * and stay a valid JSON document under SSM's 24,000 characters whatever the host holds.
 */

const SERVICE_PORT = 8080;
const LOW_MAX = 2048;
/**
 * Once a table dropped a packet, the kernel's conntrack GC evicts TIME_WAIT entries from it while
 * its count is at least nf_conntrack_max / 100 * 95 (integer arithmetic), so a table full of them
 * can be read anywhere from just under that to max (the clients refill the freed slots).
 */
const GC_EVICTION_FLOOR = Math.floor(LOW_MAX / 100) * 95 - 1;
const TIME_WAIT_SECONDS = 3600;
const AGENT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

let emptyRoot: string;

interface Collected {
  readonly report: DiagnosticsReport;
  readonly result: RunDocumentResult;
}

async function collect(
  netns: string,
  parameters: Record<string, string> = {},
  env: Record<string, string> = {},
): Promise<Collected> {
  const result = await runDocument({
    name: 'collect-diagnostics',
    parameters: { SampleSeconds: '1', ...parameters },
    netns,
    // An empty configuration root keeps this machine's /etc out of the sysctl owners.
    env: { CONNTRACK_RESPONDER_ROOT: emptyRoot, ...env },
  });
  expect(result.status, result.stderr).toBe('Success');
  expect(result.stdoutTruncated).toBe(false);
  return { report: DiagnosticsReportSchema.parse(JSON.parse(result.stdout)), result };
}

function delta(report: DiagnosticsReport, counter: string): number {
  return (report.conntrack.stats.second[counter] ?? 0) - (report.conntrack.stats.first[counter] ?? 0);
}

/** Starts a long-running process inside a namespace; it dies with the namespace at the latest. */
async function startInNetns(namespace: string, file: string, args: readonly string[]): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', namespace, file, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} did not start: ${stderr}`)), 10_000);
    child.once('exit', (code) => reject(new Error(`${file} exited ${String(code)}: ${stderr}`)));
    child.stdout?.once('data', () => {
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve();
    });
  });
  return child;
}

function stop(child: ChildProcess | undefined): void {
  if (child && child.exitCode === null) child.kill('SIGKILL');
}

beforeAll(async () => {
  emptyRoot = await mkdtemp(join(tmpdir(), 'ctr-diag-root-'));
});
afterAll(async () => {
  if (emptyRoot) await rm(emptyRoot, { recursive: true, force: true });
});

describe.skipIf(labUnavailable)(
  'collect-diagnostics during seed 003 (short TCP connections fill the table)',
  () => {
    let hosts: ServedLabHosts;
    let fill: TableFullResult;
    let failing: ChurnResult;
    let full: Collected;
    let procfs: Collected;
    let tool: Collected;

    beforeAll(async () => {
      hosts = await createServedLabHosts({
        role: 'diag',
        backend: 'iptables-nft',
        servicePorts: [SERVICE_PORT],
      });
      // The same table is read three times, minutes apart on a loaded machine: no entry may expire.
      await keepTimeWaitEntries(hosts.instance, TIME_WAIT_SECONDS);
      await withConntrackMax(LOW_MAX, async () => {
        fill = await reproduceTableFull({ hosts, port: SERVICE_PORT });
        // Clients keep failing while the report samples the counters.
        const clients = churnConnections(hosts.clients, hosts.instanceAddress, SERVICE_PORT, {
          count: 400,
          concurrency: 64,
          timeoutMs: 1500,
        });
        await new Promise((resolve) => setTimeout(resolve, 300));
        full = await collect(hosts.instance, { SampleSeconds: '2' });
        failing = await clients;
      });
      // The TIME_WAIT entries stay: read the same table from /proc and through conntrack -L.
      procfs = await collect(hosts.instance);
      tool = await collect(hosts.instance, {}, { CONNTRACK_RESPONDER_PROC_NET: '/nonexistent' });
    });
    afterAll(async () => {
      await hosts?.destroy();
    });

    it("reads the namespace's own table and limits: the count is at the lowered max", async () => {
      const { report } = full;
      expect(fill.countAtFull).toBeGreaterThanOrEqual(LOW_MAX);
      expect(report.host.netnsInode).toBe(await namespaceInode(hosts.instance));
      expect(report.conntrack).toMatchObject({ loaded: true, max: LOW_MAX });
      expect(report.conntrack.count).toBeGreaterThanOrEqual(GC_EVICTION_FLOOR);
      expect(report.conntrack.sysctls['net.netfilter.nf_conntrack_max']).toBe(LOW_MAX);
      // The namespace's own timeout (keepTimeWaitEntries), not the initial namespace's.
      expect(report.conntrack.sysctls['net.netfilter.nf_conntrack_tcp_timeout_time_wait']).toBe(
        TIME_WAIT_SECONDS,
      );
      expect(report.conntrack.entryBytes).toBeGreaterThan(0);
      expect(report.table.source).toBe('procfs');
      expect(report.table.entries).toBeGreaterThanOrEqual(GC_EVICTION_FLOOR);
      expect(report.table.entries).toBeLessThanOrEqual(LOW_MAX);
    });

    it('puts the service port on top of byLocalServicePort, its entries short-lived in TIME_WAIT', () => {
      const { table } = full.report;
      const [top] = table.byLocalServicePort;
      expect(top).toMatchObject({ protocol: 'tcp', port: SERVICE_PORT });
      expect(top?.entries).toBeGreaterThanOrEqual(table.entries * 0.9);
      expect(top?.timeWait).toBeGreaterThanOrEqual((top?.entries ?? 0) * 0.9);
      expect(top?.shortLived).toBeGreaterThanOrEqual(top?.timeWait ?? Number.POSITIVE_INFINITY);
      expect(table.byState[0]).toMatchObject({ protocol: 'tcp', state: 'TIME_WAIT' });
      expect(table.byRemoteAddress[0]).toMatchObject({ address: hosts.clientAddress });
      expect(table.byRemotePort).toEqual([]);
      expect(table.flows?.inboundToListener).toBeGreaterThanOrEqual(table.entries * 0.9);
      expect(table.approximate).toBe(false);
    });

    it('sees the drop counter rise between its two samples while clients fail', () => {
      expect(failing.failed).toBeGreaterThan(0);
      expect(full.report.conntrack.stats.source).toBe('procfs');
      expect(full.report.conntrack.stats.intervalSeconds).toBeGreaterThanOrEqual(2);
      expect(delta(full.report, 'drop')).toBeGreaterThan(0);
      expect(full.report.conntrack.stats.first.entries).toBeGreaterThan(LOW_MAX * 0.9);
    });

    it('names the listening process and the firewall it runs behind', () => {
      const { report } = full;
      const listener = report.listeners.find((entry) => entry.port === SERVICE_PORT);
      expect(listener).toMatchObject({ protocol: 'tcp', address: hosts.instanceAddress });
      expect(listener?.process).toEqual(expect.any(String));
      expect(report.firewall.backend).toBe('iptables-nft');
      expect(report.firewall.tables?.nft).toContain('ip filter');
      expect(report.firewall.untrackedAccepted).toBe(false);
      expect(report.firewall.untracked).toMatchObject({ input: 'missing', output: 'not-needed' });
      expect(report.warnings).toEqual([]);
    });

    it('reads the table with conntrack -L and the counters with conntrack -S where /proc/net lacks them', () => {
      expect(procfs.report.table.source).toBe('procfs');
      expect(tool.report.table.source).toBe('conntrack-tool');
      expect(tool.report.conntrack.stats.source).toBe('conntrack-tool');
      expect(tool.report.conntrack.stats.first).toHaveProperty('drop');
      expect(tool.report.conntrack.stats.first).toHaveProperty('early_drop');
      expect(tool.report.conntrack.stats.first.drop).toBeGreaterThan(0);
      expect(Math.abs(tool.report.table.entries - procfs.report.table.entries)).toBeLessThanOrEqual(
        procfs.report.table.entries * 0.05,
      );
      expect(tool.report.table.byLocalServicePort[0]).toMatchObject({ protocol: 'tcp', port: SERVICE_PORT });
      expect(tool.report.table.byState[0]).toMatchObject({ protocol: 'tcp', state: 'TIME_WAIT' });
      expect(tool.report.table.unparsed).toBe(0);
    });

    it('summarizes the namespace for a human with `conntrack-responder diagnose --netns`', async () => {
      const stdout = new PassThrough();
      const out: string[] = [];
      stdout.on('data', (chunk) => out.push(String(chunk)));
      const code = await main(['diagnose', '--netns', hosts.instance, '--sample-seconds', '1'], {
        stdin: new PassThrough(),
        stdout,
        stderr: new PassThrough(),
      });
      expect(code).toBe(0);
      expect(out.join('')).toMatch(/served here: tcp\/8080 \[[^\]]+\]: [\d,]+ \(\d+%\)/);
      expect(out.join('')).toContain('firewall: iptables-nft');
    });
  },
);

/** Adds a DNAT rule, a raw notrack rule and UNTRACKED accepts with the namespace's own backend. */
const ruleSteps: Record<
  FirewallBackend,
  (address: string) => { nat: string[][]; raw: string[][]; scoped: string[][]; general: string[][] }
> = {
  'iptables-nft': (address) => iptablesSteps('iptables-nft', address),
  'iptables-legacy': (address) => iptablesSteps('iptables-legacy', address),
  nftables: (address) => ({
    nat: [
      ['nft', 'add', 'table', 'ip', 'natlab'],
      ['nft', 'add', 'chain', 'ip', 'natlab', 'pre', '{ type nat hook prerouting priority dstnat; }'],
      ['nft', 'add', 'rule', 'ip', 'natlab', 'pre', 'tcp', 'dport', '8443', 'dnat', 'to', `${address}:8080`],
    ],
    raw: [
      ['nft', 'add', 'table', 'inet', 'rawlab'],
      ['nft', 'add', 'chain', 'inet', 'rawlab', 'pre', '{ type filter hook prerouting priority raw; }'],
      ['nft', 'add', 'rule', 'inet', 'rawlab', 'pre', 'tcp', 'dport', '11211', 'notrack'],
    ],
    scoped: [
      [
        'nft',
        'insert',
        'rule',
        'inet',
        'filter',
        'input',
        'tcp',
        'dport',
        '11211',
        'ct',
        'state',
        'untracked',
        'accept',
      ],
    ],
    general: [['nft', 'insert', 'rule', 'inet', 'filter', 'input', 'ct', 'state', 'untracked', 'accept']],
  }),
};

function iptablesSteps(tool: string, address: string) {
  return {
    nat: [[tool, '-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '--dport', '8443', '-j', 'DNAT']].map(
      (argv) => [...argv, '--to-destination', `${address}:8080`],
    ),
    raw: [[tool, '-t', 'raw', '-A', 'PREROUTING', '-p', 'tcp', '--dport', '11211', '-j', 'CT', '--notrack']],
    scoped: [
      [tool, '-I', 'INPUT', '-p', 'tcp', '--dport', '11211', '-m', 'conntrack', '--ctstate', 'UNTRACKED'],
    ].map((argv) => [...argv, '-j', 'ACCEPT']),
    general: [[tool, '-I', 'INPUT', '-m', 'conntrack', '--ctstate', 'UNTRACKED', '-j', 'ACCEPT']],
  };
}

async function run(namespace: string, steps: readonly string[][]): Promise<void> {
  for (const [file, ...args] of steps) if (file) await execInNetns(namespace, file, args);
}

describe.skipIf(labUnavailable).each(FIREWALL_BACKENDS)(
  'collect-diagnostics with a %s firewall',
  (backend) => {
    let hosts: ServedLabHosts;
    let plain: Collected;
    let withRules: Collected;
    let scoped: Collected;
    let general: Collected;
    let snapshotBefore: Awaited<ReturnType<typeof snapshotFirewall>>;
    let snapshotAfter: Awaited<ReturnType<typeof snapshotFirewall>>;

    beforeAll(async () => {
      hosts = await createServedLabHosts({ role: 'diagfw', backend, servicePorts: [SERVICE_PORT] });
      const steps = ruleSteps[backend](hosts.instanceAddress);
      plain = await collect(hosts.instance);
      await run(hosts.instance, [...steps.nat, ...steps.raw]);
      snapshotBefore = await snapshotFirewall(hosts.instance);
      withRules = await collect(hosts.instance);
      snapshotAfter = await snapshotFirewall(hosts.instance);
      await run(hosts.instance, steps.scoped);
      scoped = await collect(hosts.instance);
      await run(hosts.instance, steps.general);
      general = await collect(hosts.instance);
    });
    afterAll(async () => {
      await hosts?.destroy();
    });

    it(`detects the ${backend} backend`, () => {
      for (const { report } of [plain, withRules, general]) expect(report.firewall.backend).toBe(backend);
      const tables = withRules.report.firewall.tables;
      if (backend === 'iptables-legacy') {
        expect(tables?.legacy).toEqual(expect.arrayContaining(['ip filter', 'ip nat', 'ip raw']));
        expect(tables?.nft).toEqual([]);
      } else {
        expect(tables?.legacy).toEqual([]);
        expect(tables?.nft.length).toBeGreaterThan(0);
      }
    });

    it('changes nothing: the ruleset is the same before and after, in every backend view', () => {
      expect(snapshotAfter).toEqual(snapshotBefore);
    });

    it("lists the DNAT rule's ports under nat, and no port without a nat rule", () => {
      expect(plain.report.firewall.nat).toMatchObject({ allPorts: false, ports: [], owners: [] });
      const { nat } = withRules.report.firewall;
      expect(nat.allPorts).toBe(false);
      expect(nat.ports).toContainEqual({ protocol: 'tcp', port: 8443 });
      // The translated port counts too: un-NATing the replies needs conntrack as much.
      expect(nat.ports.map((entry) => entry.port)).toContain(8080);
      expect(nat.owners).toEqual(['other']);
      expect(nat.rules?.join('\n')).toContain('8443');
    });

    it('shows the raw-table notrack rule', () => {
      expect(plain.report.firewall.rawRules).toEqual([]);
      expect(withRules.report.firewall.rawRules).toHaveLength(1);
      expect(withRules.report.firewall.rawRules[0]).toMatch(/11211.*(notrack|NOTRACK)/);
    });

    it('tells whether the filter rules accept UNTRACKED packets', () => {
      expect(withRules.report.firewall.untrackedAccepted).toBe(false);
      expect(withRules.report.firewall.untracked).toMatchObject({ input: 'missing', output: 'not-needed' });
      expect(scoped.report.firewall.untrackedAccepted).toBe(false);
      expect(scoped.report.firewall.untracked).toEqual({
        input: 'port-scoped',
        output: 'not-needed',
        ports: [{ protocol: 'tcp', port: 11211 }],
      });
      expect(general.report.firewall.untrackedAccepted).toBe(true);
      expect(general.report.firewall.untracked).toMatchObject({ input: 'accepted', output: 'not-needed' });
    });

    // One test per backend, not two conditional ones: a CI run shows no skipped test.
    it(
      backend === 'iptables-legacy'
        ? 'reports legacy-and-nft once an nft table appears next to legacy ones'
        : 'never creates legacy tables in a namespace that has none',
      async () => {
        if (backend === 'iptables-legacy') {
          await execInNetns(hosts.instance, 'nft', ['add', 'table', 'inet', 'extra']);
          const { report } = await collect(hosts.instance);
          expect(report.firewall.backend).toBe('legacy-and-nft');
          expect(report.firewall.tables?.nft).toEqual(['inet extra']);
        } else {
          const { stdout } = await execInNetns(hosts.instance, 'cat', ['/proc/net/ip_tables_names']);
          expect(stdout.trim()).toBe('');
        }
      },
    );
  },
);

describe.skipIf(labUnavailable)(
  'collect-diagnostics on a bare namespace, with fakes for what the lab lacks',
  () => {
    let hosts: LabHosts;
    let work: string;
    let kubeProxy: ChildProcess | undefined;
    let bare: Collected;
    let rich: Collected;
    let veth: string;
    let vethMac: string;

    beforeAll(async () => {
      hosts = await createLabHosts('diagbare');
      work = await mkdtemp(join(tmpdir(), 'ctr-diag-'));
      bare = await collect(hosts.instance);
      // EC2's ENA counters: an ethtool that answers like the ENA driver, growing by 7 per call.
      const fakeBin = join(work, 'bin');
      await mkdir(fakeBin);
      const counter = join(work, 'ethtool-calls');
      await writeFile(
        join(fakeBin, 'ethtool'),
        [
          '#!/bin/bash',
          `calls=$(( $(cat '${counter}' 2>/dev/null || echo 0) + 1 ))`,
          `echo "$calls" > '${counter}'`,
          'echo "NIC statistics:"',
          'echo "     bw_in_allowance_exceeded: 0"',
          'echo "     conntrack_allowance_exceeded: $((calls * 7))"',
          'echo "     conntrack_allowance_available: 136812"',
          '',
        ].join('\n'),
      );
      await chmod(join(fakeBin, 'ethtool'), 0o755);
      // Configuration files that set conntrack sysctls at boot.
      const root = join(work, 'root');
      await mkdir(join(root, 'etc/sysctl.d'), { recursive: true });
      await mkdir(join(root, 'etc/modprobe.d'), { recursive: true });
      await writeFile(
        join(root, 'etc/sysctl.d/90-conntrack.conf'),
        '# raised after the March incident\nnet.netfilter.nf_conntrack_max = 524288\n',
      );
      await writeFile(join(root, 'etc/sysctl.d/10-other.conf'), 'vm.swappiness = 10\n');
      await writeFile(
        join(root, 'etc/modprobe.d/nf_conntrack.conf'),
        'options nf_conntrack hashsize=131072\n',
      );
      // A process named kube-proxy with its conntrack flags (a copy of bash, so comm is kube-proxy).
      await copyFile('/bin/bash', join(work, 'kube-proxy'));
      await chmod(join(work, 'kube-proxy'), 0o755);
      kubeProxy = await startInNetns(hosts.instance, join(work, 'kube-proxy'), [
        '-c',
        'echo started; while :; do sleep 1; done',
        'kube-proxy',
        '--conntrack-max-per-core=0',
      ]);
      rich = await collect(
        hosts.instance,
        {},
        { PATH: `${fakeBin}:${AGENT_PATH}`, CONNTRACK_RESPONDER_ROOT: root },
      );
      veth = (await execInNetns(hosts.instance, 'ls', ['/sys/class/net'])).stdout
        .split(/\s+/)
        .filter((name) => name !== '' && name !== 'lo')
        .join(',');
      vethMac = (await execInNetns(hosts.instance, 'cat', [`/sys/class/net/${veth}/address`])).stdout.trim();
    });
    afterAll(async () => {
      stop(kubeProxy);
      await hosts?.destroy();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('reports an empty table, no firewall, and nothing to accept', () => {
      const { report } = bare;
      expect(report.conntrack.loaded).toBe(true);
      expect(report.table).toMatchObject({
        source: 'procfs',
        entries: 0,
        byState: [],
        byLocalServicePort: [],
      });
      expect(report.firewall).toMatchObject({
        backend: 'none',
        rawRules: [],
        untrackedAccepted: true,
        untracked: { input: 'not-needed', output: 'not-needed', ports: [] },
        nat: { allPorts: false, ports: [], owners: [] },
      });
      expect(report.ena).toEqual([]);
      expect(report.sysctlOwners).toEqual([]);
    });

    it('samples the ENA allowance counters of each interface that has them, twice', () => {
      expect(rich.report.ena).toEqual([
        {
          interface: veth,
          mac: vethMac,
          first: { exceeded: 7, available: 136812 },
          second: { exceeded: 14, available: 136812 },
        },
      ]);
    });

    it('reads the counters from CONNTRACK_RESPONDER_ENA_STATS instead of ethtool when told to', async () => {
      const stats = join(work, 'ena-stats');
      await mkdir(stats);
      await writeFile(
        join(stats, veth),
        'NIC statistics:\n     conntrack_allowance_exceeded: 41\n     conntrack_allowance_available: 12\n',
      );
      // A file for an interface the namespace does not have is never read.
      await writeFile(join(stats, 'eth9'), 'NIC statistics:\n     conntrack_allowance_exceeded: 1\n');
      const injected = await collect(hosts.instance, {}, { CONNTRACK_RESPONDER_ENA_STATS: stats });
      expect(injected.report.ena).toEqual([
        {
          interface: veth,
          mac: vethMac,
          first: { exceeded: 41, available: 12 },
          second: { exceeded: 41, available: 12 },
        },
      ]);
    });

    it("reports the namespace's TCP keepalive settings", async () => {
      await execInNetns(hosts.instance, 'sysctl', ['-qw', 'net.ipv4.tcp_keepalive_time=600']);
      const { report } = await collect(hosts.instance);
      expect(report.host.tcpKeepalive).toEqual({ timeSeconds: 600, intervalSeconds: 75, probes: 9 });
      expect(bare.report.host.tcpKeepalive).toEqual({ timeSeconds: 7200, intervalSeconds: 75, probes: 9 });
    });

    it('names kube-proxy and the sysctl.d/modprobe.d files that set conntrack values', () => {
      const owners = rich.report.sysctlOwners;
      expect(owners).toContainEqual({
        name: 'kube-proxy',
        detail: expect.stringContaining('--conntrack-max-per-core=0'),
      });
      expect(owners).toContainEqual({
        name: 'sysctl.d',
        detail: '/etc/sysctl.d/90-conntrack.conf: net.netfilter.nf_conntrack_max = 524288',
      });
      expect(owners).toContainEqual({
        name: 'modprobe.d',
        detail: '/etc/modprobe.d/nf_conntrack.conf: options nf_conntrack hashsize=131072',
      });
      expect(owners.map((owner) => owner.detail).join('\n')).not.toContain('swappiness');
    });
  },
);

describe.skipIf(labUnavailable)(
  'collect-diagnostics stays valid and under 24,000 characters on a crowded host',
  () => {
    let hosts: ServedLabHosts;
    let work: string;
    let listener: ChildProcess | undefined;
    let crowded: Collected;
    const weirdName = 'q"b\\t\t\u0001\u00e9!';

    beforeAll(async () => {
      hosts = await createServedLabHosts({
        role: 'diagbig',
        backend: 'iptables-nft',
        servicePorts: [SERVICE_PORT],
      });
      work = await mkdtemp(join(tmpdir(), 'ctr-diag-big-'));
      const { instance } = hosts;
      await execInNetns(instance, 'sysctl', ['-qw', 'net.netfilter.nf_conntrack_udp_timeout=600']);
      await execInNetns(instance, 'ip', ['route', 'add', '10.200.0.0/14', 'via', hosts.clientAddress]);
      // Over 100,000 entries: every one to a distinct remote address, then to every remote port.
      await sendUdpFlows(instance, {
        count: 65_536,
        firstAddress: '10.200.0.1',
        addresses: 65_536,
        firstPort: 53,
        ports: 1,
      });
      await sendUdpFlows(instance, {
        count: 65_535,
        firstAddress: '10.201.0.1',
        addresses: 1,
        firstPort: 1,
        ports: 65_535,
      });
      // 60 listening sockets owned by a process whose name needs escaping (quote, backslash, tab,
      // control and non-ASCII characters).
      listener = await startInNetns(instance, 'perl', [
        '-MIO::Socket::INET',
        '-e',
        '$0 = shift; my @s = map { IO::Socket::INET->new(LocalPort => $_, Listen => 5, ReuseAddr => 1) or die "$_: $!" } 20000 .. 20059; $| = 1; print "ok\\n"; sleep 600',
        weirdName,
      ]);
      // 120 raw rules with long quoted comments, 150 DNAT rules on distinct ports.
      const comment = `it's a "long" comment \\ ${'x'.repeat(180)}`;
      const raw = Array.from(
        { length: 120 },
        (_, index) =>
          `-A PREROUTING -p tcp -m tcp --dport ${30000 + index} -m comment --comment "${comment.replaceAll('"', "'")}" -j CT --notrack`,
      );
      const nat = Array.from(
        { length: 150 },
        (_, index) =>
          `-A PREROUTING -p tcp -m tcp --dport ${40000 + index} -j DNAT --to-destination ${hosts.instanceAddress}:${SERVICE_PORT}`,
      );
      await execInNetns(instance, 'iptables-nft-restore', ['--noflush'], {
        input: ['*raw', ...raw, 'COMMIT', '*nat', ...nat, 'COMMIT', ''].join('\n'),
      });
      // 40 sysctl.d files, each with several long conntrack lines.
      const root = join(work, 'root');
      await mkdir(join(root, 'etc/sysctl.d'), { recursive: true });
      for (let file = 0; file < 40; file++) {
        await writeFile(
          join(root, `etc/sysctl.d/${String(file).padStart(2, '0')}-conntrack-${'y'.repeat(60)}.conf`),
          Array.from(
            { length: 8 },
            (_, line) => `net.netfilter.nf_conntrack_tcp_timeout_established = ${line}\n`,
          ).join(''),
        );
      }
      crowded = await collect(instance, { TopN: '50' }, { CONNTRACK_RESPONDER_ROOT: root });
    });
    afterAll(async () => {
      stop(listener);
      await hosts?.destroy();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('stays under the limit with every list at its bound', async () => {
      const { result, report } = crowded;
      expect(result.fullStdout.length).toBeLessThan(STDOUT_LIMIT);
      expect(result.stdout).toBe(result.fullStdout);
      expect(await conntrackCount(hosts.instance)).toBeGreaterThan(100_000);
      expect(report.table.entries).toBeGreaterThan(100_000);
      expect(report.truncated).toEqual(expect.arrayContaining(['listener', 'rawrule', 'natport', 'owner']));
      expect(report.warnings.join('\n')).toContain('lower bounds');
    });

    it('bounds the summaries of distinct remote addresses and ports, and says they are approximate', () => {
      const { table } = crowded.report;
      expect(table.approximate).toBe(true);
      expect(table.byRemotePort.length).toBeGreaterThan(0);
      expect(table.byRemoteAddress.length).toBeGreaterThan(0);
      expect(table.topN).toBeLessThanOrEqual(50);
    });

    it('never hides a NATed port: a truncated nat port list means allPorts', () => {
      expect(crowded.report.firewall.nat.allPorts).toBe(true);
    });

    it('escapes process names into valid JSON (non-ASCII bytes become "?", tabs spaces)', () => {
      const names = new Set(crowded.report.listeners.map((entry) => entry.process));
      expect(names).toContain('q"b\\t \u0001??!');
    });

    it('gives the same firewall view when run again (reading changed nothing)', async () => {
      const again = await collect(
        hosts.instance,
        { TopN: '50' },
        { CONNTRACK_RESPONDER_ROOT: join(work, 'root') },
      );
      expect(again.report.firewall).toEqual(crowded.report.firewall);
    });
  },
);
