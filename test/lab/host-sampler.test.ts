import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from '../../functions/local/exec.js';
import { startHostSampler } from '../../functions/local/host-sampler.js';
import { execInNetns, namespaceInode, withConntrackMax } from '../../functions/local/netns.js';
import { runDocument } from '../../functions/local/ssm-executor.js';
import {
  type ChurnResult,
  churnConnections,
  conntrackCount,
  conntrackDrops,
  holdTableFull,
  probeConnections,
} from '../../functions/local/traffic.js';
import { createServedLabHosts, processExists, type ServedLabHosts } from './support/lab.js';
import { labUnavailable } from './support/prerequisites.js';

/**
 * The host sampler on the real kernel, in a namespace that plays the instance: its lines carry the
 * namespace's inode, its own count and limit, and the drop counter summed over CPUs exactly as
 * `conntrack -S` reports it; and the copy the SSM document installs is the sampler that runs.
 */

const SERVICE_PORT = 8080;
const LOW_MAX = 2048;
const HOLD_PORT = 12000; // the clients' service that the connections holding the table full go to

type Fields = Record<string, string>;

function fields(line: string): Fields {
  const [tag, ...pairs] = line.split(' ');
  if (tag !== 'conntrack-responder-sample') throw new Error(`not a sample line: ${line}`);
  return Object.fromEntries(pairs.map((pair) => pair.split('=') as [string, string]));
}

