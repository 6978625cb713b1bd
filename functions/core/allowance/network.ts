import { z } from 'zod';
import type { DiagnosticsReport } from '../diagnostics/report.js';
import type { CurrentTimeout, CurrentTimeouts, EniTimeoutField, EniTimeouts } from './eni-timeouts.js';
import { type SecurityGroupRule, type TrackingFacts, trackingOf } from './security-groups.js';

/**
 * What EC2 says about an instance's network interfaces, as far as its connection tracking goes:
 * which ENI is which guest interface (by MAC address), its idle timeouts and where they come from,
 * its security groups and which of its flows are tracked at all. Read by the workflow's
 * "Describe the network interfaces" step (before the plan, and again after the soak when ENI
 * timeouts were changed), through the ports below, so this module stays free of the AWS SDK.
 */

export const ENI_ID_PATTERN = /^eni-[0-9a-f]{8,17}$/;
const MAC_PATTERN = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** One ENI as the EC2 adapter reads it (DescribeNetworkInterfaces). */
export interface EniDescription {
  readonly networkInterfaceId: string;
  readonly macAddress: string;
  readonly attachment: {
    readonly instanceId: string | null;
    readonly deviceIndex: number | null;
    readonly status: string | null;
  } | null;
  readonly interfaceType: string | null;
  /** Requester-managed ENIs (created by an AWS service) cannot be modified (EC2 User Guide). */
  readonly requesterManaged: boolean;
  readonly groups: readonly { readonly id: string; readonly name: string | null }[];
  readonly tags: Readonly<Record<string, string>>;
  /** The ConnectionTrackingConfiguration fields that are set on the ENI; an unset field is absent. */
  readonly connectionTracking: Partial<EniTimeouts>;
}

/** The EC2 calls the network steps make (functions/adapters/ec2-network.ts over the SDK). */
export interface Ec2NetworkPort {
  /** Every ENI attached to the instance (DescribeNetworkInterfaces, filter attachment.instance-id). */
  describeInstanceInterfaces(instanceId: string): Promise<readonly EniDescription[]>;
  /** One ENI by id, or null when it does not exist (any more). */
  describeInterface(networkInterfaceId: string): Promise<EniDescription | null>;
  /** The instance's type and that type's default timeouts (DescribeInstances + DescribeInstanceTypes). */
  instanceTypeDefaults(
    instanceId: string,
  ): Promise<{ readonly instanceType: string | null; readonly defaults: Partial<EniTimeouts> | null }>;
  /** The rules of these security groups (DescribeSecurityGroupRules, filter group-id). */
  securityGroupRules(groupIds: readonly string[]): Promise<readonly SecurityGroupRule[]>;
  /** ModifyNetworkInterfaceAttribute with a ConnectionTrackingSpecification holding all three fields. */
  setTimeouts(networkInterfaceId: string, timeouts: EniTimeouts): Promise<void>;
}

const timeoutSchema = z.number().int().positive();
const currentTimeoutSchema = z.object({
  value: timeoutSchema.nullable(),
  source: z.enum(['eni', 'instance-type', 'unknown']),
});
export const TimeoutsSchema = z.object({
  tcpEstablished: timeoutSchema,
  udpStream: timeoutSchema,
  udp: timeoutSchema,
});

const trackingSchema = z.object({
  untracked: z
    .array(
      z.object({
        protocol: z.enum(['tcp', 'udp']),
        direction: z.enum(['inbound', 'outbound']),
        family: z.enum(['ipv4', 'ipv6']),
        ports: z.array(z.object({ from: z.number().int(), to: z.number().int() })).readonly(),
      }),
    )
    .readonly(),
  everythingTracked: z.boolean(),
  summary: z.string(),
});

export const NetworkInterfaceFactsSchema = z.object({
  networkInterfaceId: z.string().regex(ENI_ID_PATTERN),
  macAddress: z.string(),
  deviceIndex: z.number().int().nullable(),
  interfaceType: z.string().nullable(),
  requesterManaged: z.boolean(),
  /** Carries the stack's opt-in tag: the workflow's role may change only such ENIs (IAM condition). */
  optedIn: z.boolean(),
  groups: z.array(z.object({ id: z.string(), name: z.string().nullable() })),
  timeouts: z.object({
    tcpEstablished: currentTimeoutSchema,
    udpStream: currentTimeoutSchema,
    udp: currentTimeoutSchema,
  }),
  /** Null when the security group rules could not be read. */
  tracking: trackingSchema.nullable(),
});
export type NetworkInterfaceFacts = z.infer<typeof NetworkInterfaceFactsSchema>;

export const NetworkFactsSchema = z.discriminatedUnion('described', [
  z.object({
    described: z.literal(true),
    instanceId: z.string(),
    instanceType: z.string().nullable(),
    /** The instance type's defaults (DescribeInstanceTypes NetworkInfo.ConnectionTrackingConfiguration). */
    typeDefaults: z
      .object({
        tcpEstablished: timeoutSchema.optional(),
        udpStream: timeoutSchema.optional(),
        udp: timeoutSchema.optional(),
      })
      .nullable(),
    interfaces: z.array(NetworkInterfaceFactsSchema),
    /** What could not be read, in plain words. */
    notes: z.array(z.string()),
  }),
  z.object({ described: z.literal(false), reason: z.string() }),
]);
export type NetworkFacts = z.infer<typeof NetworkFactsSchema>;

