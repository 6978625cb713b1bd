import { describe, expect, it } from 'vitest';
import { assertDocumentParameters } from '../../../functions/core/plan/parameters.js';
import { planRemediation } from '../../../functions/core/plan/plan.js';
import { type PolicyOverrides, resolvePolicy } from '../../../functions/core/plan/policy.js';
import type { Alert, Plan } from '../../../functions/core/plan/types.js';
import { ReportBuilder } from '../../support/report-builder.js';

const GIB = 1024 ** 3;
const tableFullAlert: Alert = { kind: 'table-full', netns: '4026532177', dropLines: 10, suppressed: 1367 };

/** A table full of ESTABLISHED entries with drops rising: nothing but a raise applies. */
const fullTable = () =>
  ReportBuilder.healthy()
    .table({ max: 262_144, count: 262_144, buckets: 262_144 })
    .states({ 'tcp ESTABLISHED': 262_144 })
    .drops(4_000);

/**
 * A full table whose churn sits on one port, with TIME_WAIT already shortened by the operators,
 * so that NOTRACK (not timeouts) is the remaining narrow fix.
 */
const churnOnLocalPort = (port = 8080) =>
  ReportBuilder.healthy()
    .table({ max: 262_144, count: 262_144 })
    .sysctl('tcp_timeout_time_wait', 30)
    .states({ 'tcp TIME_WAIT': 200_000, 'tcp ESTABLISHED': 62_144 })
    .localPort('tcp', port, 210_000, 198_000)
    .localPort('tcp', 22, 40, 0)
    .listener('tcp', port, 'nginx')
    .drops(2_500);

interface Case {
  readonly rule: string;
  readonly report: ReportBuilder;
  readonly alert?: Partial<Alert>;
  readonly policy?: PolicyOverrides;
  readonly changeIdPrefix?: string;
  readonly check: (plan: Plan) => void;
}

const kinds = (plan: Plan) => plan.actions.map((action) => action.kind);
const action = (plan: Plan, id: string) => {
  const found = plan.actions.find((candidate) => candidate.id === id);
  if (!found) throw new Error(`no action ${id} in plan: ${plan.actions.map((a) => a.id).join(', ')}`);
  return found;
};
const refused = (plan: Plan, considered: RegExp) =>
  plan.refusals.filter((refusal) => considered.test(refusal.considered)).map((refusal) => refusal.reason);
const scopes = (plan: Plan) => plan.recommendations.map((recommendation) => recommendation.scope);

