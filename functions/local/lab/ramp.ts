import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { type Forecast, formatDuration, formatRate } from '../../core/forecast/index.js';
import type { ResponseMode } from '../../core/incident/settings.js';
import { applyHostFirewall, type FirewallBackend } from '../firewall.js';
import { createLabHosts, type LabHosts, withConntrackMax } from '../netns.js';
import {
  conntrackCount,
  conntrackDrops,
  conntrackMax,
  probeConnections,
  type RampResult,
  rampConnections,
  startTcpService,
  type TcpService,
} from '../traffic.js';
import type { AslMachine } from '../twin/asl.js';
import type { LocalApproval } from '../twin/local-functions.js';
import { synthesizedWorkflowDefinition } from '../twin/synth.js';
import { type WatchedIncident, watchOnce } from '../twin/watch-respond.js';
import { abortable, LAB_SERVICE_PORT, LabAbortedError } from './lab.js';

/**
 * The ramp lab (issue 13): a gradual fill, fixed before the first drop. Clients open short
 * connections to the instance namespace at a steady rate until it has been asked to hold twice its
 * limit; `watch` samples the namespace with the host sampler (one sample a second), the forecast
 * sees the table filling and opens a `near-full` incident, and the workflow confirms the growth on
 * the namespace, raises the limit and verifies, all while the clients keep connecting. The kernel's
 * own drop counter says whether anything was lost.
 */

/** Low enough to fill in seconds at lab rates; the host's own table is checked by withConntrackMax. */
export const RAMP_CONNTRACK_MAX = 2048;
/** The default fill rate: the table would be full in about 40 s. */
export const RAMP_DEFAULT_PER_SECOND = 50;

export interface RampLabOptions {
  /** New connections a second (the table grows by as many entries a second). */
  readonly perSecond: number;
  /** Connections in all, as a multiple of the limit. @default 2 */
  readonly demandFactor?: number;
  readonly mode: ResponseMode | undefined;
  readonly approval: LocalApproval;
  readonly outRoot: string;
  readonly soakSeconds: number;
  readonly backend: FirewallBackend;
  /** Seconds between samples. @default 1 */
  readonly sampleIntervalSeconds?: number;
  /** False: watch the kernel log only, the reactive responder (the bench's baseline). @default true */
  readonly forecast?: boolean;
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly definition?: AslMachine;
  /** Print the fill and the workflow's progress. @default true */
  readonly progress?: boolean;
  readonly signal?: AbortSignal;
  /** Called before nf_conntrack_max is restored and the namespaces go (tests look at the host here). */
  readonly beforeRestore?: (hosts: LabHosts) => Promise<void>;
}

export interface RampLabResult {
  readonly instance: string;
  readonly max: number;
  readonly perSecond: number;
  readonly ramp: RampResult;
  /** The kernel's drop counter of the instance namespace, before the fill and after it. */
  readonly dropsBefore: number;
  readonly dropsAfter: number;
  readonly incident: WatchedIncident;
  readonly rampStartedAt: string;
  /** When the table would have been full at the steady rate, had nothing changed. */
  readonly wouldBeFullAt: string;
  /** When the raised limit was first seen in the kernel (read every 20 ms); null if it never was. */
  readonly fixLandedAt: string | null;
  /** The last forecast made before the fix landed (its usage and predicted time to full). */
  readonly forecastAtFix: Forecast | null;
  /** wouldBeFullAt − fixLandedAt: how long before the table would have been full the fix landed. */
  readonly leadTimeMs: number | null;
  readonly countAfter: number;
  readonly maxAfter: number;
  readonly finalProbe: { readonly attempted: number; readonly succeeded: number };
}

/** Reads the global nf_conntrack_max every 20 ms and remembers when it first went above `max`. */
function watchLimit(max: number): { raisedAtMs(): number | null; stop(): void } {
  let raisedAt: number | null = null;
  const timer = setInterval(() => {
    if (raisedAt !== null) return;
    try {
      if (Number.parseInt(readFileSync(MAX_PATH, 'utf8'), 10) > max) raisedAt = Date.now();
    } catch {}
  }, 20);
  return {
    raisedAtMs: () => raisedAt,
    stop: () => clearInterval(timer),
  };
}

const MAX_PATH = '/proc/sys/net/netfilter/nf_conntrack_max';

