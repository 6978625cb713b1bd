import { randomUUID } from 'node:crypto';
import { StateMachine } from 'aws-local-stepfunctions';
import { LAMBDA_TASK_STATES, STATE, type WorkflowFunctionRole } from '../../core/workflow/state-names.js';
import { type AslMachine, allStates } from './asl.js';

/**
 * Runs the incident workflow's definition with aws-local-stepfunctions: every Task state is bound
 * to a local function (SSM calls to the local SSM service, Lambda tasks to the same handler code),
 * Wait states are cut to nothing except the soak, which stays a real, configurable wait.
 */

/** The library's event type (it exports the generator, not the type). */
type EventLog = ReturnType<StateMachine['run']>['eventLogs'] extends AsyncGenerator<infer E> ? E : never;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The SSM API calls the definition makes through the SDK integration, served locally. */
export interface LocalSsmApi {
  describeInstanceInformation(input: unknown): Promise<unknown>;
  /** `document` is the repository name of the document, read from the state name ("…: send raise-limits"). */
  sendCommand(document: string, input: unknown): Promise<unknown>;
  getCommandInvocation(input: unknown): Promise<unknown>;
}

export type LambdaBindings = Readonly<Record<WorkflowFunctionRole, (payload: unknown) => Promise<unknown>>>;

export interface WorkflowEvent {
  readonly type: EventLog['type'];
  /** Milliseconds since the epoch. */
  readonly timestamp: number;
  readonly state?: string;
  readonly stateType?: string;
  readonly input?: unknown;
  readonly output?: unknown;
  readonly error?: string;
  readonly cause?: unknown;
}

export interface LocalRunOptions {
  readonly definition: AslMachine;
  readonly input: unknown;
  readonly ssm: LocalSsmApi;
  readonly lambdas: LambdaBindings;
  /** The soak period, really waited (the definition's value is the AWS one). */
  readonly soakMs: number;
  /** Pause before each retry of a retried state (the definition's backoff is for AWS). @default 100 */
  readonly retryIntervalMs?: number;
  readonly executionName?: string;
  /** Called for every event as it happens (progress output). */
  readonly onEvent?: (event: WorkflowEvent) => void;
}

export interface LocalRun {
  readonly executionArn: string;
  /** Every event so far; the evidence writer reads it as the execution history. */
  readonly history: () => readonly WorkflowEvent[];
  /** The execution's output, or the error that failed it. */
  readonly result: Promise<{ output: unknown } | { error: Error }>;
  abort(): void;
}

const SSM_RESOURCE = /^arn:aws:states:::aws-sdk:ssm:([A-Za-z]+)$/;
const SEND_STATE = /: send ([a-z0-9-]+)$/;
const WAIT_FOR_TOKEN = 'arn:aws:states:::lambda:invoke.waitForTaskToken';
const LAMBDA_INVOKE = 'arn:aws:states:::lambda:invoke';

function roleOfState(name: string): WorkflowFunctionRole | undefined {
  for (const [role, states] of Object.entries(LAMBDA_TASK_STATES)) {
    if ((states as readonly string[]).includes(name)) return role as WorkflowFunctionRole;
  }
  return undefined;
}

