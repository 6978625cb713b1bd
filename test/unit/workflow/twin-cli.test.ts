import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../functions/cli/io.js';
import { respondFlags } from '../../../functions/cli/respond.js';
import { followKernelLog } from '../../../functions/local/twin/watch.js';

describe('respond flags', () => {
  it('takes the namespace, mode, output folder, decision and soak', () => {
    expect(
      respondFlags({ netns: 'ctr-1-i', mode: 'approve', out: 'o', approve: true, soak: '0' }),
    ).toMatchObject({
      netns: 'ctr-1-i',
      mode: 'approve',
      out: 'o',
      approval: 'approve',
      soakSeconds: 0,
    });
    expect(respondFlags({ netns: 'n' })).toMatchObject({
      mode: undefined,
      approval: 'prompt',
      soakSeconds: 5,
    });
    expect(respondFlags({ netns: 'n', reject: true }).approval).toBe('reject');
  });

  it('takes an exhausted EC2 allowance: the counter rate, and whether shorter ENI timeouts relieve it', () => {
    expect(respondFlags({ netns: 'n' }).ena).toBeUndefined();
    expect(respondFlags({ netns: 'n', 'ena-exceeded': '300' }).ena).toEqual({
      exceededPerSecond: 300,
      relief: false,
    });
    expect(respondFlags({ netns: 'n', 'ena-exceeded': '5', 'ena-relief': true }).ena).toEqual({
      exceededPerSecond: 5,
      relief: true,
    });
  });

  it.each([
    [{}, /--netns NAME is required/],
    [{ netns: 'n', mode: 'yolo' }, /--mode must be one of auto, approve, dry-run/],
    [{ netns: 'n', approve: true, reject: true }, /exclude each other/],
    [{ netns: 'n', soak: '-1' }, /--soak must be a whole number/],
    [{ netns: 'n', policy: '{' }, /--policy is not valid JSON/],
    [{ netns: 'n', 'ena-exceeded': '0' }, /--ena-exceeded must be a whole number/],
    [{ netns: 'n', 'ena-exceeded': '12;reboot' }, /--ena-exceeded must be a whole number/],
    [{ netns: 'n', 'ena-relief': true }, /--ena-relief needs --ena-exceeded/],
  ])('refuses %j', (flags, message) => {
    expect(() => respondFlags(flags as Record<string, string | boolean>)).toThrow(UsageError);
    expect(() => respondFlags(flags as Record<string, string | boolean>)).toThrow(message);
  });
});

describe('kernel log follower', () => {
  const lines = [
    '2026-11-22T01:20:33,100000+00:00 nf_conntrack: nf_conntrack: table full in netns 4026530000, dropping packet',
    '2026-11-22T01:20:33,793123+00:00 nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet',
    '2026-11-22T01:20:33,800000+00:00 net_ratelimit: 41 callbacks suppressed',
    '2026-11-22T01:20:33,900000+00:00 eth0: link up',
    '2026-11-22T01:20:34,000000+00:00 nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet',
  ];
  /**
   * A stand-in for `dmesg --follow` and /dev/kmsg: prints `old` (the ring buffer), then, once the
   * follower wrote its start marker to the returned kmsg file, the marker and `fresh`.
   */
  const kernelLog = async (fresh: readonly string[], old: readonly string[] = []) => {
    const kmsg = join(await mkdtemp(join(tmpdir(), 'twin-kmsg-')), 'kmsg');
    const program = `const fs = require('node:fs');
for (const line of ${JSON.stringify(old)}) console.log(line);
const wait = () => {
  const marker = fs.existsSync(${JSON.stringify(kmsg)}) ? fs.readFileSync(${JSON.stringify(kmsg)}, 'utf8') : '';
  if (marker === '') return setTimeout(wait, 10);
  process.stdout.write(marker);
  for (const line of ${JSON.stringify(fresh)}) console.log(line);
  setTimeout(() => {}, 5000);
};
wait();`;
    return { kmsg, command: ['node', '-e', program] as [string, ...string[]] };
  };

  it("reports only the namespace's drop lines, their first time and the suppressed repeats that follow them", async () => {
    const follower = await followKernelLog({
      netns: 'ctr-x-i',
      inode: '4026532177',
      gatherMs: 50,
      ...(await kernelLog(lines)),
    });
    try {
      const drops = await follower.drops;
      expect(drops).toMatchObject({
        dropLines: 2,
        suppressed: 41,
        firstSeen: '2026-11-22T01:20:33.793Z',
        lastSeen: '2026-11-22T01:20:34.000Z',
      });
      expect(drops.events).toHaveLength(2);
      expect(drops.events[0]?.message).toContain('table full in netns 4026532177');
    } finally {
      follower.stop();
    }
  });

  it("attributes suppression lines by the detect core's rule: to the next drop line, else the previous one", async () => {
    const ordered = [
      '2026-11-22T01:20:33,100000+00:00 nf_conntrack: nf_conntrack: table full in netns 4026530000, dropping packet',
      '2026-11-22T01:20:33,200000+00:00 net_ratelimit: 7 callbacks suppressed',
      '2026-11-22T01:20:33,300000+00:00 eth0: link up',
      '2026-11-22T01:20:33,700000+00:00 net_ratelimit: 41 callbacks suppressed',
      '2026-11-22T01:20:33,700001+00:00 nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet',
    ];
    const follower = await followKernelLog({
      netns: 'ctr-x-i',
      inode: '4026532177',
      gatherMs: 50,
      ...(await kernelLog(ordered)),
    });
    try {
      // The 7 belong to the other namespace's drop; the 41 to ours, which the kernel printed right after them.
      expect(await follower.drops).toMatchObject({ dropLines: 1, suppressed: 41 });
    } finally {
      follower.stop();
    }
  });

  it('ignores the lines the ring buffer held before it started, the same inode among them', async () => {
    const old = [
      '2026-11-22T01:10:00,000000+00:00 nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet',
      '2026-11-22T01:10:00,100000+00:00 nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet',
    ];
    const follower = await followKernelLog({
      netns: 'ctr-x-i',
      inode: '4026532177',
      gatherMs: 50,
      ...(await kernelLog(lines, old)),
    });
    try {
      expect(await follower.drops).toMatchObject({ dropLines: 2, firstSeen: '2026-11-22T01:20:33.793Z' });
    } finally {
      follower.stop();
    }
  });

  it('fails clearly when the log program ends before any drop', async () => {
    const { kmsg } = await kernelLog([]);
    await expect(
      followKernelLog({ netns: 'ctr-x-i', inode: '1', kmsg, command: ['node', '-e', 'process.exit(3)'] }),
    ).rejects.toThrow(/ended \(exit 3\) before any drop/);
  });
});
