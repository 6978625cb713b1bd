import { createHash } from 'node:crypto';
import type { AllowanceRecord } from '../allowance/detect.js';
import type { ForecastRecord } from '../forecast/index.js';
import type { IncidentAdmission } from '../guardrails/breaker.js';
import type { ResponseMode } from './settings.js';

/**
 * Incidents, decided purely: which incident a batch of drop lines belongs to, what a new one
 * looks like, and how the workflow execution for it is named and started. The DynamoDB adapter
 * (functions/adapters/incident-store.ts) only carries these decisions out with conditional writes.
 *
 * Dedupe and cooldown without a lock: time is cut into buckets as long as the cooldown, and an
 * incident's id is derived from its host, its kind and the bucket it opened in. An incident
 * accepts repeats until `openedAt + cooldown`, which always ends before the bucket after next
 * begins, so only the current and the previous bucket's incidents can still be open. Opening is a
 * put that fails if the id already exists, so concurrent deliveries agree on one incident.
 */

/**
 * `near-full`: no drop yet; the host sampler's recent samples predict the table full within the
 * horizon, or show it above the usage threshold (functions/core/forecast, docs/forecast.md).
 * `ec2-allowance`: the host sampler's ENA counters show EC2's own connection-tracking allowance
 * exhausted (conntrack_allowance_exceeded rising) or low (functions/core/allowance/detect.ts).
 */
export type DropKind = 'table-full' | 'expect-table-full' | 'near-full' | 'ec2-allowance';

/** The incidents table's key and TTL attributes, shared by the CDK construct, the adapter and tests. */
export const INCIDENT_TABLE = { partitionKey: 'pk', sortKey: 'sk', ttlAttribute: 'expiresAt' } as const;

export interface LogEvent {
  readonly id: string;
  readonly timestamp: number;
  readonly message: string;
}

/** The drop lines of one host and kind in one subscription delivery. */
export interface DropObservation {
  /** Instance id found in the log stream name, else the stream name. */
  readonly host: string;
  readonly kind: DropKind;
  /** Network namespace inode the kernel named, else null. */
  readonly netns: string | null;
  readonly dropLines: number;
  readonly suppressed: number;
  /** Kernel times of the first and last drop line (ISO 8601), when the lines carry one. */
  readonly firstSeen: string | null;
  readonly lastSeen: string | null;
  readonly source: { readonly owner: string; readonly logGroup: string; readonly logStream: string };
  readonly events: readonly LogEvent[];
  /** For `near-full`: the forecast that opened it (untrusted: made from sample lines). */
  readonly forecast?: ForecastRecord;
  /** For `ec2-allowance`: the interfaces and counters that opened it (untrusted: sample lines). */
  readonly allowance?: AllowanceRecord;
}

/** What opened the incident; never changes afterwards, so the workflow input built from it doesn't either. */
export interface IncidentTrigger {
  readonly owner: string;
  readonly logGroup: string;
  readonly logStream: string;
  readonly netns: string | null;
  readonly dropLines: number;
  readonly suppressed: number;
  readonly firstSeen: string | null;
  readonly lastSeen: string | null;
  /** The triggering log events, at most `MAX_TRIGGER_EVENTS`, messages cut at `MAX_EVENT_MESSAGE_LENGTH`. */
  readonly events: readonly LogEvent[];
  readonly eventsOmitted: number;
  /** For `near-full`: the forecast that opened it, with its samples. */
  readonly forecast?: ForecastRecord;
  /** For `ec2-allowance`: the interfaces whose allowance was exhausted or low, by the samples. */
  readonly allowance?: AllowanceRecord;
}

export interface Incident {
  readonly incidentId: string;
  readonly host: string;
  /** The EC2 instance id, or null when the host is not one (the workflow then escalates). */
  readonly instanceId: string | null;
  readonly kind: DropKind;
  readonly status: 'open';
  readonly mode: ResponseMode;
  readonly openedAt: string;
  /** Repeats until this time add to the incident; later drops open a new one. */
  readonly windowEndsAt: string;
  readonly lastSeenAt: string;
  readonly dropLines: number;
  readonly suppressed: number;
  readonly deliveries: number;
  readonly trigger: IncidentTrigger;
  readonly executionName: string;
  readonly executionStarted: boolean;
  /**
   * The delivery that opened the incident (its `deliveryKeyOf`): that delivery, or its retry,
   * starts the workflow; see `mayStartWorkflow`. Absent on incidents opened before it existed.
   */
  readonly openedByDelivery?: string;
  /**
   * The fleet breaker's decision, written once after opening: a held incident never starts a
   * workflow (the breaker's one escalation covers it). Absent until decided.
   */
  readonly admission?: IncidentAdmission;
  /** Epoch seconds after which DynamoDB's TTL may delete the record. */
  readonly expiresAt: number;
}