/** A local function for every Task state of the definition; an unknown Task state is an error, never skipped. */
export function bindTaskStates(
  definition: AslMachine,
  ssm: LocalSsmApi,
  lambdas: LambdaBindings,
): Record<string, (input: Json) => Promise<Json>> {
  const handlers: Record<string, (input: Json) => Promise<Json>> = {};
  for (const { name, state } of allStates(definition)) {
    if (state.Type !== 'Task') continue;
    const resource = state.Resource ?? '';
    const ssmAction = SSM_RESOURCE.exec(resource)?.[1];
    if (ssmAction === 'sendCommand') {
      const document = SEND_STATE.exec(name)?.[1];
      if (document === undefined)
        throw new Error(`Task state '${name}': cannot tell which document it sends`);
      handlers[name] = async (input) => (await ssm.sendCommand(document, input)) as Json;
    } else if (ssmAction === 'getCommandInvocation') {
      handlers[name] = async (input) => (await ssm.getCommandInvocation(input)) as Json;
    } else if (ssmAction === 'describeInstanceInformation') {
      handlers[name] = async (input) => (await ssm.describeInstanceInformation(input)) as Json;
    } else if (ssmAction !== undefined) {
      throw new Error(`Task state '${name}': no local binding for ssm:${ssmAction}`);
    } else {
      const role = roleOfState(name);
      if (role === undefined) throw new Error(`Task state '${name}' (${resource}) has no local binding`);
      const fn = lambdas[role];
      if (resource === WAIT_FOR_TOKEN) {
        // The local "task token" is settled by what the approval function resolves with.
        handlers[name] = async (input) => (await fn((input as { Payload?: unknown }).Payload)) as Json;
      } else if (resource === LAMBDA_INVOKE) {
        handlers[name] = async (input) => ({
          Payload: (await fn((input as { Payload?: unknown }).Payload)) as Json,
        });
      } else {
        handlers[name] = async (input) => (await fn(input)) as Json;
      }
    }
  }
  return handlers;
}

function toWorkflowEvent(event: EventLog): WorkflowEvent {
  const base = { type: event.type, timestamp: event.timestamp };
  if ('state' in event) {
    const withError = 'Error' in event ? { error: event.Error, cause: event.Cause } : {};
    return {
      ...base,
      state: event.state.name,
      stateType: event.state.type,
      input: event.state.input,
      ...(event.state.output === undefined ? {} : { output: event.state.output }),
      ...withError,
    };
  }
  if ('Error' in event) return { ...base, error: event.Error, cause: event.Cause };
  if ('output' in event) return { ...base, output: event.output };
  if ('input' in event) return { ...base, input: event.input };
  return base;
}

/** Definitions already validated in this process: later runs skip the (slow) schema validation. */
const validated = new WeakSet<object>();

/** Validates a definition for the local interpreter once, up front (watch does it before drops arrive). */
export function prepareDefinition(definition: AslMachine): void {
  if (validated.has(definition)) return;
  new StateMachine(definition as never, { validationOptions: { checkArn: false } });
  validated.add(definition);
}

export function runWorkflowLocally(options: LocalRunOptions): LocalRun {
  const executionName = options.executionName ?? randomUUID();
  const executionArn = `arn:aws:states:local:000000000000:execution:IncidentWorkflow:${executionName}`;
  prepareDefinition(options.definition);
  // Placeholder ARNs (region "local") are not real ARNs; every Task is bound locally anyway.
  const machine = new StateMachine(options.definition as never, { validationOptions: { noValidate: true } });
  const waitTimeOverrides: Record<string, number> = {};
  const retryIntervalOverrides: Record<string, number> = {};
  for (const { name, state } of allStates(options.definition)) {
    if (state.Type === 'Wait') waitTimeOverrides[name] = name === STATE.soak ? options.soakMs : 0;
    if (state.Retry !== undefined) retryIntervalOverrides[name] = options.retryIntervalMs ?? 100;
  }
  const execution = machine.run(options.input as Json, {
    overrides: {
      taskResourceLocalHandlers: bindTaskStates(options.definition, options.ssm, options.lambdas),
      waitTimeOverrides,
      retryIntervalOverrides,
    },
    context: {
      Execution: { Id: executionArn, Name: executionName },
      // One token per run: the local approval never leaves this process.
      Task: { Token: `local-task-token-${randomUUID()}` },
    },
  });
  const history: WorkflowEvent[] = [];
  const recording = (async () => {
    for await (const event of execution.eventLogs) {
      const recorded = toWorkflowEvent(event);
      history.push(recorded);
      options.onEvent?.(recorded);
    }
  })();
  const result = execution.result.then(
    async (output) => {
      await recording.catch(() => {});
      return { output: output as unknown };
    },
    async (error: unknown) => {
      await recording.catch(() => {});
      return { error: error instanceof Error ? error : new Error(String(error)) };
    },
  );
  return { executionArn, history: () => history, result, abort: () => execution.abort() };
}
