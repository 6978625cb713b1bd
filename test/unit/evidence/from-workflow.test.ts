import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Template } from 'aws-cdk-lib/assertions';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildEvidenceBundle } from '../../../functions/core/evidence/bundle.js';
import { evidenceFromWorkflow } from '../../../functions/core/evidence/from-workflow.js';
import type { IncidentEvidence } from '../../../functions/core/evidence/incident.js';
import { toBuffer, verifyBundleFiles } from '../../../functions/core/evidence/manifest.js';
import { buildTimeline } from '../../../functions/core/evidence/timeline.js';
import { GUARDRAIL_NAMES, GUARDRAIL_STEPS } from '../../../functions/core/guardrails/decisions.js';
import { RESPONSE_MODES } from '../../../functions/core/incident/settings.js';
import { resolvePolicy, withMode } from '../../../functions/core/plan/index.js';
import { ALERT_KINDS } from '../../../functions/core/plan/types.js';
import { WorkflowIncidentSchema } from '../../../functions/core/workflow/incident.js';
import { STATE } from '../../../functions/core/workflow/state-names.js';
import type { RunDocumentRequest, RunDocumentResult } from '../../../functions/local/ssm-executor.js';
import type { AslMachine } from '../../../functions/local/twin/asl.js';
import { type LocalApproval, localFunctions } from '../../../functions/local/twin/local-functions.js';
import { localSsm } from '../../../functions/local/twin/local-ssm.js';
import { type LocalRun, runWorkflowLocally } from '../../../functions/local/twin/runner.js';
import { onlyStateMachine } from '../../../functions/local/twin/template.js';
import { workflowTestStack } from '../../infra/support/workflow-stack.js';
import { ReportBuilder } from '../../support/report-builder.js';

/**
 * The evidence of real workflow runs: the synthesized definition under the local interpreter, the
 * real decision/gate/verify code, a scripted host; the "Write the evidence bundle" task builds the
 * bundle from the state it receives and the execution history, exactly as the twin and the Lambda do.
 */

const definition = onlyStateMachine(Template.fromStack(workflowTestStack().stack).toJSON())
  .definition as unknown as AslMachine;

const full = () =>
  ReportBuilder.healthy()
    .table({ max: 262_144, count: 262_144 })
    .sysctl('tcp_timeout_time_wait', 30)
    .states({ 'tcp TIME_WAIT': 200_000, 'tcp ESTABLISHED': 62_144 })
    .localPort('tcp', 8080, 210_000, 198_000)
    .listener('tcp', 8080, 'nginx')
    .drops(2_500);

