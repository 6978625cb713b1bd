import { describe, expect, it } from 'vitest';
import { previewChange } from '../../../functions/core/chatops/change-preview.js';
import { ReportBuilder } from '../../support/report-builder.js';

const notrack = (parameters: Record<string, string>) => ({
  document: 'notrack-ports',
  parameters: { ChangeId: 'inc-1-notrack', Protocol: 'tcp', Persist: 'false', ...parameters },
  persistParameters: null,
});

describe('the exact change an approver sees', () => {
  it('raise-limits: the limit, the hash size and every timeout, before → after', () => {
    const report = ReportBuilder.healthy()
      .table({ max: 65_536, count: 65_536, buckets: 16_384 })
      .sysctl('tcp_timeout_time_wait', 120)
      .build();
    const preview = previewChange(
      {
        document: 'raise-limits',
        parameters: {
          ChangeId: 'c',
          MaxEntries: '262144',
          HashSize: '65536',
          Timeouts: 'tcp_timeout_time_wait=30,udp_timeout=10',
          MemoryBudgetPercent: '5',
          Persist: 'false',
        },
        persistParameters: { Persist: 'true' },
      },
      report,
    );
    expect(preview.sysctls).toEqual([
      { name: 'net.netfilter.nf_conntrack_max', before: '65536', after: '262144', note: null },
      expect.objectContaining({
        name: 'net.netfilter.nf_conntrack_buckets',
        before: '16384',
        after: '65536',
      }),
      { name: 'net.netfilter.nf_conntrack_tcp_timeout_time_wait', before: '120', after: '30', note: null },
      {
        name: 'net.netfilter.nf_conntrack_udp_timeout',
        before: '30',
        after: '10',
        note: 'kernel default assumed',
      },
    ]);
    expect(preview.notes.join(' ')).toContain('/etc/sysctl.d only after verification');
  });

  it('a timeouts-only change does not repeat an unchanged limit', () => {
    const report = ReportBuilder.healthy().table({ max: 262_144, count: 1 }).build();
    const preview = previewChange(
      {
        document: 'raise-limits',
        parameters: { MaxEntries: '262144', HashSize: '', Timeouts: 'generic_timeout=120' },
      },
      report,
    );
    expect(preview.sysctls.map((sysctl) => sysctl.name)).toEqual([
      'net.netfilter.nf_conntrack_generic_timeout',
    ]);
  });

  it('NOTRACK for a served port (iptables): the raw pair, dport in and sport out', () => {
    const report = ReportBuilder.healthy().backend('iptables-legacy').untrackedAccepted(true).build();
    const preview = previewChange(notrack({ Ports: '8080,9000:9010', Direction: 'inbound' }), report);
    expect(preview.rules).toEqual([
      { where: 'raw PREROUTING', rule: '-p tcp -m tcp --dport 8080 -j CT --notrack', conditional: false },
      { where: 'raw OUTPUT', rule: '-p tcp -m tcp --sport 8080 -j CT --notrack', conditional: false },
      {
        where: 'raw PREROUTING',
        rule: '-p tcp -m tcp --dport 9000:9010 -j CT --notrack',
        conditional: false,
      },
      { where: 'raw OUTPUT', rule: '-p tcp -m tcp --sport 9000:9010 -j CT --notrack', conditional: false },
    ]);
  });

  it('NOTRACK for a remote port on nftables, with UNTRACKED accepts first when the filter would drop them', () => {
    const report = ReportBuilder.healthy().backend('nftables').untrackedAccepted(false).build();
    const preview = previewChange(notrack({ Ports: '11211', Direction: 'outbound' }), report);
    expect(preview.rules.map((rule) => rule.rule)).toEqual([
      'tcp sport 11211 ct state untracked accept (replies to ephemeral ports only, never a new SYN)',
      'tcp dport 11211 ct state untracked accept',
      'tcp sport 11211 notrack',
      'tcp dport 11211 notrack',
    ]);
    expect(preview.rules.filter((rule) => rule.conditional)).toHaveLength(2);
    expect(preview.notes.join(' ')).toContain('UNTRACKED accept rules go in first');
  });
});
