import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { ResponderError } from '../../core/errors.js';
import type { ResponseMode } from '../../core/incident/settings.js';
import { verifyEvidenceBundleAt } from '../evidence-writer.js';
import { applyHostFirewall, type FirewallBackend } from '../firewall.js';
import { createLabHosts, type LabHosts, withConntrackMax } from '../netns.js';
import {
  probeConnections,
  reproduceTableFull,
  startTcpService,
  type TableFullResult,
  type TcpService,
} from '../traffic.js';
import type { AslMachine } from '../twin/asl.js';
import type { LocalApproval } from '../twin/local-functions.js';
import type { RespondResult } from '../twin/respond.js';
import { synthesizedWorkflowDefinition } from '../twin/synth.js';
import { type WatchedIncident, watchOnce } from '../twin/watch-respond.js';

/**
 * The lab: seed 003 reproduced for real and fixed by the responder, on this machine.
 *
 * Two network namespaces joined by a veth pair play an EC2 instance (a TCP service behind a
 * stateful firewall) and its clients. With nf_conntrack_max lowered (and always restored), short
 * client connections fill the instance's table until new connections fail and the kernel logs
 * "table full in netns <inode>". `watch` sees the line and runs the workflow; clients keep probing
 * until they succeed again. Nothing outside the two namespaces is changed except nf_conntrack_max,
 * which `withConntrackMax` restores even after a crash, and the responder's own fix to it.
 */

export const LAB_SERVICE_PORT = 8080;
/** Low enough to fill in seconds, high enough for the host's own table (withConntrackMax checks). */
export const LAB_CONNTRACK_MAX = 4096;

export interface LabOptions {
  readonly mode: ResponseMode | undefined;
  readonly approval: LocalApproval;
  readonly outRoot: string;
  readonly soakSeconds: number;
  readonly backend: FirewallBackend;
  readonly stdin: Readable;
  readonly stdout: Writable;
  /** A definition synthesized beforehand (the bench reuses one across runs). */
  readonly definition?: AslMachine;
  /** Print the workflow's progress lines. @default true */
  readonly progress?: boolean;
  /** Aborts the run (Ctrl-C): cleanup still happens. */
  readonly signal?: AbortSignal;
  /** Called once nf_conntrack_max is lowered, before any traffic (tests snapshot the host here). */
  readonly onLowered?: (hosts: LabHosts) => Promise<void>;
  /** Called after the response, before nf_conntrack_max is restored and the namespaces go. */
  readonly beforeRestore?: (hosts: LabHosts) => Promise<void>;
}

export interface LabResult {
  readonly instance: string;
  readonly reproduction: TableFullResult;
  readonly incident: WatchedIncident;
  /** Kernel time of the first drop line of the instance's namespace. */
  readonly firstDropAt: string;
  /** When `watch` saw it. */
  readonly detectedAt: string;
  /** First time a round of client probes all succeeded again after the table filled, null if never. */
  readonly clientsRecoveredAt: string | null;
  /** Probe after the workflow ended. */
  readonly finalProbe: { readonly attempted: number; readonly succeeded: number };
  readonly timeToDetectMs: number;
  /** First drop to clients succeeding again; the soak period is not part of it (clients recover before). */
  readonly timeToMitigateMs: number | null;
  readonly bundle: {
    readonly directory: string;
    /** Folder and .tar.gz both verified against the manifest digest the workflow recorded. */
    readonly verified: boolean;
    readonly files: number;
    readonly manifestSha256: string;
  } | null;
  readonly result: RespondResult;
}

export class LabAbortedError extends ResponderError {
  override readonly name = 'LabAbortedError';
}

/** Rejects as soon as the signal aborts, so that cleanup never waits for a step that is stuck. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(new LabAbortedError('interrupted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new LabAbortedError('interrupted'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Probes until clients are served again: a round of `count` new connections that all succeed.
 * One lucky connection is not recovery: with a full table the kernel may still early-drop an
 * unassured entry and let a single SYN through.
 */
export async function clientsRecovered(
  hosts: LabHosts,
  stop: AbortSignal,
  count = 5,
  intervalMs = 100,
): Promise<string | null> {
  while (!stop.aborted) {
    const probe = await probeConnections(hosts.clients, hosts.instanceAddress, LAB_SERVICE_PORT, {
      count,
      timeoutMs: 1000,
    }).catch(() => null);
    if (probe !== null && probe.succeeded === count) return new Date().toISOString();
    await sleep(intervalMs);
  }
  return null;
}