export async function runRampLab(options: RampLabOptions): Promise<RampLabResult> {
  const say = options.progress === false ? () => {} : (line: string) => options.stdout.write(`${line}\n`);
  const definition = options.definition ?? (await synthesizedWorkflowDefinition());
  const demandFactor = options.demandFactor ?? 2;
  let hosts: LabHosts | undefined;
  let service: TcpService | undefined;
  let stopWatcher: (() => void) | undefined;
  const onAbort = () => stopWatcher?.();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    hosts = await createLabHosts('ramp');
    const labHosts = hosts;
    const { instance, clients, instanceAddress } = hosts;
    say(`ramp: namespaces ${instance} (the instance, ${instanceAddress}) and ${clients} (its clients)`);
    await applyHostFirewall(instance, options.backend, { servicePorts: [LAB_SERVICE_PORT] });
    service = await startTcpService(instance, instanceAddress, LAB_SERVICE_PORT);
    const baseline = await probeConnections(clients, instanceAddress, LAB_SERVICE_PORT, { count: 3 });
    if (baseline.succeeded !== 3)
      throw new Error(`the service does not answer before the fill: ${JSON.stringify(baseline)}`);
    return await withConntrackMax(RAMP_CONNTRACK_MAX, async () => {
      const max = RAMP_CONNTRACK_MAX;
      const total = Math.round(max * demandFactor);
      say(`ramp: nf_conntrack_max lowered to ${max} for the run (restored afterwards)`);
      const forecasts: Array<{ at: number; forecast: Forecast }> = [];
      let lastPrinted = 0;
      const watcher = watchOnce({
        netns: instance,
        ...(options.mode ? { mode: options.mode } : {}),
        approval: options.approval,
        outRoot: options.outRoot,
        soakSeconds: options.soakSeconds,
        definition,
        stdin: options.stdin,
        stdout: options.stdout,
        progress: options.progress ?? true,
        ...(options.signal ? { signal: options.signal } : {}),
        forecast:
          options.forecast === false
            ? false
            : {
                intervalSeconds: options.sampleIntervalSeconds ?? 1,
                onForecast: (forecast) => {
                  const at = Date.now();
                  forecasts.push({ at, forecast });
                  if (at - lastPrinted >= 2000 || forecast.trigger !== null) {
                    lastPrinted = at;
                    say(`ramp: sample: ${forecast.summary}`);
                  }
                },
              },
      });
      stopWatcher = watcher.stop;
      if (options.signal?.aborted) throw new LabAbortedError('interrupted');
      await watcher.ready;
      const dropsBefore = await conntrackDrops(instance);
      const countBefore = await conntrackCount(instance);
      say(
        options.forecast === false
          ? `ramp: following the kernel log of ${instance} only (no sampler: the reactive responder)`
          : `ramp: sampling ${instance} every ${options.sampleIntervalSeconds ?? 1} s (the host-sampler document's script) and following its kernel log`,
      );
      say(
        `ramp: opening ${total} short connections at ${options.perSecond}/s (${demandFactor}× the limit of ${max}); kernel drop counter ${dropsBefore}`,
      );
      say(
        `ramp: untouched, the table would be full in ${formatDuration((max - countBefore) / options.perSecond)} (${formatRate(options.perSecond)})`,
      );
      // The moment the fix reaches the kernel: the (global) limit read every 20 ms.
      const limitRaised = watchLimit(max);
      const ramp = rampConnections(clients, instanceAddress, LAB_SERVICE_PORT, {
        count: total,
        perSecond: options.perSecond,
      });
      ramp.catch(() => {});
      let finished: RampResult;
      let incident: WatchedIncident;
      try {
        incident = await abortable(watcher.incident, options.signal);
        finished = await abortable(ramp, options.signal);
      } finally {
        limitRaised.stop();
      }
      const wouldBeFull = finished.startedAtMs + ((max - countBefore) / options.perSecond) * 1000;
      const dropsAfter = await conntrackDrops(instance);
      const countAfter = await conntrackCount(instance);
      const maxAfter = await conntrackMax(instance);
      const finalProbe = await probeConnections(clients, instanceAddress, LAB_SERVICE_PORT, { count: 5 });
      await options.beforeRestore?.(labHosts);
      const landedMs = limitRaised.raisedAtMs();
      const landed = landedMs === null ? null : new Date(landedMs).toISOString();
      const forecastAtFix =
        landedMs === null
          ? null
          : (forecasts.filter((entry) => entry.at <= landedMs).at(-1)?.forecast ?? null);
      return {
        instance,
        max,
        perSecond: options.perSecond,
        ramp: finished,
        dropsBefore,
        dropsAfter,
        incident,
        rampStartedAt: new Date(finished.startedAtMs).toISOString(),
        wouldBeFullAt: new Date(wouldBeFull).toISOString(),
        fixLandedAt: landed,
        forecastAtFix,
        leadTimeMs: landedMs === null ? null : Math.round(wouldBeFull - landedMs),
        countAfter,
        maxAfter,
        finalProbe,
      };
    });
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    stopWatcher?.();
    await service?.stop().catch(() => {});
    if (hosts) {
      await rm(join('/run/conntrack-responder-twin', hosts.instance), { recursive: true, force: true });
      await hosts.destroy();
    }
  }
}

export function rampSummary(result: RampLabResult): string {
  const drops = result.dropsAfter - result.dropsBefore;
  const trigger = result.incident.trigger;
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const atFix = result.forecastAtFix;
  const lines = [
    '',
    '──────── ramp summary ────────',
    `fill                ${result.ramp.attempted} connections at ${result.perSecond}/s to a table of ${result.max} (${result.ramp.succeeded} succeeded, ${result.ramp.failed} failed)`,
    `opened as           ${trigger.kind ?? 'table-full'}${trigger.kind === 'near-full' ? `: ${trigger.forecast.summary}` : ''}`,
    `incident            ${result.incident.result.incidentId}: ${result.incident.result.outcome?.status ?? 'unknown'}`,
    `fix landed          ${result.fixLandedAt ?? 'no change landed'}${atFix ? ` at ${(atFix.usage * 100).toFixed(0)} % usage, predicted full in ${atFix.secondsToFull === null ? 'n/a' : formatDuration(atFix.secondsToFull)}` : ''}`,
    `lead time           ${result.leadTimeMs === null ? 'n/a' : `${seconds(result.leadTimeMs)} before the table would have been full (${result.wouldBeFullAt})`}`,
    `kernel drops        ${drops} (drop counter ${result.dropsBefore} → ${result.dropsAfter})`,
    `table now           ${result.countAfter} of ${result.maxAfter} entries`,
    `clients now         ${result.finalProbe.succeeded} of ${result.finalProbe.attempted} new connections succeed`,
    `evidence bundle     ${result.incident.result.bundle?.directory ?? 'not written'}`,
    `output folder       ${result.incident.result.outDir}`,
  ];
  return lines.join('\n');
}
