import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from '../../functions/local/exec.js';
import {
  createLabHosts,
  execInNetns,
  type LabHosts,
  namespaceExists,
  namespaceInode,
  withConntrackMax,
} from '../../functions/local/netns.js';
import { labUnavailable } from './support/prerequisites.js';

describe.skipIf(labUnavailable)('lab hosts (network namespaces)', () => {
  let hosts: LabHosts;
  beforeAll(async () => {
    hosts = await createLabHosts('netns');
  });
  afterAll(async () => {
    await hosts?.destroy();
  });

  it('joins the instance and the clients over a veth pair', async () => {
    const ping = await execInNetns(hosts.clients, 'ping', ['-c', '1', '-W', '2', hosts.instanceAddress], {
      allowFailure: true,
    });
    expect(ping.code, ping.stderr + ping.stdout).toBe(0);
  });

  it('reports the namespace inode the kernel prints in "table full in netns N"', async () => {
    const inode = await namespaceInode(hosts.instance);
    const { stdout } = await execInNetns(hosts.instance, 'readlink', ['/proc/self/ns/net']);
    expect(stdout.trim()).toBe(`net:[${inode}]`);
  });

  it('restores nf_conntrack_max after the body, even when the body throws', async () => {
    const before = (await readFile('/proc/sys/net/netfilter/nf_conntrack_max', 'utf8')).trim();
    await expect(
      withConntrackMax(Number(before) + 1000, async () => {
        expect((await readFile('/proc/sys/net/netfilter/nf_conntrack_max', 'utf8')).trim()).toBe(
          String(Number(before) + 1000),
        );
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect((await readFile('/proc/sys/net/netfilter/nf_conntrack_max', 'utf8')).trim()).toBe(before);
  });

  it('removes both namespaces on destroy', async () => {
    const extra = await createLabHosts('gone');
    await extra.destroy();
    expect(await namespaceExists(extra.instance)).toBe(false);
    expect(await namespaceExists(extra.clients)).toBe(false);
    const { stdout } = await execFile('ip', ['netns', 'list']);
    expect(stdout).not.toContain(extra.instance);
  });
});
