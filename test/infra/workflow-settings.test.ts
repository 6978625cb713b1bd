import { Duration } from 'aws-cdk-lib';
import { Capture, type Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY } from '../../functions/core/plan/policy.js';
import { WORKFLOW_ENVIRONMENT, workflowSettingsFrom } from '../../functions/core/workflow/settings.js';
import { STATE } from '../../functions/core/workflow/state-names.js';
import { onlyStateMachine } from '../../functions/local/twin/template.js';
import { appSettingsFromContext } from '../../infra/context.js';
import { logicalIdOf, synthesize } from './support.js';

/**
 * The incident workflow's settings as props of the top-level construct (and context keys): the
 * approval timeout, the soak and the policy reach the states and functions that use them, and
 * what would only fail at run time fails the synth instead, naming the prop.
 */

type StateJson = { Type: string; TimeoutSeconds?: number; SecondsPath?: string; Parameters?: unknown };

function statesOf(template: Template): Record<string, StateJson> {
  return (onlyStateMachine(template.toJSON()).definition as { States: Record<string, StateJson> }).States;
}

/** The approval task's own timeout and the one its payload announces to the approver. */
function approvalTimeouts(template: Template): { task: number | undefined; announced: number | undefined } {
  const state = statesOf(template)[STATE.waitForApproval];
  if (state === undefined) throw new Error(`no state named '${STATE.waitForApproval}'`);
  const payload = (state.Parameters as { Payload?: { timeoutSeconds?: number } } | undefined)?.Payload;
  return { task: state.TimeoutSeconds, announced: payload?.timeoutSeconds };
}

/** The environment variables of one workflow function, captured from the template. */
function environmentOf(template: Template, role: 'assess' | 'policyGate'): Record<string, string> {
  const id = logicalIdOf(template, 'AWS::Lambda::Function', `Workflow/Functions/${role}Function/Resource`);
  const variables = new Capture();
  template.hasResourceProperties('AWS::Lambda::Function', {
    Description: template.toJSON().Resources[id].Properties.Description,
    Environment: { Variables: variables },
  });
  return variables.asObject() as Record<string, string>;
}

