import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Template } from 'aws-cdk-lib/assertions';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolvePolicy, withMode } from '../../../functions/core/plan/index.js';
import type { RunDocumentRequest, RunDocumentResult } from '../../../functions/local/ssm-executor.js';
import type { AslMachine } from '../../../functions/local/twin/asl.js';
import { type LocalApproval, localFunctions } from '../../../functions/local/twin/local-functions.js';
import { localSsm } from '../../../functions/local/twin/local-ssm.js';
import { runWorkflowLocally } from '../../../functions/local/twin/runner.js';
import { onlyStateMachine } from '../../../functions/local/twin/template.js';
import { workflowTestStack } from '../../infra/support/workflow-stack.js';
import { ReportBuilder } from '../../support/report-builder.js';

/**
 * The whole chain without a kernel: the synthesized definition, the real decision, gate, verify,
 * approval and notification code (the local twin's bindings), and a scripted host that answers
 * collect-diagnostics with seed 003's numbers and accepts every change.
 */

const definition = onlyStateMachine(Template.fromStack(workflowTestStack().stack).toJSON())
  .definition as unknown as AslMachine;

const full = () =>
  ReportBuilder.healthy()
    .host({ netnsInode: '4026532177' })
    .table({ max: 262_144, count: 262_144 })
    .sysctl('tcp_timeout_time_wait', 30)
    .states({ 'tcp TIME_WAIT': 200_000, 'tcp ESTABLISHED': 62_144 })
    .localPort('tcp', 8080, 210_000, 198_000)
    .listener('tcp', 8080, 'nginx')
    .drops(2_500);

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

/** A host whose table is full until a raise-limits change lands (or forever, when `stubborn`). */
function scriptedHost(stubborn = false) {
  let raised = false;
  return async (request: RunDocumentRequest): Promise<RunDocumentResult> => {
    if (request.name === 'collect-diagnostics') {
      const report = raised && !stubborn ? full().table({ max: 524_288, count: 150_000 }).drops(0) : full();
      return success(report.build());
    }
    if (request.name === 'raise-limits') raised = true;
    if (request.name === 'rollback') raised = false;
    return success({
      document: request.name,
      changeId: request.parameters.ChangeId,
      status: 'applied',
      reasons: [],
    });
  };
}

let outDir: string;
beforeEach(async () => {
  outDir = await mkdtemp(join(tmpdir(), 'workflow-chain-'));
});
afterEach(async () => {
  await rm(outDir, { recursive: true, force: true });
});

async function respondTo(options: { mode?: 'auto'; approval?: LocalApproval; stubborn?: boolean }) {
  const policy = options.mode ? withMode(resolvePolicy({}), options.mode) : resolvePolicy({});
  const ssm = localSsm({
    netns: 'ctr-chain-i',
    pollMs: 5,
    run: scriptedHost(options.stubborn),
    online: async () => true,
  });
  let evidenceState: unknown;
  const execution = runWorkflowLocally({
    definition,
    input: {
      incidentId: 'local-chain-1',
      instanceId: 'ctr-chain-i',
      kind: 'table-full',
      mode: 'auto',
      trigger: { netns: '4026532177', dropLines: 4, suppressed: 10, events: [] },
    },
    ssm,
    lambdas: localFunctions({
      outDir,
      settings: { policy, soakSeconds: 0 },
      approval: options.approval ?? 'reject',
      stdin: new PassThrough(),
      stdout: new PassThrough(),
      writeEvidence: async (state) => {
        evidenceState = state;
        return { location: join(outDir, 'bundle'), manifestSha256: 'f'.repeat(64), signature: null };
      },
    }),
    soakMs: 0,
    retryIntervalMs: 0,
  });
  const ended = await execution.result;
  if ('error' in ended) throw ended.error;
  // biome-ignore lint/suspicious/noExplicitAny: the final state is probed field by field
  const state = ended.output as Record<string, any>;
  return {
    state,
    evidenceState,
    sent: ssm
      .commands()
      .map((command) => `${command.document}${command.parameters.Persist === 'true' ? ' (persist)' : ''}`),
  };
}

describe('the workflow with the real decision code on a scripted host', () => {
  it('raises the limit and NOTRACKs the churning port in auto mode, verifies, persists', async () => {
    const run = await respondTo({ mode: 'auto' });
    expect(run.state.outcome.status).toBe('remediated');
    expect(run.state.verification.held).toBe(true);
    expect(run.sent).toEqual([
      'collect-diagnostics',
      'raise-limits',
      'notrack-ports',
      'collect-diagnostics',
      'raise-limits (persist)',
      'notrack-ports (persist)',
    ]);
    const notification = JSON.parse(await readFile(join(outDir, 'notifications', 'sns-01.json'), 'utf8'));
    expect(notification.Subject).toBe('conntrack-responder: remediated on ctr-chain-i (local-chain-1)');
    expect(notification.MessageAttributes.outcome).toEqual({ DataType: 'String', StringValue: 'remediated' });
    // The bundle is written before the notification, which carries its digest.
    expect(run.evidenceState).not.toHaveProperty('notification');
    expect(run.state.notification).toMatchObject({ channel: 'file' });
    expect(notification.Message).toContain(`Manifest sha256: ${'f'.repeat(64)}`);
  });

  it('rolls both changes back when the table is still full after the soak', async () => {
    const run = await respondTo({ mode: 'auto', stubborn: true });
    expect(run.state.outcome.status).toBe('rolled-back');
    expect(run.state.verification.reasons.join(' ')).toMatch(/still dropped/);
    expect(run.sent.slice(-2)).toEqual(['rollback', 'rollback']);
    expect(
      run.state.rollback.map((step: { request: { changeId: string } }) => step.request.changeId),
    ).toEqual(['local-chain-1-notrack-tcp-inbound', 'local-chain-1-limits']);
  });

  it('asks for approval under the default policy and changes nothing when rejected', async () => {
    const run = await respondTo({ approval: 'reject' });
    expect(run.state.outcome.status).toBe('rejected');
    expect(run.sent).toEqual(['collect-diagnostics']);
    const files = await readdir(join(outDir, 'approvals'));
    expect(files.filter((file) => file.endsWith('.request.json'))).toHaveLength(1);
    for (const file of files) {
      expect(await readFile(join(outDir, 'approvals', file), 'utf8')).not.toContain('local-task-token');
    }
  });

  it('applies the approved plan when approved by flag', async () => {
    const run = await respondTo({ approval: 'approve' });
    expect(run.state.approval).toMatchObject({ decision: 'approved', approver: { via: 'flag' } });
    expect(run.state.outcome.status).toBe('remediated');
  });
});
