import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ParameterValidationError } from '../../../functions/core/runbook/document.js';
import { applyHostFirewall, type FirewallBackend } from '../../../functions/local/firewall.js';
import { createLabHosts, execInNetns, type LabHosts } from '../../../functions/local/netns.js';
import { runDocument } from '../../../functions/local/ssm-executor.js';
import { labUnavailable } from '../support/prerequisites.js';
import {
  createRemediationDirs,
  type RemediationDirs,
  rulesSnapshot,
  runRemediation,
} from '../support/remediation.js';

const SERVICE_PORT = 8080;

interface Scene {
  readonly hosts: LabHosts;
  readonly dirs: RemediationDirs;
}

/**
 * Pre-flight refusals: each case builds a namespace whose rules make NOTRACK unsafe, runs the
 * document, and checks exit 3, the reason, and that neither a rule nor the state changed.
 */
describe.skipIf(labUnavailable)('notrack-ports pre-flight', () => {
  const scenes: Scene[] = [];
  afterEach(async () => {
    for (const scene of scenes.splice(0)) {
      await scene.hosts.destroy();
      await scene.dirs.remove();
    }
  });

  async function scene(backend: FirewallBackend, ...extra: (readonly string[])[]): Promise<Scene> {
    const hosts = await createLabHosts('ntref');
    const dirs = await createRemediationDirs();
    scenes.push({ hosts, dirs });
    await applyHostFirewall(hosts.instance, backend, { servicePorts: [SERVICE_PORT] });
    for (const argv of extra) {
      const [file, ...args] = argv;
      if (file === undefined) throw new Error('empty command');
      await execInNetns(hosts.instance, file, args);
    }
    return { hosts, dirs };
  }

  async function expectRefusedWithoutChange(
    { hosts, dirs }: Scene,
    parameters: Record<string, string>,
    reason: RegExp,
    env: Record<string, string> = {},
  ) {
    const before = await rulesSnapshot(hosts.instance);
    const run = await runDocument({
      name: 'notrack-ports',
      parameters: { ChangeId: 'refused-1', Protocol: 'tcp', Direction: 'inbound', ...parameters },
      netns: hosts.instance,
      env: { ...dirs.env, ...env },
    });
    expect(run.exitCode, run.stderr).toBe(3);
    expect(run.json).toMatchObject({ document: 'notrack-ports', status: 'refused', rulesAdded: [] });
    expect(String(run.json?.reasons)).toMatch(reason);
    expect(await rulesSnapshot(hosts.instance)).toEqual(before);
    expect(existsSync(join(dirs.stateDir, 'changes', 'refused-1'))).toBe(false);
    return run;
  }

  it.each([['iptables-nft'], ['iptables-legacy']] as const)(
    'refuses a port that a DNAT rule touches (%s)',
    async (backend) => {
      const s = await scene(backend);
      await execInNetns(s.hosts.instance, backend, [
        ...['-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '--dport', String(SERVICE_PORT)],
        ...['-j', 'DNAT', '--to-destination', `${s.hosts.clientAddress}:9090`],
      ]);
      const run = await expectRefusedWithoutChange(s, { Ports: String(SERVICE_PORT) }, /NAT rules/);
      expect(run.json?.natConflicts).toEqual([
        `ipv4 nat: -A PREROUTING -p tcp -m tcp --dport ${SERVICE_PORT} -j DNAT --to-destination ${s.hosts.clientAddress}:9090`,
      ]);
    },
  );

  it('refuses a port that an nftables dnat rule touches', async () => {
    const s = await scene('nftables');
    await execInNetns(s.hosts.instance, 'nft', ['-f', '-'], {
      input: `table ip nat {\n chain prerouting {\n  type nat hook prerouting priority dstnat;\n  tcp dport { 80, ${SERVICE_PORT} } dnat to ${s.hosts.clientAddress}:9090\n }\n}\n`,
    });
    await expectRefusedWithoutChange(s, { Ports: String(SERVICE_PORT) }, /NAT rules/);
  });

  it('refuses when a nat rule has no port at all (MASQUERADE for containers)', async () => {
    const s = await scene('iptables-nft', [
      ...['iptables-nft', '-t', 'nat', '-A', 'POSTROUTING', '-s', '172.17.0.0/16'],
      ...['!', '-o', 'docker0', '-j', 'MASQUERADE'],
    ]);
    await expectRefusedWithoutChange(s, { Ports: String(SERVICE_PORT) }, /NAT rules/);
  });

  it("refuses when Docker's chains are in the nat table", async () => {
    const s = await scene('iptables-nft', ['iptables-nft', '-t', 'nat', '-N', 'DOCKER']);
    const run = await expectRefusedWithoutChange(s, { Ports: String(SERVICE_PORT) }, /container tooling/);
    expect(run.json?.natConflicts).toEqual(['ipv4 nat: :DOCKER - [0:0]']);
  });

  it('refuses when both legacy and nf_tables rules are present', async () => {
    const s = await scene('iptables-nft', [
      'iptables-legacy',
      '-A',
      'INPUT',
      '-p',
      'tcp',
      '--dport',
      '22',
      '-j',
      'ACCEPT',
    ]);
    await expectRefusedWithoutChange(
      s,
      { Ports: String(SERVICE_PORT) },
      /both iptables-legacy rules and nf_tables/,
    );
  });

  it('refuses when it cannot tell the backend (no iptables, no nft on PATH)', async () => {
    const s = await scene('iptables-nft');
    await expectRefusedWithoutChange(
      s,
      { Ports: String(SERVICE_PORT) },
      /cannot tell which firewall backend/,
      {
        PATH: '/usr/bin:/bin',
      },
    );
  });

  it.each([['iptables-nft'], ['nftables']] as const)(
    'refuses to accept UNTRACKED packets to a port the firewall does not open to everyone (%s)',
    async (backend) => {
      const s = await scene(backend);
      await expectRefusedWithoutChange(s, { Ports: '9999' }, /wider than the firewall does today/);
    },
  );

  it('accepts a port that nat rules do not touch (a DNAT of another port)', async () => {
    const s = await scene('iptables-nft', [
      ...['iptables-nft', '-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '--dport', '80'],
      ...['-j', 'REDIRECT', '--to-ports', '9090'],
    ]);
    const applied = await runRemediation(
      'notrack-ports',
      { ChangeId: 'ok-1', Ports: String(SERVICE_PORT), Protocol: 'tcp', Direction: 'inbound' },
      s.hosts.instance,
      s.dirs,
    );
    expect(applied.result).toMatchObject({ status: 'applied', natConflicts: [] });
  });

  it('never lets an invalid value reach the script (the executor validates against the document)', async () => {
    const s = await scene('iptables-nft');
    for (const Ports of ['0', '8080;reboot', '80,$(id)', '']) {
      await expect(
        runDocument({
          name: 'notrack-ports',
          parameters: { ChangeId: 'bad', Ports, Protocol: 'tcp', Direction: 'inbound' },
          netns: s.hosts.instance,
          env: s.dirs.env,
        }),
      ).rejects.toBeInstanceOf(ParameterValidationError);
    }
  });

  it('refuses to roll back an unknown change id', async () => {
    const s = await scene('iptables-nft');
    const run = await runRemediation('rollback', { ChangeId: 'never-applied' }, s.hosts.instance, s.dirs);
    expect(run.exitCode).toBe(3);
    expect(run.result).toMatchObject({ status: 'refused', change: null });
    expect(run.result.reasons.join()).toMatch(/unknown ChangeId never-applied/);
  });
});
