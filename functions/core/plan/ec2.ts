import { type AllowanceFinding, allowanceFindings } from '../allowance/counters.js';
import {
  chooseEniTimeouts,
  EC2_FIELD_NAMES,
  ENI_TIMEOUT_FIELDS,
  type EniTimeouts,
  type GuestIdleLimits,
} from '../allowance/eni-timeouts.js';
import { eniOfInterface, type NetworkFacts, type NetworkInterfaceFacts } from '../allowance/network.js';
import { describeRanges, isUntracked } from '../allowance/security-groups.js';
import type { DiagnosticsReport } from '../diagnostics/report.js';
import type { Policy } from './policy.js';
import type { Signals } from './signals.js';
import type { Recommendation, Refusal, RiskLevel } from './types.js';

/**
 * The EC2 half of the diagnosis: whether the instance's own connection-tracking allowance (enforced
 * by EC2 outside the guest) is exhausted, which ENIs, what they track and with which timeouts, and
 * the one change the responder may make there: shorter idle timeouts on those ENIs (never a
 * security group; those are recommendations for a person).
 */

export type KernelTableState = 'full' | 'not-full' | 'not-loaded';
export type Ec2AllowanceState = 'exhausted' | 'low' | 'not-exhausted' | 'no-counters';

/** Which of the two connection-tracking tables is in trouble: the kernel's, EC2's, or both. */
export interface TablesDiagnosis {
  readonly kernel: KernelTableState;
  readonly ec2: Ec2AllowanceState;
  /** One sentence: "kernel table", "EC2 allowance", "both", or neither, with the numbers. */
  readonly summary: string;
}

/** What the plan says about one guest interface that has the allowance counters. */
export interface Ec2InterfaceView {
  readonly interface: string;
  readonly mac: string | null;
  /** The finding when this interface's allowance is exhausted or low; null when it is quiet. */
  readonly finding: string | null;
  readonly networkInterfaceId: string | null;
  /** The ENI's security groups (their rules decide which flows EC2 tracks); null when not described. */
  readonly securityGroups?: readonly string[] | null;
  readonly timeouts: Readonly<Record<keyof EniTimeouts, { value: number | null; source: string }>> | null;
  /** Which flows EC2 tracks on the ENI, in plain words; null when not known. */
  readonly tracking: string | null;
}

export interface Ec2Diagnosis {
  readonly interfaces: readonly Ec2InterfaceView[];
  readonly instanceType: string | null;
  /** What could not be known, in plain words. */
  readonly notes: readonly string[];
}

/** An eni-timeouts action before the planner gives it a ChangeId and a mode. */
export interface EniActionDraft {
  readonly id: string;
  readonly parameters: Record<string, string>;
  readonly title: string;
  readonly reason: string;
  readonly expectedEffect: string;
  readonly risk: RiskLevel;
  readonly unsafeIf: readonly string[];
  readonly eni: {
    readonly networkInterfaceId: string;
    readonly interface: string;
    readonly macAddress: string;
    readonly from: EniTimeouts;
    readonly to: EniTimeouts;
  };
}

export interface Ec2Plan {
  readonly findings: readonly AllowanceFinding[];
  readonly confirmation: readonly string[];
  readonly actions: readonly EniActionDraft[];
  readonly recommendations: readonly Recommendation[];
  readonly refusals: readonly Refusal[];
  readonly diagnosis: Ec2Diagnosis;
}

export function ec2Findings(signals: Signals, policy: Policy): AllowanceFinding[] {
  return allowanceFindings(signals.allowance, {
    lowAvailable: policy.allowance.lowAvailable,
    maxExceededPerSecond: 0,
  });
}

