import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIREWALL_BACKENDS, type FirewallBackend } from '../../../functions/local/firewall.js';
import { withConntrackMax } from '../../../functions/local/netns.js';
import {
  type ChurnResult,
  conntrackCount,
  type HeldFullTable,
  holdTableFull,
  probeConnections,
  reproduceTableFull,
  startTcpService,
  type TableFullResult,
  type TcpService,
} from '../../../functions/local/traffic.js';
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

const SERVICE_PORT = 8080; // flooded, then exempted from tracking
const OTHER_PORT = 9090; // open in the firewall too, left tracked
const BACKEND_PORT = 11211; // a service in the clients namespace the instance connects to (seed 004)
const HOLD_PORT = 12000; // the clients' service that the connections holding the table full go to
const LOW_MAX = 2048;
/**
 * Each backend's setup runs one seed 003 fill, seven document runs and six probes in sequence:
 * 40 s on a quiet machine, 85-110 s measured with other builds running, near the lab project's
 * 120 s hook bound; twice that, as plan-on-real-table does for its own fill and runs.
 */
const HOOK_BOUND_MS = 240_000;

/**
 * The whole life of two NOTRACK changes on a full table, per firewall backend: an inbound one for
 * the flooded service port (seed 003) and an outbound one for a backend the instance is a client
 * of (seed 004), each run twice, then both rolled back (twice). Everything happens inside
 * withConntrackMax. Seed 003 fills the table first; for the checks that follow, the table is held
 * full by established connections (holdTableFull), which the kernel never evicts, so each probe
 * meets a table that is full when it runs.
 */
