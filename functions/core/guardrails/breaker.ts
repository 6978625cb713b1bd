import type { BreakerSettings } from './settings.js';

/**
 * The fleet circuit breaker, purely. When more than `maxInstances` hosts open incidents within
 * `windowMinutes`, something fleet-wide is going on (a DDoS, a retry storm, a bad deploy): the
 * breaker trips, the incidents that open from then on are held (recorded, no workflow started, no
 * message of their own), every running workflow loses its automatic changes, and one escalation
 * carries the fleet view. Only a person closes it again.
 *
 * Counting is exact and race-free without a lock: every opening writes its host into the window
 * item of its time bucket (one DynamoDB update, which returns the item as it stands after that
 * write), so openings are totally ordered per bucket and the k-th distinct host sees k. A sliding
 * window needs the previous bucket too; its entries carry their time and the ones older than the
 * window (or than the last reset) do not count.
 */

/** One host's first opening in a window bucket. */
export interface WindowEntry {
  readonly host: string;
  readonly incidentId: string;
  readonly account: string;
  /** ISO time of the opening. */
  readonly at: string;
}

export const WINDOW_ENTRY_PREFIX = 'h#';

export function windowBucketStart(time: Date, windowMinutes: number): Date {
  const length = windowMinutes * 60_000;
  return new Date(Math.floor(time.getTime() / length) * length);
}

/** The window items to read at `now`: the current bucket's, then the previous one's. */
export function windowBuckets(now: Date, windowMinutes: number): [Date, Date] {
  const current = windowBucketStart(now, windowMinutes);
  return [current, new Date(current.getTime() - windowMinutes * 60_000)];
}

/** The entries of a window item (its `h#<host>` attributes); anything malformed is ignored. */
export function entriesOfWindowItem(item: Readonly<Record<string, unknown>> | undefined): WindowEntry[] {
  if (item === undefined) return [];
  const entries: WindowEntry[] = [];
  for (const [name, value] of Object.entries(item)) {
    if (!name.startsWith(WINDOW_ENTRY_PREFIX) || typeof value !== 'object' || value === null) continue;
    const { incidentId, account, at } = value as Record<string, unknown>;
    if (typeof incidentId !== 'string' || typeof at !== 'string') continue;
    entries.push({
      host: name.slice(WINDOW_ENTRY_PREFIX.length),
      incidentId,
      account: typeof account === 'string' ? account : '',
      at,
    });
  }
  return entries;
}

/**
 * The distinct hosts that opened incidents in the window ending at `now`, not before the last
 * reset, earliest opening first.
 */
export function hostsInWindow(
  entries: readonly WindowEntry[],
  now: Date,
  windowMinutes: number,
  resetAt: string | null,
): WindowEntry[] {
  const from = Math.max(now.getTime() - windowMinutes * 60_000, resetAt === null ? 0 : Date.parse(resetAt));
  const byHost = new Map<string, WindowEntry>();
  for (const entry of entries) {
    const at = Date.parse(entry.at);
    // No upper bound: an entry stamped after `now` was written by a concurrent invocation whose
    // clock read later, and it is in the item, so it counts (the order of writes decides, not the
    // stamps; leaving such entries out let more than the threshold through).
    if (Number.isNaN(at) || at < from) continue;
    const known = byHost.get(entry.host);
    if (known === undefined || Date.parse(known.at) > at) byHost.set(entry.host, entry);
  }
  return [...byHost.values()].sort(
    (a, b) => Date.parse(a.at) - Date.parse(b.at) || (a.host < b.host ? -1 : 1),
  );
}

/** The breaker's decision for one incident, stored on the incident item once. */
export interface IncidentAdmission {
  readonly decision: 'admit' | 'hold';
  readonly at: string;
  readonly detail: string;
  /** The breaker episode the incident was held in, and when that episode tripped (when known). */
  readonly episode?: number;
  readonly trippedAt?: string;
}

export interface AdmissionInput {
  readonly breaker: { readonly status: 'open' | 'closed' };
  /** Distinct hosts in the window including this one (from `hostsInWindow`); ignored while open. */
  readonly hostsInWindow: number;
  readonly settings: BreakerSettings;
}

export interface Admission {
  readonly decision: 'admit' | 'hold';
  /** This opening is the one that crosses the threshold: it trips the breaker. */
  readonly trip: boolean;
  readonly detail: string;
}

export function decideAdmission(input: AdmissionInput): Admission {
  const { maxInstances, windowMinutes } = input.settings;
  if (input.breaker.status === 'open') {
    return {
      decision: 'hold',
      trip: false,
      detail: 'the fleet breaker is open: the incident is recorded and held for the fleet escalation',
    };
  }
  if (maxInstances === 0)
    return { decision: 'admit', trip: false, detail: 'the fleet breaker is turned off' };
  const count = input.hostsInWindow;
  if (count > maxInstances) {
    return {
      decision: 'hold',
      trip: true,
      detail: `${count} instances opened incidents within ${windowMinutes} min, more than ${maxInstances}: the fleet breaker trips`,
    };
  }
  return {
    decision: 'admit',
    trip: false,
    detail: `${count} of at most ${maxInstances} instances opened incidents within ${windowMinutes} min`,
  };
}

// ---- the fleet view and its one escalation -----------------------------------------------------

export interface PortCount {
  readonly protocol: string;
  readonly port: number;
  /** Inbound: this host serves the port; outbound: it calls a remote service on it. */
  readonly direction: 'inbound' | 'outbound';
  readonly entries: number;
}

