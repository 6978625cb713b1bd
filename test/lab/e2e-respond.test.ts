import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../functions/cli/main.js';
import { summaryOf } from '../../functions/core/chatops/notification.js';
import { snapshotFirewall } from '../../functions/local/firewall.js';
import { type LabResult, labSummary, runLab } from '../../functions/local/lab/lab.js';
import { execInNetns, type LabHosts, namespaceInode } from '../../functions/local/netns.js';
import type { AslMachine } from '../../functions/local/twin/asl.js';
import { synthesizedWorkflowDefinition } from '../../functions/local/twin/synth.js';
import { kernelLinesBetween, markKernelLog } from './support/kernel-log.js';
import { labUnavailable } from './support/prerequisites.js';

/**
 * The whole product on one machine: seed 003 reproduced in namespaces, `watch` runs the deployed
 * definition, and the instance is fixed (auto) or left exactly as it was (dry-run).
 */

/**
 * Each mode's setup is a whole lab run (namespaces, a real fill of the table, the workflow with its
 * SSM documents, the evidence bundle), so its hook gets a bound sized to that work instead of the lab
 * project's 120 s default. Measured for the whole file (both hooks): 78 s at load 7 on 2 cores and
 * 118 s with two CPU hogs beside it (load 11); one auto-mode hook alone took 111 s in a session-3 run
 * loaded by other suites. The bound is twice the worst hook; one that hangs still ends, and the
 * lab's progress lines say how far it got.
 */
const LAB_RUN_HOOK_BOUND_MS = 240_000;

interface HostSnapshot {
  readonly firewall: Awaited<ReturnType<typeof snapshotFirewall>>;
  /** Every net.netfilter sysctl the instance sees (its own timeouts and the global limits), minus the live count. */
  readonly sysctls: string;
}

async function snapshotHost(hosts: LabHosts): Promise<HostSnapshot> {
  const { stdout } = await execInNetns(hosts.instance, 'sysctl', ['net.netfilter']);
  const sysctls = stdout
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('net.netfilter.nf_conntrack_count'))
    .sort()
    .join('\n');
  return { firewall: await snapshotFirewall(hosts.instance), sysctls };
}

