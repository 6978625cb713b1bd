import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { DEFAULT_MANAGED_INSTANCE_TAG } from '../../core/defaults.js';
import type { ResponseMode } from '../../core/incident/settings.js';
import { resolvePolicy, withMode } from '../../core/plan/index.js';
import { OUTCOME_STATUSES, type Outcome } from '../../core/workflow/outcome.js';
import { type WorkflowSettings, workflowSettingsFrom } from '../../core/workflow/settings.js';
import { askOnTerminal, startLocalChatops } from '../chatops/local-chatops.js';
import { namespaceExists, namespaceInode } from '../netns.js';
import { type AllowanceTwin, allowanceTwinPort, startAllowanceTwin } from './allowance-twin.js';
import type { AslMachine } from './asl.js';
import { fileEniChangeStore } from './eni-change-files.js';
import type { LocalEc2Call, LocalEni } from './local-ec2.js';
import { type LocalApproval, localFunctions } from './local-functions.js';
import { type LocalCommandRecord, localSsm } from './local-ssm.js';
import { progressPrinter } from './progress.js';
import { runWorkflowLocally, type WorkflowEvent } from './runner.js';
import type { LocalTrigger } from './watch.js';

/**
 * `respond`: one incident on a live network namespace, handled by the deployed workflow's
 * definition with the same core code, on this machine.
 */

export interface RespondOptions {
  readonly netns: string;
  /** Every action's mode (auto, approve, dry-run); undefined keeps the policy's per-kind modes. */
  readonly mode?: ResponseMode;
  /** Parent folder of the incident's output folder. @default ./out */
  readonly outRoot?: string;
  /** The incident's output folder. @default <outRoot>/<incident id> */
  readonly outDir?: string;
  readonly approval: LocalApproval;
  /** The soak period, really waited. @default 5 */
  readonly soakSeconds?: number;
  readonly trigger?: LocalTrigger;
  /** A definition synthesized beforehand (watch and bench synthesize once, up front). */
  readonly definition?: AslMachine;
  /** JSON policy overrides (see docs/policy.md); @default the RESPONDER_POLICY environment variable */
  readonly policy?: unknown;
  readonly stdin: Readable;
  readonly stdout: Writable;
  /** Print progress lines. @default true */
  readonly progress?: boolean;
  /** Where scripts keep rollback state and persisted files for this namespace (never the host's /etc). */
  readonly hostStateDir?: string;
  readonly now?: () => Date;
  /** Stops the execution where it is (Ctrl-C in the lab); the result then carries the abort error. */
  readonly signal?: AbortSignal;
  /**
   * EC2's allowance exhausted on the namespace's first interface (an `ec2-allowance` incident): its
   * ENA counter rises at `exceededPerSecond`, and a local EC2 plays the instance's ENIs. With
   * `relief` the counter stops once the ENI's timeouts are shortened (allowance-twin.ts).
   */
  readonly ena?: { readonly exceededPerSecond: number; readonly relief: boolean };
}

export interface RespondResult {
  readonly incidentId: string;
  readonly outDir: string;
  readonly outcome: Outcome | null;
  /** The workflow's final state, or null when the execution failed. */
  readonly state: Record<string, unknown> | null;
  readonly error: Error | null;
  readonly history: readonly WorkflowEvent[];
  readonly commands: readonly LocalCommandRecord[];
  /** Where the evidence bundle was written and its manifest's sha256, when it was. */
  readonly bundle: {
    readonly directory: string;
    readonly archive: string;
    readonly manifestSha256: string;
    readonly signedBy: string | null;
  } | null;
  readonly startedAt: string;
  readonly endedAt: string;
  /** The local EC2 of an `ena` run: its ENIs before and after, and every call it served. */
  readonly ec2: {
    readonly initial: readonly LocalEni[];
    readonly final: readonly LocalEni[];
    readonly calls: readonly LocalEc2Call[];
  } | null;
}

/** Outcomes after which nobody needs to act (exit code 0); the others exit 3. */
export const SETTLED_OUTCOMES: ReadonlySet<string> = new Set([
  'remediated',
  'dry-run',
  'not-confirmed',
  'no-host-change',
  'rejected',
]);

export type EvidenceWriter = (input: {
  readonly state: unknown;
  readonly history: readonly WorkflowEvent[];
  readonly commands: readonly LocalCommandRecord[];
  readonly outDir: string;
  readonly incidentId: string;
}) => Promise<WrittenEvidence>;

