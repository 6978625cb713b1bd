import type { ManifestSigner } from '../../core/evidence/signature.js';
import type { AslMachine } from './asl.js';
import { localEvidenceWriter } from './evidence.js';
import { type RespondOptions, type RespondResult, respond } from './respond.js';
import { prepareDefinition } from './runner.js';
import { synthesizedWorkflowDefinition } from './synth.js';
import { followKernelLog, type KernelLogFollower } from './watch.js';

/**
 * `watch`: wait for the kernel to drop packets of one namespace, then respond. The definition is
 * synthesized before watching starts, so detection-to-action does not pay for the CDK.
 */

export interface WatchedIncident {
  readonly trigger: Awaited<KernelLogFollower['drops']>;
  readonly result: RespondResult;
}

export interface Watcher {
  /** Resolves once the kernel log is being followed (start the traffic after this). */
  readonly ready: Promise<void>;
  /** The first incident, detected and responded to. */
  readonly incident: Promise<WatchedIncident>;
  stop(): void;
}

export function watchOnce(
  options: Omit<RespondOptions, 'trigger' | 'definition'> & {
    readonly definition?: AslMachine;
    readonly onDetected?: (trigger: WatchedIncident['trigger']) => void;
    /** Signs the evidence bundle (the twin's local key, as KMS on AWS). */
    readonly evidenceSigner?: ManifestSigner;
  },
): Watcher {
  let follower: KernelLogFollower | undefined;
  let stopped = false;
  const say = options.progress === false ? () => {} : (line: string) => options.stdout.write(`${line}\n`);
  const ready = (async () => {
    const definition = options.definition ?? (await synthesizedWorkflowDefinition());
    prepareDefinition(definition);
    follower = await followKernelLog({ netns: options.netns });
    if (stopped) follower.stop();
    return definition;
  })();
  const incident = (async () => {
    const definition = await ready;
    const active = follower as KernelLogFollower;
    const trigger = await active.drops;
    active.stop();
    options.onDetected?.(trigger);
    say(
      `watch: ${trigger.dropLines} drop line(s) for ${options.netns}, first at ${trigger.firstSeen}, detected at ${trigger.detectedAt}`,
    );
    const result = await respond(
      { ...options, definition, trigger },
      localEvidenceWriter((line) => say(line), options.evidenceSigner),
    );
    return { trigger, result };
  })();
  return {
    ready: ready.then(() => undefined),
    incident,
    stop: () => {
      stopped = true;
      follower?.stop();
    },
  };
}
