import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ResponderError } from '../../core/errors.js';
import { ENV_VAR_MIN_AGENT_VERSION } from '../../core/guardrails/settings.js';
import { ParameterValidationError, validateParameters } from '../../core/runbook/document.js';
import { namespaceExists } from '../netns.js';
import { loadRunbook } from '../runbooks.js';
import { type RunDocumentRequest, type RunDocumentResult, runDocument } from '../ssm-executor.js';
import type { LocalSsmApi } from './runner.js';

/**
 * SSM Run Command for the local twin: the network namespace plays the managed instance, and
 * documents run through the local executor. Requests and answers have the shapes of the SSM API
 * (what the Step Functions SDK integration passes and returns), and errors carry the names Step
 * Functions gives SSM's errors (`Ssm.<Name>Exception`), so the definition's Retry and Catch
 * fields behave as they do on AWS.
 */

export class SsmError extends ResponderError {
  /** What the SDK integration would report: `Ssm.<Code>Exception`. */
  override readonly name: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = `Ssm.${code}Exception`;
  }
}

/** One command as the evidence bundle records it. */
export interface LocalCommandRecord {
  readonly commandId: string;
  readonly document: string;
  readonly parameters: Readonly<Record<string, string>>;
  readonly sentAt: string;
  finishedAt?: string;
  result?: RunDocumentResult;
  error?: string;
}

export interface LocalSsmOptions {
  /** The namespace that plays the instance; its name is also the local "instance id". */
  readonly netns: string;
  /** Environment for the scripts that is not an SSM parameter (state dir, file root). */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * How long GetCommandInvocation waits for a running command before answering InProgress: each
   * poll costs at most this much real time, and a command that ends is seen at once.
   * @default 1000
   */
  readonly pollMs?: number;
  /** The executor (tests pass their own to simulate hosts). @default runDocument */
  readonly run?: (request: RunDocumentRequest) => Promise<RunDocumentResult>;
  /**
   * Validate parameters against the document at SendCommand, as SSM does (InvalidParameters).
   * @default true when `run` is the real executor
   */
  readonly validate?: boolean;
  /** Whether the instance is online (default: the namespace exists). */
  readonly online?: () => Promise<boolean>;
}

export interface LocalSsm extends LocalSsmApi {
  readonly instanceId: string;
  /** Every command sent, in order. */
  commands(): readonly LocalCommandRecord[];
  /** Resolves when every command sent so far has ended (used before cleanup). */
  settle(): Promise<void>;
}

function field<T>(input: unknown, name: string): T | undefined {
  return typeof input === 'object' && input !== null
    ? ((input as Record<string, unknown>)[name] as T)
    : undefined;
}

/** SSM's `{ Name: [value] }` parameters back to the executor's `{ Name: value }`. */
export function singleValuedParameters(parameters: unknown): Record<string, string> {
  if (parameters === undefined || parameters === null) return {};
  if (typeof parameters !== 'object') throw new SsmError('InvalidParameters', 'Parameters must be an object');
  const flat: Record<string, string> = {};
  for (const [name, values] of Object.entries(parameters)) {
    if (!Array.isArray(values) || values.length !== 1 || typeof values[0] !== 'string') {
      throw new SsmError('InvalidParameters', `parameter ${name} must be a list of exactly one string`);
    }
    flat[name] = values[0];
  }
  return flat;
}

