import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFile } from '../../../functions/local/exec.js';
import { kernelLogAgentConfiguration } from '../../../infra/constructs/kernel-log-shipping.js';
import { type FakeAgent, installFakeAgent } from '../../support/cloudwatch-agent.js';

/**
 * ship-kernel-log.sh's choices on made-up hosts: CONNTRACK_RESPONDER_ROOT holds the host's files
 * and the stand-in agent (test/support/cloudwatch-agent.ts), CONNTRACK_RESPONDER_PROC a /proc with
 * only the daemons each case runs. test/lab/ship-kernel-log.test.ts runs it through the SSM
 * executor against the machine's real /proc.
 */

const SCRIPT = fileURLToPath(new URL('../../../runbooks/scripts/ship-kernel-log.sh', import.meta.url));
const NAMES = {
  'kern-log': 'AmazonCloudWatch-Test-kern-log',
  messages: 'AmazonCloudWatch-Test-messages',
  journald: 'AmazonCloudWatch-Test-journald',
} as const;
const STORE = Object.fromEntries(
  Object.entries(NAMES).map(([source, name]) => [
    name,
    JSON.stringify(kernelLogAgentConfiguration(source as keyof typeof NAMES, '/test/kernel')),
  ]),
);

let work: string;
let root: string;
let proc: string;

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'ctr-ship-'));
  root = join(work, 'root');
  proc = join(work, 'proc');
  await mkdir(join(root, 'var/log'), { recursive: true });
  await mkdir(proc);
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

async function host(options: {
  daemons: string[];
  files: string[];
  agent?: string;
}): Promise<FakeAgent | null> {
  for (const [index, daemon] of options.daemons.entries()) {
    await mkdir(join(proc, String(100 + index)));
    await writeFile(join(proc, String(100 + index), 'comm'), `${daemon}\n`);
  }
  for (const file of options.files) await writeFile(join(root, file), 'Nov 22 01:54:33 host kernel: hello\n');
  return options.agent === undefined ? null : installFakeAgent(root, options.agent, STORE);
}

async function run(parameters: Record<string, string> = {}) {
  const result = await execFile('bash', [SCRIPT], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      SSM_KernLogConfiguration: NAMES['kern-log'],
      SSM_MessagesConfiguration: NAMES.messages,
      SSM_JournaldConfiguration: NAMES.journald,
      SSM_AgentWaitSeconds: '0',
      ...parameters,
      CONNTRACK_RESPONDER_ROOT: root,
      CONNTRACK_RESPONDER_PROC: proc,
    },
    allowFailure: true,
    timeoutMs: 30_000,
  });
  return { ...result, json: JSON.parse(result.stdout) as Record<string, unknown> };
}

describe('ship-kernel-log picks exactly one source', () => {
  it('Debian 11 (rsyslog writing kern.log and messages): kern.log only, then nothing on a rerun', async () => {
    const agent = (await host({
      daemons: ['systemd-journal', 'rsyslogd', 'sshd'],
      files: ['var/log/kern.log', 'var/log/messages', 'var/log/syslog'],
      agent: '1.300071.0b1234',
    })) as FakeAgent;
    // Act
    const first = await run();
    const second = await run();
    // Assess
    expect(first.code, first.stderr).toBe(0);
    expect(first.json).toEqual({
      document: 'ship-kernel-log',
      status: 'changed',
      reasons: [],
      source: 'kern-log',
      configuration: NAMES['kern-log'],
      agentVersion: '1.300071.0b1234',
      removed: [],
      restarted: true,
    });
    expect(await agent.appended()).toEqual({ [NAMES['kern-log']]: STORE[NAMES['kern-log']] });
    expect(second.json).toMatchObject({ status: 'unchanged', source: 'kern-log', restarted: false });
    expect(await agent.calls()).toEqual([
      `-a append-config -m ec2 -c ssm:${NAMES['kern-log']}`,
      '-a status',
      '-a stop',
      '-a start -m ec2',
      `-a append-config -m ec2 -c ssm:${NAMES['kern-log']}`,
      '-a status',
    ]);
  });

  it('Amazon Linux 2 (rsyslog writing messages, journald beside it): messages, not the journal', async () => {
    const agent = (await host({
      daemons: ['systemd-journal', 'rsyslogd'],
      files: ['var/log/messages'],
      agent: '1.247350.0',
    })) as FakeAgent;
    const result = await run();
    expect(result.json).toMatchObject({
      status: 'changed',
      source: 'messages',
      configuration: NAMES.messages,
    });
    expect(Object.keys(await agent.appended())).toEqual([NAMES.messages]);
  });

  it('Amazon Linux 2023 (journald only): the journal, with an agent that has the collector', async () => {
    const agent = (await host({ daemons: ['systemd-journal'], files: [], agent: '1.300070.0' })) as FakeAgent;
    const result = await run();
    expect(result.json).toMatchObject({ status: 'changed', source: 'journald' });
    expect(Object.keys(await agent.appended())).toEqual([NAMES.journald]);
  });

  it('a stale file without a syslog daemon does not count: the journal it is', async () => {
    await host({ daemons: ['systemd-journal'], files: ['var/log/kern.log'], agent: '1.300070.0' });
    expect((await run()).json).toMatchObject({ source: 'journald' });
  });

  it('a host that changed (rsyslog removed): the old configuration goes, the new one comes', async () => {
    const agent = (await host({
      daemons: ['rsyslogd'],
      files: ['var/log/kern.log'],
      agent: '1.300070.0',
    })) as FakeAgent;
    expect((await run()).json).toMatchObject({ source: 'kern-log' });
    await rm(join(proc, '100'), { recursive: true });
    await mkdir(join(proc, '300'));
    await writeFile(join(proc, '300', 'comm'), 'systemd-journal\n');
    // Act
    const result = await run();
    // Assess
    expect(result.json).toMatchObject({
      status: 'changed',
      source: 'journald',
      removed: [NAMES['kern-log']],
      restarted: true,
    });
    expect(Object.keys(await agent.appended())).toEqual([NAMES.journald]);
  });

  it('restarts an agent that is not running even when nothing changed', async () => {
    const agent = (await host({
      daemons: ['rsyslogd'],
      files: ['var/log/messages'],
      agent: '1.300070.0',
    })) as FakeAgent;
    await run();
    await writeFile(join(agent.directory, 'state'), 'stopped\n');
    expect((await run()).json).toMatchObject({ status: 'changed', restarted: true });
  });
});