function success(json: unknown): RunDocumentResult {
  const stdout = typeof json === 'string' ? json : JSON.stringify(json);
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

function scriptedHost(options: { stubborn?: boolean; garbledAfter?: boolean }) {
  let raised = false;
  return async (request: RunDocumentRequest): Promise<RunDocumentResult> => {
    if (request.name === 'collect-diagnostics') {
      if (raised && options.garbledAfter) return success('not json at all');
      const report =
        raised && !options.stubborn ? full().table({ max: 524_288, count: 150_000 }).drops(0) : full();
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
  outDir = await mkdtemp(join(tmpdir(), 'evidence-workflow-'));
});
afterEach(async () => {
  await rm(outDir, { recursive: true, force: true });
});

const firstDrop = Date.now() - 5_000;

async function respond(options: {
  auto?: boolean;
  approval?: LocalApproval;
  stubborn?: boolean;
  garbledAfter?: boolean;
}) {
  const policy = options.auto ? withMode(resolvePolicy({}), 'auto') : resolvePolicy({});
  const ssm = localSsm({
    netns: 'ctr-ev-i',
    pollMs: 5,
    run: scriptedHost(options),
    online: async () => true,
  });
  let evidence: IncidentEvidence | undefined;
  let execution: LocalRun | undefined;
  execution = runWorkflowLocally({
    definition,
    input: {
      incidentId: 'inc-wf-1',
      instanceId: 'ctr-ev-i',
      kind: 'table-full',
      mode: 'auto',
      trigger: {
        netns: '4026532177',
        dropLines: 4,
        suppressed: 10,
        events: [
          {
            timestamp: firstDrop + 1_000,
            message: 'nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet',
          },
          {
            timestamp: firstDrop,
            message: 'nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet',
          },
        ],
      },
    },
    ssm,
    lambdas: localFunctions({
      outDir,
      settings: { policy, soakSeconds: 0 },
      approval: options.approval ?? 'reject',
      stdin: new PassThrough(),
      stdout: new PassThrough(),
      writeEvidence: async (state) => {
        evidence = evidenceFromWorkflow({
          state,
          history: execution?.history() ?? [],
          closedAt: new Date().toISOString(),
        });
        return { location: 'memory' };
      },
    }),
    soakMs: 0,
    retryIntervalMs: 0,
  });
  const ended = await execution.result;
  if ('error' in ended) throw ended.error;
  if (!evidence) throw new Error('the workflow never wrote its evidence');
  return evidence;
}

const steps = (evidence: IncidentEvidence) =>
  evidence.commands.map(
    (command) => `${command.step} ${command.document}${command.actionId ? ` ${command.actionId}` : ''}`,
  );

describe('evidenceFromWorkflow on real workflow runs', () => {
  it('records a remediated incident completely, and its bundle verifies', async () => {
    const evidence = await respond({ auto: true });
    expect(evidence.outcome.status).toBe('remediated');
    expect(evidence.before?.conntrack.max).toBe(262_144);
    expect(evidence.after?.conntrack.max).toBe(524_288);
    expect(steps(evidence)).toEqual([
      'collect-before collect-diagnostics',
      'apply raise-limits limits',
      'apply notrack-ports notrack-tcp-inbound',
      'collect-after collect-diagnostics',
      'persist raise-limits limits',
      'persist notrack-ports notrack-tcp-inbound',
    ]);
    const limits = evidence.plan?.actions.find((action) => action.id === 'limits');
    expect(evidence.commands[1]?.parameters).toEqual(limits?.parameters);
    expect(evidence.commands[4]?.parameters).toEqual(limits?.persistParameters);
    expect(evidence.commands.every((command) => command.finishedAt !== null && command.commandId)).toBe(true);
    expect(evidence.verification?.passed).toBe(true);

    const timeline = buildTimeline(evidence);
    expect(timeline.events.map((event) => event.key)).toEqual([
      'first-drop',
      'detected',
      'diagnosed',
      'remediated',
      'verified',
      'closed',
    ]);
    expect(timeline.at['first-drop']).toBe(new Date(firstDrop).toISOString());
    expect(timeline.problems).toEqual([]);

    const bundle = buildEvidenceBundle(evidence);
    expect(
      verifyBundleFiles(new Map([...bundle.files].map(([path, content]) => [path, toBuffer(content)]))).ok,
    ).toBe(true);
    expect(String(bundle.files.get('postmortem.md'))).toContain('| applied and persisted |');
    expect((evidence.executionHistory as unknown[]).length).toBeGreaterThan(10);

    // Which guardrail decided what, in the order they did.
    expect(evidence.guardrails?.map((d) => `${d.step} ${d.guardrail} ${d.effect}`)).toEqual([
      'before-ssm instance-policy pass',
      'before-ssm preconditions pass',
      'before-ssm change-calendar pass',
      'before-ssm fleet-breaker pass',
      'before-ssm remediation-cooldown pass',
      'before-change concurrency grant',
      'end concurrency release',
      'end remediation-cooldown pass',
    ]);
    expect(JSON.parse(String(bundle.files.get('guardrails.json')))).toEqual(evidence.guardrails);
    expect(String(bundle.files.get('postmortem.md'))).toMatch(
      /## Guardrails[\s\S]*\| before-change \| concurrency \| grant \| remediation slot taken/,
    );
  });

  it('records a rollback against the actions it undid', async () => {
    const evidence = await respond({ auto: true, stubborn: true });
    expect(evidence.outcome.status).toBe('rolled-back');
    expect(steps(evidence).slice(-2)).toEqual([
      'rollback rollback notrack-tcp-inbound',
      'rollback rollback limits',
    ]);
    expect(buildTimeline(evidence).events.map((event) => event.key)).toContain('verification-failed');
    const postmortem = String(buildEvidenceBundle(evidence).files.get('postmortem.md'));
    expect(postmortem).toContain('| applied, then rolled back |');
    expect(postmortem).toContain('packets are still dropped');
  });

  it('records who rejected the plan, and that nothing ran', async () => {
    const evidence = await respond({ approval: 'reject' });
    expect(evidence.outcome.status).toBe('rejected');
    expect(evidence.approvals).toMatchObject([
      {
        decision: 'rejected',
        channel: 'flag',
        by: process.env.SUDO_USER ?? process.env.USER ?? 'local-operator',
        actionIds: ['limits', 'notrack-tcp-inbound'],
      },
    ]);
    expect(steps(evidence)).toEqual(['collect-before collect-diagnostics']);
    expect(String(buildEvidenceBundle(evidence).files.get('postmortem.md'))).toMatch(
      /\| approve \| rejected by /,
    );
  });

  it('still makes a bundle when the after report is unreadable, and says so', async () => {
    const evidence = await respond({ auto: true, garbledAfter: true });
    expect(evidence.after).toBeNull();
    expect(evidence.notes).toContain(
      'the after diagnostics are not JSON; their raw output is kept with the command',
    );
    const bundle = buildEvidenceBundle(evidence);
    expect(bundle.files.has('errors.json')).toBe(true);
    expect(String(bundle.files.get('postmortem.md'))).toContain('## Errors and gaps');
  });
});

describe('evidenceFromWorkflow and the guardrails', () => {
  const state = (decisions: unknown) => ({
    incident: {
      incidentId: 'inc-g-1',
      instanceId: 'i-0abc',
      kind: 'table-full',
      trigger: { netns: null, dropLines: 1, suppressed: 0, events: [] },
    },
    outcome: { status: 'no-host-change', hostChanged: false, summary: 'Opted out.' },
    guardrails: { next: 'opted-out', mode: 'dry-run', decisions },
  });

  it('keeps well-formed decisions, notes malformed ones, and escapes what a tag said', () => {
    const evidence = evidenceFromWorkflow({
      state: state([
        {
          guardrail: 'instance-policy',
          step: 'before-ssm',
          effect: 'cap-mode',
          mode: 'approve',
          detail:
            "EC2 tag conntrack-responder:mode is '| <b>yes</b>', which is not one of off, dry-run, approve, auto",
          at: '2026-03-13T20:22:00.000Z',
        },
        { guardrail: 'made-up', effect: 'pass' },
      ]),
      history: [],
      closedAt: '2026-03-13T20:23:00.000Z',
    });
    expect(evidence.guardrails).toHaveLength(1);
    expect(evidence.notes).toContain('guardrails.decisions[1] is malformed and was left out');
    const postmortem = String(buildEvidenceBundle(evidence).files.get('postmortem.md'));
    const row = postmortem.split('\n').find((line) => line.startsWith('| before-ssm | instance-policy'));
    expect(row).toBeDefined();
    expect(row).not.toContain('<b>');
    expect(row?.split(' | ')).toHaveLength(4);
  });

  it('writes no guardrails file when the guardrails never ran', () => {
    const evidence = evidenceFromWorkflow({
      state: state(undefined),
      history: [],
      closedAt: '2026-03-13T20:23:00.000Z',
    });
    expect(evidence.guardrails).toEqual([]);
    expect(buildEvidenceBundle(evidence).files.has('guardrails.json')).toBe(false);
  });

  it('keeps the decision of every guardrail, at every step and in every mode the guardrails know', () => {
    const decisions = GUARDRAIL_NAMES.flatMap((guardrail) =>
      GUARDRAIL_STEPS.flatMap((step) =>
        RESPONSE_MODES.map((mode) => ({
          guardrail,
          step,
          effect: 'cap-mode',
          mode,
          detail: `${guardrail} at ${step} capped to ${mode}`,
          at: '2026-03-13T20:22:00.000Z',
        })),
      ),
    );
    expect(decisions).toHaveLength(GUARDRAIL_NAMES.length * GUARDRAIL_STEPS.length * RESPONSE_MODES.length);
    const evidence = evidenceFromWorkflow({
      state: state(decisions),
      history: [],
      closedAt: '2026-03-13T20:23:00.000Z',
    });
    expect((evidence.notes ?? []).filter((note) => note.startsWith('guardrails.'))).toEqual([]);
    expect(evidence.guardrails).toEqual(decisions);
    expect(JSON.parse(String(buildEvidenceBundle(evidence).files.get('guardrails.json')))).toEqual(decisions);
  });

  it('makes a bundle for every kind of incident the workflow takes', () => {
    for (const kind of ALERT_KINDS) {
      const incident = { ...state(undefined).incident, kind };
      expect(WorkflowIncidentSchema.safeParse(incident).success).toBe(true);
      const evidence = evidenceFromWorkflow({
        state: { ...state(undefined), incident },
        history: [],
        closedAt: '2026-03-13T20:23:00.000Z',
      });
      expect(evidence.alert.kind).toBe(kind);
      expect(buildEvidenceBundle(evidence).files.has('postmortem.md')).toBe(true);
    }
  });
});

describe('evidenceFromWorkflow on the AWS history form', () => {
  const incident = {
    incidentId: 'inc-aws-1',
    instanceId: 'i-0abc',
    kind: 'table-full',
    trigger: {
      netns: null,
      dropLines: 3,
      suppressed: 0,
      events: [{ timestamp: 1_700_000_000_000, message: 'table full' }],
    },
  };
  const applied = [
    {
      request: {
        id: 'limits',
        document: 'raise-limits',
        changeId: 'inc-aws-1-limits',
        parameters: { ChangeId: ['inc-aws-1-limits'], MaxEntries: ['524288'] },
      },
      command: { commandId: 'c-1' },
      invocation: { status: 'Success', responseCode: 0, stdout: '{}', stderr: '' },
    },
  ];

  it('reads state times from GetExecutionHistory events', () => {
    const evidence = evidenceFromWorkflow({
      state: { incident, applied, outcome: { status: 'failed', hostChanged: true, summary: 'x' } },
      history: [
        { timestamp: new Date('2026-11-21T10:00:00Z'), type: 'ExecutionStarted', id: 1 },
        {
          timestamp: new Date('2026-11-21T10:00:30Z'),
          type: 'MapStateEntered',
          stateEnteredEventDetails: { name: STATE.applyRemediation },
        },
        {
          timestamp: new Date('2026-11-21T10:00:34Z'),
          type: 'MapStateExited',
          stateExitedEventDetails: { name: STATE.applyRemediation },
        },
      ],
      closedAt: '2026-11-21T10:01:00.000Z',
    });
    expect(evidence.detectedAt).toBe('2026-11-21T10:00:00.000Z');
    expect(evidence.commands).toMatchObject([
      {
        step: 'apply',
        actionId: 'limits',
        parameters: { ChangeId: 'inc-aws-1-limits', MaxEntries: '524288' },
        startedAt: '2026-11-21T10:00:30.000Z',
        finishedAt: '2026-11-21T10:00:34.000Z',
        exitCode: 0,
      },
    ]);
    expect(evidence.logEvents[0]?.timestamp).toBe(new Date(1_700_000_000_000).toISOString());
  });

  it('keeps the errors the workflow caught, and notes a missing outcome', () => {
    const evidence = evidenceFromWorkflow({
      state: {
        incident,
        error: { Error: 'SsmCommandFailed', Cause: 'raise-limits: Failed, exit code 3: refused' },
      },
      history: [],
      closedAt: '2026-11-21T10:01:00.000Z',
    });
    expect(evidence.errors).toEqual([
      { where: '$.error', error: 'SsmCommandFailed', cause: 'raise-limits: Failed, exit code 3: refused' },
    ]);
    expect(evidence.outcome.status).toBe('failed');
    expect(evidence.notes).toContain('the workflow recorded no outcome');
    expect(evidence.detectedAt).toBe('2026-11-21T10:01:00.000Z');
  });

  it('refuses a state without an incident', () => {
    expect(() =>
      evidenceFromWorkflow({ state: { outcome: {} }, history: [], closedAt: '2026-11-21T10:01:00Z' }),
    ).toThrow(/no usable incident/);
  });
});