/** The opt-in tag that selects the instances (and ENIs) the stack manages. */
export interface OptInTag {
  readonly key: string;
  readonly value: string;
}

/** The effective value of each field: set on the ENI, else the instance type's default, else unknown. */
export function currentTimeoutsOf(
  eni: Pick<EniDescription, 'connectionTracking'>,
  typeDefaults: Partial<EniTimeouts> | null,
): CurrentTimeouts {
  const entry = (field: EniTimeoutField): CurrentTimeout => {
    const set = eni.connectionTracking[field];
    if (set !== undefined) return { value: set, source: 'eni' };
    const fallback = typeDefaults?.[field];
    if (fallback !== undefined) return { value: fallback, source: 'instance-type' };
    return { value: null, source: 'unknown' };
  };
  return { tcpEstablished: entry('tcpEstablished'), udpStream: entry('udpStream'), udp: entry('udp') };
}

/** Reads the facts of every ENI of the instance. A failure to read the rules is a note, not an error. */
export async function describeNetwork(
  port: Ec2NetworkPort,
  instanceId: string,
  optIn: OptInTag,
): Promise<NetworkFacts> {
  const notes: string[] = [];
  const interfaces = await port.describeInstanceInterfaces(instanceId);
  let instanceType: string | null = null;
  let typeDefaults: Partial<EniTimeouts> | null = null;
  try {
    ({ instanceType, defaults: typeDefaults } = await port.instanceTypeDefaults(instanceId));
    if (typeDefaults === null)
      notes.push(
        `the default timeouts of instance type ${instanceType ?? 'unknown'} were not reported: fields not set on an ENI are unknown`,
      );
  } catch (error) {
    notes.push(`the instance type's default timeouts could not be read: ${messageOf(error)}`);
  }
  const groupIds = [...new Set(interfaces.flatMap((eni) => eni.groups.map((group) => group.id)))];
  let rules: readonly SecurityGroupRule[] | null = null;
  try {
    rules = groupIds.length === 0 ? [] : await port.securityGroupRules(groupIds);
  } catch (error) {
    notes.push(`the security group rules could not be read: ${messageOf(error)}`);
  }
  const facts = interfaces
    .filter((eni) => ENI_ID_PATTERN.test(eni.networkInterfaceId))
    .map((eni): NetworkInterfaceFacts => {
      const groups = new Set(eni.groups.map((group) => group.id));
      const tracking: TrackingFacts | null =
        rules === null ? null : trackingOf(rules.filter((rule) => groups.has(rule.groupId)));
      return {
        networkInterfaceId: eni.networkInterfaceId,
        macAddress: eni.macAddress.toLowerCase(),
        deviceIndex: eni.attachment?.deviceIndex ?? null,
        interfaceType: eni.interfaceType,
        requesterManaged: eni.requesterManaged,
        optedIn: eni.tags[optIn.key] === optIn.value,
        groups: eni.groups.map((group) => ({ id: group.id, name: group.name })),
        timeouts: currentTimeoutsOf(eni, typeDefaults),
        tracking,
      };
    })
    .sort((a, b) => (a.deviceIndex ?? 99) - (b.deviceIndex ?? 99));
  return NetworkFactsSchema.parse({
    described: true,
    instanceId,
    instanceType,
    typeDefaults,
    interfaces: facts,
    notes,
  });
}

/** The ENI behind a guest interface of the report, matched by MAC address. */
export function eniOfInterface(
  facts: Extract<NetworkFacts, { described: true }>,
  ena: DiagnosticsReport['ena'][number],
): NetworkInterfaceFacts | null {
  const mac = ena.mac?.toLowerCase();
  if (!mac || !MAC_PATTERN.test(mac)) return null;
  return facts.interfaces.find((eni) => eni.macAddress === mac) ?? null;
}

/** Parses what the workflow left in `$.network`: facts, a "not described" reason, or a caught error. */
export function readNetworkFacts(value: unknown): { facts: NetworkFacts | null; problem: string | null } {
  if (value === undefined || value === null) return { facts: null, problem: null };
  const parsed = NetworkFactsSchema.safeParse(value);
  if (parsed.success) return { facts: parsed.data, problem: null };
  if (typeof value === 'object' && value !== null && 'Error' in value) {
    const { Error: name, Cause: cause } = value as { Error?: unknown; Cause?: unknown };
    return {
      facts: null,
      problem: `EC2 could not be asked about the network interfaces (${String(name)}: ${String(cause ?? '').slice(0, 300)})`,
    };
  }
  return { facts: null, problem: 'the network interface facts have an unexpected shape' };
}

export function messageOf(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`.slice(0, 300);
  return String(error).slice(0, 300);
}