const cases: Case[] = [
  {
    rule: 'confirm: a rising drop counter confirms a table-full line',
    report: fullTable(),
    check: (plan) => {
      expect(plan.classification).toBe('table-full');
      expect(plan.confirmed).toBe(true);
      expect(plan.confirmation.join(' ')).toContain('4000 packets dropped');
    },
  },
  {
    rule: 'confirm: a count at the near-full threshold confirms even with a flat drop counter',
    report: fullTable().table({ max: 262_144, count: 240_000 }).drops(0),
    check: (plan) => {
      expect(plan.classification).toBe('table-full');
      expect(plan.confirmation.join(' ')).toMatch(/at 92% of its limit/);
    },
  },
  {
    rule: 'confirm: a stale line (flat counter, table far from full) ends as not confirmed with no actions',
    report: ReportBuilder.healthy().table({ max: 262_144, count: 100_000 }).drops(0),
    check: (plan) => {
      expect(plan.classification).toBe('not-confirmed');
      expect(plan.confirmed).toBe(false);
      expect(plan.actions).toEqual([]);
      expect(plan.summary).toMatch(/Nothing was changed/);
    },
  },
  {
    rule: 'confirm: a line naming another namespace is not confirmed by this one’s counters',
    report: fullTable(),
    alert: { netns: '4026539999' },
    check: (plan) => {
      expect(plan.classification).toBe('not-confirmed');
      expect(plan.actions).toEqual([]);
      expect(plan.confirmation[0]).toContain('4026539999');
    },
  },
  {
    rule: 'confirm: a forged line on a host without nf_conntrack is not confirmed',
    report: ReportBuilder.healthy().notLoaded(),
    check: (plan) => {
      expect(plan.classification).toBe('not-confirmed');
      expect(plan.confirmation[0]).toMatch(/not loaded/);
    },
  },
  {
    rule: 'ec2 allowance: ENA exceeded rising with a quiet kernel table → no host change; without EC2 facts no ENI change either',
    report: ReportBuilder.healthy().table({ max: 262_144, count: 30_000 }).enaExceeded('ens5', 1_200),
    check: (plan) => {
      expect(plan.classification).toBe('ec2-allowance');
      expect(plan.confirmed).toBe(true);
      expect(plan.actions).toEqual([]);
      expect(plan.tables).toMatchObject({ kernel: 'not-full', ec2: 'exhausted' });
      expect(plan.tables?.summary).toMatch(/^EC2's allowance: /);
      expect(scopes(plan).filter((scope) => scope === 'ec2')).toHaveLength(2);
      expect(plan.recommendations.map((r) => r.snippet ?? '').join('\n')).toContain('TcpEstablishedTimeout');
      expect(refused(plan, /raise/)).toHaveLength(1);
      expect(refused(plan, /NOTRACK/)[0]).toMatch(/security groups/);
      expect(refused(plan, /ENI idle tracking timeouts/)[0]).toMatch(/not described/);
    },
  },
  {
    rule: 'ec2 allowance and a full table at once: fix the table, and say EC2 drops too',
    report: fullTable().enaExceeded('ens5', 500),
    check: (plan) => {
      expect(plan.classification).toBe('table-full');
      expect(kinds(plan)).toContain('raise-limits');
      expect(plan.recommendations.some((r) => r.scope === 'ec2' && /exhausted too/.test(r.title))).toBe(true);
      expect(plan.tables).toMatchObject({ kernel: 'full', ec2: 'exhausted' });
      expect(plan.tables?.summary).toMatch(/^Both tables: /);
    },
  },
  {
    rule: 'insert races: insert_failed rising without a full table → no raise, DNS advice',
    report: ReportBuilder.healthy()
      .table({ max: 262_144, count: 40_000 })
      .drops(300)
      .insertFailed(300)
      .remotePort('udp', 53, 9_000, 9_000),
    check: (plan) => {
      expect(plan.classification).toBe('insert-races');
      expect(plan.actions).toEqual([]);
      expect(refused(plan, /raise nf_conntrack_max/)[0]).toMatch(/not a lack of space/);
      expect(plan.recommendations[0]?.snippet).toContain('single-request-reopen');
    },
  },
  {
    rule: 'hash chains too long: chaintoolong rising → resize the hash table, keep the limit',
    report: ReportBuilder.healthy()
      .table({ max: 262_144, count: 120_000, buckets: 16_384 })
      .stat('chaintoolong', 0, 80)
      .insertFailed(80)
      .drops(80),
    check: (plan) => {
      expect(plan.classification).toBe('hash-chains-too-long');
      const resize = action(plan, 'hash-size');
      expect(resize.parameters.MaxEntries).toBe('262144');
      expect(resize.parameters.HashSize).toBe('262144');
      expect(resize.memoryCostBytes).toBe((262_144 - 16_384) * 8);
    },
  },
  {
    rule: 'hash chains too long on a host over the memory budget: the resize is still planned (it keeps the limit, so it adds no entries)',
    report: ReportBuilder.healthy()
      .host({ memTotalBytes: 1 * GIB })
      .table({ max: 262_144, count: 120_000, buckets: 16_384 })
      .stat('chaintoolong', 0, 80)
      .insertFailed(80)
      .drops(80),
    check: (plan) => {
      expect(plan.classification).toBe('hash-chains-too-long');
      expect(kinds(plan)).toEqual(['raise-limits']);
      const resize = action(plan, 'hash-size');
      expect(resize.parameters).toMatchObject({ MaxEntries: '262144', HashSize: '262144' });
      expect(refused(plan, /resize the hash table/)).toEqual([]);
    },
  },
  {
    rule: 'expectation table full: no raise of nf_conntrack_max, helper advice instead',
    report: ReportBuilder.healthy()
      .sysctl('expect_max', 4_096)
      .stat('expect_create', 90_000, 90_500)
      .stat('expect_delete', 86_000, 86_400),
    alert: { kind: 'expect-table-full' },
    check: (plan) => {
      expect(plan.classification).toBe('expect-table-full');
      expect(plan.actions).toEqual([]);
      expect(refused(plan, /raise nf_conntrack_max/)[0]).toMatch(/nf_conntrack_expect_max/);
      const helpers = plan.recommendations.find((r) => r.scope === 'conntrack-helpers');
      expect(helpers?.snippet).toContain('nf_conntrack_expect_max = 16384');
    },
  },
  {
    rule: 'expectation table: a line the counters cannot confirm is not confirmed',
    report: ReportBuilder.healthy(),
    alert: { kind: 'expect-table-full' },
    check: (plan) => {
      expect(plan.classification).toBe('not-confirmed');
      expect(plan.confirmation.join(' ')).toMatch(/no expectation counters/);
    },
  },
  {
    rule: 'table full: raise to twice the observed count within the memory budget, buckets untouched at ratio 2',
    report: fullTable(),
    check: (plan) => {
      const raise = action(plan, 'limits');
      expect(raise.document).toBe('raise-limits');
      expect(raise.parameters).toMatchObject({
        MaxEntries: '524288',
        HashSize: '',
        Timeouts: '',
        MemoryBudgetPercent: '5',
        Persist: 'false',
      });
      // 262,144 more entries at 256 B slab + 128 B extension.
      expect(raise.memoryCostBytes).toBe(262_144 * 384);
      expect(raise.risk).toBe('low');
      expect(raise.mode).toBe('auto');
      expect(raise.persistParameters?.Persist).toBe('true');
    },
  },
  {
    rule: 'table full: the memory budget caps the raise on a small host',
    report: fullTable()
      .host({ memTotalBytes: 512 * 1024 ** 2, cpuCount: 1 })
      .table({ max: 65_536, count: 65_536, buckets: 65_536 }),
    check: (plan) => {
      // 5% of 512 MiB / 392 B per entry = 68,478 entries, rounded down to 67,584.
      expect(action(plan, 'limits').parameters.MaxEntries).toBe('67584');
      expect(plan.sizing?.limitedBy).toBe('memory-budget');
    },
  },
  {
    rule: 'table full: no raise when the budget is already spent; the refusal says why',
    report: fullTable().host({ memTotalBytes: 1 * GIB }),
    check: (plan) => {
      expect(kinds(plan)).not.toContain('raise-limits');
      expect(refused(plan, /raise nf_conntrack_max/)[0]).toMatch(/memory budget is spent/);
    },
  },
  {
    rule: 'table full, budget spent: no raise, but shorter timeouts at the current limit (they add no entries) and the launch template',
    report: ReportBuilder.healthy()
      .host({ memTotalBytes: 1 * GIB })
      .table({ max: 262_144, count: 262_144 })
      .states({ 'tcp TIME_WAIT': 230_000, 'tcp ESTABLISHED': 32_144 })
      .drops(50),
    check: (plan) => {
      expect(kinds(plan)).toEqual(['shorten-timeouts']);
      const timeouts = action(plan, 'timeouts');
      expect(timeouts.parameters).toMatchObject({
        MaxEntries: '262144',
        Timeouts: 'tcp_timeout_time_wait=30',
      });
      expect(timeouts.requires).toEqual([]);
      expect(refused(plan, /raise nf_conntrack_max/)[0]).toMatch(/memory budget is spent/);
      expect(refused(plan, /shorten timeouts/)).toEqual([]);
      const template = plan.recommendations.find((r) => r.scope === 'launch-template');
      expect(template?.snippet).toContain('nf_conntrack_tcp_timeout_time_wait = 30');
      expect(template?.detail).toMatch(/larger instance type/);
    },
  },
  {
    rule: 'table full: the hash table is resized 1:1 when the new limit would put more than 4 entries per bucket',
    report: fullTable().table({ max: 262_144, count: 262_144, buckets: 16_384 }),
    check: (plan) => {
      const raise = action(plan, 'limits');
      expect(raise.parameters.HashSize).toBe('524288');
      expect(raise.unsafeIf.join(' ')).toMatch(/rehashes/);
    },
  },
  {
    rule: 'table full: kube-proxy’s per-CPU floor lifts a tiny limit, bounded by the raise factor',
    report: fullTable().host({ cpuCount: 8 }).table({ max: 16_384, count: 16_384, buckets: 16_384 }),
    check: (plan) => {
      expect(plan.sizing?.kubeProxyFloor).toBe(262_144);
      expect(action(plan, 'limits').parameters.MaxEntries).toBe(String(16_384 * 4));
      expect(plan.sizing?.limitedBy).toBe('raise-factor');
    },
  },
  {
    rule: 'timeouts preferred: a table full of TIME_WAIT gets a shorter TIME_WAIT timeout, and NOTRACK is not needed',
    report: ReportBuilder.healthy()
      .table({ max: 262_144, count: 262_144 })
      .states({ 'tcp TIME_WAIT': 230_000, 'tcp ESTABLISHED': 32_144 })
      .localPort('tcp', 8080, 240_000, 229_000)
      .listener('tcp', 8080)
      .drops(900),
    check: (plan) => {
      const timeouts = action(plan, 'timeouts');
      expect(timeouts.kind).toBe('shorten-timeouts');
      expect(timeouts.parameters.Timeouts).toBe('tcp_timeout_time_wait=30');
      expect(timeouts.parameters.MaxEntries).toBe(action(plan, 'limits').parameters.MaxEntries);
      expect(timeouts.requires).toEqual(['limits']);
      expect(timeouts.mode).toBe('approve');
      expect(kinds(plan)).not.toContain('notrack-ports');
      expect(refused(plan, /NOTRACK tcp\/8080/)[0]).toMatch(/not needed/);
    },
  },
  {
    rule: 'timeouts: idle ESTABLISHED entries under the 5-day default get kube-proxy’s one day, at medium risk',
    report: fullTable(),
    check: (plan) => {
      const timeouts = action(plan, 'timeouts');
      expect(timeouts.parameters.Timeouts).toBe('tcp_timeout_established=86400');
      expect(timeouts.risk).toBe('medium');
      expect(timeouts.expectedEffect).toMatch(/keep their old timer/);
    },
  },
  {
    rule: 'timeouts: UDP timeouts are not shortened on a host that NATs',
    report: ReportBuilder.healthy()
      .table({ max: 262_144, count: 262_144 })
      .states({ 'udp UNREPLIED': 200_000, 'tcp ESTABLISHED': 62_144 })
      .nat({ ports: [{ protocol: 'tcp', port: 80 }] })
      .drops(100),
    check: (plan) => {
      expect(kinds(plan)).not.toContain('shorten-timeouts');
      // Without NAT the same table gets udp_timeout=10: see the next case.
    },
  },
  {
    rule: 'timeouts: a NATed port range alone also counts as NAT for the UDP timeout',
    report: ReportBuilder.healthy()
      .table({ max: 262_144, count: 262_144 })
      .states({ 'udp UNREPLIED': 200_000, 'tcp ESTABLISHED': 62_144 })
      .natRange('udp', 30000, 32767)
      .drops(100),
    check: (plan) => {
      expect(kinds(plan)).not.toContain('shorten-timeouts');
    },
  },
  {
    rule: 'timeouts: one-shot UDP dominating on a host without NAT gets udp_timeout=10',
    report: ReportBuilder.healthy()
      .table({ max: 262_144, count: 262_144 })
      .states({ 'udp UNREPLIED': 200_000, 'tcp ESTABLISHED': 62_144 })
      .drops(100),
    check: (plan) => {
      expect(action(plan, 'timeouts').parameters.Timeouts).toBe('udp_timeout=10');
    },
  },
  {
    rule: 'NOTRACK inbound: the local service port holding the churn, paired rules described, approval needed',
    report: churnOnLocalPort(),
    check: (plan) => {
      const notrack = action(plan, 'notrack-tcp-inbound');
      expect(notrack.parameters).toMatchObject({ Ports: '8080', Protocol: 'tcp', Direction: 'inbound' });
      expect(notrack.mode).toBe('approve');
      expect(notrack.reason).toContain('raw PREROUTING --dport 8080 and raw OUTPUT --sport 8080');
      expect(notrack.risk).toBe('medium');
      expect(kinds(plan)).toEqual(['raise-limits', 'notrack-ports']);
    },
  },
  {
    rule: 'NOTRACK outbound: a remote cache port this host calls (seed 004) is exempted in the client direction',
    report: ReportBuilder.healthy()
      .table({ max: 262_144, count: 262_144 })
      .sysctl('tcp_timeout_time_wait', 30)
      .states({ 'tcp TIME_WAIT': 190_000, 'tcp ESTABLISHED': 72_144 })
      .remotePort('tcp', 11211, 200_000, 190_000)
      .drops(700),
    check: (plan) => {
      const notrack = action(plan, 'notrack-tcp-outbound');
      expect(notrack.parameters).toMatchObject({ Ports: '11211', Direction: 'outbound' });
      expect(notrack.reason).toContain('raw OUTPUT --dport 11211 and raw PREROUTING --sport 11211');
      expect(plan.recommendations.some((r) => r.title === 'Reuse connections to port 11211')).toBe(true);
    },
  },
  {
    rule: 'NOTRACK: the narrowest set — two ports when one is not enough, never the small third',
    report: ReportBuilder.healthy()
      .table({ max: 262_144, count: 262_144 })
      .sysctl('tcp_timeout_time_wait', 30)
      .states({ 'tcp TIME_WAIT': 220_000, 'tcp ESTABLISHED': 42_144 })
      .localPort('tcp', 8080, 100_000, 98_000)
      .localPort('tcp', 9090, 90_000, 88_000)
      .localPort('tcp', 7070, 30_000, 29_000)
      .listener('tcp', 8080)
      .listener('tcp', 9090)
      .listener('tcp', 7070)
      .drops(100),
    check: (plan) => {
      expect(action(plan, 'notrack-tcp-inbound').parameters.Ports).toBe('8080,9090');
    },
  },
  {
    rule: 'NOTRACK pre-flight: a NATed port is refused',
    report: churnOnLocalPort().nat({ ports: [{ protocol: 'tcp', port: 8080 }] }),
    check: (plan) => {
      expect(kinds(plan)).not.toContain('notrack-ports');
      expect(refused(plan, /tcp\/8080/)[0]).toMatch(/NAT rule matches this port/);
    },
  },
  {
    rule: 'NOTRACK pre-flight: a port inside a NATed port range (a NodePort range) is refused',
    report: churnOnLocalPort(30080).natRange('tcp', 30000, 32767),
    check: (plan) => {
      expect(kinds(plan)).not.toContain('notrack-ports');
      expect(refused(plan, /tcp\/30080/)[0]).toMatch(/port range 30000:32767/);
    },
  },
  {
    rule: 'NOTRACK: UNTRACKED accepted only for other ports → high risk; accepted for this port → medium',
    report: churnOnLocalPort().untracked('port-scoped', 'port-scoped', [{ protocol: 'tcp', port: 9999 }]),
    check: (plan) => {
      expect(action(plan, 'notrack-tcp-inbound').risk).toBe('high');
      const scoped = planRemediation({
        before: churnOnLocalPort()
          .untracked('port-scoped', 'not-needed', [{ protocol: 'tcp', port: 8080 }])
          .build(),
        alert: tableFullAlert,
        policy: resolvePolicy(),
      });
      expect(action(scoped, 'notrack-tcp-inbound').risk).toBe('medium');
    },
  },
  {
    rule: 'NOTRACK: on a host that forwards traffic the hazard is named first',
    report: churnOnLocalPort().flows({
      inboundToListener: 200_000,
      inboundOther: 0,
      outbound: 12_144,
      forwarded: 50_000,
    }),
    check: (plan) => {
      expect(action(plan, 'notrack-tcp-inbound').unsafeIf[0]).toMatch(/this host routes traffic: 19%/);
    },
  },
  {
    rule: 'NOTRACK pre-flight: a missing listener is refused, noting a truncated listener list',
    report: ReportBuilder.healthy()
      .table({ max: 262_144, count: 262_144 })
      .sysctl('tcp_timeout_time_wait', 30)
      .states({ 'tcp TIME_WAIT': 200_000, 'tcp ESTABLISHED': 62_144 })
      .localPort('tcp', 8080, 210_000, 198_000)
      .truncated('listener')
      .drops(10),
    check: (plan) => {
      expect(refused(plan, /tcp\/8080/)[0]).toMatch(/listener list was truncated/);
    },
  },
  {
    rule: 'NOTRACK pre-flight: a NAT rule matching every port rules NOTRACK out',
    report: churnOnLocalPort().nat({ allPorts: true }),
    check: (plan) => {
      expect(kinds(plan)).toEqual(['raise-limits']);
      expect(refused(plan, /^NOTRACK$/)[0]).toMatch(/every port/);
    },
  },
  {
    rule: 'NOTRACK pre-flight: Docker-managed NAT rules NOTRACK out',
    report: churnOnLocalPort().nat({ owners: ['docker'] }),
    check: (plan) => {
      expect(kinds(plan)).not.toContain('notrack-ports');
      expect(refused(plan, /^NOTRACK$/)[0]).toMatch(/docker/);
    },
  },
  {
    rule: 'NOTRACK pre-flight: legacy and nft rules both active → the firewall is not touched',
    report: churnOnLocalPort().backend('legacy-and-nft'),
    check: (plan) => {
      expect(kinds(plan)).not.toContain('notrack-ports');
      expect(refused(plan, /^NOTRACK$/)[0]).toMatch(/iptables-legacy and nftables/);
    },
  },
  {
    rule: 'NOTRACK pre-flight: no ruleset though iptables is installed → refused, saying so',
    report: churnOnLocalPort().backend('none'),
    check: (plan) => {
      expect(kinds(plan)).not.toContain('notrack-ports');
      expect(refused(plan, /^NOTRACK$/)[0]).toMatch(
        /no firewall ruleset is loaded on this host \(iptables is installed\)/,
      );
    },
  },
  {
    rule: 'NOTRACK pre-flight: no ruleset and no iptables → refused, saying so',
    report: churnOnLocalPort().backend('none').iptablesVersion(null),
    check: (plan) => {
      expect(kinds(plan)).not.toContain('notrack-ports');
      expect(refused(plan, /^NOTRACK$/)[0]).toMatch(/no firewall ruleset and no iptables were found/);
    },
  },
  {
    rule: 'NOTRACK pre-flight: a protected port (22 by default) is never chosen',
    report: churnOnLocalPort(22),
    check: (plan) => {
      expect(kinds(plan)).not.toContain('notrack-ports');
      expect(refused(plan, /tcp\/22/)[0]).toMatch(/protected by policy: SSH/);
    },
  },
  {
    rule: 'NOTRACK pre-flight: an inbound port nothing listens on is refused',
    report: ReportBuilder.healthy()
      .table({ max: 262_144, count: 262_144 })
      .sysctl('tcp_timeout_time_wait', 30)
      .states({ 'tcp TIME_WAIT': 200_000, 'tcp ESTABLISHED': 62_144 })
      .localPort('tcp', 8080, 210_000, 198_000)
      .drops(10),
    check: (plan) => {
      expect(refused(plan, /tcp\/8080/)[0]).toMatch(/no local socket listens/);
    },
  },
  {
    rule: 'NOTRACK: churn spread over many ports → no narrow set, refused',
    report: ReportBuilder.healthy()
      .table({ max: 262_144, count: 262_144 })
      .sysctl('tcp_timeout_time_wait', 30)
      .states({ 'tcp TIME_WAIT': 200_000, 'tcp ESTABLISHED': 62_144 })
      .localPort('tcp', 8001, 20_000, 19_000)
      .localPort('tcp', 8002, 20_000, 19_000)
      .localPort('tcp', 8003, 20_000, 19_000)
      .localPort('tcp', 8004, 20_000, 19_000)
      .localPort('tcp', 8005, 20_000, 19_000)
      .listener('tcp', 8001)
      .listener('tcp', 8002)
      .listener('tcp', 8003)
      .listener('tcp', 8004)
      .listener('tcp', 8005)
      .drops(10),
    check: (plan) => {
      expect(kinds(plan)).not.toContain('notrack-ports');
      expect(refused(plan, /^NOTRACK$/)[0]).toMatch(/no narrow set/);
    },
  },
  {
    rule: 'NOTRACK: when the filter table does not accept UNTRACKED, the risk is high and the hazard is named',
    report: churnOnLocalPort().untrackedAccepted(false),
    check: (plan) => {
      const notrack = action(plan, 'notrack-tcp-inbound');
      expect(notrack.risk).toBe('high');
      expect(notrack.unsafeIf[0]).toMatch(/UNTRACKED/);
    },
  },
  {
    rule: 'durable fix: kube-proxy owns the sysctls → KubeProxyConfiguration with maxPerCore',
    report: fullTable().sysctlOwner('kube-proxy', 'kube-proxy v1.31 running as pid 812'),
    check: (plan) => {
      const kube = plan.recommendations.find((r) => r.scope === 'kube-proxy');
      // 524,288 / 4 CPUs.
      expect(kube?.snippet).toContain('maxPerCore: 131072');
      expect(kube?.snippet).toContain('tcpEstablishedTimeout: 86400s');
    },
  },
  {
    rule: 'durable fix: always the launch template / sysctl.d, with the planned values',
    report: fullTable(),
    check: (plan) => {
      const template = plan.recommendations.find((r) => r.scope === 'launch-template');
      expect(template?.snippet).toContain('net.netfilter.nf_conntrack_max = 524288');
      expect(template?.snippet).toContain('/etc/modules-load.d/nf_conntrack.conf');
    },
  },
  {
    rule: 'policy: modes come from the policy, and persist=never leaves no persist step',
    report: churnOnLocalPort(),
    policy: { modes: { 'raise-limits': 'dry-run', 'notrack-ports': 'auto' }, persist: 'never' },
    check: (plan) => {
      expect(plan.actions.map((a) => [a.kind, a.mode])).toEqual([
        ['raise-limits', 'dry-run'],
        ['notrack-ports', 'auto'],
      ]);
      expect(plan.actions.every((a) => a.persistParameters === null)).toBe(true);
    },
  },
  {
    rule: 'change ids: derived from the incident id, one per action',
    report: churnOnLocalPort(),
    changeIdPrefix: 'inc-2026-11-21-abc',
    check: (plan) => {
      expect(plan.actions.map((a) => a.parameters.ChangeId)).toEqual([
        'inc-2026-11-21-abc-limits',
        'inc-2026-11-21-abc-notrack-tcp-inbound',
      ]);
    },
  },
];

describe('planRemediation', () => {
  it.each(cases)('$rule', ({ report, alert, policy, changeIdPrefix, check }) => {
    const plan = planRemediation({
      before: report.build(),
      alert: { ...tableFullAlert, ...alert },
      policy: resolvePolicy(policy),
      ...(changeIdPrefix ? { changeIdPrefix } : {}),
    });
    check(plan);
    // Every emitted action must be something its document accepts, whatever the rule.
    for (const planned of plan.actions) {
      expect(() => assertDocumentParameters(planned.document, planned.parameters)).not.toThrow();
      expect(planned.reason.length).toBeGreaterThan(20);
      expect(planned.unsafeIf.length).toBeGreaterThan(0);
    }
  });

  it('is deterministic: the same report gives the same plan, change ids included', () => {
    const input = { before: churnOnLocalPort().build(), alert: tableFullAlert, policy: resolvePolicy() };
    expect(planRemediation(input)).toEqual(planRemediation(input));
  });

  it('puts no action in a plan that is not confirmed, even when a rule would have planned one', () => {
    const plan = planRemediation({
      before: churnOnLocalPort().build(),
      alert: { ...tableFullAlert, netns: '1' },
      policy: resolvePolicy(),
    });
    expect(plan.actions).toEqual([]);
  });

  it('rejects a change id prefix that cannot form a valid ChangeId', () => {
    expect(() =>
      planRemediation({
        before: fullTable().build(),
        alert: tableFullAlert,
        policy: resolvePolicy(),
        changeIdPrefix: '---',
      }),
    ).toThrow(/unusable change id prefix/);
  });
});
