import { Duration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { DEFAULT_GUARDRAILS } from '../../../functions/core/guardrails/settings.js';
import { runGuardrailStep } from '../../../functions/core/guardrails/steps.js';
import { STATE } from '../../../functions/core/workflow/state-names.js';
import type { RunDocumentRequest, RunDocumentResult } from '../../../functions/local/ssm-executor.js';
import type { AslMachine } from '../../../functions/local/twin/asl.js';
import { type LocalGuardrails, localGuardrails } from '../../../functions/local/twin/guardrails.js';
import { localSsm, SsmError } from '../../../functions/local/twin/local-ssm.js';
import { type LambdaBindings, runWorkflowLocally } from '../../../functions/local/twin/runner.js';
import { onlyStateMachine } from '../../../functions/local/twin/template.js';
import { workflowTestStack } from '../../infra/support/workflow-stack.js';

/**
 * The failure branches of the deployed definition, run by the local interpreter with the Task
 * states bound to scripted hosts and functions: each test drives one way an incident can go wrong
 * and checks where it ends, what ran on the host, and that it was notified and bundled.
 */

function definitionFromTemplate(approvalTimeout = Duration.minutes(30)): AslMachine {
  const { stack } = workflowTestStack({
    approvalTimeout,
    polling: { intervalSeconds: 3, maxPolls: 4, deliveryTimeoutSeconds: 60 },
  });
  return onlyStateMachine(Template.fromStack(stack).toJSON()).definition as unknown as AslMachine;
}

const definition = definitionFromTemplate();
const shortApproval = definitionFromTemplate(Duration.seconds(1));

const INSTANCE = 'ctr-test-i';

function result(
  status: RunDocumentResult['status'],
  json: Record<string, unknown>,
  exitCode = 0,
): RunDocumentResult {
  const stdout = JSON.stringify(json);
  return {
    status,
    statusDetails: status === 'TimedOut' ? 'ExecutionTimedOut' : status,
    exitCode,
    stdout,
    stderr: status === 'Success' ? '' : `${String(json.document)}: it went wrong`,
    stdoutTruncated: false,
    stderrTruncated: false,
    fullStdout: stdout,
    fullStderr: '',
    json,
    parameters: {},
    durationMs: 1,
  };
}

type Host = (request: RunDocumentRequest) => Promise<RunDocumentResult>;

/** A host on which every document succeeds, unless a test says otherwise for one of them. */
function host(overrides: Partial<Record<string, Host>> = {}): Host {
  return async (request) => {
    const override = overrides[request.name];
    if (override) return override(request);
    return result('Success', {
      document: request.name,
      changeId: request.parameters.ChangeId ?? null,
      status: 'applied',
    });
  };
}

const never = () => new Promise<never>(() => {});
const DIGEST = 'c'.repeat(64);

const plannedActions = [
  {
    id: 'raise',
    document: 'raise-limits',
    parameters: { ChangeId: ['inc-1-raise'], MaxEntries: ['262144'] },
  },
  { id: 'notrack', document: 'notrack-ports', parameters: { ChangeId: ['inc-1-notrack'], Ports: ['8080'] } },
];

interface Scenario {
  readonly run?: Host;
  readonly online?: boolean;
  readonly instanceId?: string | null;
  readonly decision?: 'apply' | 'approve' | 'dry-run' | 'nothing';
  readonly lambdas?: Partial<LambdaBindings>;
  readonly definition?: AslMachine;
  readonly guardrails?: LocalGuardrails;
  /** What DescribeInstanceInformation reports as the agent version. */
  readonly agentVersion?: string;
  /** The execution is expected to end in a Fail state (its error is returned, the output is empty). */
  readonly expectFailure?: boolean;
}

async function runScenario(scenario: Scenario = {}) {
  const calls: Record<string, unknown[]> = {};
  const record = (role: string, payload: unknown) => {
    calls[role] = [...(calls[role] ?? []), payload];
  };
  const ssm = localSsm({
    netns: INSTANCE,
    pollMs: 5,
    run: scenario.run ?? host(),
    online: async () => scenario.online ?? true,
  });
  if (scenario.agentVersion !== undefined) {
    const describe = ssm.describeInstanceInformation.bind(ssm);
    const agentVersion = scenario.agentVersion;
    ssm.describeInstanceInformation = async (input) => {
      const answer = (await describe(input)) as { InstanceInformationList: object[] };
      return {
        InstanceInformationList: answer.InstanceInformationList.map((node) => ({
          ...node,
          AgentVersion: agentVersion,
        })),
      };
    };
  }
  const decision = scenario.decision ?? 'apply';
  const guardrails = scenario.guardrails ?? localGuardrails();
  const defaults: LambdaBindings = {
    guardrails: guardrails.step,
    // A host without ENA counters: EC2 is not asked.
    network: async () => ({ described: false, reason: 'no ENA allowance counters in the diagnostics' }),
    assess: async () => ({
      confirmed: true,
      classification: 'table-full',
      plan: { actions: plannedActions },
    }),
    policyGate: async (payload) => {
      const approved = (payload as { approval?: { decision: string } }).approval;
      const settled =
        approved === undefined ? decision : approved.decision === 'approved' ? 'apply' : 'rejected';
      return {
        decision: settled,
        soakSeconds: 1,
        toApply: settled === 'apply' ? plannedActions : [],
        toPersist:
          settled === 'apply'
            ? [{ ...plannedActions[0], parameters: { ChangeId: ['inc-1-raise'], Persist: ['true'] } }]
            : [],
        rollback: [...plannedActions].reverse().map((action) => ({
          document: 'rollback',
          parameters: { ChangeId: action.parameters.ChangeId },
        })),
      };
    },
    requestApproval: async () => ({ decision: 'approved', approver: { id: 'tester', via: 'test' } }),
    verify: async () => ({ held: true, checks: [] }),
    announce: async () => ({ sent: 1, failed: 0 }),
    notify: async () => ({ published: true }),
    writeEvidence: async () => ({ location: 'out/inc-1', manifestSha256: DIGEST }),
  };
  const lambdas = Object.fromEntries(
    Object.entries({ ...defaults, ...scenario.lambdas }).map(([role, fn]) => [
      role,
      async (payload: unknown) => {
        record(role, payload);
        return fn(payload);
      },
    ]),
  ) as unknown as LambdaBindings;
  const execution = runWorkflowLocally({
    definition: scenario.definition ?? definition,
    input: {
      incidentId: 'inc-1',
      instanceId: scenario.instanceId === undefined ? INSTANCE : scenario.instanceId,
      kind: 'table-full',
      mode: 'auto',
    },
    ssm,
    lambdas,
    soakMs: 0,
    retryIntervalMs: 0,
  });
  const ended = await execution.result;
  if ('error' in ended && !scenario.expectFailure) throw ended.error;
  if (!('error' in ended) && scenario.expectFailure) throw new Error('the execution was expected to fail');
  // biome-ignore lint/suspicious/noExplicitAny: the workflow's output is probed field by field below
  const output = ('output' in ended ? ended.output : {}) as Record<string, any>;
  const error = 'error' in ended ? ended.error : null;
  const sent = ssm
    .commands()
    .map((command) => `${command.document} ${command.parameters.ChangeId ?? ''}`.trim());
  const entered = execution
    .history()
    .filter((event) => event.type === 'StateEntered')
    .map((event) => event.state);
  return { output, error, sent, calls, entered, guardrails };
}

function expectNotifiedAndBundled(run: Awaited<ReturnType<typeof runScenario>>) {
  expect(run.calls.notify).toHaveLength(1);
  expect(run.calls.writeEvidence).toHaveLength(1);
  expect(run.entered.at(-1)).toBe(STATE.done);
}

describe('incident workflow branches, run locally from the synthesized definition', () => {
  it('applies, soaks, verifies and persists a fix when everything works', async () => {
    const run = await runScenario();
    expect(run.output.outcome.status).toBe('remediated');
    expect(run.sent).toEqual([
      'collect-diagnostics',
      'raise-limits inc-1-raise',
      'notrack-ports inc-1-notrack',
      'collect-diagnostics',
      'raise-limits inc-1-raise',
    ]);
    expect(
      run.output.applied.map((each: { invocation: { status: string } }) => each.invocation.status),
    ).toEqual(['Success', 'Success']);
    expect(run.output.persistError).toBeUndefined();
    expectNotifiedAndBundled(run);
  });

  it('announces the change right after applying it, with the applied commands, before the soak', async () => {
    const run = await runScenario();
    const at = (state: string) => run.entered.indexOf(state);
    expect(at(STATE.announceChange)).toBeGreaterThan(at(STATE.applyRemediation));
    expect(at(STATE.soak)).toBe(at(STATE.announceChange) + 1);
    expect(run.calls.announce).toHaveLength(1);
    const [payload] = run.calls.announce as [Record<string, unknown>];
    expect(Object.keys(payload).sort()).toEqual(['applied', 'execution', 'gate', 'incident']);
    expect((payload.applied as unknown[]).length).toBe(2);
  });

  it('goes on to the soak and the verification when announcing the change fails (an event never fails the incident)', async () => {
    const run = await runScenario({
      lambdas: {
        announce: async () => {
          throw new Error('Lambda could not be invoked');
        },
      },
    });
    expect(run.output.outcome.status).toBe('remediated');
    expect(run.output.announceError).toMatchObject({ Error: 'Error' });
    expect(run.entered).toContain(STATE.verify);
    expectNotifiedAndBundled(run);
  });

  it('escalates without a single command when the instance is not managed by SSM', async () => {
    const run = await runScenario({ online: false });
    expect(run.output.outcome).toMatchObject({ status: 'escalated', hostChanged: false });
    expect(run.entered).toContain(STATE.notManaged);
    expect(run.sent).toEqual([]);
    expect(run.calls.assess).toBeUndefined();
    expectNotifiedAndBundled(run);
  });

  it('escalates a host that is not an instance without asking SSM', async () => {
    const run = await runScenario({ instanceId: null });
    expect(run.output.outcome.status).toBe('escalated');
    expect(run.entered).not.toContain(STATE.lookUpInstance);
    expectNotifiedAndBundled(run);
  });

  it('gives up on a diagnostics command that never finishes, changing nothing', async () => {
    const run = await runScenario({ run: host({ 'collect-diagnostics': never }) });
    expect(run.output.outcome).toMatchObject({ status: 'failed', hostChanged: false });
    expect(run.output.error.Error).toBe('SsmCommandTimedOut');
    expect(run.output.error.Cause).toContain('did not finish within 4 checks');
    expect(run.sent).toEqual(['collect-diagnostics']);
    expectNotifiedAndBundled(run);
  });

  it('reports a failed diagnostics command with its exit code and stderr', async () => {
    const failing: Host = async () => result('Failed', { document: 'collect-diagnostics' }, 1);
    const run = await runScenario({ run: host({ 'collect-diagnostics': failing }) });
    expect(run.output.outcome.status).toBe('failed');
    expect(run.output.error.Error).toBe('SsmCommandFailed');
    expect(run.output.error.Cause).toContain(
      'Failed (Failed), exit code 1: collect-diagnostics: it went wrong',
    );
    expectNotifiedAndBundled(run);
  });

  it('rolls back every planned change when a remediation command times out', async () => {
    const run = await runScenario({ run: host({ 'notrack-ports': never }) });
    expect(run.output.outcome).toMatchObject({ status: 'rolled-back', hostChanged: true });
    expect(run.output.error.Error).toBe('SsmCommandTimedOut');
    expect(run.sent).toEqual([
      'collect-diagnostics',
      'raise-limits inc-1-raise',
      'notrack-ports inc-1-notrack',
      'rollback inc-1-notrack',
      'rollback inc-1-raise',
    ]);
    expectNotifiedAndBundled(run);
  });

  it('rolls back when verification after the soak fails', async () => {
    const run = await runScenario({ lambdas: { verify: async () => ({ held: false, checks: [] }) } });
    expect(run.output.outcome.status).toBe('rolled-back');
    expect(run.output.error).toBeUndefined();
    expect(run.sent.slice(-2)).toEqual(['rollback inc-1-notrack', 'rollback inc-1-raise']);
    expect(run.entered).toContain(STATE.soak);
    expectNotifiedAndBundled(run);
  });

  it('rolls back when the verify function itself fails', async () => {
    const broken = async () => {
      throw Object.assign(new Error('after report unreadable'), { name: 'DiagnosticsUnreadable' });
    };
    const run = await runScenario({ lambdas: { verify: broken } });
    expect(run.output.outcome.status).toBe('rolled-back');
    expect(run.output.error).toEqual({ Error: 'DiagnosticsUnreadable', Cause: 'after report unreadable' });
  });

  it('escalates loudly when the rollback itself fails', async () => {
    const failing: Host = async () => result('Failed', { document: 'rollback' }, 1);
    const run = await runScenario({
      run: host({ rollback: failing }),
      lambdas: { verify: async () => ({ held: false }) },
    });
    expect(run.output.outcome).toMatchObject({ status: 'rollback-failed', hostChanged: true });
    expect(run.output.rollbackError.Error).toBe('SsmCommandFailed');
    expectNotifiedAndBundled(run);
  });

  it('keeps a verified fix when making it permanent fails', async () => {
    let raises = 0;
    const secondRaiseFails: Host = async () => {
      raises += 1;
      return raises === 1
        ? result('Success', { document: 'raise-limits', status: 'applied' })
        : result('Failed', { document: 'raise-limits' }, 1);
    };
    const run = await runScenario({ run: host({ 'raise-limits': secondRaiseFails }) });
    expect(run.output.outcome.status).toBe('remediated');
    expect(run.output.persistError.Error).toBe('SsmCommandFailed');
    expect(run.sent.filter((each) => each.startsWith('rollback'))).toEqual([]);
  });

  it('ends with no change, escalated, when nobody approves in time', async () => {
    const run = await runScenario({
      definition: shortApproval,
      decision: 'approve',
      lambdas: { requestApproval: never },
    });
    expect(run.output.outcome).toMatchObject({ status: 'escalated', hostChanged: false });
    expect(run.output.error.Error).toBe('States.Timeout');
    expect(run.entered).toContain(STATE.approvalTimedOut);
    expect(run.sent).toEqual(['collect-diagnostics']);
    expectNotifiedAndBundled(run);
  });

  it('hands the approval function a task token and applies once approved', async () => {
    const run = await runScenario({ decision: 'approve' });
    const request = run.calls.requestApproval?.[0] as { taskToken: string; timeoutSeconds: number };
    expect(request.taskToken).toMatch(/^local-task-token-/);
    expect(request.timeoutSeconds).toBe(1800);
    expect(run.output.approval.decision).toBe('approved');
    expect(run.output.outcome.status).toBe('remediated');
  });

  it('changes nothing when the change is rejected', async () => {
    const run = await runScenario({
      decision: 'approve',
      lambdas: { requestApproval: async () => ({ decision: 'rejected', approver: { id: 'ops' } }) },
    });
    expect(run.output.outcome.status).toBe('rejected');
    expect(run.sent).toEqual(['collect-diagnostics']);
    expectNotifiedAndBundled(run);
  });

  it('changes nothing in dry-run mode or when the alert is not confirmed', async () => {
    const dry = await runScenario({ decision: 'dry-run' });
    expect(dry.output.outcome.status).toBe('dry-run');
    expect(dry.sent).toEqual(['collect-diagnostics']);
    const unconfirmed = await runScenario({ lambdas: { assess: async () => ({ confirmed: false }) } });
    expect(unconfirmed.output.outcome.status).toBe('not-confirmed');
    expect(unconfirmed.calls.policyGate).toBeUndefined();
    expectNotifiedAndBundled(unconfirmed);
  });

  it('retries GetCommandInvocation when the invocation does not exist yet', async () => {
    const ssmRun = host();
    const run = await (async () => {
      let misses = 0;
      const { localSsm: make } = await import('../../../functions/local/twin/local-ssm.js');
      const ssm = make({ netns: INSTANCE, pollMs: 5, run: ssmRun, online: async () => true });
      const flaky = {
        ...ssm,
        getCommandInvocation: async (input: unknown) => {
          if (misses < 2) {
            misses += 1;
            throw new SsmError('InvocationDoesNotExist', 'not yet');
          }
          return ssm.getCommandInvocation(input);
        },
      };
      const execution = runWorkflowLocally({
        definition,
        input: { incidentId: 'inc-1', instanceId: INSTANCE },
        ssm: flaky,
        lambdas: {
          assess: async () => ({ confirmed: false }),
          network: async () => ({ described: false, reason: 'no ENA allowance counters' }),
          policyGate: never,
          requestApproval: never,
          verify: never,
          announce: never,
          notify: async () => ({}),
          writeEvidence: async () => ({}),
          guardrails: localGuardrails().step,
        },
        soakMs: 0,
        retryIntervalMs: 0,
      });
      await execution.result;
      return { misses, history: execution.history() };
    })();
    expect(run.misses).toBe(2);
    expect(run.history.filter((event) => event.type === 'StateRetried').map((event) => event.state)).toEqual([
      `${STATE.collectDiagnostics}: get the result`,
      `${STATE.collectDiagnostics}: get the result`,
    ]);
  });

  it('writes the evidence bundle before notifying, and the notification gets its location and digest', async () => {
    const run = await runScenario();
    expect(run.entered.indexOf(STATE.writeEvidence)).toBeLessThan(run.entered.indexOf(STATE.notify));
    expect(run.calls.notify?.[0]).toMatchObject({
      evidence: { location: 'out/inc-1', manifestSha256: DIGEST },
    });
  });

  it('ends failed, NotificationNotSent, when the notification fails after the bundle was written', async () => {
    const run = await runScenario({
      expectFailure: true,
      lambdas: {
        notify: async () => {
          throw Object.assign(new Error('topic gone'), { name: 'NotFoundException' });
        },
      },
    });
    expect(run.calls.writeEvidence).toHaveLength(1);
    expect(run.entered.at(-1)).toBe(STATE.notificationNotSent);
    expect(String(run.error)).toMatch(/the notification was not published/);
  });

  it('still notifies, with the error, when the bundle cannot be written, then ends failed, EvidenceNotWritten', async () => {
    const run = await runScenario({
      expectFailure: true,
      lambdas: {
        writeEvidence: async () => {
          throw Object.assign(new Error('bucket gone'), { name: 'NoSuchBucket' });
        },
      },
    });
    expect(run.calls.notify).toHaveLength(1);
    expect(run.calls.notify?.[0]).toMatchObject({ evidenceError: { Error: 'NoSuchBucket' } });
    expect(run.entered.at(-1)).toBe(STATE.evidenceNotWritten);
    expect(String(run.error)).toMatch(/its evidence bundle could not be written/);
  });

  describe('guardrails', () => {
    const operations = (run: Awaited<ReturnType<typeof runScenario>>) =>
      (run.calls.guardrails ?? []).map((payload) => (payload as { operation: string }).operation);

    it('takes a remediation slot right before the change and gives it back before the evidence and the notification', async () => {
      const run = await runScenario();
      expect(operations(run)).toEqual(['check', 'take-slot', 'release']);
      expect(run.entered.indexOf(STATE.takeSlot)).toBeLessThan(run.entered.indexOf(STATE.applyRemediation));
      expect(run.entered.indexOf(STATE.releaseSlot)).toBeLessThan(run.entered.indexOf(STATE.writeEvidence));
      expect(run.guardrails.holders()).toEqual([]);
      expect(
        run.output.guardrails.decisions.map(
          (d: { guardrail: string; effect: string }) => `${d.guardrail}:${d.effect}`,
        ),
      ).toEqual([
        'instance-policy:pass',
        'preconditions:pass',
        'change-calendar:pass',
        'fleet-breaker:pass',
        'remediation-cooldown:pass',
        'concurrency:grant',
        'concurrency:release',
        'remediation-cooldown:pass',
      ]);
    });

    it('runs nothing at all on an instance whose mode tag is off', async () => {
      const run = await runScenario({ guardrails: localGuardrails({ modeTag: 'off' }) });
      expect(run.output.outcome).toMatchObject({ status: 'no-host-change', hostChanged: false });
      expect(run.entered).toContain(STATE.optedOut);
      expect(run.sent).toEqual([]);
      expectNotifiedAndBundled(run);
    });

    it('escalates with the manual runbook, sending nothing, when the agent is too old for ENV_VAR', async () => {
      const run = await runScenario({ agentVersion: '3.2.1705.0' });
      expect(run.output.outcome).toMatchObject({ status: 'escalated', hostChanged: false });
      expect(run.entered).toContain(STATE.notManaged);
      expect(run.output.guardrails.escalation).toMatchObject({
        runbook: 'runbooks/conntrack-table-full.md',
        reasons: [expect.stringMatching(/SSM Agent 3\.2\.1705\.0 is older than 3\.3\.2746\.0/)],
      });
      expect(run.sent).toEqual([]);
      expectNotifiedAndBundled(run);
    });

    it('waits for a slot with retries, then escalates with no change when none comes free', async () => {
      const guardrails = localGuardrails({
        settings: { ...DEFAULT_GUARDRAILS, maxConcurrentRemediations: 1 },
      });
      await guardrails.ports.acquireSlot('another-incident', new Date());
      const run = await runScenario({ guardrails });
      expect(run.output.outcome).toMatchObject({ status: 'escalated', hostChanged: false });
      expect(run.entered).toContain(STATE.noSlot);
      expect(run.output.error.Error).toBe('RemediationSlotsBusy');
      // The first try and its 12 retries.
      expect(operations(run).filter((op) => op === 'take-slot')).toHaveLength(13);
      expect(run.sent).toEqual(['collect-diagnostics']);
      expect(guardrails.holders()).toEqual(['another-incident']);
      expectNotifiedAndBundled(run);
    });

    it('sends an automatic change back to the gate when the breaker trips before it starts', async () => {
      let breakerChecks = 0;
      const guardrails = localGuardrails();
      // Closed when the incident is checked, open by the time its change would start.
      guardrails.ports.breaker = async () => ({ status: breakerChecks++ === 0 ? 'closed' : 'open' });
      const run = await runScenario({
        guardrails: {
          ...guardrails,
          step: (payload) => runGuardrailStep(payload, guardrails.ports, DEFAULT_GUARDRAILS, new Date()),
        },
        lambdas: {
          policyGate: async (payload) => {
            const { guardrails: verdict, approval } = payload as {
              guardrails: { mode: string };
              approval?: unknown;
            };
            const settled =
              approval !== undefined ? 'apply' : verdict.mode === 'approve' ? 'approve' : 'apply';
            return {
              decision: settled,
              soakSeconds: 1,
              toApply: settled === 'apply' ? plannedActions : [],
              toPersist: [],
              rollback: [],
            };
          },
        },
      });
      expect(run.entered.filter((state) => state === STATE.checkPolicy)).toHaveLength(2);
      expect(run.entered).toContain(STATE.waitForApproval);
      expect(run.output.outcome.status).toBe('remediated');
      expect(run.output.guardrails.decisions).toContainEqual(
        expect.objectContaining({ guardrail: 'fleet-breaker', step: 'before-change', effect: 'cap-mode' }),
      );
      expect(guardrails.holders()).toEqual([]);
    });

    it.each<[string, Scenario]>([
      [
        'rolled back after a failed verification',
        { lambdas: { verify: async () => ({ held: false, checks: [] }) } },
      ],
      [
        'a failed rollback',
        {
          run: host({
            rollback: async () => result('Failed', { document: 'rollback' }, 1),
            'notrack-ports': never,
          }),
        },
      ],
      ['a remediation command that times out', { run: host({ 'notrack-ports': never }) }],
      [
        'a failing notification',
        { lambdas: { notify: async () => Promise.reject(new Error('topic gone')) }, expectFailure: true },
      ],
    ])('gives the slot back on every path: %s', async (_name, scenario) => {
      const guardrails = localGuardrails();
      const run = await runScenario({ ...scenario, guardrails });
      expect(operations(run)).toContain('take-slot');
      expect(operations(run).at(-1)).toBe('release');
      expect(guardrails.holders()).toEqual([]);
      expect(run.entered.at(-1)).toBe(scenario.expectFailure ? STATE.notificationNotSent : STATE.done);
    });

    it('notifies and bundles even when releasing the slot fails (the lease frees it)', async () => {
      const guardrails = localGuardrails();
      guardrails.ports.releaseSlot = async () => {
        throw Object.assign(new Error('table unavailable'), { name: 'ResourceNotFoundException' });
      };
      const run = await runScenario({
        guardrails: {
          ...guardrails,
          step: (payload) => runGuardrailStep(payload, guardrails.ports, DEFAULT_GUARDRAILS, new Date()),
        },
      });
      expect(run.output.guardrailsError.Error).toBe('ResourceNotFoundException');
      expectNotifiedAndBundled(run);
    });

    it('starts the cooldown on a changed instance, so its next incident waits for a person', async () => {
      const guardrails = localGuardrails();
      await runScenario({ guardrails });
      const next = await runScenario({ guardrails, decision: 'approve' });
      const cooldown = next.output.guardrails.decisions.find(
        (d: { guardrail: string; step: string }) =>
          d.guardrail === 'remediation-cooldown' && d.step === 'before-ssm',
      );
      expect(cooldown).toMatchObject({ effect: 'cap-mode', mode: 'approve' });
      expect(cooldown.detail).toMatch(/incident inc-1 changed this instance 0 min ago \(remediated\)/);
    });
  });
});
