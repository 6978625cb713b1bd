/**
 * bench/diagnostics: what does collect-diagnostics cost on a big conntrack table?
 *
 * Fills a lab namespace's table (65,536 and 262,144 entries by default), then measures in the same
 * run, on the same table:
 *   - baseline `cat /proc/net/nf_conntrack > /dev/null` and `conntrack -L > /dev/null`;
 *   - collect-diagnostics (SampleSeconds=1: the pause costs no CPU; it overlaps the table read).
 * CPU is user+system of the whole process tree (GNU time, wait4 rusage), memory is the largest
 * process's max RSS (GNU time) and the sampled peak of the tree's summed RSS. Each figure is the
 * median of several runs. Targets (issue 3): CPU ≤ 2× the cat baseline, peak memory < 64 MiB.
 *
 * Four table shapes per size; the namespace's own udp and TIME_WAIT timeouts are raised so that
 * nothing expires while it is measured:
 *   - "tcp": seed 003 for real, short TCP connections from the clients to services on the instance
 *     (20,000 per service port), every entry in TIME_WAIT: a few thousand entries per second;
 * and, filled with unreplied UDP flows sent from the namespace itself (the fastest fill found, about
 * 100,000-150,000 entries per second here):
 *   - "backends": one remote address, 8 ports (seed 004: a web tier churning to its cache tier);
 *   - "peers": every entry to a distinct remote address (worst case for the address summary);
 *   - "ports": one remote address, every port (worst case for the port summary).
 *
 * Usage: npm run bench:diagnostics [-- --sizes 65536,262144 --runs 3 --shapes tcp,backends,peers,ports]
 * Needs root; takes the lab lock through the npm script.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DiagnosticsReportSchema } from '../../functions/core/diagnostics/report.js';
import { applyHostFirewall } from '../../functions/local/firewall.js';
import { createLabHosts, execInNetns, type LabHosts, withConntrackMax } from '../../functions/local/netns.js';
import {
  churnConnections,
  conntrackCount,
  startTcpService,
  type TcpService,
} from '../../functions/local/traffic.js';
import { sendUdpFlows } from '../../functions/local/udp-flows.js';

const SCRIPT = fileURLToPath(new URL('../../runbooks/scripts/collect-diagnostics.sh', import.meta.url));
const AGENT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const REMOTE_PREFIX = '10.200.0.0/14';
const REMOTE_FIRST = '10.200.0.1';
const MEMORY_TARGET_MIB = 64;
const CPU_RATIO_TARGET = 2;
const PAGE_KIB = 4;

type Shape = 'tcp' | 'backends' | 'peers' | 'ports';
type UdpShape = Exclude<Shape, 'tcp'>;

/** Service ports of the "tcp" shape: each takes at most this many connections (client ports run out). */
const TCP_CONNECTIONS_PER_PORT = 20_000;
/** Above this the "tcp" shape is skipped: it would take minutes and dozens of service processes. */
const TCP_MAX_SIZE = 65_536;

/** How each table shape spreads its flows (see the header comment). */
const UDP_SHAPES: Record<
  UdpShape,
  (size: number) => { addresses: number; firstPort: number; ports: number }
> = {
  backends: () => ({ addresses: 1, firstPort: 11211, ports: 8 }),
  peers: (size) => ({ addresses: size, firstPort: 53, ports: 1 }),
  ports: () => ({ addresses: 1, firstPort: 1, ports: 65535 }),
};

interface Measurement {
  readonly wallSeconds: number;
  readonly cpuSeconds: number;
  readonly userSeconds: number;
  readonly systemSeconds: number;
  /** GNU time %M: max RSS of the largest process, KiB. */
  readonly maxRssKib: number;
  /** Sampled peak of the whole tree's summed RSS, KiB. */
  readonly treeRssKib: number;
  readonly stdout: string;
}

