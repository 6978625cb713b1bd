import { Duration } from 'aws-cdk-lib';
import { Capture, Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import {
  INVOCATION_DOES_NOT_EXIST,
  SSM_BLOCK,
  STATE,
  WORKFLOW_ERROR,
} from '../../functions/core/workflow/state-names.js';
import {
  type AslMachine,
  type AslState,
  allStates,
  isTerminal,
  successors,
} from '../../functions/local/twin/asl.js';
import { onlyStateMachine } from '../../functions/local/twin/template.js';
import { DEFAULT_POLLING } from '../../infra/workflow/definition.js';
import { workflowTestStack } from './support/workflow-stack.js';

function synth(overrides: Parameters<typeof workflowTestStack>[0] = {}) {
  const { stack } = workflowTestStack(overrides);
  const template = Template.fromStack(stack);
  const definition = onlyStateMachine(template.toJSON()).definition as unknown as AslMachine;
  return { template, definition };
}

const { template, definition } = synth();

function state(machine: AslMachine, name: string): AslState {
  const found = allStates(machine).find((entry) => entry.name === name);
  if (found === undefined) throw new Error(`no state named '${name}'`);
  return found.state;
}

/** States reachable from `start` in the top-level graph, never entering `blocked`. */
function reachable(machine: AslMachine, start: string, blocked: readonly string[] = []): Set<string> {
  const seen = new Set<string>();
  const queue = [start];
  while (queue.length > 0) {
    const name = queue.shift() as string;
    if (seen.has(name) || blocked.includes(name)) continue;
    seen.add(name);
    queue.push(...successors(machine.States[name] as AslState));
  }
  return seen;
}

describe('incident workflow definition', () => {
  it('is a Standard workflow written in JSONPath, so the same definition runs locally', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', { StateMachineType: 'STANDARD' });
    expect((definition as unknown as Record<string, unknown>).QueryLanguage ?? 'JSONPath').toBe('JSONPath');
    for (const { name, state: each } of allStates(definition)) {
      expect(each.QueryLanguage ?? 'JSONPath', name).toBe('JSONPath');
    }
  });

  it('has every state of the story, reading as sentences', () => {
    const names = allStates(definition).map((entry) => entry.name);
    for (const name of Object.values(STATE)) expect(names, name).toContain(name);
    expect(definition.StartAt).toBe(STATE.takeIncident);
  });

  it('checks that SSM manages the instance and that it is online before sending any command', () => {
    const lookUp = state(definition, STATE.lookUpInstance);
    expect(state(definition, STATE.takeIncident).Next).toBe(STATE.hostIsInstance);
    expect(state(definition, STATE.hostIsInstance)).toMatchObject({
      Choices: [{ Next: STATE.lookUpInstance }],
      Default: STATE.notManaged,
    });
    expect(lookUp.Resource).toBe('arn:aws:states:::aws-sdk:ssm:describeInstanceInformation');
    expect(lookUp.Parameters).toEqual({
      Filters: [{ Key: 'InstanceIds', 'Values.$': 'States.Array($.incident.instanceId)' }],
    });
    // The guardrails decide, from what SSM said and the instance's own policy, before any command.
    expect(lookUp.Next).toBe(STATE.checkGuardrails);
    expect(lookUp.Retry).toContainEqual(
      expect.objectContaining({
        ErrorEquals: ['Ssm.ThrottlingException', 'Ssm.InternalServerErrorException'],
        JitterStrategy: 'FULL',
      }),
    );
    const check = state(definition, STATE.checkGuardrails);
    expect(check.Parameters).toEqual({ operation: 'check', 'state.$': '$' });
    expect(check.ResultPath).toBe('$.guardrails');
    expect(check.Next).toBe(STATE.optedOutChoice);
    expect(state(definition, STATE.optedOutChoice)).toMatchObject({
      Choices: [{ Variable: '$.guardrails.next', StringEquals: 'opted-out', Next: STATE.optedOut }],
      Default: STATE.instanceManaged,
    });
    const managed = state(definition, STATE.instanceManaged);
    expect(managed.Choices).toEqual([
      { Variable: '$.guardrails.next', StringEquals: 'collect', Next: STATE.collectDiagnostics },
    ]);
    expect(managed.Default).toBe(STATE.notManaged);
    expect(state(definition, STATE.optedOut)).toMatchObject({
      Result: { status: 'no-host-change', hostChanged: false },
      Next: STATE.releaseSlot,
    });
    expect(state(definition, STATE.notManaged).Next).toBe(STATE.releaseSlot);
  });

  describe.each(Object.values(SSM_BLOCK))('SSM command block "%s"', (block) => {
    const container = state(definition, block);
    const loop = (container.Branches?.[0] ?? container.ItemProcessor) as AslMachine;
    const loopStates = Object.entries(loop.States);
    const label = block === STATE.applyRemediation ? 'Apply' : block === STATE.persist ? 'Persist' : block;

    it('sends through the SDK integration, then waits, asks for the result and counts the check', () => {
      const sends = loopStates.filter(([, each]) => each.Resource?.endsWith(':ssm:sendCommand'));
      expect(sends.length).toBeGreaterThan(0);
      for (const [, send] of sends) {
        expect(send.Resource).toBe('arn:aws:states:::aws-sdk:ssm:sendCommand');
        expect(send.Next).toBe(`${label}: wait`);
        expect(send.Parameters).toMatchObject({
          'InstanceIds.$': 'States.Array($.instanceId)',
          'Parameters.$': '$.parameters',
          TimeoutSeconds: DEFAULT_POLLING.deliveryTimeoutSeconds,
        });
      }
      expect(loop.States[`${label}: wait`]).toMatchObject({
        Type: 'Wait',
        Seconds: DEFAULT_POLLING.intervalSeconds,
        Next: `${label}: get the result`,
      });
      const get = loop.States[`${label}: get the result`] as AslState;
      expect(get.Resource).toBe('arn:aws:states:::aws-sdk:ssm:getCommandInvocation');
      expect(get.Next).toBe(`${label}: count the check`);
      expect(get.Retry).toContainEqual(expect.objectContaining({ ErrorEquals: [INVOCATION_DOES_NOT_EXIST] }));
      expect(loop.States[`${label}: count the check`]).toMatchObject({
        Parameters: { 'count.$': 'States.MathAdd($.polls.count, 1)' },
        ResultPath: '$.polls',
        Next: `${label}: finished?`,
      });
    });

    it('loops only while the command runs and the poll budget lasts, and fails clearly otherwise', () => {
      const finished = loop.States[`${label}: finished?`] as AslState;
      const running = ['Pending', 'InProgress', 'Delayed'].map((status) => ({
        Variable: '$.invocation.status',
        StringEquals: status,
      }));
      expect(finished.Choices).toEqual([
        { Variable: '$.invocation.status', StringEquals: 'Success', Next: `${label}: succeeded` },
        {
          And: [{ Or: running }, { Variable: '$.polls.count', NumericLessThan: DEFAULT_POLLING.maxPolls }],
          Next: `${label}: wait`,
        },
        { Or: running, Next: `${label}: timed out` },
      ]);
      expect(finished.Default).toBe(`${label}: describe the failure`);
      expect(loop.States[`${label}: timed out`]).toMatchObject({
        Type: 'Fail',
        Error: WORKFLOW_ERROR.commandTimedOut,
      });
      expect(loop.States[`${label}: failed`]).toMatchObject({
        Type: 'Fail',
        Error: WORKFLOW_ERROR.commandFailed,
        CausePath: '$.failure.cause',
      });
    });

    it('never sleeps in a Lambda: no function is invoked inside the loop', () => {
      // The EC2 branch beside the loop (an ENI change) is one invocation that ends the item.
      const ec2Branch: string[] = [STATE.applyEniChange, STATE.rollBackEniChange];
      for (const [name, each] of loopStates) {
        if (each.Type !== 'Task') continue;
        if (ec2Branch.includes(name)) expect(each.End, name).toBe(true);
        else expect(each.Resource, name).toMatch(/^arn:aws:states:::aws-sdk:ssm:/);
      }
    });

    it('starts every command with a fresh poll counter', () => {
      const input = (container.Parameters ?? container.ItemSelector) as Record<string, unknown>;
      expect(input.polls).toEqual({ count: 0 });
    });
  });

  it('takes its polling budget from the props', () => {
    const custom = synth({
      polling: { intervalSeconds: 5, maxPolls: 7, deliveryTimeoutSeconds: 45 },
    }).definition;
    const loop = state(custom, STATE.collectDiagnostics).Branches?.[0] as AslMachine;
    expect(loop.States[`${STATE.collectDiagnostics}: wait`]?.Seconds).toBe(5);
    expect(JSON.stringify(loop.States[`${STATE.collectDiagnostics}: finished?`])).toContain(
      '"NumericLessThan":7',
    );
    const send = state(custom, `${STATE.collectDiagnostics}: send collect-diagnostics`);
    expect(send.Parameters).toMatchObject({ TimeoutSeconds: 45 });
  });

  it('runs remediation only through the documents it knows, chosen per action', () => {
    const loop = state(definition, STATE.applyRemediation).ItemProcessor as AslMachine;
    const which = loop.States['Apply: which document?'] as AslState;
    expect(which.Choices?.map((choice) => [choice.StringEquals, choice.Next])).toEqual([
      ['raise-limits', 'Apply: send raise-limits'],
      ['notrack-ports', 'Apply: send notrack-ports'],
    ]);
    expect(loop.States[which.Default as string]).toMatchObject({
      Type: 'Fail',
      Error: WORKFLOW_ERROR.unknownDocument,
    });
    expect(loop.States['Apply: send raise-limits']?.Parameters).toMatchObject({
      DocumentName: 'ConntrackResponder-raise-limits',
    });
    expect(state(definition, STATE.applyRemediation)).toMatchObject({
      ItemsPath: '$.gate.toApply',
      MaxConcurrency: 1,
    });
  });

  it('changes and restores ENI timeouts through EC2 (the network function), never through SSM', () => {
    // payloadResponseOnly: the function is the Resource and Parameters its payload.
    const networkFunction = (each: AslState) => each.Resource;
    const describe = state(definition, STATE.describeNetwork);
    for (const [map, choice, change, operation, ssmStart] of [
      [STATE.applyRemediation, STATE.applyThrough, STATE.applyEniChange, 'apply', 'Apply: which document?'],
      [
        STATE.rollBack,
        STATE.rollBackThrough,
        STATE.rollBackEniChange,
        'rollback',
        'Roll back: send rollback',
      ],
    ] as const) {
      const loop = state(definition, map).ItemProcessor as AslMachine;
      expect(loop.StartAt, map).toBe(choice);
      expect(loop.States[choice], map).toMatchObject({
        Type: 'Choice',
        Choices: [{ Variable: '$.request.document', StringEquals: 'eni-timeouts', Next: change }],
        Default: ssmStart,
      });
      const task = loop.States[change] as AslState;
      expect(networkFunction(task)).toMatch(/:function:network/);
      expect(networkFunction(task)).toBe(networkFunction(describe));
      // The Map item's block (instance, incident, parameters, request) goes to the function whole,
      // and its result (request, invocation) is the item's, as an SSM command's would be.
      expect(task.Parameters).toEqual({ operation, 'block.$': '$' });
      expect(task.ResultPath).toBe('$');
      expect(task.Retry).toContainEqual(
        expect.objectContaining({ ErrorEquals: expect.arrayContaining(['Lambda.TooManyRequestsException']) }),
      );
    }
    // A failed ENI change fails the apply Map, which rolls back; a failed restore is escalated.
    expect(state(definition, STATE.applyRemediation).Catch).toContainEqual(
      expect.objectContaining({ ErrorEquals: ['States.ALL'], Next: STATE.rollBack }),
    );
    expect(state(definition, STATE.rollBack).Catch).toContainEqual(
      expect.objectContaining({ ErrorEquals: ['States.ALL'], Next: STATE.rollbackFailed }),
    );
  });

  it('describes the network interfaces before the plan and after the soak; a failure there is a note, not an end', () => {
    expect(state(definition, STATE.collectDiagnostics).Next).toBe(STATE.describeNetwork);
    const before = state(definition, STATE.describeNetwork);
    expect(before.Parameters).toEqual({
      operation: 'describe',
      'incident.$': '$.incident',
      'diagnostics.$': '$.before',
    });
    expect(before).toMatchObject({ ResultPath: '$.network', Next: STATE.assess });
    expect(before.Catch).toEqual([
      { ErrorEquals: ['States.ALL'], ResultPath: '$.network', Next: STATE.assess },
    ]);
    expect(state(definition, STATE.assess).Parameters).toMatchObject({ 'network.$': '$.network' });

    expect(state(definition, STATE.collectDiagnosticsAfter).Next).toBe(STATE.describeNetworkAfter);
    const after = state(definition, STATE.describeNetworkAfter);
    expect(after.Parameters).toEqual({
      operation: 'describe-after',
      'incident.$': '$.incident',
      'gate.$': '$.gate',
    });
    expect(after).toMatchObject({ ResultPath: '$.networkAfter', Next: STATE.verify });
    expect(after.Catch).toEqual([
      { ErrorEquals: ['States.ALL'], ResultPath: '$.networkAfter', Next: STATE.verify },
    ]);
    expect(state(definition, STATE.verify).Parameters).toMatchObject({
      'networkAfter.$': '$.networkAfter',
    });
  });

  it('waits for approval with a task token and a timeout that ends in "no change, escalated"', () => {
    const wait = state(definition, STATE.waitForApproval);
    expect(wait.Resource).toBe('arn:aws:states:::lambda:invoke.waitForTaskToken');
    expect(wait.TimeoutSeconds).toBe(1800);
    expect(wait.Parameters).toMatchObject({
      Payload: { 'taskToken.$': '$$.Task.Token', timeoutSeconds: 1800, 'diagnostics.$': '$.before' },
    });
    expect(wait.Catch?.[0]).toEqual({
      ErrorEquals: ['States.Timeout'],
      ResultPath: '$.error',
      Next: STATE.approvalTimedOut,
    });
    expect(state(definition, STATE.approvalTimedOut)).toMatchObject({
      Result: { status: 'escalated', hostChanged: false },
      Next: STATE.releaseSlot,
    });
    const custom = synth({ approvalTimeout: Duration.minutes(5) }).definition;
    expect(state(custom, STATE.waitForApproval).TimeoutSeconds).toBe(300);
  });

  it('routes the policy decision: apply, approve, dry-run, or nothing to change', () => {
    const gate = state(definition, STATE.approvalRequired);
    expect(gate.Choices?.map((choice) => [choice.StringEquals, choice.Next])).toEqual([
      ['apply', STATE.takeSlot],
      ['approve', STATE.waitForApproval],
      ['dry-run', STATE.dryRun],
    ]);
    expect(gate.Default).toBe(STATE.nothingToChange);
    expect(state(definition, STATE.soak)).toMatchObject({ SecondsPath: '$.gate.soakSeconds' });
  });

  it('catches every failure: before a change into "no change", after a change into the rollback', () => {
    const beforeChange = [
      STATE.lookUpInstance,
      STATE.checkGuardrails,
      STATE.takeSlot,
      STATE.collectDiagnostics,
      STATE.assess,
      STATE.checkPolicy,
      STATE.waitForApproval,
      STATE.settleApproval,
    ];
    const afterChange = [STATE.applyRemediation, STATE.collectDiagnosticsAfter, STATE.verify];
    const catchAll = (name: string) =>
      state(definition, name).Catch?.find((catcher) => catcher.ErrorEquals.includes('States.ALL'));
    for (const name of beforeChange) expect(catchAll(name)?.Next, name).toBe(STATE.failedBeforeChange);
    for (const name of afterChange) expect(catchAll(name)?.Next, name).toBe(STATE.rollBack);
    expect(catchAll(STATE.rollBack)?.Next).toBe(STATE.rollbackFailed);
    expect(catchAll(STATE.releaseSlot)?.Next).toBe(STATE.writeEvidence);
    expect(catchAll(STATE.writeEvidence)?.Next).toBe(STATE.notify);
    expect(catchAll(STATE.notify)?.Next).toBe(STATE.evidenceAndNotification);
    // The applied lifecycle event never fails the incident, nor rolls back a change for itself.
    expect(catchAll(STATE.announceChange)?.Next).toBe(STATE.soak);

    const uncaught = Object.entries(definition.States)
      .filter(([, each]) => ['Task', 'Parallel', 'Map'].includes(each.Type))
      .filter(([, each]) => !each.Catch?.some((catcher) => catcher.ErrorEquals.includes('States.ALL')))
      .map(([name]) => name);
    expect(uncaught).toEqual([]);
  });

  it('takes a remediation slot before every change and waits for one with backoff and jitter', () => {
    const take = state(definition, STATE.takeSlot);
    expect(take.Parameters).toEqual({ operation: 'take-slot', 'state.$': '$' });
    expect(take.Retry).toContainEqual({
      ErrorEquals: [WORKFLOW_ERROR.slotsBusy],
      IntervalSeconds: 20,
      BackoffRate: 2,
      MaxDelaySeconds: 300,
      MaxAttempts: 12,
      JitterStrategy: 'FULL',
    });
    expect(take.Catch?.[0]).toEqual({
      ErrorEquals: [WORKFLOW_ERROR.slotsBusy],
      ResultPath: '$.error',
      Next: STATE.noSlot,
    });
    expect(state(definition, STATE.noSlot)).toMatchObject({
      Result: { status: 'escalated', hostChanged: false },
      Next: STATE.releaseSlot,
    });
    // A slot, or back to the gate when the calendar or the breaker now forbids an automatic change.
    expect(state(definition, STATE.slotTaken)).toMatchObject({
      Choices: [{ Variable: '$.guardrails.slot.granted', BooleanEquals: true, Next: STATE.applyRemediation }],
      Default: STATE.checkPolicy,
    });
    expect(state(definition, STATE.anythingApproved).Choices?.[0]?.Next).toBe(STATE.takeSlot);
    // Nothing reaches the change without passing the slot.
    const predecessors = Object.entries(definition.States)
      .filter(([, each]) => successors(each).includes(STATE.applyRemediation))
      .map(([name]) => name);
    expect(predecessors).toEqual([STATE.slotTaken]);
  });

  it('gives the slot back on every path, right before the evidence bundle', () => {
    const beforeEvidence = Object.entries(definition.States)
      .filter(([name, each]) => name !== STATE.releaseSlot && successors(each).includes(STATE.writeEvidence))
      .map(([name]) => name);
    expect(beforeEvidence).toEqual([]);
    expect(state(definition, STATE.releaseSlot)).toMatchObject({
      Parameters: { operation: 'release', 'state.$': '$' },
      ResultPath: '$.guardrails',
      Next: STATE.writeEvidence,
    });
  });

  it('retries Lambda throttling and service errors with backoff and jitter on every Lambda task', () => {
    const lambdaTasks = Object.entries(definition.States).filter(
      ([, each]) => each.Type === 'Task' && !String(each.Resource).includes(':aws-sdk:'),
    );
    expect(lambdaTasks.length).toBeGreaterThan(6);
    for (const [name, each] of lambdaTasks) {
      expect(each.Retry, name).toContainEqual(
        expect.objectContaining({
          ErrorEquals: expect.arrayContaining(['Lambda.TooManyRequestsException', 'Lambda.ServiceException']),
          JitterStrategy: 'FULL',
        }),
      );
    }
  });

  it('ends every path with an evidence bundle, then a notification that carries its digest', () => {
    const withoutEvidence = reachable(definition, definition.StartAt, [STATE.writeEvidence]);
    const terminalsWithoutEvidence = [...withoutEvidence].filter((name) =>
      isTerminal(definition.States[name] as AslState),
    );
    expect(terminalsWithoutEvidence).toEqual([]);
    // Written or not, the bundle is followed by the notification, and nothing else.
    expect(reachable(definition, STATE.writeEvidence, [STATE.notify])).toEqual(
      new Set([STATE.writeEvidence]),
    );
    const afterNotify = [...reachable(definition, STATE.notify)].filter((name) => name !== STATE.notify);
    expect(afterNotify.sort()).toEqual(
      [STATE.evidenceAndNotification, STATE.evidenceNotWritten, STATE.notificationNotSent, STATE.done].sort(),
    );
    // A bundle not written, then a notification not sent: each ends the execution as failed.
    expect(state(definition, STATE.evidenceAndNotification)).toMatchObject({
      Choices: [
        { Variable: '$.evidenceError', IsPresent: true, Next: STATE.evidenceNotWritten },
        { Variable: '$.notificationError', IsPresent: true, Next: STATE.notificationNotSent },
      ],
      Default: STATE.done,
    });
    expect(state(definition, STATE.evidenceNotWritten)).toMatchObject({
      Type: 'Fail',
      Error: 'EvidenceNotWritten',
    });
    expect(state(definition, STATE.notificationNotSent)).toMatchObject({
      Type: 'Fail',
      Error: 'NotificationNotSent',
    });
  });

  it('never reaches the notification after a change without verification or a rollback', () => {
    const fromApply = reachable(definition, STATE.applyRemediation, [STATE.persist, STATE.rollBack]);
    expect(fromApply.has(STATE.notify)).toBe(false);
    expect(fromApply.has(STATE.remediated)).toBe(false);
    expect(state(definition, STATE.fixHeld)).toMatchObject({
      Choices: [{ Variable: '$.verification.held', BooleanEquals: true, Next: STATE.persist }],
      Default: STATE.rollBack,
    });
    // Persisting a verified fix can fail without undoing it: the incident still ends remediated.
    expect(state(definition, STATE.persist)).toMatchObject({
      ItemsPath: '$.gate.toPersist',
      Next: STATE.remediated,
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.persistError', Next: STATE.remediated }],
    });
  });

  it('announces a change right after applying it and soaks whatever the announcement did', () => {
    expect(state(definition, STATE.applyRemediation).Next).toBe(STATE.announceChange);
    expect(state(definition, STATE.announceChange)).toMatchObject({
      Type: 'Task',
      Next: STATE.soak,
      ResultPath: '$.announced',
      Parameters: {
        'incident.$': '$.incident',
        'execution.$': '$.execution',
        'gate.$': '$.gate',
        'applied.$': '$.applied',
      },
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.announceError', Next: STATE.soak }],
    });
  });

  it('gives the state machine role only what the definition calls (least privilege)', () => {
    const statements = new Capture();
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('^IncidentWorkflowRole') }],
      PolicyDocument: { Statement: statements },
    });
    const all = statements.asArray() as Array<{ Action: string | string[]; Resource: unknown }>;
    const actions = all.flatMap((statement) => [statement.Action].flat());
    expect(new Set(actions)).toEqual(
      new Set([
        'ssm:DescribeInstanceInformation',
        'ssm:GetCommandInvocation',
        'ssm:SendCommand',
        'lambda:InvokeFunction',
      ]),
    );
    for (const action of actions) expect(action).not.toContain('*');

    const sendResources = JSON.stringify(
      all
        .filter((statement) => statement.Action === 'ssm:SendCommand')
        .map((statement) => statement.Resource),
    );
    for (const document of ['collect-diagnostics', 'raise-limits', 'notrack-ports', 'rollback']) {
      expect(sendResources).toContain(`:document/ConntrackResponder-${document}`);
    }
    expect(sendResources).not.toMatch(/document\/\*/);
    // The definition grants the documents; the instances are granted by the IncidentWorkflow
    // construct, optionally narrowed to the opt-in tag (send-command-scope.test.ts).
    expect(sendResources).not.toContain(':instance/');

    const wildcard = all
      .filter((statement) => statement.Resource === '*')
      .flatMap((statement) => [statement.Action].flat());
    expect(new Set(wildcard)).toEqual(
      new Set(['ssm:DescribeInstanceInformation', 'ssm:GetCommandInvocation']),
    );
    const invoked = JSON.stringify(
      all
        .filter((statement) => statement.Action === 'lambda:InvokeFunction')
        .map((statement) => statement.Resource),
    );
    for (const role of ['assess', 'policyGate', 'requestApproval', 'verify', 'notify', 'writeEvidence']) {
      expect(invoked).toContain(`${role}Function`);
    }
  });
});
