import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DescribeInstancesCommand,
  DescribeInstanceTypesCommand,
  DescribeNetworkInterfacesCommand,
  DescribeSecurityGroupRulesCommand,
  EC2Client,
  ModifyNetworkInterfaceAttributeCommand,
  type NetworkInterface,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ec2NetworkPort } from '../../../functions/adapters/ec2-network.js';
import type { NetworkFacts } from '../../../functions/core/allowance/network.js';
import { type NetworkStepContext, runNetworkStep } from '../../../functions/core/allowance/steps.js';
import { resolvePolicy } from '../../../functions/core/plan/policy.js';
import { assessIncident } from '../../../functions/core/workflow/assess.js';
import { gateIncident } from '../../../functions/core/workflow/gate.js';
import { verifyFix } from '../../../functions/core/workflow/verify.js';
import { fileEniChangeStore } from '../../../functions/local/twin/eni-change-files.js';
import { ReportBuilder } from '../../support/report-builder.js';

/**
 * The ENI timeout change end to end at the EC2 SDK boundary: the real adapter's requests go to
 * aws-sdk-client-mock, which answers like EC2 from a small model of the account (ENIs, their
 * ConnectionTrackingConfiguration, the instance type's defaults, security group rules), and
 * ModifyNetworkInterfaceAttribute changes that model. Describe, plan, gate, apply, describe after
 * the soak, verify and roll back run the same core code as the Lambda function.
 */

const INSTANCE = 'i-0123456789abcdef0';
const ENI = 'eni-0aaaaaaaaaaaaaaa1';
const OTHER_ENI = 'eni-0bbbbbbbbbbbbbbb2';
const MAC = '0a:1b:2c:3d:4e:5f';
const OPT_IN = { key: 'conntrack-responder:managed', value: 'true' };
const START = new Date('2026-12-01T10:00:00Z');

const ec2Mock = mockClient(EC2Client);
let enis: Map<string, NetworkInterface>;
let modifications: Array<{ id: string; spec: unknown }>;
let stateDir: string;

function eni(
  id: string,
  mac: string,
  instance: string,
  change: Partial<NetworkInterface> = {},
): NetworkInterface {
  return {
    NetworkInterfaceId: id,
    MacAddress: mac,
    Attachment: { InstanceId: instance, DeviceIndex: 0, Status: 'attached' },
    InterfaceType: 'interface',
    RequesterManaged: false,
    Groups: [{ GroupId: 'sg-0web', GroupName: 'web' }],
    TagSet: [{ Key: OPT_IN.key, Value: OPT_IN.value }],
    ...change,
  };
}

function notFound(id: string): Error {
  return Object.assign(new Error(`The networkInterface ID '${id}' does not exist`), {
    name: 'InvalidNetworkInterfaceID.NotFound',
  });
}

beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'ctr-eni-'));
  ec2Mock.reset();
  modifications = [];
  enis = new Map([[ENI, eni(ENI, MAC, INSTANCE)]]);
  ec2Mock.on(DescribeNetworkInterfacesCommand).callsFake((input) => {
    if (input.NetworkInterfaceIds) {
      const found = input.NetworkInterfaceIds.map((id: string) => enis.get(id));
      if (found.some((item: NetworkInterface | undefined) => item === undefined))
        throw notFound(String(input.NetworkInterfaceIds[0]));
      return { NetworkInterfaces: structuredClone(found) };
    }
    const instance = input.Filters?.find(
      (filter: { Name?: string }) => filter.Name === 'attachment.instance-id',
    )?.Values?.[0];
    return {
      NetworkInterfaces: structuredClone(
        [...enis.values()].filter((item) => item.Attachment?.InstanceId === instance),
      ),
    };
  });
  ec2Mock.on(ModifyNetworkInterfaceAttributeCommand).callsFake((input) => {
    const target = enis.get(input.NetworkInterfaceId);
    if (!target) throw notFound(input.NetworkInterfaceId);
    modifications.push({ id: input.NetworkInterfaceId, spec: input.ConnectionTrackingSpecification });
    target.ConnectionTrackingConfiguration = { ...input.ConnectionTrackingSpecification };
    return {};
  });
  ec2Mock.on(DescribeInstancesCommand).resolves({
    Reservations: [{ Instances: [{ InstanceId: INSTANCE, InstanceType: 'm6i.large' }] }],
  });
  ec2Mock.on(DescribeInstanceTypesCommand).resolves({
    InstanceTypes: [
      {
        InstanceType: 'm6i.large',
        NetworkInfo: {
          ConnectionTrackingConfiguration: {
            DefaultTcpEstablishedTimeout: 432_000,
            DefaultUdpStreamTimeout: 180,
            DefaultUdpTimeout: 30,
          },
        },
      },
    ],
  });
  ec2Mock.on(DescribeSecurityGroupRulesCommand).resolves({
    SecurityGroupRules: [
      {
        GroupId: 'sg-0web',
        IsEgress: false,
        IpProtocol: 'tcp',
        FromPort: 8080,
        ToPort: 8080,
        CidrIpv4: '10.0.0.0/8',
      },
      {
        GroupId: 'sg-0web',
        IsEgress: true,
        IpProtocol: '-1',
        FromPort: -1,
        ToPort: -1,
        CidrIpv4: '0.0.0.0/0',
      },
    ],
  });
});
afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

function context(): NetworkStepContext {
  return {
    ec2: ec2NetworkPort(new EC2Client({ region: 'eu-west-1' })),
    store: fileEniChangeStore(stateDir),
    now: () => START,
    optIn: OPT_IN,
    policy: resolvePolicy({ modes: { 'eni-timeouts': 'auto' } }),
  };
}

const settings = () => ({ policy: resolvePolicy({ modes: { 'eni-timeouts': 'auto' } }), soakSeconds: 5 });

const incident = {
  incidentId: 'i-0123456789abcdef0-ec2-1',
  host: INSTANCE,
  instanceId: INSTANCE,
  kind: 'ec2-allowance',
  mode: 'auto',
  trigger: { netns: null, dropLines: 0, suppressed: 0, events: [] },
};

const output = (report: ReportBuilder) => ({
  commandId: 'c-1',
  status: 'Success',
  stdout: JSON.stringify(report.build()),
  stderr: '',
});

/** A host whose kernel is quiet (nf_conntrack not even loaded) while EC2 drops on ens5. */
const exhausted = () => ReportBuilder.healthy().notLoaded().enaExceeded('ens5', 900, 0, MAC);
const stopped = () => ReportBuilder.healthy().notLoaded().enaExceeded('ens5', 0, 25_000, MAC);

async function planAndApply() {
  const ctx = context();
  const before = output(exhausted());
  const network = (await runNetworkStep(
    { operation: 'describe', incident, diagnostics: before },
    ctx,
  )) as NetworkFacts;
  const assessment = assessIncident({ incident, diagnostics: before, network }, settings());
  const gate = gateIncident({ incident, assessment }, settings());
  const applied = [];
  for (const action of gate.toApply) {
    applied.push(
      await runNetworkStep(
        {
          operation: 'apply',
          block: {
            instanceId: INSTANCE,
            incidentId: incident.incidentId,
            parameters: action.parameters,
            request: action,
          },
        },
        ctx,
      ),
    );
  }
  return { ctx, before, network, assessment, gate, applied };
}

