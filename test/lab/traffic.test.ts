import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from '../../functions/local/exec.js';
import {
  type LabHosts,
  namespaceExists,
  namespaceInode,
  withConntrackMax,
} from '../../functions/local/netns.js';
import {
  type ChurnResult,
  conntrackCount,
  conntrackDrops,
  holdTableFull,
  probeConnections,
  reproduceTableFull,
  type TableFullResult,
} from '../../functions/local/traffic.js';
import { createServedLabHosts, processExists, type ServedLabHosts } from './support/lab.js';
import { labUnavailable } from './support/prerequisites.js';

const SERVICE_PORT = 8080;
const LOW_MAX = 2048;

const HOLD_PORT = 12000;

interface ProbeAtFullTable {
  /** The instance's count just before the probe. */
  readonly count: number;
  readonly probe: ChurnResult;
  /** How much the instance's conntrack `drop` counter rose during the probe. */
  readonly drops: number;
  /** The instance's count a second after the probe: a table held full stays full. */
  readonly countLater: number;
}

/**
 * A probe of 3 new connections made while the instance's table is held at its max by established
 * connections (a table of TIME_WAIT entries drifts below full: the kernel's GC evicts them once the
 * table is at 95 % of max and drops began).
 */
async function probeAtFullTable(hosts: LabHosts): Promise<ProbeAtFullTable> {
  const held = await holdTableFull({ hosts, port: HOLD_PORT });
  try {
    const count = await conntrackCount(hosts.instance);
    const dropsBefore = await conntrackDrops(hosts.instance);
    const probe = await probeConnections(hosts.clients, hosts.instanceAddress, SERVICE_PORT, { count: 3 });
    const drops = (await conntrackDrops(hosts.instance)) - dropsBefore;
    await sleep(1000);
    return { count, probe, drops, countLater: await conntrackCount(hosts.instance) };
  } finally {
    await held.release();
  }
}

describe.skipIf(labUnavailable)('reproduceTableFull (seed 003: short TCP connections)', () => {
  let hosts: ServedLabHosts;
  let result: TableFullResult;
  let atFullTable: ProbeAtFullTable;
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
      atFullTable = await probeAtFullTable(hosts);
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
    expect(result.failing).toMatchObject({ attempted: 5, succeeded: 0, failed: 5 });
    expect(atFullTable.count).toBe(LOW_MAX);
    expect(atFullTable.probe).toMatchObject({ attempted: 3, succeeded: 0, failed: 3 });
    // The failures are the full table's doing: the kernel dropped at least the 3 SYNs.
    expect(atFullTable.drops).toBeGreaterThanOrEqual(3);
    expect(atFullTable.countLater).toBe(LOW_MAX);
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
