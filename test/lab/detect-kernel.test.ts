import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../functions/cli/main.js';
import { execFile } from '../../functions/local/exec.js';
import { namespaceInode, withConntrackMax } from '../../functions/local/netns.js';
import { reproduceTableFull } from '../../functions/local/traffic.js';
import { captureIo } from '../unit/support/capture-io.js';
import { createServedLabHosts, type ServedLabHosts } from './support/lab.js';
import { labUnavailable } from './support/prerequisites.js';

const SERVICE_PORT = 8080;
const LOW_MAX = 2048;
const BIN = fileURLToPath(new URL('../../bin/conntrack-responder.mjs', import.meta.url));

/** The `[seconds]` of a raw dmesg line. */
function kernelSeconds(line: string): number | null {
  const match = /^\[\s*(\d+\.\d+)\]/.exec(line);
  return match === null ? null : Number(match[1]);
}

/**
 * dmesg lines printed after `since` (kernel seconds). Namespace inodes are reused once a
 * namespace is gone, so lines of earlier lab runs may name the same inode: only new ones count.
 */
function linesAfter(dmesg: string, since: number): string[] {
  return dmesg.split('\n').filter((line) => (kernelSeconds(line) ?? -1) > since);
}

async function detectJson(args: string[], stdin: string) {
  const { io, stdout, stderr } = captureIo(stdin);
  const code = await main(['detect', '--json', ...args], io);
  return { code, report: JSON.parse(stdout()), stderr: stderr() };
}

describe.skipIf(labUnavailable)('detect on what a real kernel logs for a full namespace table', () => {
  let hosts: ServedLabHosts;
  let inode: string;
  let since: number;
  let newLines: string[];
  let started: number;
  let finished: number;

  beforeAll(async () => {
    hosts = await createServedLabHosts({
      role: 'detect',
      backend: 'iptables-nft',
      servicePorts: [SERVICE_PORT],
    });
    inode = await namespaceInode(hosts.instance);
    const before = (await execFile('dmesg', [])).stdout.trimEnd().split('\n');
    since = kernelSeconds(before[before.length - 1] ?? '') ?? 0;
    started = Date.now();
    await withConntrackMax(LOW_MAX, async () => {
      await reproduceTableFull({ hosts, port: SERVICE_PORT });
    });
    finished = Date.now();
    newLines = linesAfter((await execFile('dmesg', [])).stdout, since);
  });
  afterAll(async () => {
    await hosts?.destroy();
  });

  it('reports the namespace inode from raw dmesg output, counting every new drop line', async () => {
    const dropLines = newLines.filter((line) =>
      line.endsWith(`nf_conntrack: nf_conntrack: table full in netns ${inode}, dropping packet`),
    );
    expect(dropLines.length).toBeGreaterThan(0);
    const { code, report, stderr } = await detectJson(['--host', 'lab-instance'], `${newLines.join('\n')}\n`);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const group = report.groups.find((candidate: { netns: string | null }) => candidate.netns === inode);
    expect(group).toMatchObject({
      host: 'lab-instance',
      netns: inode,
      kind: 'table-full',
      dropLines: dropLines.length,
      firstSeen: null,
      lastSeen: null,
    });
  });

  it('finds it in the whole dmesg buffer too, through the real executable (`dmesg | … detect --json -`)', async () => {
    const dmesg = (await execFile('dmesg', [])).stdout;
    const { stdout, code } = await execFile(process.execPath, [BIN, 'detect', '--json', '-'], {
      input: dmesg,
    });
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.groups).toContainEqual(
      expect.objectContaining({ host: 'localhost', netns: inode, kind: 'table-full' }),
    );
  });

  it('gives wall-clock times with dmesg -T and --time-format iso', async () => {
    for (const format of [['-T'], ['--time-format', 'iso']]) {
      const { stdout } = await execFile('dmesg', format);
      // The same records as `newLines`, in the other format: the last ones of the buffer.
      const records = stdout.trimEnd().split('\n').slice(-newLines.length);
      const { code, report } = await detectJson([], `${records.join('\n')}\n`);
      expect(code).toBe(0);
      const group = report.groups.find((candidate: { netns: string | null }) => candidate.netns === inode);
      expect(group, format.join(' ')).toBeDefined();
      // dmesg derives these from the boot time, which can drift: allow a minute either side.
      expect(Date.parse(group.firstSeen)).toBeGreaterThanOrEqual(Math.floor(started / 1000) * 1000 - 60_000);
      expect(Date.parse(group.lastSeen)).toBeLessThanOrEqual(finished + 60_000);
    }
  });
});