function collector() {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

async function cli(args: string[]) {
  const stdout = collector();
  const stderr = collector();
  const code = await main(args, { stdin: new PassThrough(), stdout: stdout.stream, stderr: stderr.stream });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

/**
 * Times of the kernel lines "table full in netns <inode>" logged after `marker`. The ring buffer
 * holds lines of earlier tests, the same inode among them (the kernel reuses a freed namespace's
 * inode), and dmesg's wall-clock times can differ from Date.now(): a time filter let old lines in.
 */
async function kernelDropLines(inode: string, marker: string): Promise<number[]> {
  return (await kernelLinesBetween(marker, undefined, ['--time-format', 'iso']))
    .filter((line) => line.includes(`table full in netns ${inode}, dropping packet`))
    .map((line) => Date.parse(line.slice(0, line.indexOf(' ')).replace(',', '.')));
}

describe.skipIf(labUnavailable)('respond on a real kernel (seed 003)', () => {
  let definition: AslMachine;
  let outRoot: string;

  beforeAll(async () => {
    definition = await synthesizedWorkflowDefinition();
    outRoot = await mkdtemp(join(tmpdir(), 'e2e-respond-'));
  });
  afterAll(async () => {
    await rm(outRoot, { recursive: true, force: true });
  });

  describe('auto mode', () => {
    let result: LabResult;
    let before: HostSnapshot;
    let after: HostSnapshot;
    let inode: string;
    let marker: string;
    const output = collector();

    beforeAll(async () => {
      marker = await markKernelLog('e2e-respond test');
      result = await runLab({
        mode: 'auto',
        approval: 'reject',
        outRoot,
        soakSeconds: 2,
        backend: 'iptables-nft',
        stdin: new PassThrough(),
        stdout: output.stream,
        definition,
        onLowered: async (hosts) => {
          inode = await namespaceInode(hosts.instance);
          before = await snapshotHost(hosts);
        },
        beforeRestore: async (hosts) => {
          after = await snapshotHost(hosts);
        },
      });
    }, LAB_RUN_HOOK_BOUND_MS);

    it('fills the table until clients fail, then the workflow remediates and verifies', () => {
      expect(result.reproduction.failing.failed).toBeGreaterThan(0);
      expect(result.result.outcome?.status).toBe('remediated');
      expect(result.result.state?.verification).toMatchObject({ held: true });
      const applied = (result.result.state?.applied ?? []) as Array<{ request: { document: string } }>;
      expect(applied.map((step) => step.request.document)).toContain('raise-limits');
    });

    it('makes clients succeed again', () => {
      expect(result.clientsRecoveredAt).not.toBeNull();
      expect(result.finalProbe).toMatchObject({ attempted: 5, succeeded: 5 });
    });

    it('really changed the instance (the snapshot comparison can see a change)', () => {
      expect(after.sysctls).not.toEqual(before.sysctls);
      expect(after.firewall).toEqual(before.firewall);
    });

    it('leaves a bundle that `bundle verify` accepts', async () => {
      expect(result.bundle).toMatchObject({ verified: true });
      const verified = await cli(['bundle', 'verify', String(result.bundle?.directory)]);
      expect(verified.code, verified.stdout + verified.stderr).toBe(0);
      const archive = await cli(['bundle', 'verify', `${result.bundle?.directory}.tar.gz`]);
      expect(archive.code, archive.stdout + archive.stderr).toBe(0);
    });

    it('records the manifest digest outside the bundle (the notification, the summary) and verifies against it', async () => {
      const sns = JSON.parse(
        await readFile(join(result.result.outDir, 'notifications', 'sns-01.json'), 'utf8'),
      );
      const digest = (summaryOf(sns.Message) as { evidence: { manifestSha256: string } }).evidence
        .manifestSha256;
      expect(digest).toMatch(/^[0-9a-f]{64}$/);
      expect(result.bundle?.manifestSha256).toBe(digest);
      expect(sns.Message).toContain(`Manifest sha256: ${digest}`);
      expect(labSummary(result)).toContain(`manifest sha256     ${digest}`);
      const anchored = await cli([
        'bundle',
        'verify',
        `${result.bundle?.directory}.tar.gz`,
        '--digest',
        digest,
      ]);
      expect(anchored.code, anchored.stdout + anchored.stderr).toBe(0);
      expect(anchored.stdout).toContain('digest: manifest.json is the one recorded for the incident');
    });

    it('writes a postmortem whose timeline agrees with the kernel log', async () => {
      const directory = String(result.bundle?.directory);
      const timeline = JSON.parse(await readFile(join(directory, 'timeline.json'), 'utf8')) as {
        problems: string[];
        at: Record<string, string>;
      };
      expect(timeline.problems).toEqual([]);
      const kernel = await kernelDropLines(inode, marker);
      expect(kernel.length).toBeGreaterThan(0);
      const firstKernelDrop = Math.min(...kernel);
      expect(Date.parse(String(timeline.at['first-drop']))).toBe(firstKernelDrop);
      const order = ['first-drop', 'detected', 'diagnosed', 'remediated', 'verified', 'closed'];
      const times = order.map((key) => Date.parse(String(timeline.at[key])));
      expect(times.every((time) => Number.isFinite(time))).toBe(true);
      expect([...times].sort((a, b) => a - b)).toEqual(times);
      // The fix came after the drops began and clients recovered after it.
      expect(Date.parse(String(result.clientsRecoveredAt))).toBeGreaterThan(firstKernelDrop);
      const postmortem = await readFile(join(directory, 'postmortem.md'), 'utf8');
      expect(postmortem).toContain(new Date(firstKernelDrop).toISOString().replace('T', ' ').slice(0, 23));
      expect(postmortem).toContain('remediated');
    });

    it('printed its progress as it went', () => {
      const text = output.text();
      for (const step of [
        'Collect diagnostics',
        'Apply the remediation',
        'Verify the fix',
        'Write the evidence bundle',
      ]) {
        expect(text).toContain(step);
      }
    });
  });

  describe('dry-run mode', () => {
    let result: LabResult;
    let before: HostSnapshot;
    let after: HostSnapshot;

    beforeAll(async () => {
      result = await runLab({
        mode: 'dry-run',
        approval: 'reject',
        outRoot,
        soakSeconds: 0,
        backend: 'iptables-nft',
        stdin: new PassThrough(),
        stdout: new PassThrough(),
        definition,
        progress: false,
        onLowered: async (hosts) => {
          before = await snapshotHost(hosts);
        },
        beforeRestore: async (hosts) => {
          after = await snapshotHost(hosts);
        },
      });
    }, LAB_RUN_HOOK_BOUND_MS);

    it('plans a change but applies none', () => {
      expect(result.result.outcome?.status).toBe('dry-run');
      const assessment = result.result.state?.assessment as { plan: { actions: unknown[] } } | undefined;
      expect(assessment?.plan.actions.length).toBeGreaterThan(0);
      expect(result.result.commands.map((command) => command.document)).toEqual(['collect-diagnostics']);
    });

    it('leaves the namespace exactly as it was: ruleset and sysctls', () => {
      expect(after.firewall).toEqual(before.firewall);
      expect(after.sysctls).toEqual(before.sysctls);
    });

    it('still writes a verified bundle', () => {
      expect(result.bundle).toMatchObject({ verified: true });
    });
  });
});