export function diagnoseTables(
  signals: Signals,
  findings: readonly AllowanceFinding[],
  kernel: KernelTableState,
  kernelDetail: string,
): TablesDiagnosis {
  const ec2: Ec2AllowanceState =
    signals.ena.length === 0
      ? 'no-counters'
      : findings.some((finding) => finding.exhausted)
        ? 'exhausted'
        : findings.length > 0
          ? 'low'
          : 'not-exhausted';
  const ec2Detail =
    ec2 === 'no-counters'
      ? 'no ENA allowance counters were found (not an ENA interface, or a driver older than 2.2.10)'
      : ec2 === 'not-exhausted'
        ? `EC2's allowance is not exhausted (${signals.allowance.map((item) => `${item.name}: conntrack_allowance_exceeded +${item.exceededIncrease}${item.available === null ? '' : `, ${item.available} available`}`).join('; ')})`
        : `EC2's allowance is ${ec2 === 'exhausted' ? 'exhausted' : 'nearly exhausted'} (${findings.map((finding) => finding.detail).join('; ')})`;
  const ec2Trouble = ec2 === 'exhausted' || ec2 === 'low';
  const which =
    kernel === 'full' && ec2Trouble
      ? 'Both tables'
      : kernel === 'full'
        ? 'The kernel table'
        : ec2Trouble
          ? "EC2's allowance"
          : 'Neither table';
  return { kernel, ec2, summary: `${which}: ${kernelDetail}; ${ec2Detail}.` };
}

interface Ec2PlanInput {
  readonly report: DiagnosticsReport;
  readonly signals: Signals;
  readonly policy: Policy;
  readonly findings: readonly AllowanceFinding[];
  readonly network: NetworkFacts | null;
  readonly networkProblem: string | null;
  /** The kernel table is full too (the plan also changes the host). */
  readonly kernelAlso: boolean;
}

/** The EC2 part of a plan for a host whose allowance is exhausted or low. */
export function planEc2(input: Ec2PlanInput): Ec2Plan {
  const { report, signals, findings, network, networkProblem, kernelAlso } = input;
  const confirmation = findings.map((finding) => `EC2's connection-tracking allowance, ${finding.detail}`);
  const actions: EniActionDraft[] = [];
  const refusals: Refusal[] = [];
  const notes: string[] = [];
  const views: Ec2InterfaceView[] = [];
  const described = network?.described === true ? network : null;
  if (described === null) {
    const why =
      networkProblem ??
      (network?.described === false
        ? network.reason
        : 'the instance’s network interfaces were not described (no EC2 facts in the workflow)');
    notes.push(why);
    refusals.push({
      considered: 'shorten the ENI idle tracking timeouts',
      reason: `${why}: without the ENIs and their current timeouts nothing can be changed or rolled back exactly`,
    });
  } else {
    notes.push(...described.notes);
  }
  const guest: GuestIdleLimits = {
    keepalive: report.host.tcpKeepalive ?? null,
    udpTimeoutStream: report.conntrack.sysctls['net.netfilter.nf_conntrack_udp_timeout_stream'] ?? null,
    udpTimeout: report.conntrack.sysctls['net.netfilter.nf_conntrack_udp_timeout'] ?? null,
  };
  const affected: NetworkInterfaceFacts[] = [];
  for (const entry of report.ena) {
    const finding = findings.find((item) => item.name === entry.interface) ?? null;
    const eni = described ? eniOfInterface(described, entry) : null;
    views.push({
      interface: entry.interface,
      mac: entry.mac ?? null,
      finding: finding?.detail ?? null,
      networkInterfaceId: eni?.networkInterfaceId ?? null,
      securityGroups: eni ? eni.groups.map((group) => group.id) : null,
      timeouts: eni?.timeouts ?? null,
      tracking: eni?.tracking?.summary ?? null,
    });
    if (finding === null || described === null) continue;
    if (eni === null) {
      refusals.push({
        considered: `shorten the idle tracking timeouts behind ${entry.interface}`,
        reason: entry.mac
          ? `no ENI of ${described.instanceId} has MAC address ${entry.mac}`
          : 'the report has no MAC address for this interface, so its ENI cannot be named',
      });
      continue;
    }
    affected.push(eni);
    confirmation.push(
      `${entry.interface} is ${eni.networkInterfaceId} (${eni.groups.map((group) => group.id).join(', ') || 'no security group'}): ${eni.tracking?.summary ?? 'its security group rules could not be read'}; timeouts ${ENI_TIMEOUT_FIELDS.map((field) => `${EC2_FIELD_NAMES[field]} ${eni.timeouts[field].value ?? 'unknown'}${eni.timeouts[field].source === 'instance-type' ? ' (instance type default)' : eni.timeouts[field].source === 'unknown' ? '' : ' (set on the ENI)'}`).join(', ')}`,
    );
    const draft = eniAction(entry.interface, eni, guest, refusals);
    if (draft) actions.push(draft);
  }

  const recommendations = ec2Recommendations(report, signals, affected, actions, kernelAlso);
  return {
    findings,
    confirmation,
    actions,
    recommendations,
    refusals,
    diagnosis: { interfaces: views, instanceType: described?.instanceType ?? null, notes },
  };
}