/** Sum of RSS (KiB) of `root` and all its descendants, read from /proc. */
function treeRssKib(root: number): number {
  const parents = new Map<number, number>();
  const rss = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parents.set(Number(entry), Number(fields[1]));
      rss.set(Number(entry), Number(fields[21]) * PAGE_KIB);
    } catch {}
  }
  let total = 0;
  for (const pid of rss.keys()) {
    let current: number | undefined = pid;
    for (let depth = 0; current !== undefined && depth < 64; depth++) {
      if (current === root) {
        total += rss.get(pid) ?? 0;
        break;
      }
      current = parents.get(current);
    }
  }
  return total;
}

/** Runs `command` inside `namespace` under GNU time, stdout to a file, sampling the tree's RSS. */
async function measure(
  namespace: string,
  command: readonly string[],
  env: Record<string, string> = {},
): Promise<Measurement> {
  const work = await mkdtemp(join(tmpdir(), 'ctr-bench-'));
  const timeFile = join(work, 'time');
  const stdoutFile = join(work, 'stdout');
  const stdoutFd = openSync(stdoutFile, 'w');
  try {
    const child = spawn(
      'ip',
      ['netns', 'exec', namespace, '/usr/bin/time', '-f', '%e %U %S %M', '-o', timeFile, ...command],
      { stdio: ['ignore', stdoutFd, 'pipe'], env: { PATH: AGENT_PATH, LANG: 'C.UTF-8', ...env } },
    );
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    let treePeak = 0;
    const sampler = setInterval(() => {
      if (child.pid !== undefined) treePeak = Math.max(treePeak, treeRssKib(child.pid));
    }, 20);
    const code = await new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (exitCode) => resolve(exitCode ?? 1));
    });
    clearInterval(sampler);
    if (code !== 0) throw new Error(`${command.join(' ')} exited ${code}: ${stderr.slice(0, 500)}`);
    // GNU time's last line (a command killed by a signal adds a line before it).
    const lastLine = (await readFile(timeFile, 'utf8')).trim().split('\n').pop() ?? '';
    const [wall, user, system, maxRss] = lastLine.split(' ');
    return {
      wallSeconds: Number(wall),
      userSeconds: Number(user),
      systemSeconds: Number(system),
      cpuSeconds: Number(user) + Number(system),
      maxRssKib: Number(maxRss),
      treeRssKib: treePeak,
      stdout: await readFile(stdoutFile, 'utf8'),
    };
  } finally {
    closeSync(stdoutFd);
    await rm(work, { recursive: true, force: true });
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

interface Summary {
  readonly wall: number;
  readonly cpu: number;
  readonly user: number;
  readonly system: number;
  readonly maxRssMib: number;
  readonly treeRssMib: number;
}

function summarize(runs: readonly Measurement[]): Summary {
  return {
    wall: median(runs.map((run) => run.wallSeconds)),
    cpu: median(runs.map((run) => run.cpuSeconds)),
    user: median(runs.map((run) => run.userSeconds)),
    system: median(runs.map((run) => run.systemSeconds)),
    maxRssMib: Math.max(...runs.map((run) => run.maxRssKib)) / 1024,
    treeRssMib: Math.max(...runs.map((run) => run.treeRssKib)) / 1024,
  };
}

function servicePorts(size: number, shape: Shape): number[] {
  // Some connections reuse a 4-tuple still tracked in TIME_WAIT (the entry is reopened, not added),
  // so the tcp shape keeps spare ports.
  const count = shape === 'tcp' ? Math.ceil(size / (TCP_CONNECTIONS_PER_PORT / 2)) + 1 : 1;
  return Array.from({ length: count }, (_, index) => 8080 + index);
}

async function fill(
  hosts: LabHosts,
  size: number,
  shape: Shape,
): Promise<{ count: number; seconds: number }> {
  const started = performance.now();
  if (shape === 'tcp') {
    // Seed 003 for real: short connections from the clients, each left in TIME_WAIT.
    for (const port of servicePorts(size, shape)) {
      const left = size - (await conntrackCount(hosts.instance));
      if (left <= 0) break;
      const count = Math.min(left, TCP_CONNECTIONS_PER_PORT);
      const result = await churnConnections(hosts.clients, hosts.instanceAddress, port, {
        count,
        concurrency: 256,
        timeoutMs: 3000,
      });
      if (result.failed > 0) {
        console.log(
          `  tcp/${port}: ${result.failed} of ${count} connections failed ${JSON.stringify(result.errors)}`,
        );
      }
    }
  } else {
    const result = await sendUdpFlows(hosts.instance, {
      count: size,
      firstAddress: REMOTE_FIRST,
      ...UDP_SHAPES[shape](size),
    });
    // A handful of sends may fail while the gateway's neighbour entry resolves; the count decides.
    if (result.failed > size / 1000) throw new Error(`${result.failed} of ${size} datagrams failed to send`);
  }
  const seconds = (performance.now() - started) / 1000;
  const count = await conntrackCount(hosts.instance);
  if (count < size * 0.98) throw new Error(`the ${shape} fill reached ${count} entries of ${size}`);
  return { count, seconds };
}

function row(label: string, summary: Summary, baseline?: Summary): string {
  const ratio = baseline ? `${(summary.cpu / baseline.cpu).toFixed(2)}×` : '1.00×';
  return [
    label.padEnd(34),
    `${summary.cpu.toFixed(2)} s`.padStart(8),
    `(${summary.user.toFixed(2)} u + ${summary.system.toFixed(2)} s)`.padEnd(20),
    ratio.padStart(7),
    `${summary.wall.toFixed(2)} s`.padStart(9),
    `${summary.maxRssMib.toFixed(1)} MiB`.padStart(10),
    `${summary.treeRssMib.toFixed(1)} MiB`.padStart(10),
  ].join(' ');
}

async function benchOne(size: number, shape: Shape, runs: number): Promise<boolean> {
  const hosts = await createLabHosts('bench');
  const services: TcpService[] = [];
  try {
    // Conntrack only tracks a namespace once a rule there uses it; the firewall provides that.
    const ports = servicePorts(size, shape);
    await applyHostFirewall(hosts.instance, 'iptables-nft', { servicePorts: ports });
    if (shape === 'tcp') {
      // Enough client ports for 20,000 connections per service port while the earlier ones sit in TIME_WAIT.
      await execInNetns(hosts.clients, 'sysctl', ['-qw', 'net.ipv4.ip_local_port_range=1024 65535']);
      for (const port of ports) {
        services.push(await startTcpService(hosts.instance, hosts.instanceAddress, port));
      }
    }
    // Nothing may expire while it is measured (the namespace's own timeouts, not the host's).
    await execInNetns(hosts.instance, 'sysctl', ['-qw', 'net.netfilter.nf_conntrack_udp_timeout=3600']);
    await execInNetns(hosts.instance, 'sysctl', [
      '-qw',
      'net.netfilter.nf_conntrack_tcp_timeout_time_wait=3600',
    ]);
    await execInNetns(hosts.instance, 'ip', ['route', 'add', REMOTE_PREFIX, 'via', hosts.clientAddress]);
    const filled = await fill(hosts, size, shape);
    const cat: Measurement[] = [];
    const tool: Measurement[] = [];
    const collect: Measurement[] = [];
    let readSeconds: number[] = [];
    for (let run = 0; run < runs; run++) {
      cat.push(await measure(hosts.instance, ['cat', '/proc/net/nf_conntrack']));
      tool.push(await measure(hosts.instance, ['conntrack', '-L']));
      const result = await measure(hosts.instance, ['bash', SCRIPT], {
        SSM_SampleSeconds: '1',
        SSM_TopN: '10',
      });
      const report = DiagnosticsReportSchema.parse(JSON.parse(result.stdout));
      if (report.table.entries < filled.count * 0.99) {
        throw new Error(`collect-diagnostics read ${report.table.entries} entries of ${filled.count}`);
      }
      readSeconds = [...readSeconds, report.table.readSeconds ?? Number.NaN];
      collect.push(result);
    }
    const baseline = summarize(cat);
    const diagnostics = summarize(collect);
    const entries = await conntrackCount(hosts.instance);
    console.log(
      `\n${shape} table: ${entries.toLocaleString('en-US')} entries (filled ${filled.count.toLocaleString('en-US')} ` +
        `in ${filled.seconds.toFixed(1)} s), median of ${runs} runs`,
    );
    console.log(
      `${'command'.padEnd(34)} ${'CPU'.padStart(8)} ${'(user + sys)'.padEnd(20)} ${'vs cat'.padStart(7)} ` +
        `${'wall'.padStart(9)} ${'max RSS'.padStart(10)} ${'tree RSS'.padStart(10)}`,
    );
    console.log(row('cat /proc/net/nf_conntrack', baseline));
    console.log(row('conntrack -L', summarize(tool), baseline));
    console.log(row('collect-diagnostics (1 s sample)', diagnostics, baseline));
    console.log(`  table pass inside collect-diagnostics: ${median(readSeconds).toFixed(2)} s wall`);
    const cpuRatio = diagnostics.cpu / baseline.cpu;
    const peakMib = Math.max(diagnostics.maxRssMib, diagnostics.treeRssMib);
    const ok = cpuRatio <= CPU_RATIO_TARGET && peakMib < MEMORY_TARGET_MIB;
    console.log(
      `  CPU ratio ${cpuRatio.toFixed(2)} (target ≤ ${CPU_RATIO_TARGET}), peak memory ${peakMib.toFixed(1)} MiB ` +
        `(target < ${MEMORY_TARGET_MIB}): ${ok ? 'within targets' : 'MISSED'}`,
    );
    return ok;
  } finally {
    await Promise.all(services.map((service) => service.stop()));
    await hosts.destroy();
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '65536,262144' },
      runs: { type: 'string', default: '3' },
      shapes: { type: 'string', default: 'tcp,backends,peers,ports' },
    },
  });
  const sizes = values.sizes.split(',').map(Number);
  const runs = Number(values.runs);
  const shapes = values.shapes.split(',') as Shape[];
  if (sizes.some((size) => !Number.isInteger(size) || size < 1 || size > 2_000_000)) {
    throw new Error(`--sizes: expected comma-separated integers from 1 to 2000000, got '${values.sizes}'`);
  }
  if (!Number.isInteger(runs) || runs < 1 || runs > 20)
    throw new Error(`--runs: expected 1-20, got '${values.runs}'`);
  const known = ['tcp', ...Object.keys(UDP_SHAPES)];
  if (shapes.some((shape) => !known.includes(shape))) {
    throw new Error(`--shapes: expected some of ${known.join(',')}, got '${values.shapes}'`);
  }
  // Room above the largest table so that filling it never hits "table full" (no early drops).
  const max = Math.max(262_144, ...sizes) + 65_536;
  let allOk = true;
  // CPU times inflate on a busy machine (shared caches, frequency): say how busy this one was.
  const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`${cpus().length} CPUs, load average ${load()} at start`);
  await withConntrackMax(max, async () => {
    for (const size of sizes) {
      for (const shape of shapes) {
        if (shape === 'tcp' && size > TCP_MAX_SIZE) {
          console.log(
            `\ntcp table: skipped at ${size.toLocaleString('en-US')} entries (at most ${TCP_MAX_SIZE.toLocaleString('en-US')}: short TCP connections fill a few thousand entries per second)`,
          );
          continue;
        }
        allOk = (await benchOne(size, shape, runs)) && allOk;
      }
    }
  });
  console.log(`\nload average ${load()} at the end; ${allOk ? 'all within targets' : 'some targets MISSED'}`);
  return 0;
}

process.exitCode = await main();
