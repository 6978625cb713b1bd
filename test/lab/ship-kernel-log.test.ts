import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLabHosts, type LabHosts } from '../../functions/local/netns.js';
import { runDocument } from '../../functions/local/ssm-executor.js';
import { kernelLogAgentConfiguration } from '../../infra/constructs/kernel-log-shipping.js';
import { type FakeAgent, installFakeAgent } from '../support/cloudwatch-agent.js';
import { labUnavailable } from './support/prerequisites.js';

/**
 * ship-kernel-log as SSM runs it: the composed document through the local executor, as root, in a
 * namespace that plays the instance, reading the machine's real /proc for running daemons. A real
 * process named rsyslogd (a copy of sleep) stands for the syslog daemon, the file tree under
 * CONNTRACK_RESPONDER_ROOT for the host's /var/log, and the stand-in agent control script for the
 * CloudWatch agent, which no package registry here carries.
 */
const NAMES = {
  KernLogConfiguration: 'AmazonCloudWatch-Lab-kern-log',
  MessagesConfiguration: 'AmazonCloudWatch-Lab-messages',
  JournaldConfiguration: 'AmazonCloudWatch-Lab-journald',
};

describe.skipIf(labUnavailable)('ship-kernel-log in the lab', () => {
  let hosts: LabHosts;
  let work: string;
  let root: string;
  let agent: FakeAgent;
  let daemon: ChildProcess | undefined;

  beforeAll(async () => {
    hosts = await createLabHosts('ship');
    work = await mkdtemp(join(tmpdir(), 'ctr-ship-lab-'));
    root = join(work, 'root');
    await mkdir(join(root, 'var/log'), { recursive: true });
    await writeFile(join(root, 'var/log/kern.log'), '');
    await writeFile(join(root, 'var/log/messages'), '');
    agent = await installFakeAgent(root, '1.300071.0', {
      [NAMES.KernLogConfiguration]: JSON.stringify(kernelLogAgentConfiguration('kern-log', '/lab/kernel')),
      [NAMES.MessagesConfiguration]: JSON.stringify(kernelLogAgentConfiguration('messages', '/lab/kernel')),
      [NAMES.JournaldConfiguration]: JSON.stringify(kernelLogAgentConfiguration('journald', '/lab/kernel')),
    });
    // A process whose comm is rsyslogd: the kernel names it after the executable file.
    const rsyslogd = join(work, 'rsyslogd');
    await copyFile('/bin/sleep', rsyslogd);
    await chmod(rsyslogd, 0o755);
    daemon = spawn(rsyslogd, ['600'], { stdio: 'ignore' });
  });
  afterAll(async () => {
    daemon?.kill('SIGKILL');
    await hosts?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const run = () =>
    runDocument({
      name: 'ship-kernel-log',
      parameters: { ...NAMES, AgentWaitSeconds: '0' },
      netns: hosts.instance,
      env: { CONNTRACK_RESPONDER_ROOT: root },
    });

  it('ships kern.log alone on a host whose syslog daemon writes kern.log and messages, and is idempotent', async () => {
    const first = await run();
    expect(first.status, first.stderr).toBe('Success');
    expect(first.json).toMatchObject({
      status: 'changed',
      source: 'kern-log',
      configuration: NAMES.KernLogConfiguration,
      restarted: true,
    });
    const second = await run();
    expect(second.json).toMatchObject({ status: 'unchanged', source: 'kern-log', restarted: false });
    expect(Object.keys(await agent.appended())).toEqual([NAMES.KernLogConfiguration]);
  });

  it('moves to messages when kern.log is gone, removing the kern.log configuration', async () => {
    await rm(join(root, 'var/log/kern.log'));
    const result = await run();
    expect(result.json).toMatchObject({
      status: 'changed',
      source: 'messages',
      removed: [NAMES.KernLogConfiguration],
    });
    expect(Object.keys(await agent.appended())).toEqual([NAMES.MessagesConfiguration]);
  });

  it('is refused by the executor with a parameter outside its pattern, before anything runs', async () => {
    await expect(
      runDocument({
        name: 'ship-kernel-log',
        parameters: { ...NAMES, KernLogConfiguration: 'AmazonCloudWatch-x\n' },
        netns: hosts.instance,
        env: { CONNTRACK_RESPONDER_ROOT: root },
      }),
    ).rejects.toThrow(/KernLogConfiguration/);
  });
});
