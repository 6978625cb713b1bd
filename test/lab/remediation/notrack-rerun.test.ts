import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyHostFirewall } from '../../../functions/local/firewall.js';
import { createLabHosts, execInNetns, type LabHosts } from '../../../functions/local/netns.js';
import { labUnavailable } from '../support/prerequisites.js';
import {
  createRemediationDirs,
  type RemediationDirs,
  type RemediationRun,
  type RulesSnapshot,
  rulesSnapshot,
  runRemediation,
} from '../support/remediation.js';

const SERVICE_PORT = 8080;
/** Enough filter rules after the raw ones that a presence check reading them through a pipe races. */
const EXTRA_FILTER_RULES = 2000;
const RERUNS = 3;

/** `-A INPUT ... -j ACCEPT` for ports that are not ours: they change no decision of the document. */
function manyAccepts(count: number): string {
  const rules = Array.from(
    { length: count },
    (_, index) => `-A INPUT -p udp -m udp --dport ${20_000 + index} -j ACCEPT`,
  );
  return ['*filter', ...rules, 'COMMIT', ''].join('\n');
}

/**
 * A rule already in place is found however long the ruleset is. The presence check once read the
 * rules through `printf | grep -q` under `pipefail`: grep exits at the first match, the rest of
 * printf's writes hit a closed pipe (SIGPIPE, 141), and the "not present" verdict re-added the rule.
 * A long filter table after the raw rules makes that race near-certain instead of rare.
 */
describe.skipIf(labUnavailable)('notrack-ports re-run on a long ruleset', () => {
  describe.each(['iptables-nft', 'iptables-legacy'] as const)('%s', (backend) => {
    let hosts: LabHosts;
    let dirs: RemediationDirs;
    const parameters = {
      ChangeId: `nt-rerun-${backend}`,
      Ports: String(SERVICE_PORT),
      Protocol: 'tcp',
      Direction: 'inbound',
    };
    let first: RemediationRun;
    let afterFirst: RulesSnapshot;
    const reruns: { run: RemediationRun; after: RulesSnapshot }[] = [];

    beforeAll(async () => {
      hosts = await createLabHosts('ntrr');
      dirs = await createRemediationDirs();
      await applyHostFirewall(hosts.instance, backend, { servicePorts: [SERVICE_PORT] });
      await execInNetns(hosts.instance, `${backend}-restore`, ['--noflush'], {
        input: manyAccepts(EXTRA_FILTER_RULES),
      });
      first = await runRemediation('notrack-ports', parameters, hosts.instance, dirs);
      afterFirst = await rulesSnapshot(hosts.instance);
      for (let index = 0; index < RERUNS; index++) {
        const run = await runRemediation('notrack-ports', parameters, hosts.instance, dirs);
        reruns.push({ run, after: await rulesSnapshot(hosts.instance) });
      }
    }, 120_000);
    afterAll(async () => {
      await hosts?.destroy();
      await dirs?.remove();
    });

    it('applies the pair and the UNTRACKED accept once', () => {
      expect(first.exitCode, first.stderr).toBe(0);
      expect(first.result).toMatchObject({ status: 'applied', backend });
      // raw PREROUTING and OUTPUT for IPv4 and IPv6, the filter INPUT accept for IPv4 (only it drops).
      expect(first.result.rulesAdded).toHaveLength(5);
    });

    it('finds every rule present on each re-run and adds nothing', () => {
      expect(reruns).toHaveLength(RERUNS);
      for (const { run, after } of reruns) {
        expect(run.result, run.stderr).toMatchObject({ status: 'unchanged', rulesAdded: [] });
        expect(run.result.rulesPresent).toHaveLength(5);
        expect(after).toEqual(afterFirst);
      }
    });
  });
});