describe.skipIf(labUnavailable)('host-sampler on the real kernel', () => {
  let hosts: ServedLabHosts;
  let inode: string;
  const lines: Array<{ line: string; at: number }> = [];
  let afterChurn: { sample: Fields; count: number };
  let afterFull: {
    sample: Fields;
    probe: ChurnResult;
    dropsBefore: number;
    dropsJustBefore: number;
    dropsJustAfter: number;
  };
  let samplerPid: number;

  /**
   * A sample the running sampler took after `since`: the second line printed after it. The first
   * one may have been read before `since` and printed after it (the sampler reads, prints, sleeps).
   */
  async function sampleTakenAfter(since: number): Promise<Fields> {
    for (let waited = 0; waited < 10_000; waited += 50) {
      const next = lines.filter((entry) => entry.at > since)[1];
      if (next) return fields(next.line);
      await sleep(50);
    }
    throw new Error('the sampler printed fewer than 2 lines in 10 s');
  }

  beforeAll(async () => {
    hosts = await createServedLabHosts({
      role: 'smpl',
      backend: 'iptables-nft',
      servicePorts: [SERVICE_PORT],
    });
    inode = await namespaceInode(hosts.instance);
    await withConntrackMax(LOW_MAX, async () => {
      const sampler = await startHostSampler({
        netns: hosts.instance,
        intervalSeconds: 0.2,
        onLine: (line, at) => lines.push({ line, at }),
      });
      samplerPid = sampler.pid;
      try {
        await churnConnections(hosts.clients, hosts.instanceAddress, SERVICE_PORT, { count: 600 });
        // TIME_WAIT entries live 120 s: the count stays put while it is compared.
        const count = await conntrackCount(hosts.instance);
        afterChurn = { sample: await sampleTakenAfter(Date.now()), count };
        // Held full by established connections, the table stays at max (a table of TIME_WAIT
        // entries would not: the kernel's GC evicts them at 95 % of max once drops began).
        const held = await holdTableFull({ hosts, port: HOLD_PORT });
        try {
          const dropsBefore = await conntrackDrops(hosts.instance);
          const probe = await probeConnections(hosts.clients, hosts.instanceAddress, SERVICE_PORT);
          const dropsJustBefore = await conntrackDrops(hosts.instance);
          const sample = await sampleTakenAfter(Date.now());
          afterFull = {
            sample,
            probe,
            dropsBefore,
            dropsJustBefore,
            dropsJustAfter: await conntrackDrops(hosts.instance),
          };
        } finally {
          await held.release();
        }
      } finally {
        await sampler.stop();
      }
    });
  });
  afterAll(async () => {
    await hosts?.destroy();
  });

  it('names the namespace it runs in and numbers its samples', () => {
    expect(lines.length).toBeGreaterThan(5);
    const parsed = lines.map((entry) => fields(entry.line));
    expect(new Set(parsed.map((sample) => sample.ns))).toEqual(new Set([inode]));
    expect(parsed.map((sample) => Number(sample.seq))).toEqual(parsed.map((_, index) => index + 1));
    expect(parsed.every((sample) => sample.v === '1' && /^[0-9a-f]{8}$/.test(sample.boot ?? ''))).toBe(true);
  });

  it("reports the namespace's own count and the global limit", () => {
    expect(afterChurn.count).toBeGreaterThanOrEqual(500);
    expect(Number(afterChurn.sample.count)).toBeGreaterThanOrEqual(afterChurn.count - 5);
    expect(Number(afterChurn.sample.count)).toBeLessThanOrEqual(afterChurn.count + 5);
    expect(afterChurn.sample.max).toBe(String(LOW_MAX));
  });

  it('sums the drop counter over CPUs as conntrack -S does, and sees it rise when the table is full', () => {
    expect(afterFull.probe).toMatchObject({ attempted: 5, succeeded: 0, failed: 5 });
    expect(afterFull.dropsJustBefore).toBeGreaterThanOrEqual(afterFull.dropsBefore + 5);
    // Taken between two `conntrack -S` readings.
    expect(Number(afterFull.sample.drop)).toBeGreaterThanOrEqual(afterFull.dropsJustBefore);
    expect(Number(afterFull.sample.drop)).toBeLessThanOrEqual(afterFull.dropsJustAfter);
    expect(Number(afterFull.sample.count)).toBe(LOW_MAX);
  });

  it('stops when told to (SIGTERM), leaving no process behind', () => {
    expect(processExists(samplerPid)).toBe(false);
  });

  it('installs a copy that samples the namespace, and removes it without a trace', async () => {
    const work = await mkdtemp(join(tmpdir(), 'ctr-lab-sampler-'));
    try {
      const root = join(work, 'root');
      await mkdir(join(root, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
      await mkdir(join(root, 'usr/local/lib'), { recursive: true });
      const env = { CONNTRACK_RESPONDER_ROOT: root };
      const installed = await runDocument({
        name: 'host-sampler',
        parameters: { Action: 'install', IntervalSeconds: '5' },
        netns: hosts.instance,
        env,
      });
      expect(installed.status, installed.stderr).toBe('Success');
      expect(installed.json).toMatchObject({ status: 'installed', intervalSeconds: 5 });
      const copy = join(root, 'usr/local/lib/conntrack-responder/host-sampler');
      const unit = await readFile(
        join(root, 'etc/systemd/system/conntrack-responder-sampler.service'),
        'utf8',
      );
      expect(unit).toContain('Environment=CONNTRACK_SAMPLER_INTERVAL=5');
      const { stdout } = await execInNetns(hosts.instance, 'bash', [copy, 'once']);
      const sample = fields(stdout.trim());
      expect(sample.ns).toBe(inode);
      expect(Number(sample.count)).toBe(await conntrackCount(hosts.instance));
      // A veth has no ENA device: nothing of EC2's allowance unless counters are injected.
      expect(Object.keys(sample).filter((key) => key.startsWith('ena.'))).toEqual([]);

      // The lab has no ENA device: the counters come from CONNTRACK_RESPONDER_ENA_STATS, and the
      // interfaces are the namespace's own (its /sys/class/net), not the machine's.
      const { stdout: links } = await execInNetns(hosts.instance, 'ls', ['/sys/class/net']);
      const veth = links.split(/\s+/).find((name) => name !== '' && name !== 'lo') ?? '';
      const stats = join(work, 'ena-stats');
      await mkdir(stats);
      await writeFile(
        join(stats, veth),
        'NIC statistics:\n     conntrack_allowance_exceeded: 41\n     conntrack_allowance_available: 12\n',
      );
      await writeFile(join(stats, 'eth9'), 'NIC statistics:\n     conntrack_allowance_exceeded: 1\n');
      const { stdout: injected } = await execInNetns(hosts.instance, 'bash', [copy, 'once'], {
        env: { CONNTRACK_RESPONDER_ENA_STATS: stats },
      });
      const withEna = fields(injected.trim());
      expect(withEna.ns).toBe(inode);
      expect(Object.entries(withEna).filter(([key]) => key.startsWith('ena.'))).toEqual([
        ['ena.0', veth],
        ['ena.0.exceeded', '41'],
        ['ena.0.available', '12'],
      ]);

      const removed = await runDocument({
        name: 'host-sampler',
        parameters: { Action: 'remove' },
        netns: hosts.instance,
        env,
      });
      expect(removed.json).toMatchObject({ status: 'removed' });
      const { stdout: left } = await execFile('find', [root, '-type', 'f']);
      expect(left.trim()).toBe('');
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
