import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  DescribeInstancesCommand,
  DescribeInstanceTypesCommand,
  DescribeNetworkInterfacesCommand,
  DescribeSecurityGroupRulesCommand,
  EC2Client,
  ModifyNetworkInterfaceAttributeCommand,
  type NetworkInterface,
} from '@aws-sdk/client-ec2';
import { Template } from 'aws-cdk-lib/assertions';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ec2NetworkPort } from '../../../functions/adapters/ec2-network.js';
import { resolvePolicy } from '../../../functions/core/plan/index.js';
import type { RunDocumentRequest, RunDocumentResult } from '../../../functions/local/ssm-executor.js';
import type { AslMachine } from '../../../functions/local/twin/asl.js';
import { fileEniChangeStore } from '../../../functions/local/twin/eni-change-files.js';
import { localFunctions } from '../../../functions/local/twin/local-functions.js';
import { localSsm } from '../../../functions/local/twin/local-ssm.js';
import { runWorkflowLocally } from '../../../functions/local/twin/runner.js';
import { onlyStateMachine } from '../../../functions/local/twin/template.js';
import { workflowTestStack } from '../../infra/support/workflow-stack.js';
import { ReportBuilder } from '../../support/report-builder.js';

/**
 * An `ec2-allowance` incident through the synthesized workflow under the local interpreter: the
 * network function's real code (describe, apply, describe after the soak, roll back) over the real
 * EC2 adapter, whose SDK client aws-sdk-client-mock answers from a small model of one ENI; the host
 * is scripted (collect-diagnostics reports with ENA counters). The ENI change goes through EC2,
 * never SSM, and a verification that fails on the counter's rate restores the ENI exactly.
 */

const definition = onlyStateMachine(Template.fromStack(workflowTestStack().stack).toJSON())
  .definition as unknown as AslMachine;
const INSTANCE = 'i-0123456789abcdef0';
const ENI = 'eni-0aaaaaaaaaaaaaaa1';
const MAC = '0a:1b:2c:3d:4e:5f';
const OPT_IN = { key: 'conntrack-responder:managed', value: 'true' };
/** Set on the ENI before the incident (UdpTimeout above the guest's 30 s): what a rollback must restore. */
const PREVIOUS = { TcpEstablishedTimeout: 432_000, UdpStreamTimeout: 180, UdpTimeout: 60 };