function eniAction(
  iface: string,
  eni: NetworkInterfaceFacts,
  guest: GuestIdleLimits,
  refusals: Refusal[],
): EniActionDraft | null {
  const considered = `shorten the idle tracking timeouts of ${eni.networkInterfaceId} (${iface})`;
  if (eni.requesterManaged) {
    refusals.push({
      considered,
      reason: 'it is requester-managed (created by an AWS service): EC2 refuses changes to it',
    });
    return null;
  }
  if (!eni.optedIn) {
    refusals.push({
      considered,
      reason:
        'the ENI does not carry the opt-in tag: the stack may change only tagged ENIs (its IAM policy says so). Tag the ENI like its instance, or have the launch template tag network interfaces (TagSpecifications, ResourceType network-interface)',
    });
    return null;
  }
  const choice = chooseEniTimeouts(eni.timeouts, guest);
  if (choice.target === null || choice.current === null) {
    refusals.push({ considered, reason: choice.refusal ?? 'nothing to shorten' });
    return null;
  }
  const from = choice.current;
  const to = choice.target;
  const changed = choice.choices.filter((item) => item.changes);
  const unsafeIf: string[] = [];
  if (to.tcpEstablished < from.tcpEstablished) {
    unsafeIf.push(
      `a TCP connection stays idle longer than ${to.tcpEstablished} s without keepalives (database pools, long polls, idle tunnels) and relies on EC2's tracking for its return traffic: once its entry is gone, packets from the far side are dropped until this side sends again`,
    );
  }
  if (to.udpStream < from.udpStream) {
    unsafeIf.push(
      `a UDP stream is quiet for longer than ${to.udpStream} s between packets (some VPN and media protocols) and its replies are allowed only by tracking`,
    );
  }
  if (to.udp < from.udp) {
    unsafeIf.push(`a one-shot UDP reply comes later than ${to.udp} s after its request`);
  }
  unsafeIf.push(
    'the ENI is replaced (an Auto Scaling group replaces the instance): a new ENI starts with the defaults again; put ConnectionTrackingSpecification in the launch template to keep the values',
  );
  return {
    id: eni.networkInterfaceId,
    parameters: {
      NetworkInterfaceId: eni.networkInterfaceId,
      TcpEstablishedTimeout: String(to.tcpEstablished),
      UdpStreamTimeout: String(to.udpStream),
      UdpTimeout: String(to.udp),
    },
    title: `Shorten the EC2 idle tracking timeouts of ${eni.networkInterfaceId} (${iface}): ${changed.map((item) => `${EC2_FIELD_NAMES[item.field]} ${item.from} → ${item.to} s`).join(', ')}`,
    reason: `EC2 keeps tracking idle flows on this ENI for up to ${from.tcpEstablished} s (TCP) while the allowance is exhausted; the rule in docs/sizing.md never lets EC2 remember an idle flow longer than the guest itself does: ${changed.map((item) => `${EC2_FIELD_NAMES[item.field]} ${item.to} s = ${item.why}`).join('; ')}. The other fields keep their current values (${
      ENI_TIMEOUT_FIELDS.filter((field) => to[field] === from[field])
        .map((field) => `${EC2_FIELD_NAMES[field]} ${from[field]} s`)
        .join(', ') || 'none'
    })`,
    expectedEffect: `flows idle longer than the new timeouts stop counting against the instance's allowance, so new connections find room again. EC2 does not document whether flows already idle that long are purged at once or at their next check; the verification after the soak reads conntrack_allowance_exceeded again and rolls the change back if it still rises`,
    risk: to.tcpEstablished < from.tcpEstablished ? 'medium' : 'low',
    unsafeIf,
    eni: {
      networkInterfaceId: eni.networkInterfaceId,
      interface: iface,
      macAddress: eni.macAddress,
      from,
      to,
    },
  };
}

