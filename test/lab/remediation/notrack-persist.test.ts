import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyHostFirewall } from '../../../functions/local/firewall.js';
import { execInNetns } from '../../../functions/local/netns.js';
import { loadRunbook } from '../../../functions/local/runbooks.js';
import { createServedLabHosts, type ServedLabHosts } from '../support/lab.js';
import { labUnavailable } from '../support/prerequisites.js';
import {
  createRemediationDirs,
  directoryContents,
  type RemediationDirs,
  type RemediationRun,
  type RulesSnapshot,
  rulesSnapshot,
  runRemediation,
} from '../support/remediation.js';

const SERVICE_PORT = 8080;
const CHANGE = 'persist-1';
const UNIT = `etc/systemd/system/conntrack-responder-notrack-${CHANGE}.service`;
const WANTS = `etc/systemd/system/multi-user.target.wants/conntrack-responder-notrack-${CHANGE}.service`;
const COPY = `usr/local/libexec/conntrack-responder/notrack-ports-${CHANGE}.sh`;

/** `Environment=A=1 B=2` lines of a unit file, as systemd reads them (our values hold no spaces). */
function unitEnvironment(unit: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of unit.split('\n')) {
    if (!line.startsWith('Environment=')) continue;
    for (const pair of line.slice('Environment='.length).split(' ')) {
      const [key, ...value] = pair.split('=');
      if (key) env[key] = value.join('=');
    }
  }
  return env;
}

/**
 * Persist=true, the way the workflow uses it (the verified change run again with Persist=true), and
 * what the persisted unit does at boot: after the firewall service has loaded the host's own rules
 * again, the installed copy of the script re-adds exactly our rules and nothing else.
 */
describe.skipIf(labUnavailable)('notrack-ports persistence (iptables-legacy, as on Amazon Linux 2)', () => {
  let hosts: ServedLabHosts;
  let dirs: RemediationDirs;
  const parameters = { ChangeId: CHANGE, Ports: String(SERVICE_PORT), Protocol: 'tcp', Direction: 'inbound' };
  const seen: {
    before?: RulesSnapshot;
    applied?: RemediationRun;
    afterApply?: RulesSnapshot;
    persisted?: RemediationRun;
    afterPersist?: RulesSnapshot;
    rootAfterPersist?: Record<string, string>;
    persistedAgain?: RemediationRun;
    afterReboot?: RulesSnapshot;
    boot?: { code: number; json: Record<string, unknown> };
    afterBoot?: RulesSnapshot;
    rollback?: RemediationRun;
    afterRollback?: RulesSnapshot;
    rootAfterRollback?: Record<string, string>;
  } = {};
  let script: string;

  beforeAll(async () => {
    hosts = await createServedLabHosts({
      role: 'ntp',
      backend: 'iptables-legacy',
      servicePorts: [SERVICE_PORT],
    });
    dirs = await createRemediationDirs();
    // The copy is of the script the document ran: its lib/ includes spliced in, needing no other file.
    script = `${(await loadRunbook('notrack-ports')).document.mainSteps[0].inputs.runCommand.join('\n')}\n`;
    const ns = hosts.instance;
    seen.before = await rulesSnapshot(ns);
    seen.applied = await runRemediation('notrack-ports', { ...parameters, Persist: 'false' }, ns, dirs);
    seen.afterApply = await rulesSnapshot(ns);
    seen.persisted = await runRemediation('notrack-ports', { ...parameters, Persist: 'true' }, ns, dirs);
    seen.afterPersist = await rulesSnapshot(ns);
    seen.rootAfterPersist = await directoryContents(dirs.root);
    seen.persistedAgain = await runRemediation('notrack-ports', { ...parameters, Persist: 'true' }, ns, dirs);

    // "Reboot": the rules are gone and the firewall service loads the host's own rules again.
    for (const [binary, table] of [
      ['iptables-legacy', 'raw'],
      ['iptables-legacy', 'filter'],
      ['ip6tables-legacy', 'raw'],
    ] as const) {
      await execInNetns(ns, binary, ['-t', table, '-F']);
    }
    await applyHostFirewall(ns, 'iptables-legacy', { servicePorts: [SERVICE_PORT] });
    seen.afterReboot = await rulesSnapshot(ns);
    // Then systemd starts the unit: its Environment= lines, its ExecStart, no root prefix.
    const unit = await readFile(join(dirs.root, UNIT), 'utf8');
    const boot = await execInNetns(ns, 'bash', [join(dirs.root, COPY)], {
      env: { ...unitEnvironment(unit), CONNTRACK_RESPONDER_ROOT: '' },
      allowFailure: true,
    });
    seen.boot = { code: boot.code, json: JSON.parse(boot.stdout) as Record<string, unknown> };
    seen.afterBoot = await rulesSnapshot(ns);

    seen.rollback = await runRemediation('rollback', { ChangeId: CHANGE }, ns, dirs);
    seen.afterRollback = await rulesSnapshot(ns);
    seen.rootAfterRollback = await directoryContents(dirs.root);
  });
  afterAll(async () => {
    await hosts?.destroy();
    await dirs?.remove();
  });

  it('applies without persisting first', () => {
    expect(seen.applied?.result).toMatchObject({ status: 'applied', backend: 'iptables-legacy' });
    expect(seen.rootAfterPersist).toBeDefined();
  });

  it('persists on the second run with Persist=true, adding no rule', () => {
    expect(seen.persisted?.result).toMatchObject({ status: 'applied', rulesAdded: [] });
    expect(seen.afterPersist).toEqual(seen.afterApply);
    expect(seen.persistedAgain?.result).toMatchObject({ status: 'unchanged', changes: [] });
  });

  it('installs a oneshot unit, its wants link and a copy of the script, and no ruleset file', () => {
    const root = seen.rootAfterPersist as Record<string, string>;
    const unit = root[UNIT] ?? '';
    expect(unit).toMatch(/^644 /);
    expect(unit).toContain('Type=oneshot');
    expect(unit).toContain(`ExecStart=/bin/bash /${COPY}`);
    expect(unit).toContain('WantedBy=multi-user.target');
    expect(unitEnvironment(unit)).toMatchObject({
      SSM_ChangeId: CHANGE,
      SSM_Ports: String(SERVICE_PORT),
      SSM_Protocol: 'tcp',
      SSM_Direction: 'inbound',
      SSM_Persist: 'false',
      CONNTRACK_RESPONDER_STATE_DIR: dirs.stateDir,
    });
    expect(root[WANTS]).toBe(`-> /${UNIT}`);
    expect(root[COPY]).toBe(`755 ${script}`);
    const files = Object.keys(root).filter((path) => !path.endsWith('/'));
    expect(files.sort()).toEqual([UNIT, WANTS, COPY].sort());
  });

  it('re-adds exactly our rules at boot, after the host firewall is back', () => {
    expect(seen.afterReboot?.iptablesLegacy).toEqual(seen.before?.iptablesLegacy);
    expect(seen.boot).toMatchObject({ code: 0, json: { status: 'applied', backend: 'iptables-legacy' } });
    expect(seen.afterBoot).toEqual(seen.afterApply);
  });

  it('rolls back the rules and removes every persisted file', () => {
    expect(seen.rollback?.result).toMatchObject({ status: 'rolled-back' });
    expect(seen.afterRollback).toEqual(seen.before);
    expect(seen.rootAfterRollback).toEqual({});
  });
});