/** Where the twin wrote the bundle; `$.evidence` as the Lambda returns it (minus the record). */
export interface WrittenEvidence {
  readonly location: string;
  readonly directory: string;
  readonly archive: string;
  /** sha256 of manifest.json: the digest the summary and the notification record. */
  readonly manifestSha256: string;
  readonly signature: { readonly keyId: string; readonly algorithm: string } | null;
}

function compactTime(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

export async function respond(
  options: RespondOptions,
  writeEvidence: EvidenceWriter,
): Promise<RespondResult> {
  const now = options.now ?? (() => new Date());
  const started = now();
  const { netns } = options;
  if (!(await namespaceExists(netns)))
    throw new Error(`no network namespace named '${netns}' (see 'ip netns list')`);
  const inode = await namespaceInode(netns);
  const say = options.progress === false ? () => {} : (line: string) => options.stdout.write(`${line}\n`);

  const definition =
    options.definition ?? (await (await import('./synth.js')).synthesizedWorkflowDefinition());
  const incidentId = `local-${netns}-${compactTime(started)}`.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 80);
  const outDir = resolve(options.outDir ?? join(options.outRoot ?? 'out', incidentId));
  await mkdir(outDir, { recursive: true });

  const settings = respondSettings(options);
  const input = executionInput(options, { incidentId, started, inode });
  await writeFile(join(outDir, 'execution-input.json'), `${JSON.stringify(input, null, 2)}\n`);

  const hostStateDir = options.hostStateDir ?? join('/run/conntrack-responder-twin', netns);
  const allowance = options.ena ? await startAllowance(netns, options.ena, hostStateDir, say) : null;
  const ssm = localSsm({
    netns,
    env: {
      CONNTRACK_RESPONDER_STATE_DIR: join(hostStateDir, 'state'),
      CONNTRACK_RESPONDER_ROOT: join(hostStateDir, 'root'),
      ...(allowance?.env ?? {}),
    },
  });
  let history: () => readonly WorkflowEvent[] = () => [];
  let bundle: RespondResult['bundle'] = null;
  // A real Slack workspace when SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are set, else files.
  const chatops = await startLocalChatops({
    outDir,
    env: process.env,
    decision: options.approval,
    ask: askOnTerminal(options.stdin, options.stdout),
    say,
    now,
  });
  say(
    chatops.mode === 'slack'
      ? `respond: Slack workspace; approval clicks reach ${chatops.endpoint} (the app's Request URL must lead here)`
      : `respond: Slack messages written as Block Kit JSON under ${join(outDir, 'slack')}`,
  );
  const lambdas = localFunctions({
    ...(allowance
      ? {
          network: {
            ec2: allowanceTwinPort(allowance),
            // Beside the host scripts' own saved state: what a rollback restores.
            store: fileEniChangeStore(join(hostStateDir, 'eni-changes')),
            now,
            optIn: DEFAULT_MANAGED_INSTANCE_TAG,
            policy: settings.policy,
          },
        }
      : {}),
    chatops,
    outDir,
    settings,
    approval: options.approval,
    stdin: options.stdin,
    stdout: options.stdout,
    now,
    writeEvidence: async (state) => {
      const written = await writeEvidence({
        state,
        history: history(),
        commands: ssm.commands(),
        outDir,
        incidentId,
      });
      bundle = {
        directory: written.directory,
        archive: written.archive,
        manifestSha256: written.manifestSha256,
        signedBy: written.signature?.keyId ?? null,
      };
      return {
        location: written.location,
        archive: written.archive,
        manifestSha256: written.manifestSha256,
        signature: written.signature,
      };
    },
  });

  say(`respond: incident ${incidentId} on namespace ${netns} (netns inode ${inode})`);
  say(`respond: mode ${options.mode ?? 'policy defaults'}, soak ${settings.soakSeconds} s, output ${outDir}`);
  const printProgress = progressPrinter(say, started.getTime());
  const execution = runWorkflowLocally({
    definition,
    input,
    ssm,
    lambdas,
    soakMs: settings.soakSeconds * 1000,
    executionName: incidentId,
    onEvent: (event) => {
      printProgress(event);
      chatops.onEvent(event);
    },
  });
  history = execution.history;
  const abort = () => execution.abort();
  options.signal?.addEventListener('abort', abort, { once: true });
  if (options.signal?.aborted) abort();
  const ended = await execution.result.finally(() => chatops.close());
  options.signal?.removeEventListener('abort', abort);
  await ssm.settle();
  const ec2 = allowance ? await closeAllowance(allowance, outDir) : null;
  const state = 'output' in ended ? (ended.output as Record<string, unknown>) : null;
  const rawOutcome = state?.outcome as Outcome | undefined;
  const outcome =
    rawOutcome && (OUTCOME_STATUSES as readonly string[]).includes(rawOutcome.status) ? rawOutcome : null;
  await writeFile(
    join(outDir, 'execution-history.json'),
    `${JSON.stringify(execution.history(), null, 2)}\n`,
  );
  if (state) await writeFile(join(outDir, 'execution-output.json'), `${JSON.stringify(state, null, 2)}\n`);
  return {
    incidentId,
    outDir,
    outcome,
    state,
    error: 'error' in ended ? ended.error : null,
    history: execution.history(),
    commands: ssm.commands(),
    bundle,
    startedAt: started.toISOString(),
    endedAt: now().toISOString(),
    ec2,
  };
}