function ec2Recommendations(
  report: DiagnosticsReport,
  signals: Signals,
  affected: readonly NetworkInterfaceFacts[],
  actions: readonly EniActionDraft[],
  kernelAlso: boolean,
): Recommendation[] {
  const recommendations: Recommendation[] = [];
  // Untracked rules: only for the busiest inbound service ports that EC2 tracks today.
  const tracked = (protocol: 'tcp' | 'udp', port: number) =>
    affected.length === 0 ||
    affected.some((eni) => eni.tracking === null || !isUntracked(eni.tracking, protocol, 'inbound', port));
  const servicePorts = report.table.byLocalServicePort
    .filter((row) => (row.protocol === 'tcp' || row.protocol === 'udp') && tracked(row.protocol, row.port))
    .slice(0, 3);
  const portList = servicePorts.map((row) => `${row.protocol}/${row.port}`).join(', ');
  recommendations.push({
    scope: 'ec2',
    title: kernelAlso
      ? 'The EC2 connection-tracking allowance is exhausted too'
      : 'Consider untracked security group rules for public service ports',
    detail: `${kernelAlso ? 'conntrack_allowance_exceeded rises as well: EC2 drops packets before the guest sees them, which no change inside the instance fixes. ' : ''}EC2 does not track a TCP or UDP flow when a rule allows it from anywhere (0.0.0.0/0, and ::/0 for IPv6) and a rule of the other direction allows all traffic on every port to anywhere (EC2 User Guide, security group connection tracking). ${portList ? `The busiest inbound service ports here, ${portList}, are tracked today. ` : ''}What it means for security: the inbound rule opens the port to every address that can reach the instance (the whole internet for a public address); the outbound rule lets the instance send anything anywhere (the default security group already does); an untracked flow is cut at once if either rule is removed or changed. Flows through a Network or Gateway Load Balancer, NAT gateway, Global Accelerator, Network Firewall or transit gateway, and all ICMP, stay tracked whatever the rules. Only for services meant to be reachable from anywhere; never open inbound ports just to untrack outbound flows. This is for a person to decide: the responder never changes security groups.`,
    ...(servicePorts.length > 0
      ? {
          snippet: servicePorts
            .map(
              (row) =>
                `aws ec2 authorize-security-group-ingress --group-id sg-… --ip-permissions 'IpProtocol=${row.protocol},FromPort=${row.port},ToPort=${row.port},IpRanges=[{CidrIp=0.0.0.0/0}]'`,
            )
            .concat([
              "aws ec2 authorize-security-group-egress --group-id sg-… --ip-permissions 'IpProtocol=-1,IpRanges=[{CidrIp=0.0.0.0/0}]'",
            ])
            .join('\n'),
        }
      : {}),
  });
  const durable = actions[0]?.eni.to;
  recommendations.push({
    scope: 'launch-template',
    title: 'Keep the ENI idle timeouts on replacement instances',
    detail:
      'ENI timeouts live on the ENI: an instance the Auto Scaling group launches next starts with the defaults. Set them in the launch template (NetworkInterfaces[].ConnectionTrackingSpecification) and keep connections alive with TCP keepalives shorter than the TCP timeout. AWS’s own default on Nitro v6 instance types is 350 s; applications that send keepalives more often than that can use it too.',
    snippet: `"NetworkInterfaces": [{ "DeviceIndex": 0, "ConnectionTrackingSpecification": { "TcpEstablishedTimeout": ${durable?.tcpEstablished ?? 7875}, "UdpStreamTimeout": ${durable?.udpStream ?? 120}, "UdpTimeout": ${durable?.udp ?? 30} } }]`,
  });
  const available = signals.allowance.map((item) => item.available).filter((value) => value !== null);
  recommendations.push({
    scope: 'ec2',
    title: 'Use a larger instance size or spread the load',
    detail: `The allowance grows with the instance size (AWS does not publish it per type). ${available.length > 0 ? `conntrack_allowance_available read ${available.join(', ')} here. ` : ''}Watch conntrack_allowance_available and alarm on the rate of conntrack_allowance_exceeded (the CloudWatch agent's ethtool plugin publishes both as ethtool_conntrack_allowance_*); behind a load balancer, add instances or use larger ones.`,
  });
  return recommendations;
}

/** One line per untracked range, for the approval message and the postmortem. */
export function trackingLines(eni: NetworkInterfaceFacts): string[] {
  if (eni.tracking === null) return ['security group rules unreadable'];
  return eni.tracking.untracked.map(
    (flows) => `${flows.direction} ${flows.protocol} ${flows.family}: ${describeRanges(flows.ports)}`,
  );
}