export interface FleetPort extends PortCount {
  /** How many diagnosed instances have this port among their top ports. */
  readonly instances: number;
}

/** Sums per-instance top ports into the fleet's: most instances first, then most entries. */
export function fleetTopPorts(perInstance: readonly (readonly PortCount[])[], limit = 5): FleetPort[] {
  const totals = new Map<string, { port: PortCount; instances: number; entries: number }>();
  for (const ports of perInstance) {
    const seen = new Set<string>();
    for (const port of ports) {
      const key = `${port.protocol}/${port.port}/${port.direction}`;
      const total = totals.get(key) ?? { port, instances: 0, entries: 0 };
      if (!seen.has(key)) total.instances += 1;
      seen.add(key);
      total.entries += port.entries;
      totals.set(key, total);
    }
  }
  return [...totals.values()]
    .sort(
      (a, b) =>
        b.instances - a.instances ||
        b.entries - a.entries ||
        a.port.port - b.port.port ||
        a.port.protocol.localeCompare(b.port.protocol),
    )
    .slice(0, limit)
    .map(({ port, instances, entries }) => ({ ...port, entries, instances }));
}

export interface FleetView {
  readonly status: 'open' | 'closed';
  readonly trippedAt: string | null;
  readonly reason: string | null;
  readonly settings: BreakerSettings;
  /** Distinct instances: those in the window when it tripped or since, plus every held one. */
  readonly instances: { readonly count: number; readonly sample: readonly string[] };
  readonly accounts: readonly string[];
  /** Incidents recorded without a workflow since the breaker tripped. */
  readonly heldIncidents: number;
  /** From the diagnostics of the incidents whose workflows ran; empty until one finished. */
  readonly topPorts: readonly FleetPort[];
  /** Instances whose diagnostics fed `topPorts`. */
  readonly diagnosedInstances: number;
  readonly resetAt: string | null;
  readonly resetBy: string | null;
}

/** Instance ids are safe to print; anything else (a stream name) is shown as JSON. */
function hostText(host: string): string {
  return /^[A-Za-z0-9_.:-]{1,64}$/.test(host) ? host : JSON.stringify(host);
}

function portText(port: FleetPort): string {
  return `${port.port}/${port.protocol} ${port.direction} on ${port.instances} instance${port.instances === 1 ? '' : 's'} (${port.entries} entries)`;
}

export interface FleetEscalation {
  /** ASCII, under 100 characters (SNS). */
  readonly subject: string;
  readonly text: string;
  readonly summary: Readonly<Record<string, unknown>>;
  /** SNS message attributes, named like every other notification's. */
  readonly attributes: Readonly<Record<string, string>>;
}

/** The one message sent when the breaker trips (also what `breaker status` prints). */
export function fleetEscalation(
  view: FleetView,
  commands: { readonly status: string; readonly reset: string },
): FleetEscalation {
  const { maxInstances, windowMinutes } = view.settings;
  const count = view.instances.count;
  const subject = `conntrack-responder: fleet breaker ${view.status === 'open' ? 'tripped' : 'closed'}, ${count} instances in ${windowMinutes} min`;
  const lines = [
    view.status === 'open'
      ? `The fleet circuit breaker tripped at ${view.trippedAt}: more than ${maxInstances} instances opened conntrack incidents within ${windowMinutes} minutes.`
      : `The fleet circuit breaker is closed${view.resetAt ? ` (reset at ${view.resetAt}${view.resetBy ? ` by ${view.resetBy}` : ''})` : ''}.`,
  ];
  if (view.status === 'open') {
    lines.push(
      'Automatic changes are stopped on every instance: running incidents now wait for approval, and new incidents are recorded and held (no workflow, no message of their own) until a person resets the breaker.',
    );
  }
  lines.push('');
  const omitted = count - view.instances.sample.length;
  lines.push(
    `Instances (${count}): ${view.instances.sample.map(hostText).join(', ')}${omitted > 0 ? `, and ${omitted} more` : ''}`,
  );
  lines.push(`Accounts (${view.accounts.length}): ${view.accounts.join(', ') || 'unknown'}`);
  lines.push(`Held incidents: ${view.heldIncidents}`);
  lines.push(
    view.topPorts.length > 0
      ? `Top ports (from ${view.diagnosedInstances} diagnosed instance${view.diagnosedInstances === 1 ? '' : 's'}): ${view.topPorts.map(portText).join('; ')}`
      : 'Top ports: not known yet (no incident workflow has finished its diagnostics); run the status command for the live view.',
  );
  lines.push('');
  lines.push(`Live view: ${commands.status}`);
  lines.push(`Reset, once the cause is understood: ${commands.reset}`);
  const summary = {
    kind: 'fleet-breaker',
    status: view.status,
    trippedAt: view.trippedAt,
    reason: view.reason,
    maxInstances,
    windowMinutes,
    instances: view.instances,
    accounts: view.accounts,
    heldIncidents: view.heldIncidents,
    topPorts: view.topPorts,
    diagnosedInstances: view.diagnosedInstances,
  };
  const accounts = view.accounts.length === 1 ? (view.accounts[0] ?? 'unknown') : 'multiple';
  return {
    subject: subject.length > 99 ? subject.slice(0, 99) : subject,
    text: lines.join('\n'),
    summary,
    attributes: {
      severity: 'critical',
      action: 'fleet-breaker',
      instance: 'fleet',
      account: accounts === '' ? 'unknown' : accounts,
      outcome: view.status === 'open' ? 'escalated' : 'reset',
    },
  };
}
