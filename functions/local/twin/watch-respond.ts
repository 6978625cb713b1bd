import type { ManifestSigner } from '../../core/evidence/signature.js';
import type { Forecast, ForecastSettings } from '../../core/forecast/index.js';
import type { AslMachine } from './asl.js';
import { localEvidenceWriter } from './evidence.js';
import { type ForecastWatcher, type NearFullTrigger, watchTableForecast } from './forecast-watch.js';
import { type RespondOptions, type RespondResult, respond } from './respond.js';
import { prepareDefinition } from './runner.js';
import { synthesizedWorkflowDefinition } from './synth.js';
import { followKernelLog, type KernelLogFollower } from './watch.js';

/**
 * `watch`: wait until one namespace needs a response, then respond. Two things are watched at once,
 * as the detect function does on AWS: the kernel log for the namespace's drop lines (a
 * `table-full` incident), and the host sampler's lines for a table predicted to fill within the
 * horizon (a `near-full` incident, before the first drop; forecast-watch.ts). Whichever comes
 * first opens the one incident `watch` handles. The definition is synthesized before watching
 * starts, so detection-to-action does not pay for the CDK.
 */

export type WatchTrigger =
  | (Awaited<KernelLogFollower['drops']> & { readonly kind?: 'table-full' })
  | NearFullTrigger;

export interface WatchedIncident {
  readonly trigger: WatchTrigger;
  readonly result: RespondResult;
}

export interface Watcher {
  /** Resolves once the kernel log is followed and the sampler runs (start the traffic after this). */
  readonly ready: Promise<void>;
  /** The first incident, detected and responded to. */
  readonly incident: Promise<WatchedIncident>;
  stop(): void;
}

export interface ForecastOptions {
  /** Seconds between samples. @default 1 (the lab's pace; 60 on AWS) */
  readonly intervalSeconds?: number;
  readonly settings?: ForecastSettings;
  readonly onForecast?: (forecast: Forecast) => void;
}

export function watchOnce(
  options: Omit<RespondOptions, 'trigger' | 'definition'> & {
    readonly definition?: AslMachine;
    readonly onDetected?: (trigger: WatchTrigger) => void;
    /** Signs the evidence bundle (the twin's local key, as KMS on AWS). */
    readonly evidenceSigner?: ManifestSigner;
    /** Sample the namespace and open a near-full incident before the first drop; false: drops only. */
    readonly forecast?: ForecastOptions | false;
  },
): Watcher {
  let follower: KernelLogFollower | undefined;
  let sampler: ForecastWatcher | undefined;
  let stopped = false;
  const say = options.progress === false ? () => {} : (line: string) => options.stdout.write(`${line}\n`);
  const stopWatching = () => {
    follower?.stop();
    void sampler?.stop();
  };
  const ready = (async () => {
    const definition = options.definition ?? (await synthesizedWorkflowDefinition());
    prepareDefinition(definition);
    follower = await followKernelLog({ netns: options.netns });
    if (options.forecast !== false) {
      const forecast = options.forecast ?? {};
      sampler = await watchTableForecast({
        netns: options.netns,
        ...(forecast.intervalSeconds === undefined ? {} : { intervalSeconds: forecast.intervalSeconds }),
        ...(forecast.settings === undefined ? {} : { settings: forecast.settings }),
        ...(forecast.onForecast === undefined ? {} : { onForecast: forecast.onForecast }),
      });
    }
    if (stopped) stopWatching();
    return definition;
  })();
  const incident = (async () => {
    const definition = await ready;
    const drops = (follower as KernelLogFollower).drops.then((trigger) => ({
      ...trigger,
      kind: 'table-full' as const,
    }));
    const trigger: WatchTrigger = await (sampler ? Promise.race([drops, sampler.nearFull]) : drops);
    // The kernel log is done with; the sampler goes on through the response, as on a host.
    follower?.stop();
    options.onDetected?.(trigger);
    if (trigger.kind === 'near-full') {
      say(
        `watch: near-full forecast for ${options.netns} before any drop: ${trigger.forecast.summary} (${trigger.forecast.trigger === 'usage' ? 'usage threshold' : 'within the horizon'}), detected at ${trigger.detectedAt}`,
      );
    } else {
      say(
        `watch: ${trigger.dropLines} drop line(s) for ${options.netns}, first at ${trigger.firstSeen}, detected at ${trigger.detectedAt}`,
      );
    }
    try {
      const result = await respond(
        { ...options, definition, trigger },
        localEvidenceWriter((line) => say(line), options.evidenceSigner),
      );
      return { trigger, result };
    } finally {
      await sampler?.stop();
    }
  })();
  return {
    ready: ready.then(() => undefined),
    incident,
    stop: () => {
      stopped = true;
      stopWatching();
    },
  };
}