export interface IncidentPolicy {
  readonly cooldownMinutes: number;
  readonly defaultMode: ResponseMode;
  readonly incidentRetentionDays: number;
}

export const MAX_TRIGGER_EVENTS = 20;
export const MAX_EVENT_MESSAGE_LENGTH = 2000;
/** Step Functions execution names: 1 to 80 characters from this set. */
const EXECUTION_NAME_UNSAFE = /[^A-Za-z0-9_-]/g;
const MAX_HOST_PART = 40;
/** CloudWatch Logs retries a delivery for up to 24 h; a delivery's marker outlives that. */
export const DELIVERY_MARKER_TTL_SECONDS = 2 * 24 * 3600;

const KIND_CODES: Record<DropKind, string> = {
  'table-full': 'full',
  'expect-table-full': 'expect',
  'near-full': 'near',
  'ec2-allowance': 'ec2',
};

/** EC2 instance ids, and the `mi-` ids of SSM hybrid managed nodes, which Run Command reaches too. */
const MANAGED_INSTANCE_ID = /^m?i-[0-9a-f]{8,17}$/;

/**
 * The instance id when the host is one, else null. The configurable pattern finds the id inside a
 * stream name; the id itself always has this form.
 */
export function instanceIdOf(host: string): string | null {
  return MANAGED_INSTANCE_ID.test(host) ? host : null;
}

/** Start of the cooldown-long time bucket `time` falls in. */
export function bucketStart(time: Date, cooldownMinutes: number): Date {
  const length = cooldownMinutes * 60_000;
  return new Date(Math.floor(time.getTime() / length) * length);
}