describe.skipIf(labUnavailable)('notrack-ports on a full table', () => {
  describe.each(FIREWALL_BACKENDS)('%s', (backend: FirewallBackend) => {
    let hosts: ServedLabHosts;
    let backendService: TcpService;
    let dirs: RemediationDirs;
    const inbound = {
      ChangeId: `nt-in-${backend}`,
      Ports: String(SERVICE_PORT),
      Protocol: 'tcp',
      Direction: 'inbound',
    };
    const outbound = {
      ChangeId: `nt-out-${backend}`,
      Ports: String(BACKEND_PORT),
      Protocol: 'tcp',
      Direction: 'outbound',
    };
    const seen: {
      before?: RulesSnapshot;
      full?: TableFullResult;
      outboundBefore?: ChurnResult;
      first?: RemediationRun;
      afterFirst?: RulesSnapshot;
      stateAfterFirst?: Record<string, string>;
      held?: { max: number; count: number; held: number };
      otherPort?: ChurnResult;
      servicePort?: ChurnResult;
      second?: RemediationRun;
      afterSecond?: RulesSnapshot;
      stateAfterSecond?: Record<string, string>;
      outboundFirst?: RemediationRun;
      outboundAfter?: ChurnResult;
      outboundSecond?: RemediationRun;
      rollbackOutbound?: RemediationRun;
      afterRollbackOutbound?: RulesSnapshot;
      outboundAfterRollback?: ChurnResult;
      rollback?: RemediationRun;
      afterRollback?: RulesSnapshot;
      rollbackAgain?: RemediationRun;
      afterRollbackAgain?: RulesSnapshot;
      servicePortAfterRollback?: ChurnResult;
      countAfterProbes?: number;
    } = {};

    beforeAll(async () => {
      hosts = await createServedLabHosts({
        role: 'nt',
        backend,
        servicePorts: [SERVICE_PORT, OTHER_PORT],
      });
      backendService = await startTcpService(hosts.clients, hosts.clientAddress, BACKEND_PORT);
      dirs = await createRemediationDirs();
      const { instance, clients, instanceAddress, clientAddress } = hosts;
      seen.before = await rulesSnapshot(instance);
      await withConntrackMax(LOW_MAX, async () => {
        // Seed 003: the service port's own short connections fill the table until new ones fail.
        seen.full = await reproduceTableFull({
          hosts,
          port: SERVICE_PORT,
          batchSize: 128,
          concurrency: 64,
          connectTimeoutMs: 500,
        });
        // A table of TIME_WAIT entries does not stay full: once drops began, the kernel's GC evicts
        // them from a table at 95 % of max or more, and a probe may find a free slot. From here on
        // the table is emptied and held full by established connections, which it never evicts.
        const held: HeldFullTable = await holdTableFull({ hosts, port: HOLD_PORT });
        try {
          seen.held = { max: held.max, count: held.count, held: held.held };
          seen.outboundBefore = await probeConnections(instance, clientAddress, BACKEND_PORT, { count: 5 });

          seen.first = await runRemediation('notrack-ports', inbound, instance, dirs);
          seen.afterFirst = await rulesSnapshot(instance);
          seen.stateAfterFirst = await directoryContents(dirs.stateDir);
          seen.otherPort = await probeConnections(clients, instanceAddress, OTHER_PORT, { count: 5 });
          seen.servicePort = await probeConnections(clients, instanceAddress, SERVICE_PORT, { count: 5 });
          seen.second = await runRemediation('notrack-ports', inbound, instance, dirs);
          seen.afterSecond = await rulesSnapshot(instance);
          seen.stateAfterSecond = await directoryContents(dirs.stateDir);

          seen.outboundFirst = await runRemediation('notrack-ports', outbound, instance, dirs);
          seen.outboundAfter = await probeConnections(instance, clientAddress, BACKEND_PORT, { count: 5 });
          seen.outboundSecond = await runRemediation('notrack-ports', outbound, instance, dirs);
          seen.rollbackOutbound = await runRemediation(
            'rollback',
            { ChangeId: outbound.ChangeId },
            instance,
            dirs,
          );
          seen.afterRollbackOutbound = await rulesSnapshot(instance);
          seen.outboundAfterRollback = await probeConnections(instance, clientAddress, BACKEND_PORT, {
            count: 5,
          });

          seen.rollback = await runRemediation('rollback', { ChangeId: inbound.ChangeId }, instance, dirs);
          seen.afterRollback = await rulesSnapshot(instance);
          seen.rollbackAgain = await runRemediation(
            'rollback',
            { ChangeId: inbound.ChangeId },
            instance,
            dirs,
          );
          seen.afterRollbackAgain = await rulesSnapshot(instance);
          seen.servicePortAfterRollback = await probeConnections(clients, instanceAddress, SERVICE_PORT, {
            count: 5,
          });
          seen.countAfterProbes = await conntrackCount(instance);
        } finally {
          await held.release();
        }
      });
    }, HOOK_BOUND_MS);
    afterAll(async () => {
      await backendService?.stop();
      await hosts?.destroy();
      await dirs?.remove();
    });

    // While the table is held full, every tracked new connection fails; with NOTRACK all 5 succeed.
    it('starts from a full table on which new connections fail', () => {
      expect(seen.full?.countAtFull).toBeGreaterThanOrEqual(LOW_MAX);
      expect(seen.full?.failing).toMatchObject({ attempted: 5, succeeded: 0 });
      expect(seen.held).toEqual({ max: LOW_MAX, count: LOW_MAX, held: LOW_MAX });
      expect(seen.outboundBefore).toMatchObject({ attempted: 5, succeeded: 0, failed: 5 });
    });

    it('uses the namespace’s own backend and adds the pair in both directions plus the UNTRACKED accept', () => {
      const { result, exitCode } = seen.first as RemediationRun;
      expect(exitCode, JSON.stringify(result)).toBe(0);
      expect(result).toMatchObject({ document: 'notrack-ports', status: 'applied', backend, reasons: [] });
      const tag = `conntrack-responder:${inbound.ChangeId}`;
      const after = seen.afterFirst as RulesSnapshot;
      if (backend === 'nftables') {
        expect(after.nftables).toContain(`tcp dport ${SERVICE_PORT} notrack comment "${tag}"`);
        expect(after.nftables).toContain(`tcp sport ${SERVICE_PORT} notrack comment "${tag}"`);
        // The accept sits where the chain's own established accept was, so it comes before it.
        const filter = after.nftables.slice(after.nftables.indexOf('table inet filter'));
        expect(
          filter.indexOf(`tcp dport ${SERVICE_PORT} ct state untracked accept comment "${tag}"`),
        ).toBeGreaterThan(0);
        expect(filter.indexOf('ct state untracked accept')).toBeLessThan(
          filter.indexOf('ct state established,related accept'),
        );
      } else {
        const save = backend === 'iptables-nft' ? after.iptablesNft : after.iptablesLegacy;
        const comment = `-m comment --comment "${tag}"`;
        expect(save).toContain(
          `-A PREROUTING -p tcp -m tcp --dport ${SERVICE_PORT} ${comment} -j CT --notrack`,
        );
        expect(save).toContain(`-A OUTPUT -p tcp -m tcp --sport ${SERVICE_PORT} ${comment} -j CT --notrack`);
        const accept = `-A INPUT -p tcp -m tcp --dport ${SERVICE_PORT} -m conntrack --ctstate UNTRACKED ${comment} -j ACCEPT`;
        expect(save).toContain(accept);
        expect(save.indexOf(accept)).toBeLessThan(save.indexOf('--ctstate RELATED,ESTABLISHED -j ACCEPT'));
        // The same pair for IPv6, with the same binary family.
        const save6 = backend === 'iptables-nft' ? after.ip6tablesNft : after.ip6tablesLegacy;
        expect(save6).toContain(
          `-A PREROUTING -p tcp -m tcp --dport ${SERVICE_PORT} ${comment} -j CT --notrack`,
        );
      }
    });

    it('lets new connections to the exempted port succeed while the table is full', () => {
      expect(seen.servicePort).toMatchObject({ attempted: 5, succeeded: 5, failed: 0 });
      // They added no entry: the table is exactly as full as it was held.
      expect(seen.countAfterProbes).toBe(LOW_MAX);
    });

    it('leaves new connections to another port failing', () => {
      expect(seen.otherPort).toMatchObject({ attempted: 5, succeeded: 0, failed: 5 });
    });

    it('adds nothing when run a second time', () => {
      expect(seen.second?.result).toMatchObject({ status: 'unchanged', rulesAdded: [] });
      expect(seen.second?.result.rulesPresent).toHaveLength(
        (seen.first?.result.rulesAdded as unknown[] | undefined)?.length ?? -1,
      );
      expect(seen.afterSecond).toEqual(seen.afterFirst);
      expect(seen.stateAfterSecond).toEqual(seen.stateAfterFirst);
    });

    it('exempts an outbound backend port in both directions (the reply side too, seed 004)', () => {
      expect(seen.outboundFirst?.result).toMatchObject({ status: 'applied', direction: 'outbound' });
      expect(seen.outboundAfter).toMatchObject({ attempted: 5, succeeded: 5, failed: 0 });
      expect(seen.outboundSecond?.result).toMatchObject({ status: 'unchanged', rulesAdded: [] });
    });

    it('rolls the outbound change back alone, leaving the inbound one as it was', () => {
      expect(seen.rollbackOutbound?.result).toMatchObject({ status: 'rolled-back', change: 'notrack-ports' });
      expect(seen.afterRollbackOutbound).toEqual(seen.afterFirst);
      expect(seen.outboundAfterRollback).toMatchObject({ attempted: 5, succeeded: 0, failed: 5 });
    });

    it('restores the raw and filter rules exactly, and is idempotent', () => {
      expect(seen.rollback?.result).toMatchObject({ status: 'rolled-back', rulesetMatchesSaved: true });
      expect(seen.afterRollback).toEqual(seen.before);
      expect(seen.rollbackAgain?.result).toMatchObject({ status: 'unchanged', restored: [] });
      expect(seen.afterRollbackAgain).toEqual(seen.before);
    });

    it('tracks the port again after the rollback: its new connections fail at the full table', () => {
      expect(seen.servicePortAfterRollback).toMatchObject({ attempted: 5, succeeded: 0, failed: 5 });
    });
  });
});