describe('ENI idle timeouts through the EC2 SDK', () => {
  it('describes the ENI behind the exhausted interface: timeouts from the instance type, every flow tracked', async () => {
    const { network, assessment } = await planAndApply();
    expect(network).toMatchObject({
      described: true,
      instanceType: 'm6i.large',
      interfaces: [
        {
          networkInterfaceId: ENI,
          macAddress: MAC,
          optedIn: true,
          timeouts: {
            tcpEstablished: { value: 432_000, source: 'instance-type' },
            udpStream: { value: 180, source: 'instance-type' },
            udp: { value: 30, source: 'instance-type' },
          },
          tracking: { everythingTracked: true },
        },
      ],
    });
    const { plan } = assessment;
    expect(plan.classification).toBe('ec2-allowance');
    expect(plan.tables).toMatchObject({ kernel: 'not-loaded', ec2: 'exhausted' });
    expect(plan.actions).toHaveLength(1);
    expect(plan.actions[0]).toMatchObject({
      kind: 'eni-timeouts',
      document: 'eni-timeouts',
      mode: 'auto',
      persistParameters: null,
      parameters: {
        ChangeId: `${incident.incidentId}-${ENI}`,
        NetworkInterfaceId: ENI,
        TcpEstablishedTimeout: '7875',
        UdpStreamTimeout: '120',
        UdpTimeout: '30',
      },
    });
    expect(plan.confirmation.join('\n')).toContain(
      `ens5 is ${ENI} (sg-0web): every TCP and UDP flow is tracked`,
    );
    expect(ec2Mock.commandCalls(DescribeSecurityGroupRulesCommand)[0]?.args[0].input).toEqual({
      Filters: [{ Name: 'group-id', Values: ['sg-0web'] }],
    });
  });

  it('apply saves the values in effect first, then sets all three fields; a rerun changes nothing more', async () => {
    const { ctx, gate, applied } = await planAndApply();
    expect(modifications).toEqual([
      { id: ENI, spec: { TcpEstablishedTimeout: 7875, UdpStreamTimeout: 120, UdpTimeout: 30 } },
    ]);
    const saved = await ctx.store.get(`${incident.incidentId}-${ENI}`);
    expect(saved).toMatchObject({
      previous: { tcpEstablished: 432_000, udpStream: 180, udp: 30 },
      previousSources: { tcpEstablished: 'instance-type', udpStream: 'instance-type', udp: 'instance-type' },
      applied: { tcpEstablished: 7875, udpStream: 120, udp: 30 },
      status: 'applied',
    });
    expect(JSON.parse((applied[0] as { invocation: { stdout: string } }).invocation.stdout)).toMatchObject({
      status: 'applied',
      networkInterfaceId: ENI,
    });
    const action = gate.toApply[0];
    const again = await runNetworkStep(
      {
        operation: 'apply',
        block: {
          instanceId: INSTANCE,
          incidentId: incident.incidentId,
          parameters: action?.parameters,
          request: action,
        },
      },
      ctx,
    );
    expect(JSON.parse((again as { invocation: { stdout: string } }).invocation.stdout).status).toBe(
      'unchanged',
    );
    expect(modifications).toHaveLength(1);
  });

  it('verify: the fix holds when the counter stopped and EC2 reads back the values set', async () => {
    const { ctx, assessment, gate, applied, before } = await planAndApply();
    const networkAfter = await runNetworkStep({ operation: 'describe-after', incident, gate }, ctx);
    const verification = verifyFix({
      assessment,
      gate,
      applied,
      before,
      after: output(stopped()),
      networkAfter,
    });
    expect(verification.held).toBe(true);
    expect(verification.checks.map((check) => [check.name, check.passed])).toEqual([
      ['same-host', true],
      ['allowance-stopped', true],
      ['eni-timeouts-kept', true],
      ['listeners-kept', true],
    ]);
  });

  it('verify: the fix fails while EC2 still drops, or when something put other timeouts back', async () => {
    const { ctx, assessment, gate, applied, before } = await planAndApply();
    const networkAfter = await runNetworkStep({ operation: 'describe-after', incident, gate }, ctx);
    const rising = verifyFix({ assessment, gate, applied, before, after: output(exhausted()), networkAfter });
    expect(rising.held).toBe(false);
    expect(rising.reasons.join('\n')).toMatch(
      /EC2 still drops packets: conntrack_allowance_exceeded on ens5/,
    );

    const target = enis.get(ENI);
    if (target)
      target.ConnectionTrackingConfiguration = {
        TcpEstablishedTimeout: 432_000,
        UdpStreamTimeout: 120,
        UdpTimeout: 30,
      };
    const reverted = await runNetworkStep({ operation: 'describe-after', incident, gate }, ctx);
    const kept = verifyFix({
      assessment,
      gate,
      applied,
      before,
      after: output(stopped()),
      networkAfter: reverted,
    });
    expect(kept.held).toBe(false);
    expect(kept.reasons.join('\n')).toMatch(/something else changed them during the soak/);
  });

  it('rollback restores exactly the saved values, and a second rollback changes nothing', async () => {
    const { ctx, gate } = await planAndApply();
    const step = gate.rollback[0];
    expect(step).toEqual({
      document: 'eni-timeouts',
      changeId: `${incident.incidentId}-${ENI}`,
      parameters: { ChangeId: [`${incident.incidentId}-${ENI}`] },
    });
    const block = {
      instanceId: INSTANCE,
      incidentId: incident.incidentId,
      parameters: step?.parameters,
      request: step,
    };
    const first = await runNetworkStep({ operation: 'rollback', block }, ctx);
    expect(JSON.parse((first as { invocation: { stdout: string } }).invocation.stdout)).toMatchObject({
      status: 'rolled-back',
      restored: { tcpEstablished: 432_000, udpStream: 180, udp: 30 },
    });
    expect(modifications.at(-1)).toEqual({
      id: ENI,
      spec: { TcpEstablishedTimeout: 432_000, UdpStreamTimeout: 180, UdpTimeout: 30 },
    });
    const second = await runNetworkStep({ operation: 'rollback', block }, ctx);
    expect(JSON.parse((second as { invocation: { stdout: string } }).invocation.stdout).status).toBe(
      'unchanged',
    );
    expect(modifications).toHaveLength(2);
  });

  it('rollback leaves alone values someone changed since, and says so', async () => {
    const { ctx, gate } = await planAndApply();
    const target = enis.get(ENI);
    if (target)
      target.ConnectionTrackingConfiguration = {
        TcpEstablishedTimeout: 600,
        UdpStreamTimeout: 60,
        UdpTimeout: 30,
      };
    const step = gate.rollback[0];
    const result = await runNetworkStep(
      {
        operation: 'rollback',
        block: {
          instanceId: INSTANCE,
          incidentId: incident.incidentId,
          parameters: step?.parameters,
          request: step,
        },
      },
      ctx,
    );
    const body = JSON.parse((result as { invocation: { stdout: string } }).invocation.stdout);
    expect(body.status).toBe('left-alone');
    expect(body.reasons[0]).toMatch(/someone changed it since, left as it is/);
    expect(modifications).toHaveLength(1);
  });

  it('rollback of a ChangeId with nothing saved changes nothing; of a deleted ENI, says there is nothing left', async () => {
    const ctx = context();
    const nothing = await runNetworkStep(
      {
        operation: 'rollback',
        block: {
          instanceId: INSTANCE,
          incidentId: 'x',
          parameters: { ChangeId: ['never-applied'] },
          request: {},
        },
      },
      ctx,
    );
    expect(JSON.parse((nothing as { invocation: { stdout: string } }).invocation.stdout).status).toBe(
      'nothing-saved',
    );

    const { gate } = await planAndApply();
    enis.delete(ENI);
    const step = gate.rollback[0];
    const gone = await runNetworkStep(
      {
        operation: 'rollback',
        block: {
          instanceId: INSTANCE,
          incidentId: incident.incidentId,
          parameters: step?.parameters,
          request: step,
        },
      },
      ctx,
    );
    expect(JSON.parse((gone as { invocation: { stdout: string } }).invocation.stdout).reasons[0]).toMatch(
      /no longer exists/,
    );
    expect(modifications).toHaveLength(1);
  });

  it('refuses an ENI attached to another instance, a reused ChangeId, and out-of-range values, before changing anything', async () => {
    const ctx = context();
    enis.set(OTHER_ENI, eni(OTHER_ENI, '0a:00:00:00:00:02', 'i-0fffffffffffffff0'));
    const block = (parameters: Record<string, string[]>) => ({
      operation: 'apply',
      block: { instanceId: INSTANCE, incidentId: incident.incidentId, parameters, request: {} },
    });
    const params = (id: string, tcp = '7875') => ({
      ChangeId: [`c-${id}-${tcp}`],
      NetworkInterfaceId: [id],
      TcpEstablishedTimeout: [tcp],
      UdpStreamTimeout: ['120'],
      UdpTimeout: ['30'],
    });
    await expect(runNetworkStep(block(params(OTHER_ENI)), ctx)).rejects.toThrow(/not to i-0123456789abcdef0/);
    await expect(runNetworkStep(block(params(ENI, '59')), ctx)).rejects.toThrow(/TcpEstablishedTimeout/);
    await expect(runNetworkStep(block(params(ENI, '432001')), ctx)).rejects.toThrow(/outside EC2's range/);
    await runNetworkStep(block(params(ENI)), ctx);
    await expect(
      runNetworkStep(block({ ...params(ENI), TcpEstablishedTimeout: ['3600'] }), ctx),
    ).rejects.toThrow(/a different change needs a new ChangeId/);
    expect(modifications).toHaveLength(1);
  });

  it('never lengthens at apply time a timeout someone shortened after the plan', async () => {
    const ctx = context();
    const before = output(exhausted());
    const network = (await runNetworkStep(
      { operation: 'describe', incident, diagnostics: before },
      ctx,
    )) as NetworkFacts;
    const assessment = assessIncident({ incident, diagnostics: before, network }, settings());
    const gate = gateIncident({ incident, assessment }, settings());
    const target = enis.get(ENI);
    if (target) target.ConnectionTrackingConfiguration = { TcpEstablishedTimeout: 900 };
    const action = gate.toApply[0];
    await runNetworkStep(
      {
        operation: 'apply',
        block: {
          instanceId: INSTANCE,
          incidentId: incident.incidentId,
          parameters: action?.parameters,
          request: action,
        },
      },
      ctx,
    );
    expect(modifications).toEqual([
      { id: ENI, spec: { TcpEstablishedTimeout: 900, UdpStreamTimeout: 120, UdpTimeout: 30 } },
    ]);
  });

  it('does not ask EC2 at all when the diagnostics show no allowance trouble on a table-full incident', async () => {
    const quiet = output(ReportBuilder.healthy().enaExceeded('ens5', 0, 90_000, MAC));
    const facts = await runNetworkStep(
      { operation: 'describe', incident: { ...incident, kind: 'table-full' }, diagnostics: quiet },
      context(),
    );
    expect(facts).toMatchObject({ described: false, reason: expect.stringMatching(/quiet/) });
    expect(ec2Mock.calls()).toHaveLength(0);
  });

  it('refuses, in the plan, an ENI without the opt-in tag (the IAM policy would deny the change)', async () => {
    enis.set(ENI, eni(ENI, MAC, INSTANCE, { TagSet: [] }));
    const before = output(exhausted());
    const network = (await runNetworkStep(
      { operation: 'describe', incident, diagnostics: before },
      context(),
    )) as NetworkFacts;
    const { plan } = assessIncident({ incident, diagnostics: before, network }, settings());
    expect(plan.actions).toEqual([]);
    expect(plan.refusals.map((refusal) => refusal.reason).join('\n')).toMatch(
      /does not carry the opt-in tag/,
    );
  });
});