function compactTime(time: Date): string {
  // 2026-03-13T20:30:00.000Z -> 20260313T2030Z
  const iso = time.toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}Z`;
}

function shortHash(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/**
 * The id of the incident a host and kind opens in the bucket starting at `bucket`. It doubles as
 * the workflow's execution name, so it only uses characters Step Functions accepts; a host name
 * that had to be changed to fit gets a hash so that two hosts never share an id.
 */
export function incidentIdFor(host: string, kind: DropKind, bucket: Date): string {
  const safe = host.replace(EXECUTION_NAME_UNSAFE, '_');
  const hostPart =
    safe === host && safe.length <= MAX_HOST_PART
      ? safe
      : `${safe.slice(0, MAX_HOST_PART - 9)}_${shortHash(host, 8)}`;
  return `${hostPart}-${KIND_CODES[kind]}-${compactTime(bucket)}`;
}

/** The ids of the incidents that may still be open at `now`: this bucket's first, then the previous one's. */
export function candidateIncidentIds(
  host: string,
  kind: DropKind,
  now: Date,
  cooldownMinutes: number,
): string[] {
  const current = bucketStart(now, cooldownMinutes);
  const previous = new Date(current.getTime() - cooldownMinutes * 60_000);
  return [incidentIdFor(host, kind, current), incidentIdFor(host, kind, previous)];
}

export function isOpenAt(incident: Pick<Incident, 'windowEndsAt'>, now: Date): boolean {
  return now.getTime() < Date.parse(incident.windowEndsAt);
}

export type RecordingDecision =
  | { readonly action: 'add'; readonly incidentId: string }
  | { readonly action: 'open'; readonly incident: Incident };

/**
 * Given the incidents found under `candidateIncidentIds` (undefined where none exists), add to the
 * one still open or open a new one in the current bucket.
 */
export function decideRecording(
  candidates: readonly (Pick<Incident, 'incidentId' | 'windowEndsAt'> | undefined)[],
  observation: DropObservation,
  now: Date,
  policy: IncidentPolicy,
): RecordingDecision {
  const open = candidates.find((incident) => incident !== undefined && isOpenAt(incident, now));
  if (open !== undefined) return { action: 'add', incidentId: open.incidentId };
  return { action: 'open', incident: newIncident(observation, now, policy) };
}

export function newIncident(observation: DropObservation, now: Date, policy: IncidentPolicy): Incident {
  const incidentId = incidentIdFor(
    observation.host,
    observation.kind,
    bucketStart(now, policy.cooldownMinutes),
  );
  const kept = observation.events.slice(0, MAX_TRIGGER_EVENTS).map((event) => ({
    id: event.id,
    timestamp: event.timestamp,
    message:
      event.message.length > MAX_EVENT_MESSAGE_LENGTH
        ? `${event.message.slice(0, MAX_EVENT_MESSAGE_LENGTH)}…`
        : event.message,
  }));
  return {
    incidentId,
    host: observation.host,
    instanceId: instanceIdOf(observation.host),
    kind: observation.kind,
    status: 'open',
    mode: policy.defaultMode,
    openedAt: now.toISOString(),
    windowEndsAt: new Date(now.getTime() + policy.cooldownMinutes * 60_000).toISOString(),
    lastSeenAt: now.toISOString(),
    dropLines: observation.dropLines,
    suppressed: observation.suppressed,
    deliveries: 1,
    trigger: {
      owner: observation.source.owner,
      logGroup: observation.source.logGroup,
      logStream: observation.source.logStream,
      netns: observation.netns,
      dropLines: observation.dropLines,
      suppressed: observation.suppressed,
      firstSeen: observation.firstSeen,
      lastSeen: observation.lastSeen,
      events: kept,
      eventsOmitted: observation.events.length - kept.length,
      ...(observation.forecast === undefined ? {} : { forecast: observation.forecast }),
      ...(observation.allowance === undefined ? {} : { allowance: observation.allowance }),
    },
    executionName: incidentId,
    executionStarted: false,
    openedByDelivery: deliveryKeyOf(observation),
    expiresAt: Math.floor(now.getTime() / 1000) + policy.incidentRetentionDays * 86_400,
  };
}

/**
 * Identifies one delivery of one group of drop lines, so that a retried delivery is recognised:
 * CloudWatch Logs event ids are unique, and a retry carries the same ones.
 */
export function deliveryKeyOf(observation: DropObservation): string {
  const { source, kind, netns, host, events } = observation;
  const identity = JSON.stringify([
    source.logGroup,
    source.logStream,
    host,
    kind,
    netns,
    events.map((e) => e.id),
  ]);
  return shortHash(identity, 32);
}

/**
 * How long the delivery that opened an incident has to start its workflow before any other
 * delivery for the incident does it instead. Lambda retries a failed invocation after about a
 * minute, and the retry is the opening delivery again, so this only matters when that delivery is
 * lost for good.
 */
export const START_GRACE_SECONDS = 60;

/**
 * Whether this delivery should call StartExecution for an incident whose workflow is not marked
 * started. Starting is idempotent (the execution is named after the incident), but in a storm
 * every concurrent delivery of an incident would otherwise call it: only the opening delivery
 * does, unless it seems to have died.
 */
export function mayStartWorkflow(
  incident: Pick<Incident, 'executionStarted' | 'openedByDelivery' | 'openedAt'>,
  deliveryKey: string,
  now: Date,
): boolean {
  if (incident.executionStarted) return false;
  if (incident.openedByDelivery === undefined || incident.openedByDelivery === deliveryKey) return true;
  return now.getTime() - Date.parse(incident.openedAt) >= START_GRACE_SECONDS * 1000;
}

/** What the incident workflow receives: only fields fixed at opening, so a restart sends the same input. */
export interface WorkflowInput {
  readonly incidentId: string;
  readonly host: string;
  readonly instanceId: string | null;
  readonly kind: DropKind;
  readonly mode: ResponseMode;
  readonly openedAt: string;
  readonly windowEndsAt: string;
  readonly trigger: IncidentTrigger;
}

export function workflowExecutionFor(incident: Incident): { name: string; input: WorkflowInput } {
  return {
    name: incident.executionName,
    input: {
      incidentId: incident.incidentId,
      host: incident.host,
      instanceId: incident.instanceId,
      kind: incident.kind,
      mode: incident.mode,
      openedAt: incident.openedAt,
      windowEndsAt: incident.windowEndsAt,
      trigger: incident.trigger,
    },
  };
}
