import {
  DescribeInstancesCommand,
  DescribeInstanceTypesCommand,
  DescribeNetworkInterfacesCommand,
  DescribeSecurityGroupRulesCommand,
  type EC2Client,
  type _InstanceType as InstanceType,
  ModifyNetworkInterfaceAttributeCommand,
  type NetworkInterface,
} from '@aws-sdk/client-ec2';
import type { EniTimeouts } from '../core/allowance/eni-timeouts.js';
import type { Ec2NetworkPort, EniDescription } from '../core/allowance/network.js';
import type { SecurityGroupRule } from '../core/allowance/security-groups.js';

/**
 * The EC2 calls of the network steps (functions/core/allowance), over the SDK. AWS behaviour they
 * rely on, from the EC2 API Reference:
 * - DescribeNetworkInterfaces (filter `attachment.instance-id`): `MacAddress`, `Attachment`,
 *   `RequesterManaged`, `Groups`, `TagSet` and `ConnectionTrackingConfiguration`, which holds only
 *   the fields set on the ENI (the AWS CLI reference's create-network-interface example shows an
 *   ENI created with two of the three fields reporting those two).
 *   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeNetworkInterfaces.html
 * - DescribeInstanceTypes `NetworkInfo.ConnectionTrackingConfiguration`: the type's defaults
 *   ("DefaultTcpEstablishedTimeout", … ; 350 s for TCP on Nitro v6 types, 432000 s elsewhere).
 *   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DefaultConnectionTrackingConfiguration.html
 * - DescribeSecurityGroupRules (filter `group-id`): `IsEgress`, `IpProtocol` (`-1` = all),
 *   `FromPort`/`ToPort` (-1 = all), `CidrIpv4`/`CidrIpv6`.
 *   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSecurityGroupRules.html
 * - ModifyNetworkInterfaceAttribute with `ConnectionTrackingSpecification` (TcpEstablishedTimeout
 *   60–432000, UdpStreamTimeout 60–180, UdpTimeout 30–60; "You can specify only one attribute at a
 *   time": the specification is that one attribute). Nitro instances only.
 *   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyNetworkInterfaceAttribute.html
 * Describe calls are paginated; at most MAX_PAGES pages are read, so a call stays bounded.
 */

const MAX_PAGES = 20;
const NOT_FOUND = 'InvalidNetworkInterfaceID.NotFound';

function toDescription(eni: NetworkInterface): EniDescription | null {
  if (!eni.NetworkInterfaceId || !eni.MacAddress) return null;
  const tracking = eni.ConnectionTrackingConfiguration;
  const connectionTracking: Partial<Record<keyof EniTimeouts, number>> = {};
  if (tracking?.TcpEstablishedTimeout !== undefined)
    connectionTracking.tcpEstablished = tracking.TcpEstablishedTimeout;
  if (tracking?.UdpStreamTimeout !== undefined) connectionTracking.udpStream = tracking.UdpStreamTimeout;
  if (tracking?.UdpTimeout !== undefined) connectionTracking.udp = tracking.UdpTimeout;
  return {
    networkInterfaceId: eni.NetworkInterfaceId,
    macAddress: eni.MacAddress.toLowerCase(),
    attachment: eni.Attachment
      ? {
          instanceId: eni.Attachment.InstanceId ?? null,
          deviceIndex: eni.Attachment.DeviceIndex ?? null,
          status: eni.Attachment.Status ?? null,
        }
      : null,
    interfaceType: eni.InterfaceType ?? null,
    requesterManaged: eni.RequesterManaged === true,
    groups: (eni.Groups ?? []).flatMap((group) =>
      group.GroupId ? [{ id: group.GroupId, name: group.GroupName ?? null }] : [],
    ),
    tags: Object.fromEntries(
      (eni.TagSet ?? []).flatMap((tag) => (tag.Key === undefined ? [] : [[tag.Key, tag.Value ?? '']])),
    ),
    connectionTracking,
  };
}