export function localSsm(options: LocalSsmOptions): LocalSsm {
  const instanceId = options.netns;
  const pollMs = options.pollMs ?? 1000;
  const run = options.run ?? runDocument;
  const online = options.online ?? (() => namespaceExists(options.netns));
  const records: LocalCommandRecord[] = [];
  const running = new Map<string, Promise<void>>();

  const requireInstance = (id: unknown) => {
    if (id !== instanceId)
      throw new SsmError(
        'InvalidInstanceId',
        `instance ${String(id)} is not this local instance (${instanceId})`,
      );
  };

  return {
    instanceId,
    commands: () => records,
    settle: async () => {
      await Promise.allSettled(running.values());
    },

    async describeInstanceInformation(input) {
      const filters = field<Array<{ Key: string; Values: string[] }>>(input, 'Filters') ?? [];
      const wanted = filters.find((filter) => filter.Key === 'InstanceIds')?.Values ?? [instanceId];
      const listed = wanted.includes(instanceId) && (await online());
      return {
        InstanceInformationList: listed
          ? [
              {
                InstanceId: instanceId,
                PingStatus: 'Online',
                PlatformType: 'Linux',
                // The local executor passes parameters as SSM_<name> environment variables, as
                // agents from this version on do, so it answers the guardrails' precondition as one.
                AgentVersion: ENV_VAR_MIN_AGENT_VERSION,
              },
            ]
          : [],
      };
    },

    async sendCommand(document, input) {
      const instanceIds = field<unknown[]>(input, 'InstanceIds') ?? [];
      if (instanceIds.length !== 1)
        throw new SsmError('InvalidInstanceId', 'the local instance takes one instance id');
      requireInstance(instanceIds[0]);
      const awsName = field<string>(input, 'DocumentName') ?? '';
      if (!awsName.endsWith(document)) {
        throw new SsmError('InvalidDocument', `document ${awsName} is not the '${document}' runbook`);
      }
      const parameters = singleValuedParameters(field(input, 'Parameters'));
      if (options.validate ?? options.run === undefined) {
        try {
          validateParameters((await loadRunbook(document)).document, parameters);
        } catch (error) {
          if (error instanceof ParameterValidationError)
            throw new SsmError('InvalidParameters', error.message);
          throw new SsmError('InvalidDocument', (error as Error).message);
        }
      }
      const record: LocalCommandRecord = {
        commandId: randomUUID(),
        document,
        parameters,
        sentAt: new Date().toISOString(),
      };
      records.push(record);
      const execution = run({
        name: document,
        parameters,
        netns: options.netns,
        ...(options.env ? { env: options.env } : {}),
      }).then(
        (result) => {
          record.result = result;
          record.finishedAt = new Date().toISOString();
        },
        (error: unknown) => {
          record.error = error instanceof Error ? error.message : String(error);
          record.finishedAt = new Date().toISOString();
        },
      );
      running.set(record.commandId, execution);
      return { Command: { CommandId: record.commandId, DocumentName: awsName, Status: 'Pending' } };
    },

    async getCommandInvocation(input) {
      const commandId = field<string>(input, 'CommandId');
      requireInstance(field(input, 'InstanceId'));
      const record = records.find((each) => each.commandId === commandId);
      const execution = commandId === undefined ? undefined : running.get(commandId);
      if (record === undefined || execution === undefined) {
        throw new SsmError(
          'InvocationDoesNotExist',
          `no invocation of command ${String(commandId)} on ${instanceId}`,
        );
      }
      await Promise.race([execution, sleep(pollMs)]);
      const base = { CommandId: record.commandId, InstanceId: instanceId, DocumentName: record.document };
      if (record.finishedAt === undefined) {
        return {
          ...base,
          Status: 'InProgress',
          StatusDetails: 'InProgress',
          ResponseCode: -1,
          StandardOutputContent: '',
          StandardErrorContent: '',
        };
      }
      if (record.result === undefined) {
        return {
          ...base,
          Status: 'Failed',
          StatusDetails: 'Failed',
          ResponseCode: -1,
          StandardOutputContent: '',
          StandardErrorContent: record.error ?? 'the command could not be run',
        };
      }
      const { result } = record;
      return {
        ...base,
        Status: result.status,
        StatusDetails: result.statusDetails,
        ResponseCode: result.exitCode,
        StandardOutputContent: result.stdout,
        StandardErrorContent: result.stderr,
      };
    },
  };
}