describe('workflow settings of ConntrackResponder', () => {
  it('waits 30 minutes for approval and soaks 2 minutes with the default policy when nothing is set', () => {
    // Act
    const { template } = synthesize();
    // Assess
    expect(approvalTimeouts(template)).toEqual({ task: 1800, announced: 1800 });
    for (const role of ['assess', 'policyGate'] as const) {
      const environment = environmentOf(template, role);
      expect(environment[WORKFLOW_ENVIRONMENT.soakSeconds], role).toBe('120');
      expect(environment[WORKFLOW_ENVIRONMENT.policy], role).toBe('{}');
      expect(workflowSettingsFrom(environment).policy, role).toEqual(DEFAULT_POLICY);
    }
  });

  it('passes approvalTimeoutMinutes, soak and policy to the approval task, the gate and the planner', () => {
    // Prepare
    const policy = { memoryBudgetPercent: 3, modes: { 'notrack-ports': 'dry-run' as const } };
    // Act
    const { template } = synthesize({ approvalTimeoutMinutes: 45, soak: Duration.seconds(30), policy });
    // Assess: the approval task gives up after 45 min, and the approval message says so.
    expect(approvalTimeouts(template)).toEqual({ task: 2700, announced: 2700 });
    // The soak state waits for what the gate puts into $.gate.soakSeconds, read from its environment.
    expect(statesOf(template)[STATE.soak]).toMatchObject({ Type: 'Wait', SecondsPath: '$.gate.soakSeconds' });
    for (const role of ['assess', 'policyGate'] as const) {
      const environment = environmentOf(template, role);
      expect(environment[WORKFLOW_ENVIRONMENT.soakSeconds], role).toBe('30');
      expect(JSON.parse(environment[WORKFLOW_ENVIRONMENT.policy] ?? ''), role).toEqual(policy);
      // What the function reads back at init: the soak and the policy with the overrides applied.
      const settings = workflowSettingsFrom(environment);
      expect(settings.soakSeconds, role).toBe(30);
      expect(settings.policy.memoryBudgetPercent, role).toBe(3);
      expect(settings.policy.modes, role).toEqual({ ...DEFAULT_POLICY.modes, 'notrack-ports': 'dry-run' });
    }
  });

  it('reads the same settings from context keys (-c strings and cdk.json values)', () => {
    // Prepare
    const context = {
      'conntrack-responder:approvalTimeoutMinutes': '45',
      'conntrack-responder:soakMinutes': '5',
      'conntrack-responder:workflowTimeoutMinutes': '300',
      'conntrack-responder:policy': '{"memoryBudgetPercent":3}',
    };
    const cdkJson: Record<string, unknown> = {
      'conntrack-responder:approvalTimeoutMinutes': 45,
      'conntrack-responder:soakMinutes': 5,
      'conntrack-responder:workflowTimeoutMinutes': 300,
      'conntrack-responder:policy': { memoryBudgetPercent: 3 },
    };
    // Act
    const { responder } = appSettingsFromContext((key) => context[key as keyof typeof context]);
    const fromCdkJson = appSettingsFromContext((key) => cdkJson[key]).responder;
    const { template } = synthesize(responder);
    // Assess
    expect(fromCdkJson).toEqual(responder);
    expect(approvalTimeouts(template)).toEqual({ task: 2700, announced: 2700 });
    expect(
      (onlyStateMachine(template.toJSON()).definition as { TimeoutSeconds: number }).TimeoutSeconds,
    ).toBe(300 * 60);
    const environment = environmentOf(template, 'policyGate');
    expect(environment[WORKFLOW_ENVIRONMENT.soakSeconds]).toBe('300');
    expect(JSON.parse(environment[WORKFLOW_ENVIRONMENT.policy] ?? '')).toEqual({ memoryBudgetPercent: 3 });
  });

  it.each([
    [{ memoryBudgetPercnt: 3 }, /ConntrackResponder policy .*Unrecognized key.*"memoryBudgetPercnt"/],
    [{ memoryBudgetPercent: 80 }, /ConntrackResponder policy .*memoryBudgetPercent: Too big/],
    [{ notrack: { maxPorts: 16 } }, /ConntrackResponder policy .*notrack\.maxPorts: Too big/],
    [
      { modes: { 'raise-limits': 'yolo' } },
      /ConntrackResponder policy .*modes\.raise-limits: Invalid option/,
    ],
    // Each field valid alone, but a table that counts as full could never pass verification.
    [
      { nearFullRatio: 0.7, verify: { maxUsageRatio: 0.75 } },
      /ConntrackResponder policy .*verify\.maxUsageRatio \(0\.75\) must not exceed nearFullRatio \(0\.7\)/,
    ],
  ])('fails the synth on the bad policy %j, naming the field', (policy, message) => {
    expect(() => synthesize({ policy: policy as never })).toThrow(message);
  });

  it('fails the synth on a policy too large for a Lambda environment variable', () => {
    const protectedPorts = Array.from({ length: 40 }, (_, index) => ({
      port: 10_000 + index,
      protocol: 'tcp' as const,
      direction: 'any' as const,
      why: 'an internal service whose owners asked never to be exempted from tracking',
    }));
    expect(() => synthesize({ policy: { notrack: { protectedPorts } } })).toThrow(
      /ConntrackResponder policy takes \d+ bytes as JSON; Lambda environment variables hold 4 KB/,
    );
  });

  it.each([
    [
      'approvalTimeoutMinutes 0',
      { approvalTimeoutMinutes: 0 },
      /ConntrackResponder approvalTimeoutMinutes must be a whole number from 1 to 10080/,
    ],
    [
      'approvalTimeoutMinutes 2.5',
      { approvalTimeoutMinutes: 2.5 },
      /ConntrackResponder approvalTimeoutMinutes must be a whole number/,
    ],
    [
      'a 1.5 s soak',
      { soak: Duration.millis(1500) },
      /ConntrackResponder soak must be a whole number of seconds from 0 to 86400/,
    ],
    [
      'a 2 day soak',
      { soak: Duration.days(2) },
      /ConntrackResponder soak must be a whole number of seconds from 0 to 86400/,
    ],
  ])('rejects %s at synth, naming the prop', (_, props, message) => {
    expect(() => synthesize(props)).toThrow(message);
  });

  it('fails the synth when workflowTimeout leaves no room for the approval, the soak and the steps', () => {
    // Prepare: a long approval wait under the default 4 h timeout.
    const props = { approvalTimeoutMinutes: 200, soak: Duration.minutes(10) };
    // Act
    const tooShort = () => synthesize(props);
    // Assess: the message names both props and the minimum, and the minimum is exactly enough.
    expect(tooShort).toThrow(
      /ConntrackResponder workflowTimeout \(240 min\) must exceed ConntrackResponder approvalTimeoutMinutes \(200 min\) \+ ConntrackResponder soak \(10 min\) \+ \d+ min for the rest of the workflow .*make it at least \d+ minutes/,
    );
    const minimum = Number(/at least (\d+) minutes/.exec(String(catchError(tooShort)))?.[1]);
    expect(minimum).toBeGreaterThan(200 + 10);
    expect(() => synthesize({ ...props, workflowTimeout: Duration.minutes(minimum - 1) })).toThrow(
      /must exceed/,
    );
    const { template } = synthesize({ ...props, workflowTimeout: Duration.minutes(minimum) });
    expect(
      (onlyStateMachine(template.toJSON()).definition as { TimeoutSeconds: number }).TimeoutSeconds,
    ).toBe(minimum * 60);
  });

  it('counts a longer soak against workflowTimeout too', () => {
    // The default approval (30 min) fits 4 h; a 3 h soak on top of it does not.
    expect(() => synthesize({ soak: Duration.hours(3) })).toThrow(
      /workflowTimeout \(240 min\) must exceed .*soak \(180 min\)/,
    );
  });
});

function catchError(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected an error');
}
