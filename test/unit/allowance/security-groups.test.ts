import { describe, expect, it } from 'vitest';
import {
  isUntracked,
  mergeRanges,
  type SecurityGroupRule,
  trackingOf,
} from '../../../functions/core/allowance/security-groups.js';

const rule = (change: Partial<SecurityGroupRule>): SecurityGroupRule => ({
  groupId: 'sg-1',
  egress: false,
  protocol: 'tcp',
  fromPort: null,
  toPort: null,
  cidrIpv4: null,
  cidrIpv6: null,
  ...change,
});

/** The EC2 User Guide's example group: SSH from one address, HTTP from anywhere, ICMP, all outbound. */
const GUIDE_EXAMPLE: SecurityGroupRule[] = [
  rule({ protocol: 'tcp', fromPort: 22, toPort: 22, cidrIpv4: '203.0.113.1/32' }),
  rule({ protocol: 'tcp', fromPort: 80, toPort: 80, cidrIpv4: '0.0.0.0/0' }),
  rule({ protocol: 'tcp', fromPort: 80, toPort: 80, cidrIpv6: '::/0' }),
  rule({ protocol: 'icmp', fromPort: -1, toPort: -1, cidrIpv4: '0.0.0.0/0' }),
  rule({ egress: true, protocol: '-1', fromPort: -1, toPort: -1, cidrIpv4: '0.0.0.0/0' }),
  rule({ egress: true, protocol: '-1', fromPort: -1, toPort: -1, cidrIpv6: '::/0' }),
];

describe('trackingOf', () => {
  it("reads the User Guide's example as the guide does: HTTP untracked, SSH tracked", () => {
    const facts = trackingOf(GUIDE_EXAMPLE);
    expect(isUntracked(facts, 'tcp', 'inbound', 80, 'ipv4')).toBe(true);
    expect(isUntracked(facts, 'tcp', 'inbound', 80, 'ipv6')).toBe(true);
    expect(isUntracked(facts, 'tcp', 'inbound', 22)).toBe(false);
    expect(isUntracked(facts, 'udp', 'inbound', 80)).toBe(false);
    // Outbound flows would need an inbound rule allowing every port from anywhere: not here.
    expect(isUntracked(facts, 'tcp', 'outbound', 443)).toBe(false);
    expect(facts.everythingTracked).toBe(false);
    expect(facts.summary).toContain('inbound tcp/IPv4 on 80');
  });

  it('tracks everything once the outbound all-traffic rule is removed, as the guide says', () => {
    const facts = trackingOf(GUIDE_EXAMPLE.filter((candidate) => !candidate.egress));
    expect(facts.everythingTracked).toBe(true);
    expect(facts.summary).toMatch(/every TCP and UDP flow is tracked/);
  });

  it('needs the responses allowed on every port: an outbound rule for 0-1023 only leaves flows tracked', () => {
    const facts = trackingOf([
      rule({ protocol: 'tcp', fromPort: 443, toPort: 443, cidrIpv4: '0.0.0.0/0' }),
      rule({ egress: true, protocol: 'tcp', fromPort: 0, toPort: 1023, cidrIpv4: '0.0.0.0/0' }),
    ]);
    expect(facts.everythingTracked).toBe(true);
  });

  it('takes the rules of every group together, protocol numbers included, per address family', () => {
    const facts = trackingOf([
      rule({ groupId: 'sg-a', protocol: '17', fromPort: 5000, toPort: 5010, cidrIpv4: '0.0.0.0/0' }),
      rule({
        groupId: 'sg-b',
        egress: true,
        protocol: 'udp',
        fromPort: 0,
        toPort: 65535,
        cidrIpv4: '0.0.0.0/0',
      }),
      rule({
        groupId: 'sg-b',
        egress: true,
        protocol: 'udp',
        fromPort: 0,
        toPort: 65535,
        cidrIpv6: '2001:db8::/32',
      }),
    ]);
    expect(isUntracked(facts, 'udp', 'inbound', 5005, 'ipv4')).toBe(true);
    expect(isUntracked(facts, 'udp', 'inbound', 5005, 'ipv6')).toBe(false);
    expect(isUntracked(facts, 'tcp', 'inbound', 5005)).toBe(false);
  });

  it('merges overlapping and adjacent port ranges', () => {
    expect(
      mergeRanges([
        { from: 80, to: 80 },
        { from: 8000, to: 8100 },
        { from: 81, to: 90 },
        { from: 8050, to: 9000 },
      ]),
    ).toEqual([
      { from: 80, to: 90 },
      { from: 8000, to: 9000 },
    ]);
  });
});
