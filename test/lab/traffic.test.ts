import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from '../../functions/local/exec.js';
import { namespaceExists, namespaceInode, withConntrackMax } from '../../functions/local/netns.js';
import {
  conntrackCount,
  probeConnections,
  reproduceTableFull,
  type TableFullResult,
} from '../../functions/local/traffic.js';
import { createServedLabHosts, processExists, type ServedLabHosts } from './support/lab.js';
import { labUnavailable } from './support/prerequisites.js';

const SERVICE_PORT = 8080;
const LOW_MAX = 2048;

describe.skipIf(labUnavailable)('reproduceTableFull (seed 003: short TCP connections)', () => {
  let hosts: ServedLabHosts;
  let result: TableFullResult;
  let failingProbe: Awaited<ReturnType<typeof probeConnections>>;
  let dmesgAfter: string;
  let dmesgBefore: string;

  beforeAll(async () => {
    hosts = await createServedLabHosts({
      role: 'full',
      backend: 'iptables-nft',
      servicePorts: [SERVICE_PORT],
    });
    dmesgBefore = (await execFile('dmesg', [])).stdout;
    await withConntrackMax(LOW_MAX, async () => {
      result = await reproduceTableFull({ hosts, port: SERVICE_PORT });
      failingProbe = await probeConnections(hosts.clients, hosts.instanceAddress, SERVICE_PORT, { count: 3 });
    });
    dmesgAfter = (await execFile('dmesg', [])).stdout;
  });
  afterAll(async () => {
    await hosts?.destroy();
  });

  it('fills the instance table up to the lowered max', () => {
    expect(result.max).toBe(LOW_MAX);
    expect(result.countAtFull).toBeGreaterThanOrEqual(LOW_MAX);
    expect(result.succeeded).toBeGreaterThanOrEqual(LOW_MAX - result.countBefore - 50);
    expect(result.elapsedMs).toBeGreaterThan(0);
  });

  it('makes new connections fail while the table is full', () => {
    expect(result.failing.succeeded).toBe(0);
    expect(failingProbe).toMatchObject({ attempted: 3, succeeded: 0, failed: 3 });
  });

  it('makes the kernel log "table full in netns <inode>" for the instance namespace', async () => {
    const inode = await namespaceInode(hosts.instance);
    // Inodes are reused after a namespace is deleted, so only lines new since setup count. The
    // kernel's ring buffer is bounded: comparing counts over the whole buffer fails once old lines
    // roll out, so look only at what follows the last line seen before setup.
    const lastLineBefore = dmesgBefore.trimEnd().split('\n').at(-1) ?? '';
    const cut = lastLineBefore === '' ? -1 : dmesgAfter.lastIndexOf(lastLineBefore);
    const newLines = cut === -1 ? dmesgAfter : dmesgAfter.slice(cut + lastLineBefore.length);
    expect(newLines).toContain(`table full in netns ${inode}, dropping packet`);
  });

  it('lets connections succeed again once the max is back up (the entries are still there)', async () => {
    expect(await conntrackCount(hosts.instance)).toBeGreaterThan(LOW_MAX / 2);
    const probe = await probeConnections(hosts.clients, hosts.instanceAddress, SERVICE_PORT, { count: 3 });
    expect(probe).toMatchObject({ succeeded: 3, failed: 0 });
  });

  it('leaves no namespace or process behind', async () => {
    const pids = hosts.services.map((service) => service.pid);
    await hosts.destroy();
    expect(pids.some(processExists)).toBe(false);
    expect(await namespaceExists(hosts.instance)).toBe(false);
    expect(await namespaceExists(hosts.clients)).toBe(false);
    const { stdout } = await execFile('ip', ['netns', 'pids', hosts.instance], { allowFailure: true });
    expect(stdout.trim()).toBe('');
  });
});
