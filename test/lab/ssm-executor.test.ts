import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../functions/cli/main.js';
import { ParameterValidationError } from '../../functions/core/runbook/document.js';
import { execFile } from '../../functions/local/exec.js';
import { createLabHosts, type LabHosts, namespaceInode } from '../../functions/local/netns.js';
import { type RunDocumentRequest, runDocument } from '../../functions/local/ssm-executor.js';
import { labUnavailable } from './support/prerequisites.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/runbooks/', import.meta.url));

describe.skipIf(labUnavailable)('local SSM executor (fixture document echo-env)', () => {
  let hosts: LabHosts;
  let stateDir: string;
  let request: (parameters: Record<string, string>) => RunDocumentRequest;

  beforeAll(async () => {
    hosts = await createLabHosts('ssm');
    stateDir = await mkdtemp(join(tmpdir(), 'ctr-ssm-state-'));
    request = (parameters) => ({
      name: 'echo-env',
      parameters,
      netns: hosts.instance,
      env: { CONNTRACK_RESPONDER_STATE_DIR: stateDir, CONNTRACK_RESPONDER_ROOT: '/tmp/lab-root' },
      runbooks: { directory: FIXTURES },
    });
  });
  afterAll(async () => {
    await hosts?.destroy();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await rm(join(stateDir, 'echo-env.ran'), { force: true });
  });

  it('runs the script in the namespace with parameters as SSM_<Name> and the extra env', async () => {
    const result = await runDocument(request({ Message: 'hi there, lab', Mode: 'print' }));
    expect(result).toMatchObject({
      status: 'Success',
      statusDetails: 'Success',
      exitCode: 0,
      stdoutTruncated: false,
    });
    expect(result.json).toEqual({
      document: 'echo-env',
      message: 'hi there, lab',
      mode: 'print',
      netns: `net:[${await namespaceInode(hosts.instance)}]`,
      stateDir,
      root: '/tmp/lab-root',
      ssmVariables: 2,
    });
    expect(existsSync(join(stateDir, 'echo-env.ran'))).toBe(true);
  });

  it('applies parameter defaults', async () => {
    const result = await runDocument(request({}));
    expect(result.parameters).toEqual({ Message: 'hello', Mode: 'print' });
    expect(result.json).toMatchObject({ message: 'hello', mode: 'print' });
  });

  it('does not pass its own SSM_* environment through to the script', async () => {
    process.env.SSM_Leaked = 'x';
    try {
      const result = await runDocument(request({}));
      expect(result.json).toMatchObject({ ssmVariables: 2 });
    } finally {
      delete process.env.SSM_Leaked;
    }
  });

  it('reports a non-zero exit as Failed with its code and stderr', async () => {
    const result = await runDocument(request({ Mode: 'fail' }));
    expect(result).toMatchObject({ status: 'Failed', statusDetails: 'Failed', exitCode: 3 });
    expect(result.stderr).toContain('failing on purpose');
    expect(result.json).toBeUndefined();
  });

  it("enforces the step's timeoutSeconds and kills the whole process group", async () => {
    const result = await runDocument(request({ Mode: 'sleep' }));
    expect(result).toMatchObject({ status: 'TimedOut', statusDetails: 'ExecutionTimedOut', exitCode: -1 });
    expect(result.durationMs).toBeGreaterThanOrEqual(1900);
    expect(result.durationMs).toBeLessThan(10_000);
    const { stdout } = await execFile('ip', ['netns', 'pids', hosts.instance]);
    expect(stdout.trim()).toBe('');
  });

  it('lets the caller shorten the timeout', async () => {
    const result = await runDocument({ ...request({ Mode: 'sleep' }), timeoutMs: 300 });
    expect(result.status).toBe('TimedOut');
    expect(result.durationMs).toBeLessThan(1900);
  });

  it('truncates output like GetCommandInvocation (24,000 / 8,000 characters) and keeps the full copy', async () => {
    const result = await runDocument(request({ Mode: 'flood' }));
    expect(result.status).toBe('Success');
    expect(result.stdout).toHaveLength(24_000);
    expect(result.stderr).toHaveLength(8_000);
    expect(result).toMatchObject({ stdoutTruncated: true, stderrTruncated: true });
    expect(result.fullStdout).toHaveLength(30_000);
    expect(result.fullStderr).toHaveLength(10_000);
  });

  it.each([['8080; reboot'], ['$(touch /tmp/pwned)'], ['`id`'], ['a\nb']])(
    'never runs bash for an invalid value (%j)',
    async (message) => {
      await expect(runDocument(request({ Message: message }))).rejects.toThrow(ParameterValidationError);
      await expect(runDocument(request({ Message: message }))).rejects.toThrow(/parameter 'Message'/);
      expect(existsSync(join(stateDir, 'echo-env.ran'))).toBe(false);
    },
  );

  it('never runs bash for an unknown or a disallowed parameter', async () => {
    await expect(runDocument(request({ Mode: 'reboot' }))).rejects.toThrow(/parameter 'Mode'.*not one of/);
    await expect(runDocument(request({ Command: 'id' }))).rejects.toThrow(/unknown parameter 'Command'/);
    expect(existsSync(join(stateDir, 'echo-env.ran'))).toBe(false);
  });

  it('refuses extra environment that would pose as a parameter', async () => {
    await expect(runDocument({ ...request({}), env: { SSM_Mode: 'fail' } })).rejects.toThrow(/SSM_\* names/);
    expect(existsSync(join(stateDir, 'echo-env.ran'))).toBe(false);
  });

  it('names a document that does not exist', async () => {
    await expect(runDocument({ ...request({}), name: 'no-such-document' })).rejects.toThrow(
      /document 'no-such-document' not found/,
    );
    await expect(runDocument({ ...request({}), name: '../ssm/echo-env' })).rejects.toThrow(
      /invalid document name/,
    );
  });
});

describe.skipIf(labUnavailable)('conntrack-responder run-document (CLI over the executor)', () => {
  it('runs the document in the namespace and exits with the SSM status', async () => {
    const hosts = await createLabHosts('ssmcli');
    try {
      const out: string[] = [];
      const stdout = new PassThrough();
      stdout.on('data', (chunk) => out.push(String(chunk)));
      const io = { stdin: new PassThrough(), stdout, stderr: new PassThrough() };
      const base = ['run-document', 'echo-env', '--netns', hosts.instance, '--runbooks', FIXTURES];
      const stateDir = await mkdtemp(join(tmpdir(), 'ctr-ssm-cli-'));
      const env = ['--env', `CONNTRACK_RESPONDER_STATE_DIR=${stateDir}`];
      try {
        expect(await main([...base, ...env, '--param', 'Message=from the cli', '--json'], io)).toBe(0);
        expect(JSON.parse(out.join(''))).toMatchObject({
          status: 'Success',
          json: { message: 'from the cli' },
        });
        expect(await main([...base, ...env, '--param', 'Mode=fail'], io)).toBe(1);
        expect(await main([...base, ...env, '--param', 'Mode=sleep', '--timeout-seconds', '1'], io)).toBe(
          124,
        );
      } finally {
        await rm(stateDir, { recursive: true, force: true });
      }
    } finally {
      await hosts.destroy();
    }
  });
});
