/**
 * Which flows EC2 tracks at all. From the EC2 User Guide, "Amazon EC2 security group connection
 * tracking" (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/security-group-connection-tracking.html):
 *
 * - "If a security group rule permits TCP or UDP flows for all traffic (0.0.0.0/0 or ::/0) and
 *   there is a corresponding rule in the other direction that permits all response traffic
 *   (0.0.0.0/0 or ::/0) for all ports (0-65535), then that flow of traffic is not tracked."
 * - ICMP is always tracked; so are connections through Gateway and Network Load Balancers, Global
 *   Accelerator, NAT gateways, Network Firewall endpoints and transit gateway attachments, whatever
 *   the rules say.
 * - An untracked flow is cut at once when the rule that allows it is removed or changed.
 *
 * The rules of every security group of an ENI count together. Pure: rules in, facts out.
 */

export type FlowProtocol = 'tcp' | 'udp';
export type FlowDirection = 'inbound' | 'outbound';
export type AddressFamily = 'ipv4' | 'ipv6';

/** One security group rule, as DescribeSecurityGroupRules returns it (only what tracking depends on). */
export interface SecurityGroupRule {
  readonly groupId: string;
  readonly egress: boolean;
  /** `-1` (all), `tcp`, `udp`, `icmp`, `icmpv6` or a protocol number as a string. */
  readonly protocol: string;
  /** -1 or absent when the rule covers every port. */
  readonly fromPort: number | null;
  readonly toPort: number | null;
  readonly cidrIpv4: string | null;
  readonly cidrIpv6: string | null;
}

export interface PortRange {
  readonly from: number;
  readonly to: number;
}

/** Flows EC2 does not track on one ENI: per protocol, direction (who opens) and address family. */
export interface UntrackedFlows {
  readonly protocol: FlowProtocol;
  /** `inbound`: flows opened towards the instance; `outbound`: flows the instance opens. */
  readonly direction: FlowDirection;
  readonly family: AddressFamily;
  /** The ports (the instance's for inbound, the remote service's for outbound) whose flows are untracked. */
  readonly ports: readonly PortRange[];
}

export interface TrackingFacts {
  readonly untracked: readonly UntrackedFlows[];
  /** True when no TCP or UDP flow at all is exempt: every flow counts against the allowance. */
  readonly everythingTracked: boolean;
  /** Plain-words summary for the plan and the postmortem. */
  readonly summary: string;
}

const PROTOCOL_NUMBERS: Readonly<Record<string, FlowProtocol>> = { '6': 'tcp', '17': 'udp' };
const ANY_IPV4 = '0.0.0.0/0';
const ANY_IPV6 = '::/0';

function protocolCovers(rule: SecurityGroupRule, protocol: FlowProtocol): boolean {
  const value = rule.protocol.toLowerCase();
  return value === '-1' || value === 'all' || value === protocol || PROTOCOL_NUMBERS[value] === protocol;
}

function portsOf(rule: SecurityGroupRule): PortRange {
  // Protocol -1 has no ports: it allows every one. So does a tcp/udp rule with -1 or no ports.
  if (rule.protocol === '-1' || rule.fromPort === null || rule.fromPort < 0) return { from: 0, to: 65535 };
  const to = rule.toPort === null || rule.toPort < 0 ? 65535 : rule.toPort;
  return { from: Math.max(0, rule.fromPort), to: Math.min(65535, to) };
}

function fromAnywhere(rule: SecurityGroupRule, family: AddressFamily): boolean {
  return family === 'ipv4' ? rule.cidrIpv4 === ANY_IPV4 : rule.cidrIpv6 === ANY_IPV6;
}

/** Merges overlapping and adjacent ranges, sorted. */
export function mergeRanges(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((a, b) => a.from - b.from || a.to - b.to);
  const merged: PortRange[] = [];
  for (const range of sorted) {
    const last = merged[merged.length - 1];
    if (last !== undefined && range.from <= last.to + 1) {
      merged[merged.length - 1] = { from: last.from, to: Math.max(last.to, range.to) };
    } else {
      merged.push({ ...range });
    }
  }
  return merged;
}

/**
 * The flows of one ENI that EC2 does not track, from the rules of all its security groups: a flow
 * in one direction is untracked when a rule of that direction allows its protocol and port from or
 * to anywhere, and a rule of the other direction allows that protocol on every port to or from
 * anywhere (the responses), in the same address family.
 */
export function trackingOf(rules: readonly SecurityGroupRule[]): TrackingFacts {
  const untracked: UntrackedFlows[] = [];
  for (const protocol of ['tcp', 'udp'] as const) {
    for (const family of ['ipv4', 'ipv6'] as const) {
      for (const direction of ['inbound', 'outbound'] as const) {
        const opening = rules.filter(
          (rule) =>
            rule.egress === (direction === 'outbound') &&
            protocolCovers(rule, protocol) &&
            fromAnywhere(rule, family),
        );
        const responsesAllowed = rules.some((rule) => {
          if (rule.egress !== (direction === 'inbound') || !protocolCovers(rule, protocol)) return false;
          if (!fromAnywhere(rule, family)) return false;
          const ports = portsOf(rule);
          return ports.from === 0 && ports.to === 65535;
        });
        if (opening.length === 0 || !responsesAllowed) continue;
        untracked.push({ protocol, direction, family, ports: mergeRanges(opening.map(portsOf)) });
      }
    }
  }
  return { untracked, everythingTracked: untracked.length === 0, summary: summarize(untracked) };
}

export function describeRanges(ranges: readonly PortRange[]): string {
  return ranges
    .map((range) =>
      range.from === 0 && range.to === 65535
        ? 'every port'
        : range.from === range.to
          ? String(range.from)
          : `${range.from}-${range.to}`,
    )
    .join(', ');
}

function summarize(untracked: readonly UntrackedFlows[]): string {
  if (untracked.length === 0) {
    return 'every TCP and UDP flow is tracked: no rule pair allows all traffic from anywhere one way and every port back';
  }
  return `untracked (not counted against the allowance): ${untracked
    .map(
      (flows) =>
        `${flows.direction} ${flows.protocol}/${flows.family === 'ipv4' ? 'IPv4' : 'IPv6'} on ${describeRanges(flows.ports)}`,
    )
    .join('; ')}; everything else, and all ICMP, is tracked`;
}

/** Whether a flow of this protocol, direction and port is untracked on the ENI (IPv4 or IPv6). */
export function isUntracked(
  facts: TrackingFacts,
  protocol: FlowProtocol,
  direction: FlowDirection,
  port: number,
  family?: AddressFamily,
): boolean {
  return facts.untracked.some(
    (flows) =>
      flows.protocol === protocol &&
      flows.direction === direction &&
      (family === undefined || flows.family === family) &&
      flows.ports.some((range) => port >= range.from && port <= range.to),
  );
}