describe('ship-kernel-log refuses or fails with a reason, changing nothing', () => {
  it('refuses the journal with an agent older than the journald collector', async () => {
    const agent = (await host({ daemons: ['systemd-journal'], files: [], agent: '1.300069.0' })) as FakeAgent;
    const result = await run();
    expect(result.code).toBe(3);
    expect(result.json).toMatchObject({ status: 'refused', source: 'journald', agentVersion: '1.300069.0' });
    expect(String((result.json.reasons as string[])[0])).toMatch(
      /agent 1\.300069\.0 cannot ship journald \(needs 1\.300070\.0 or newer\).*or install rsyslog/,
    );
    expect(await agent.calls()).toEqual([]);
  });

  it('refuses a host with no syslog daemon and no journald', async () => {
    const agent = (await host({
      daemons: ['sshd'],
      files: ['var/log/messages'],
      agent: '1.300070.0',
    })) as FakeAgent;
    const result = await run();
    expect(result.code).toBe(3);
    expect(result.json).toMatchObject({ status: 'refused', source: null });
    expect(String((result.json.reasons as string[])[0])).toMatch(/nothing to read kernel messages from/);
    expect(await agent.calls()).toEqual([]);
  });

  it('fails naming the install association when the agent never appears', async () => {
    await host({ daemons: ['rsyslogd'], files: ['var/log/kern.log'] });
    const result = await run();
    expect(result.code).toBe(1);
    expect(String((result.json.reasons as string[])[0])).toMatch(
      /CloudWatch agent is not installed .*AWS-ConfigureAWSPackage, AmazonCloudWatchAgent/,
    );
  });

  it('fails when the agent cannot fetch the configuration, and restarts nothing', async () => {
    const agent = (await host({
      daemons: ['rsyslogd'],
      files: ['var/log/kern.log'],
      agent: '1.300070.0',
    })) as FakeAgent;
    const result = await run({ SSM_KernLogConfiguration: 'AmazonCloudWatch-NotThere' });
    expect(result.code).toBe(1);
    expect(String((result.json.reasons as string[])[0])).toMatch(
      /the agent refused the kern-log configuration/,
    );
    expect(result.stderr).toContain('ParameterNotFound: AmazonCloudWatch-NotThere');
    expect(await agent.calls()).toEqual(['-a append-config -m ec2 -c ssm:AmazonCloudWatch-NotThere']);
  });

  it.each([
    ['SSM_KernLogConfiguration', 'my-config'],
    ['SSM_MessagesConfiguration', 'AmazonCloudWatch-a/b'],
    ['SSM_JournaldConfiguration', 'AmazonCloudWatch-x;reboot'],
    ['SSM_AgentWaitSeconds', '601'],
    ['SSM_AgentWaitSeconds', '60\n'],
  ])('refuses %s=%j before looking at the host', async (name, value) => {
    const agent = (await host({
      daemons: ['rsyslogd'],
      files: ['var/log/kern.log'],
      agent: '1.300070.0',
    })) as FakeAgent;
    const result = await run({ [name]: value });
    expect(result.code).toBe(3);
    expect(result.json).toMatchObject({ status: 'refused', source: null });
    expect(await agent.calls()).toEqual([]);
  });
});