/** The workflow's settings from the environment, with the run's soak, policy and mode. */
function respondSettings(options: RespondOptions): WorkflowSettings {
  const envSettings = workflowSettingsFrom({
    ...process.env,
    SOAK_SECONDS: String(options.soakSeconds ?? 5),
  });
  const basePolicy = options.policy === undefined ? envSettings.policy : resolvePolicy(options.policy);
  return {
    ...envSettings,
    policy: options.mode === undefined ? basePolicy : withMode(basePolicy, options.mode),
  };
}

/** The execution input, as detection would open the incident for this namespace. */
function executionInput(
  options: RespondOptions,
  run: { readonly incidentId: string; readonly started: Date; readonly inode: string | number },
) {
  const { netns, trigger } = options;
  return {
    incidentId: run.incidentId,
    host: netns,
    // The namespace plays the instance; its name is its local "instance id".
    instanceId: netns,
    kind: options.ena ? 'ec2-allowance' : (trigger?.kind ?? 'table-full'),
    mode: options.mode ?? 'auto',
    openedAt: run.started.toISOString(),
    trigger: {
      owner: 'local',
      logGroup: trigger?.kind === 'near-full' ? 'host-sampler' : 'kernel',
      logStream: netns,
      netns: run.inode,
      dropLines: trigger?.dropLines ?? 0,
      suppressed: trigger?.suppressed ?? 0,
      firstSeen: trigger?.firstSeen ?? null,
      lastSeen: trigger?.lastSeen ?? null,
      events: (trigger?.events ?? []).map((event, index) => ({ id: String(index), ...event })),
      eventsOmitted: 0,
      ...(trigger?.forecast === undefined ? {} : { forecast: trigger.forecast }),
    },
  };
}

/** EC2's allowance exhausted on the namespace's first interface, and the local EC2 that plays it. */
async function startAllowance(
  netns: string,
  ena: NonNullable<RespondOptions['ena']>,
  hostStateDir: string,
  say: (line: string) => void,
): Promise<AllowanceTwin> {
  const allowance = await startAllowanceTwin({
    netns,
    statsDir: join(hostStateDir, 'ena-stats'),
    exceededPerSecond: ena.exceededPerSecond,
    relief: ena.relief,
    optIn: DEFAULT_MANAGED_INSTANCE_TAG,
  });
  say(
    `respond: EC2's allowance exhausted on ${allowance.exhausted.interface} (${allowance.exhausted.networkInterfaceId}, ${ena.exceededPerSecond} packets/s${ena.relief ? ', relieved by shorter ENI timeouts' : ', whatever is changed'}); local EC2 at ${allowance.ec2.endpoint}`,
  );
  return allowance;
}

/** Stops the allowance twin, keeps its EC2 under local-ec2.json, and returns the ENIs before and after. */
async function closeAllowance(allowance: AllowanceTwin, outDir: string): Promise<RespondResult['ec2']> {
  await allowance.close();
  await allowance.ec2.save(join(outDir, 'local-ec2.json'));
  return {
    initial: allowance.initial,
    final: structuredClone(allowance.ec2.model.enis),
    calls: allowance.ec2.calls(),
  };
}
