import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Ec2NetworkPort } from '../../core/allowance/network.js';
import { type NetworkStepContext, runNetworkStep } from '../../core/allowance/steps.js';
import { DEFAULT_MANAGED_INSTANCE_TAG } from '../../core/defaults.js';
import { ResponderError } from '../../core/errors.js';
import { EVENTS_AFTER_STEP } from '../../core/events/lifecycle.js';
import { assessIncident } from '../../core/workflow/assess.js';
import { gateIncident } from '../../core/workflow/gate.js';
import type { WorkflowSettings } from '../../core/workflow/settings.js';
import { verifyFix } from '../../core/workflow/verify.js';
import { askOnTerminal, type LocalChatops, startLocalChatops } from '../chatops/local-chatops.js';
import { fileEniChangeStore } from './eni-change-files.js';
import { type LocalGuardrails, localGuardrails } from './guardrails.js';
import { eventsFileBus, type LocalEventBus } from './lifecycle-events.js';
import type { LambdaBindings } from './runner.js';

/**
 * The workflow's Lambda tasks on one machine: the same core functions the handlers call, with the
 * AWS side effects replaced: Slack and SNS by the local ChatOps (a real workspace when configured,
 * else Block Kit and SNS JSON files under the output folder, the approval taken from the terminal
 * or a flag; see functions/local/chatops/local-chatops.ts).
 */

/** How the local approval is decided: ask on the terminal, or a decision given up front. */
export type LocalApproval = 'prompt' | 'approve' | 'reject';

export interface LocalFunctionsOptions {
  readonly outDir: string;
  readonly settings: WorkflowSettings;
  readonly approval: LocalApproval;
  readonly stdin: Readable;
  readonly stdout: Writable;
  /** Writes the evidence bundle from the final state (set by the respond command). */
  readonly writeEvidence: (state: unknown) => Promise<unknown>;
  readonly now?: () => Date;
  /** The guardrails' records for this run (in memory); @default a fresh set with the default settings */
  readonly guardrails?: LocalGuardrails;
  /**
   * Slack and SNS for this run (respond starts it from the environment, and closes it).
   * @default files under outDir, the decision from the terminal or the flag
   */
  readonly chatops?: LocalChatops;
  /**
   * Where the lifecycle events go (README "Lifecycle events").
   * @default events.jsonl under outDir
   */
  readonly events?: LocalEventBus;
  /**
   * EC2 for the network steps (the local EC2 of respond --ena-exceeded) and where ENI changes keep
   * their previous values. @default no EC2: a describe that needs it fails into the plan's notes
   */
  readonly network?: NetworkStepContext;
}

export class NoLocalEc2Error extends ResponderError {
  override readonly name = 'NoLocalEc2';
}

/** EC2 when the run has none: every call fails, saying so (the workflow keeps the error as a note). */
const noEc2: Ec2NetworkPort = new Proxy({} as Ec2NetworkPort, {
  get: () => async () => {
    throw new NoLocalEc2Error(
      'this local run has no EC2 (respond starts a local EC2 with --ena-exceeded, see docs/workflow.md)',
    );
  },
});

export function localFunctions(options: LocalFunctionsOptions): LambdaBindings {
  const now = options.now ?? (() => new Date());
  const guardrails = options.guardrails ?? localGuardrails({ now });
  let started: Promise<LocalChatops> | undefined;
  const chatops = () => {
    started ??= options.chatops
      ? Promise.resolve(options.chatops)
      : startLocalChatops({
          outDir: options.outDir,
          env: { USER: process.env.USER, SUDO_USER: process.env.SUDO_USER },
          decision: options.approval,
          ask: askOnTerminal(options.stdin, options.stdout),
          say: (line) => options.stdout.write(`${line}\n`),
          now,
        });
    return started;
  };
  const bus = options.events ?? eventsFileBus(options.outDir);
  // The same events the Lambda handlers put after the same steps (EVENTS_AFTER_STEP).
  const emitting =
    <T>(role: keyof typeof EVENTS_AFTER_STEP, step: (payload: unknown) => Promise<T>) =>
    async (payload: unknown): Promise<T> => {
      const result = await step(payload);
      await bus(EVENTS_AFTER_STEP[role](payload, result, now()));
      return result;
    };
  const network: NetworkStepContext = options.network ?? {
    ec2: noEc2,
    store: fileEniChangeStore(join(options.outDir, 'eni-changes')),
    now,
    optIn: DEFAULT_MANAGED_INSTANCE_TAG,
    policy: options.settings.policy,
  };
  return {
    guardrails: guardrails.step,
    network: async (payload) => runNetworkStep(payload, network),
    assess: emitting('assess', async (payload) => assessIncident(payload, options.settings)),
    policyGate: emitting('policyGate', async (payload) => gateIncident(payload, options.settings)),
    verify: emitting('verify', async (payload) => verifyFix(payload)),
    requestApproval: emitting('requestApproval', async (payload) =>
      (await chatops()).requestApproval(payload),
    ),
    announce: emitting('announce', async () => ({ channel: 'events.jsonl' })),
    // Before the notification, as on AWS.
    notify: async (payload) => {
      await bus(EVENTS_AFTER_STEP.notify(payload, null, now()));
      return (await chatops()).notify(payload);
    },
    writeEvidence: async (payload) => options.writeEvidence(payload),
  };
}
