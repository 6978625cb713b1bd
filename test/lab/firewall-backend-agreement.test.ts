import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DiagnosticsReport, DiagnosticsReportSchema } from '../../functions/core/diagnostics/report.js';
import { hostWideNotrackBlockers } from '../../functions/core/plan/notrack.js';
import { DEFAULT_POLICY } from '../../functions/core/plan/policy.js';
import { execInNetns } from '../../functions/local/netns.js';
import { runDocument } from '../../functions/local/ssm-executor.js';
import { createServedLabHosts, type ServedLabHosts } from './support/lab.js';
import { labUnavailable } from './support/prerequisites.js';
import {
  createRemediationDirs,
  type RemediationDirs,
  type RemediationRun,
  runRemediation,
} from './support/remediation.js';

const SERVICE_PORT = 8080;
const MIXED_HOST = /iptables-legacy and nftables/;

/**
 * collect-diagnostics (what the planner reads) and notrack-ports (what it runs) judge a host with
 * legacy tables the same way (runbooks/scripts/lib/legacy-rules.sh): a registered but empty legacy
 * table does not make an iptables-nft host "mixed"; one legacy rule does, and then the planner
 * does not plan NOTRACK and the document refuses it.
 */
describe.skipIf(labUnavailable)('firewall backend with legacy tables next to iptables-nft', () => {
  let hosts: ServedLabHosts;
  let dirs: RemediationDirs;
  const seen: {
    legacyTablesWhenEmpty?: string;
    emptyLegacy?: DiagnosticsReport;
    notrackWithEmptyLegacy?: RemediationRun;
    rollback?: RemediationRun;
    legacyRule?: DiagnosticsReport;
    notrackWithLegacyRule?: RemediationRun;
  } = {};

  async function collect(netns: string): Promise<DiagnosticsReport> {
    const run = await runDocument({
      name: 'collect-diagnostics',
      parameters: { SampleSeconds: '1' },
      netns,
      env: { CONNTRACK_RESPONDER_ROOT: dirs.root },
    });
    if (run.status !== 'Success') throw new Error(`collect-diagnostics failed: ${run.stderr}`);
    return DiagnosticsReportSchema.parse(JSON.parse(run.stdout));
  }

  const notrack = (changeId: string) =>
    runRemediation(
      'notrack-ports',
      { ChangeId: changeId, Ports: String(SERVICE_PORT), Protocol: 'tcp', Direction: 'inbound' },
      hosts.instance,
      dirs,
    );

  beforeAll(async () => {
    hosts = await createServedLabHosts({
      role: 'fwagree',
      backend: 'iptables-nft',
      servicePorts: [SERVICE_PORT],
    });
    dirs = await createRemediationDirs();
    // Listing registers the legacy filter table (empty, ACCEPT policies) in this namespace for good.
    await execInNetns(hosts.instance, 'iptables-legacy', ['-n', '-L']);
    seen.legacyTablesWhenEmpty = (
      await execInNetns(hosts.instance, 'cat', ['/proc/net/ip_tables_names'])
    ).stdout.trim();
    seen.emptyLegacy = await collect(hosts.instance);
    seen.notrackWithEmptyLegacy = await notrack('agree-1');
    seen.rollback = await runRemediation('rollback', { ChangeId: 'agree-1' }, hosts.instance, dirs);

    await execInNetns(hosts.instance, 'iptables-legacy', [
      ...['-A', 'INPUT', '-p', 'tcp', '--dport', '9999', '-j', 'ACCEPT'],
    ]);
    seen.legacyRule = await collect(hosts.instance);
    seen.notrackWithLegacyRule = await notrack('agree-2');
  }, 120_000);
  afterAll(async () => {
    await hosts?.destroy();
    await dirs?.remove();
  });

  it('an empty registered legacy table is listed but leaves the backend iptables-nft', () => {
    expect(seen.legacyTablesWhenEmpty).toBe('filter');
    expect(seen.emptyLegacy?.firewall.tables?.legacy).toEqual(['ip filter']);
    expect(seen.emptyLegacy?.firewall.backend).toBe('iptables-nft');
  });

  it('so the planner may consider NOTRACK and notrack-ports applies it with iptables-nft', () => {
    const blockers = hostWideNotrackBlockers(seen.emptyLegacy as DiagnosticsReport, DEFAULT_POLICY.notrack);
    expect(blockers.join('\n')).not.toMatch(MIXED_HOST);
    const run = seen.notrackWithEmptyLegacy as RemediationRun;
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.result).toMatchObject({ status: 'applied', backend: 'iptables-nft' });
    expect(seen.rollback?.result).toMatchObject({ status: 'rolled-back' });
  });

  it('one legacy rule makes it legacy-and-nft: the planner blocks NOTRACK and the document refuses', () => {
    expect(seen.legacyRule?.firewall.backend).toBe('legacy-and-nft');
    const blockers = hostWideNotrackBlockers(seen.legacyRule as DiagnosticsReport, DEFAULT_POLICY.notrack);
    expect(blockers.join('\n')).toMatch(MIXED_HOST);
    const run = seen.notrackWithLegacyRule as RemediationRun;
    expect(run.exitCode, run.stderr).toBe(3);
    expect(run.result).toMatchObject({ status: 'refused', rulesAdded: [] });
    expect(run.result.reasons.join('\n')).toMatch(/both iptables-legacy rules and nf_tables rules/);
  });
});
