import { EC2Client, ModifyNetworkInterfaceAttributeCommand } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ec2NetworkPort } from '../../../functions/adapters/ec2-network.js';
import { describeNetwork } from '../../../functions/core/allowance/network.js';
import { type LocalEc2, type LocalEc2Model, startLocalEc2 } from '../../../functions/local/twin/local-ec2.js';

/**
 * The twin's EC2 on loopback, through the real SDK client and the real adapter: what the network
 * steps read and change, and what EC2 refuses.
 */

const OPT_IN = { key: 'conntrack-responder:managed', value: 'true' };
const ENI = 'eni-0c0ffee0c0ffee001';

function model(): LocalEc2Model {
  return {
    instanceId: 'ctr-twin-1',
    instanceType: 'local.nitro',
    typeDefaults: { tcpEstablished: 432_000, udpStream: 180, udp: 30 },
    enis: [
      {
        networkInterfaceId: ENI,
        macAddress: '02:aa:bb:cc:dd:ee',
        deviceIndex: 0,
        groupIds: ['sg-0local'],
        tags: { [OPT_IN.key]: OPT_IN.value, Name: 'a <b> & "c"' },
        connectionTracking: { udp: 60 },
      },
    ],
    securityGroupRules: [
      {
        groupId: 'sg-0local',
        egress: false,
        protocol: 'tcp',
        fromPort: 8080,
        toPort: 8080,
        cidrIpv4: '10.0.0.0/8',
      },
      { groupId: 'sg-0local', egress: true, protocol: '-1', fromPort: -1, toPort: -1, cidrIpv4: '0.0.0.0/0' },
    ],
  };
}

let ec2: LocalEc2;
let client: EC2Client;
beforeEach(async () => {
  ec2 = await startLocalEc2(model());
  client = new EC2Client({
    endpoint: ec2.endpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
});
afterEach(async () => {
  client.destroy();
  await ec2.close();
});

describe('the local EC2 endpoint', () => {
  it('answers the network steps through the SDK: ENIs by instance, type defaults, rules', async () => {
    const facts = await describeNetwork(ec2NetworkPort(client), 'ctr-twin-1', OPT_IN);
    expect(facts).toMatchObject({
      described: true,
      instanceType: 'local.nitro',
      typeDefaults: { tcpEstablished: 432_000, udpStream: 180, udp: 30 },
      interfaces: [
        {
          networkInterfaceId: ENI,
          macAddress: '02:aa:bb:cc:dd:ee',
          deviceIndex: 0,
          optedIn: true,
          timeouts: {
            tcpEstablished: { value: 432_000, source: 'instance-type' },
            udpStream: { value: 180, source: 'instance-type' },
            udp: { value: 60, source: 'eni' },
          },
          tracking: { everythingTracked: true },
        },
      ],
      notes: [],
    });
    expect(await ec2NetworkPort(client).describeInstanceInterfaces('i-0other')).toEqual([]);
  });

  it('sets the three timeouts of an ENI and reads them back', async () => {
    const port = ec2NetworkPort(client);
    await port.setTimeouts(ENI, { tcpEstablished: 7875, udpStream: 120, udp: 30 });
    expect((await port.describeInterface(ENI))?.connectionTracking).toEqual({
      tcpEstablished: 7875,
      udpStream: 120,
      udp: 30,
    });
    expect(ec2.calls().filter((call) => call.action === 'ModifyNetworkInterfaceAttribute')).toEqual([
      expect.objectContaining({
        networkInterfaceId: ENI,
        connectionTrackingSpecification: { tcpEstablished: 7875, udpStream: 120, udp: 30 },
      }),
    ]);
  });

  it('refuses what EC2 refuses: an unknown ENI, a value out of range, another attribute', async () => {
    const port = ec2NetworkPort(client);
    expect(await port.describeInterface('eni-0000000000000dead')).toBeNull();
    await expect(
      port.setTimeouts('eni-0000000000000dead', { tcpEstablished: 60, udpStream: 60, udp: 30 }),
    ).rejects.toMatchObject({
      name: 'InvalidNetworkInterfaceID.NotFound',
    });
    await expect(port.setTimeouts(ENI, { tcpEstablished: 59, udpStream: 60, udp: 30 })).rejects.toMatchObject(
      {
        name: 'InvalidParameterValue',
      },
    );
    await expect(
      client.send(
        new ModifyNetworkInterfaceAttributeCommand({ NetworkInterfaceId: ENI, Groups: ['sg-0open'] }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidParameterCombination' });
    expect(ec2.model.enis[0]?.connectionTracking).toEqual({ udp: 60 });
    expect(ec2.model.enis[0]?.groupIds).toEqual(['sg-0local']);
  });
});