const ec2Mock = mockClient(EC2Client);
let eni: NetworkInterface;
let modifications: unknown[];
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'eni-workflow-'));
  modifications = [];
  eni = {
    NetworkInterfaceId: ENI,
    MacAddress: MAC,
    Attachment: { InstanceId: INSTANCE, DeviceIndex: 0, Status: 'attached' },
    InterfaceType: 'interface',
    RequesterManaged: false,
    Groups: [{ GroupId: 'sg-0web', GroupName: 'web' }],
    TagSet: [{ Key: OPT_IN.key, Value: OPT_IN.value }],
    ConnectionTrackingConfiguration: { ...PREVIOUS },
  };
  ec2Mock.reset();
  ec2Mock
    .on(DescribeNetworkInterfacesCommand)
    .callsFake(() => ({ NetworkInterfaces: [structuredClone(eni)] }));
  ec2Mock.on(ModifyNetworkInterfaceAttributeCommand).callsFake((input) => {
    modifications.push(input.ConnectionTrackingSpecification);
    eni.ConnectionTrackingConfiguration = { ...input.ConnectionTrackingSpecification };
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
  ec2Mock.on(DescribeSecurityGroupRulesCommand).resolves({ SecurityGroupRules: [] });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function success(json: unknown): RunDocumentResult {
  const stdout = JSON.stringify(json);
  return {
    status: 'Success',
    statusDetails: 'Success',
    exitCode: 0,
    stdout,
    stderr: '',
    stdoutTruncated: false,
    stderrTruncated: false,
    fullStdout: stdout,
    fullStderr: '',
    parameters: {},
    durationMs: 1,
  };
}

/** EC2 drops on ens5 (900 packets over each report) until the ENI's timeouts are shortened, or forever. */
function host(relief: boolean) {
  const documents: string[] = [];
  const run = async (request: RunDocumentRequest): Promise<RunDocumentResult> => {
    documents.push(request.name);
    if (request.name !== 'collect-diagnostics') throw new Error(`no ${request.name} on this host`);
    const changed = modifications.length > 0;
    const exceeded = changed && relief ? 0 : 900;
    return success(
      ReportBuilder.healthy()
        .notLoaded()
        .enaExceeded('ens5', exceeded, exceeded === 0 ? 25_000 : 0, MAC)
        .build(),
    );
  };
  return { run, documents };
}

async function respond(relief: boolean) {
  const scripted = host(relief);
  const ssm = localSsm({ netns: INSTANCE, pollMs: 5, run: scripted.run, online: async () => true });
  const policy = resolvePolicy({ modes: { 'eni-timeouts': 'auto' } });
  let final: Record<string, unknown> | undefined;
  const execution = runWorkflowLocally({
    definition,
    input: {
      incidentId: `${INSTANCE}-ec2-1`,
      host: INSTANCE,
      instanceId: INSTANCE,
      kind: 'ec2-allowance',
      mode: 'auto',
      trigger: { netns: null, dropLines: 0, suppressed: 0, events: [] },
    },
    ssm,
    lambdas: localFunctions({
      outDir: dir,
      settings: { policy, soakSeconds: 0 },
      approval: 'reject',
      stdin: new PassThrough(),
      stdout: new PassThrough(),
      network: {
        ec2: ec2NetworkPort(new EC2Client({ region: 'eu-west-1' })),
        store: fileEniChangeStore(join(dir, 'eni-changes')),
        now: () => new Date(),
        optIn: OPT_IN,
        policy,
      },
      writeEvidence: async (state) => {
        final = state as Record<string, unknown>;
        return { location: 'memory' };
      },
    }),
    soakMs: 0,
    retryIntervalMs: 0,
  });
  const ended = await execution.result;
  if ('error' in ended) throw ended.error;
  if (!final) throw new Error('the workflow never wrote its evidence');
  return { state: final, documents: scripted.documents, history: execution.history() };
}

const visited = (history: ReadonlyArray<{ type: string; state?: string }>) =>
  history.filter((event) => event.type === 'StateEntered').map((event) => event.state);

describe('the workflow on an ec2-allowance incident', () => {
  it('shortens the ENI timeouts through EC2 and keeps them when the counter stops rising', async () => {
    const { state, documents, history } = await respond(true);
    expect((state.outcome as { status: string }).status).toBe('remediated');
    // Only diagnostics ran on the host: the change was an EC2 call.
    expect(documents).toEqual(['collect-diagnostics', 'collect-diagnostics']);
    expect(modifications).toEqual([{ TcpEstablishedTimeout: 7875, UdpStreamTimeout: 120, UdpTimeout: 30 }]);
    expect(eni.ConnectionTrackingConfiguration).toEqual({
      TcpEstablishedTimeout: 7875,
      UdpStreamTimeout: 120,
      UdpTimeout: 30,
    });
    expect(visited(history)).toEqual(
      expect.arrayContaining([
        'Describe the network interfaces',
        'Apply: change the ENI timeouts',
        'Describe the network interfaces after the soak',
      ]),
    );
    expect(state.networkAfter).toMatchObject({ described: true });
    expect((state.verification as { held: boolean }).held).toBe(true);
  });

  it('restores the saved timeouts exactly when the counter keeps rising after the soak', async () => {
    const { state, documents, history } = await respond(false);
    expect((state.verification as { held: boolean; reasons: string[] }).held).toBe(false);
    expect((state.verification as { reasons: string[] }).reasons.join('\n')).toMatch(
      /conntrack_allowance_exceeded on ens5/,
    );
    expect((state.outcome as { status: string }).status).toBe('rolled-back');
    expect(visited(history)).toContain('Roll back: restore the ENI timeouts');
    expect(modifications).toEqual([
      { TcpEstablishedTimeout: 7875, UdpStreamTimeout: 120, UdpTimeout: 30 },
      PREVIOUS,
    ]);
    expect(eni.ConnectionTrackingConfiguration).toEqual(PREVIOUS);
    // Neither the change nor its rollback went through SSM.
    expect(documents).toEqual(['collect-diagnostics', 'collect-diagnostics']);
  });
});