function isNotFound(error: unknown): boolean {
  return (
    error instanceof Error && (error.name === NOT_FOUND || (error as { Code?: string }).Code === NOT_FOUND)
  );
}

export function ec2NetworkPort(ec2: EC2Client): Ec2NetworkPort {
  return {
    async describeInstanceInterfaces(instanceId) {
      const found: EniDescription[] = [];
      let token: string | undefined;
      for (let page = 0; page < MAX_PAGES; page++) {
        const result = await ec2.send(
          new DescribeNetworkInterfacesCommand({
            Filters: [{ Name: 'attachment.instance-id', Values: [instanceId] }],
            ...(token ? { NextToken: token } : {}),
          }),
        );
        for (const eni of result.NetworkInterfaces ?? []) {
          const description = toDescription(eni);
          if (description) found.push(description);
        }
        token = result.NextToken;
        if (!token) break;
      }
      return found;
    },

    async describeInterface(networkInterfaceId) {
      try {
        const result = await ec2.send(
          new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [networkInterfaceId] }),
        );
        const eni = (result.NetworkInterfaces ?? []).find(
          (candidate) => candidate.NetworkInterfaceId === networkInterfaceId,
        );
        return eni ? toDescription(eni) : null;
      } catch (error) {
        if (isNotFound(error)) return null;
        throw error;
      }
    },

    async instanceTypeDefaults(instanceId) {
      const instances = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
      const instanceType =
        instances.Reservations?.flatMap((reservation) => reservation.Instances ?? []).find(
          (instance) => instance.InstanceId === instanceId,
        )?.InstanceType ?? null;
      if (instanceType === null) return { instanceType: null, defaults: null };
      const types = await ec2.send(
        new DescribeInstanceTypesCommand({ InstanceTypes: [instanceType as InstanceType] }),
      );
      const defaults = types.InstanceTypes?.find((type) => type.InstanceType === instanceType)?.NetworkInfo
        ?.ConnectionTrackingConfiguration;
      if (!defaults) return { instanceType, defaults: null };
      const values: Partial<Record<keyof EniTimeouts, number>> = {};
      if (defaults.DefaultTcpEstablishedTimeout !== undefined)
        values.tcpEstablished = defaults.DefaultTcpEstablishedTimeout;
      if (defaults.DefaultUdpStreamTimeout !== undefined) values.udpStream = defaults.DefaultUdpStreamTimeout;
      if (defaults.DefaultUdpTimeout !== undefined) values.udp = defaults.DefaultUdpTimeout;
      return { instanceType, defaults: values };
    },

    async securityGroupRules(groupIds) {
      const rules: SecurityGroupRule[] = [];
      let token: string | undefined;
      for (let page = 0; page < MAX_PAGES; page++) {
        const result = await ec2.send(
          new DescribeSecurityGroupRulesCommand({
            Filters: [{ Name: 'group-id', Values: [...groupIds] }],
            ...(token ? { NextToken: token } : {}),
          }),
        );
        for (const rule of result.SecurityGroupRules ?? []) {
          if (!rule.GroupId || rule.IpProtocol === undefined) continue;
          rules.push({
            groupId: rule.GroupId,
            egress: rule.IsEgress === true,
            protocol: rule.IpProtocol,
            fromPort: rule.FromPort ?? null,
            toPort: rule.ToPort ?? null,
            cidrIpv4: rule.CidrIpv4 ?? null,
            cidrIpv6: rule.CidrIpv6 ?? null,
          });
        }
        token = result.NextToken;
        if (!token) break;
      }
      return rules;
    },

    async setTimeouts(networkInterfaceId, timeouts) {
      await ec2.send(
        new ModifyNetworkInterfaceAttributeCommand({
          NetworkInterfaceId: networkInterfaceId,
          ConnectionTrackingSpecification: {
            TcpEstablishedTimeout: timeouts.tcpEstablished,
            UdpStreamTimeout: timeouts.udpStream,
            UdpTimeout: timeouts.udp,
          },
        }),
      );
    },
  };
}