export async function runLab(options: LabOptions): Promise<LabResult> {
  const say = (line: string) => options.stdout.write(`${line}\n`);
  const definition =
    options.definition ??
    (await timed(say, 'synthesized the workflow definition', synthesizedWorkflowDefinition));
  let hosts: LabHosts | undefined;
  let service: TcpService | undefined;
  const watchers: Array<() => void> = [];
  const stopProbing = new AbortController();
  const onAbort = () => {
    stopProbing.abort();
    for (const stop of watchers) stop();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    hosts = await abortable(createLabHosts('lab'), options.signal);
    const { instance, clients, instanceAddress } = hosts;
    say(`lab: namespaces ${instance} (the instance, ${instanceAddress}) and ${clients} (its clients)`);
    await applyHostFirewall(instance, options.backend, { servicePorts: [LAB_SERVICE_PORT] });
    service = await startTcpService(instance, instanceAddress, LAB_SERVICE_PORT);
    say(
      `lab: ${options.backend} firewall and a TCP service on ${instanceAddress}:${LAB_SERVICE_PORT} in ${instance}`,
    );
    const baseline = await probeConnections(clients, instanceAddress, LAB_SERVICE_PORT, { count: 3 });
    if (baseline.succeeded !== 3)
      throw new Error(`the service does not answer before the incident: ${JSON.stringify(baseline)}`);
    say('lab: clients connect fine (3 of 3)');

    const labHosts = hosts;
    return await withConntrackMax(LAB_CONNTRACK_MAX, async () => {
      say(`lab: nf_conntrack_max lowered to ${LAB_CONNTRACK_MAX} for the run (restored afterwards)`);
      await options.onLowered?.(labHosts);
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
        // This lab is the reactive story (a burst fills the table in seconds, before a forecast
        // has its five samples): the kernel's drop line opens the incident. `--ramp` is the other.
        forecast: false,
      });
      watchers.push(watcher.stop);
      await abortable(watcher.ready, options.signal);
      say(`lab: watching the kernel log for "table full in netns" of ${instance}`);
      say('lab: reproducing seed 003: short TCP connections until the table is full');
      // Stop at the first failing connection: the responder may be fixing the table before a later probe.
      const reproduction = await abortable(
        reproduceTableFull({ hosts: labHosts, port: LAB_SERVICE_PORT, until: 'first-failure' }),
        options.signal,
      );
      say(
        `lab: table full after ${reproduction.attempted} connections in ${reproduction.elapsedMs} ms ` +
          `(${reproduction.countAtFull} entries of ${reproduction.max}); new connections fail: ` +
          `${reproduction.failing.failed} of ${reproduction.failing.attempted} (${Object.keys(reproduction.failing.errors).join(', ')})`,
      );
      const recovery = clientsRecovered(labHosts, stopProbing.signal);
      const incident = await abortable(watcher.incident, options.signal);
      const clientsRecoveredAt = await Promise.race([recovery, sleep(10_000).then(() => null)]);
      stopProbing.abort();
      const finalProbe = await probeConnections(clients, instanceAddress, LAB_SERVICE_PORT, { count: 5 });
      say(
        `lab: after the response, ${finalProbe.succeeded} of ${finalProbe.attempted} new connections succeed`,
      );
      await options.beforeRestore?.(labHosts);
      const firstDropAt = incident.trigger.firstSeen ?? incident.trigger.detectedAt;
      const first = Date.parse(firstDropAt);
      let bundle: LabResult['bundle'] = null;
      if (incident.result.bundle) {
        const written = incident.result.bundle;
        // Checked as a reviewer would: against the digest recorded outside the bundle.
        const options = { expectedDigest: written.manifestSha256 };
        const folder = await verifyEvidenceBundleAt(written.directory, options);
        const archive = await verifyEvidenceBundleAt(written.archive, options);
        bundle = {
          directory: written.directory,
          verified: folder.ok && archive.ok,
          files: folder.verified.length,
          manifestSha256: written.manifestSha256,
        };
      }
      return {
        instance,
        reproduction,
        incident,
        firstDropAt,
        detectedAt: incident.trigger.detectedAt,
        clientsRecoveredAt,
        finalProbe,
        timeToDetectMs: Date.parse(incident.trigger.detectedAt) - first,
        timeToMitigateMs: clientsRecoveredAt === null ? null : Date.parse(clientsRecoveredAt) - first,
        bundle,
        result: incident.result,
      };
    });
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    onAbort();
    await service?.stop().catch(() => {});
    if (hosts) {
      await rm(join('/run/conntrack-responder-twin', hosts.instance), { recursive: true, force: true });
      await hosts.destroy();
    }
  }
}

async function timed<T>(say: (line: string) => void, what: string, body: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const value = await body();
  say(`lab: ${what} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return value;
}

export function labSummary(result: LabResult): string {
  const seconds = (ms: number | null) => (ms === null ? 'n/a' : `${(ms / 1000).toFixed(2)} s`);
  const lines = [
    '',
    '──────── lab summary ────────',
    `incident            ${result.result.incidentId}`,
    `outcome             ${result.result.outcome?.status ?? 'unknown'}: ${result.result.outcome?.summary ?? ''}`,
    `first drop (kernel) ${result.firstDropAt}`,
    `detected            ${result.detectedAt}  (time to detect ${seconds(result.timeToDetectMs)})`,
    `clients recovered   ${result.clientsRecoveredAt ?? 'not within the run'}  (time to mitigate ${seconds(result.timeToMitigateMs)})`,
    `clients now         ${result.finalProbe.succeeded} of ${result.finalProbe.attempted} new connections succeed`,
    `evidence bundle     ${result.bundle ? `${result.bundle.directory} (${result.bundle.verified ? `verified, ${result.bundle.files} files` : 'VERIFICATION FAILED'})` : 'not written'}`,
    ...(result.bundle ? [`manifest sha256     ${result.bundle.manifestSha256}`] : []),
    `output folder       ${result.result.outDir}`,
  ];
  return lines.join('\n');
}
