import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../functions/cli/main.js';
import { execFile } from '../../functions/local/exec.js';
import { namespaceInode, withConntrackMax } from '../../functions/local/netns.js';
import { reproduceTableFull } from '../../functions/local/traffic.js';
import { captureIo } from '../unit/support/capture-io.js';
import { journaldMissing, type LabJournal, startLabJournal } from './support/journald.js';
import { kernelLinesBetween, markKernelLog } from './support/kernel-log.js';
import { createServedLabHosts, type ServedLabHosts } from './support/lab.js';
import { labUnavailable } from './support/prerequisites.js';

/**
 * journald's view of a real full table, in every journalctl output format detect reads: the
 * kernel's drop lines counted, and the same words written by a program under the kernel's name
 * (logger -t kernel, through journald's syslog socket) never counted. What each format proves is
 * in docs/detect.md.
 */

const SERVICE_PORT = 8080;
const LOW_MAX = 2048;
const missing = journaldMissing();
if (missing.length > 0 && !labUnavailable && process.env.CI === 'true') {
  throw new Error(`lab prerequisites missing under CI=true: ${missing.join(', ')}`);
}

async function detectJson(args: string[], stdin: string) {
  const { io, stdout, stderr } = captureIo(stdin);
  const code = await main(['detect', '--json', ...args], io);
  return { code, report: JSON.parse(stdout()), stderr: stderr() };
}

describe.skipIf(labUnavailable || missing.length > 0)(
  'detect on journalctl output of a real full table',
  () => {
    let hosts: ServedLabHosts;
    let journal: LabJournal;
    let inode: string;
    let hostname: string;
    let startCursor: string;
    let drops: number;
    const forged = () => `nf_conntrack: nf_conntrack: table full in netns ${inode}, dropping packet`;

    beforeAll(async () => {
      hosts = await createServedLabHosts({
        role: 'journal',
        backend: 'iptables-nft',
        servicePorts: [SERVICE_PORT],
      });
      inode = await namespaceInode(hosts.instance);
      hostname = (await execFile('hostname', [])).stdout.trim();
      journal = await startLabJournal();
      // Everything journald finds in the ring buffer at its start (lines of earlier tests, the same
      // inode among them) is stamped with its start time, so a time filter cannot separate it from
      // this test's lines: the formats are read after a marker's cursor instead.
      const start = await markKernelLog('detect-journald test start');
      startCursor = await journal.cursorOf(start);
      await withConntrackMax(LOW_MAX, async () => {
        await reproduceTableFull({ hosts, port: SERVICE_PORT });
      });
      await journal.run('logger', ['-u', '/run/systemd/journal/dev-log', '-t', 'kernel', forged()]);
      const end = await markKernelLog('detect-journald test end');
      drops = (await kernelLinesBetween(start, end)).filter((line) =>
        line.endsWith(`table full in netns ${inode}, dropping packet`),
      ).length;
      // journald has read every kernel line before the end marker and the program's forged line.
      await journal.cursorOf(end);
      await journal.cursorOf(forged(), { transport: 'syslog' });
    });
    afterAll(async () => {
      await journal?.stop();
      await hosts?.destroy();
    });

    const formats: [string, string[], 'host' | 'default', boolean][] = [
      // [output, journalctl arguments, which host the lines name, whether the forged line is in it]
      ['short', ['-o', 'short'], 'host', true],
      ['short-precise', ['-o', 'short-precise'], 'host', true],
      ['short-iso', ['-o', 'short-iso'], 'host', true],
      ['short-full', ['-o', 'short-full'], 'host', true],
      ['short-unix', ['-o', 'short-unix'], 'host', true],
      ['short-monotonic', ['-o', 'short-monotonic'], 'host', true],
      [
        "Ubuntu's /var/log/dmesg (--dmesg -o short-monotonic --no-hostname)",
        ['--dmesg', '-o', 'short-monotonic', '--no-hostname'],
        'default',
        false,
      ],
      ['cat of the kernel transport (-k -o cat)', ['-k', '-o', 'cat'], 'default', false],
      ['json', ['-o', 'json'], 'host', true],
      ['json-pretty', ['-o', 'json-pretty'], 'host', true],
    ];
    it.each(formats)('%s', async (_name, args, host, forgedIncluded) => {
      expect(drops).toBeGreaterThan(0);
      const output = await journal.run('journalctl', ['--no-pager', '--after-cursor', startCursor, ...args]);
      const forgedLines = output
        .split('\n')
        .filter((line) => line.includes(`kernel[`) && line.includes(forged())).length;
      if (args.some((arg) => arg.startsWith('json'))) expect(output).toMatch(/"_TRANSPORT" ?: ?"syslog"/);
      else expect(forgedLines).toBe(forgedIncluded ? 1 : 0);
      const { code, report, stderr } = await detectJson(['--host', 'lab-instance'], output);
      expect(stderr).toBe('');
      expect(code).toBe(0);
      const group = report.groups.find((candidate: { netns: string | null }) => candidate.netns === inode);
      expect(group).toMatchObject({ host: host === 'host' ? hostname : 'lab-instance', dropLines: drops });
      // The program's copy under the kernel's name is never a drop line.
      expect(report.ignored['not-kernel']).toBe(forgedIncluded ? 1 : 0);
    });
  },
);
