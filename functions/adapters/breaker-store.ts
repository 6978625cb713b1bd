import { setTimeout as sleep } from 'node:timers/promises';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  type DynamoDBDocumentClient,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import {
  type Admission,
  decideAdmission,
  entriesOfWindowItem,
  type FleetView,
  fleetTopPorts,
  hostsInWindow,
  type IncidentAdmission,
  type PortCount,
  WINDOW_ENTRY_PREFIX,
  type WindowEntry,
  windowBuckets,
} from '../core/guardrails/breaker.js';
import type { BreakerStatus } from '../core/guardrails/decisions.js';
import type { BreakerSettings } from '../core/guardrails/settings.js';
import { epochSeconds, GUARDRAIL_KEYS, GuardrailTable, jitter } from './guardrail-table.js';

/**
 * The fleet breaker's records: its state (with the episode's fleet view and the escalation's
 * delivery state), the window buckets of recent openings, each incident's admission and top ports,
 * and an audit record per reset.
 */

/** Hosts and accounts kept by name in the breaker item (the counts stay exact beyond them). */
export const FLEET_SAMPLE_LIMIT = 100;
/**
 * How long one handler may take to publish the escalation before another may try again: longer
 * than the detect function's timeout (30 s), shorter than Lambda's first retry (about a minute),
 * so the retry of a claimer that died mid-way finds the claim expired and sends the message.
 */
export const ESCALATION_CLAIM_SECONDS = 45;
export interface BreakerRecord extends BreakerStatus {
  readonly status: 'open' | 'closed';
  readonly episode: number;
  readonly trippedAt: string | null;
  readonly trippedBy: string | null;
  readonly reason: string | null;
  readonly resetAt: string | null;
  readonly resetBy: string | null;
  readonly resetReason: string | null;
  /** Hosts in the window when it tripped (sample) and their number. */
  readonly tripHosts: readonly string[];
  readonly tripHostCount: number;
  readonly heldCount: number;
  readonly heldHosts: readonly string[];
  readonly accounts: readonly string[];
  readonly escalation: {
    readonly status: 'none' | 'pending' | 'sending' | 'sent';
    readonly sentAt: string | null;
    readonly messageId: string | null;
  };
  /** The settings in force when it tripped (so a reader without them, like the CLI, has them). */
  readonly settings: BreakerSettings | null;
}

export const CLOSED_BREAKER: BreakerRecord = {
  status: 'closed',
  episode: 0,
  trippedAt: null,
  trippedBy: null,
  reason: null,
  resetAt: null,
  resetBy: null,
  resetReason: null,
  tripHosts: [],
  tripHostCount: 0,
  heldCount: 0,
  heldHosts: [],
  accounts: [],
  escalation: { status: 'none', sentAt: null, messageId: null },
  settings: null,
};

export interface AdmissionResult {
  readonly admission: IncidentAdmission;
  /** This call tripped the breaker (exactly one opening does per episode). */
  readonly tripped: boolean;
}

export interface AdmissionSubject {
  readonly incidentId: string;
  readonly host: string;
  /** The AWS account the log events came from. */
  readonly account: string;
}

export class BreakerStore extends GuardrailTable {
  constructor(
    client: DynamoDBDocumentClient,
    tableName: string,
    private readonly settings: BreakerSettings,
  ) {
    super(client, tableName);
  }

  async getBreaker(): Promise<BreakerRecord> {
    return toBreaker(await this.get(GUARDRAIL_KEYS.breaker));
  }

  /**
   * The breaker's decision for a newly opened incident, made once: a retry, or a concurrent
   * delivery for the same incident, gets the decision already stored.
   */
  async admit(
    subject: AdmissionSubject,
    stored: IncidentAdmission | undefined,
    now: Date,
  ): Promise<AdmissionResult> {
    if (stored !== undefined) return { admission: stored, tripped: false };
    const breaker = await this.getBreaker();
    let decision: Admission;
    let tripped = false;
    if (breaker.status === 'open' || this.settings.maxInstances === 0) {
      decision = decideAdmission({ breaker, hostsInWindow: 0, settings: this.settings });
    } else {
      const hosts = await this.recordInWindow(subject, breaker.resetAt, now);
      decision = decideAdmission({ breaker, hostsInWindow: hosts.length, settings: this.settings });
      if (decision.trip) tripped = await this.trip(subject.incidentId, decision.detail, hosts, now);
    }
    const episode = tripped ? breaker.episode + 1 : breaker.episode;
    const trippedAt = tripped ? now.toISOString() : breaker.trippedAt;
    const admission: IncidentAdmission = {
      decision: decision.decision,
      at: now.toISOString(),
      detail: decision.detail,
      ...(decision.decision === 'hold' ? { episode, ...(trippedAt ? { trippedAt } : {}) } : {}),
    };
    const existing = await this.storeAdmission(subject.incidentId, admission);
    if (existing !== null) return { admission: existing, tripped };
    if (admission.decision === 'hold') await this.recordHeld(subject);
    return { admission, tripped };
  }

  /** Writes this host's opening into the current bucket and returns the hosts in the window. */
  private async recordInWindow(
    subject: AdmissionSubject,
    resetAt: string | null,
    now: Date,
  ): Promise<WindowEntry[]> {
    const { windowMinutes } = this.settings;
    const [current, previous] = windowBuckets(now, windowMinutes);
    const entry = { incidentId: subject.incidentId, account: subject.account, at: now.toISOString() };
    const updated = await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: GUARDRAIL_KEYS.window(current),
        UpdateExpression: 'SET #host = if_not_exists(#host, :entry), expiresAt = :expiresAt',
        ExpressionAttributeNames: { '#host': `${WINDOW_ENTRY_PREFIX}${subject.host}` },
        ExpressionAttributeValues: {
          ':entry': entry,
          // Kept a day past the last moment it can count, for the status command.
          ':expiresAt': epochSeconds(current) + 2 * windowMinutes * 60 + 86_400,
        },
        ReturnValues: 'ALL_NEW',
      }),
    );
    let entries = entriesOfWindowItem(updated.Attributes);
    if (hostsInWindow(entries, now, windowMinutes, resetAt).length <= this.settings.maxInstances) {
      // Only when this bucket alone does not decide it: the previous bucket's recent openings count too.
      entries = [...entries, ...entriesOfWindowItem(await this.get(GUARDRAIL_KEYS.window(previous)))];
    }
    return hostsInWindow(entries, now, windowMinutes, resetAt);
  }

  /** Opens a closed breaker; false when another opening (or a person) already did. */
  private async trip(
    trippedBy: string,
    reason: string,
    hosts: readonly WindowEntry[],
    now: Date,
  ): Promise<boolean> {
    const accounts = [...new Set(hosts.map((host) => host.account).filter((a) => a !== ''))].slice(
      0,
      FLEET_SAMPLE_LIMIT,
    );
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: GUARDRAIL_KEYS.breaker,
          UpdateExpression: `SET #status = :open, episode = if_not_exists(episode, :zero) + :one, trippedAt = :now, trippedBy = :by, reason = :reason, tripHosts = :hosts, tripHostCount = :count, heldCount = :zero, escalation = :pending, tripSettings = :settings ${accounts.length > 0 ? ', accounts = :accounts' : ''} REMOVE heldHosts${accounts.length > 0 ? '' : ', accounts'}`,
          ConditionExpression: 'attribute_not_exists(#status) OR #status = :closed',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':open': 'open',
            ':closed': 'closed',
            ':zero': 0,
            ':one': 1,
            ':now': now.toISOString(),
            ':by': trippedBy,
            ':reason': reason,
            ':hosts': hosts.slice(0, FLEET_SAMPLE_LIMIT).map((host) => host.host),
            ':count': hosts.length,
            ':pending': { status: 'pending' },
            ':settings': this.settings,
            ...(accounts.length > 0 ? { ':accounts': new Set(accounts) } : {}),
          },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /** Stores the admission unless one is there; returns the stored one when it was. */
  private async storeAdmission(
    incidentId: string,
    admission: IncidentAdmission,
  ): Promise<IncidentAdmission | null> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: GUARDRAIL_KEYS.incident(incidentId),
          UpdateExpression: 'SET admission = :admission',
          ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(admission)',
          ExpressionAttributeValues: { ':admission': admission },
        }),
      );
      return null;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const item = await this.get(GUARDRAIL_KEYS.incident(incidentId));
      if (item?.admission === undefined) throw new Error(`incident ${incidentId} does not exist`);
      return item.admission as IncidentAdmission;
    }
  }

  /** Adds a held incident to the episode's fleet view: an exact count, names up to the sample limit. */
  private async recordHeld(subject: AdmissionSubject): Promise<void> {
    const withAccount = subject.account !== '';
    const values = { ':one': 1, ...(withAccount ? { ':account': new Set([subject.account]) } : {}) };
    const counted = `ADD heldCount :one${withAccount ? ', accounts :account' : ''}`;
    const named = await this.updateIgnoringCondition({
      Key: GUARDRAIL_KEYS.breaker,
      UpdateExpression: `${counted}, heldHosts :host`,
      ConditionExpression: 'attribute_not_exists(heldHosts) OR size(heldHosts) < :limit',
      ExpressionAttributeValues: {
        ...values,
        ':host': new Set([subject.host]),
        ':limit': FLEET_SAMPLE_LIMIT,
      },
    });
    if (named) return;
    // The sample is full: only count it (and keep its account: few accounts, many instances).
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: GUARDRAIL_KEYS.breaker,
        UpdateExpression: counted,
        ExpressionAttributeValues: values,
      }),
    );
  }

  /**
   * Claims the sending of the episode's escalation: true for exactly one caller at a time; a claim
   * that was not completed (the sender failed) can be taken again after a while.
   */
  async claimEscalation(now: Date): Promise<boolean> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: GUARDRAIL_KEYS.breaker,
          UpdateExpression: 'SET escalation = :claim',
          ConditionExpression:
            '#status = :open AND (escalation.#state = :pending OR (escalation.#state = :sending AND escalation.claimUntil < :now))',
          ExpressionAttributeNames: { '#status': 'status', '#state': 'status' },
          ExpressionAttributeValues: {
            ':open': 'open',
            ':pending': 'pending',
            ':sending': 'sending',
            ':claim': { status: 'sending', claimUntil: epochSeconds(now) + ESCALATION_CLAIM_SECONDS },
            ':now': epochSeconds(now),
          },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /** Gives a claim back after a failed send, so the next delivery (or the retry) sends it. */
  async releaseEscalationClaim(): Promise<void> {
    await this.updateIgnoringCondition({
      Key: GUARDRAIL_KEYS.breaker,
      UpdateExpression: 'SET escalation = :pending',
      ConditionExpression: 'escalation.#state = :sending',
      ExpressionAttributeNames: { '#state': 'status' },
      ExpressionAttributeValues: { ':pending': { status: 'pending' }, ':sending': 'sending' },
    });
  }

  async markEscalationSent(now: Date, messageId: string | null): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: GUARDRAIL_KEYS.breaker,
        UpdateExpression: 'SET escalation = :sent',
        ExpressionAttributeValues: {
          ':sent': { status: 'sent', sentAt: now.toISOString(), messageId },
        },
      }),
    );
  }

  /** Opens the breaker by hand (a person stopping every automatic change). False if it was open. */
  async openByHand(by: string, reason: string, now: Date): Promise<boolean> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: GUARDRAIL_KEYS.breaker,
          UpdateExpression:
            'SET #status = :open, episode = if_not_exists(episode, :zero) + :one, trippedAt = :now, trippedBy = :by, reason = :reason, tripHosts = :none, tripHostCount = :zero, heldCount = :zero, escalation = :sent REMOVE heldHosts, accounts',
          ConditionExpression: 'attribute_not_exists(#status) OR #status = :closed',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':open': 'open',
            ':closed': 'closed',
            ':zero': 0,
            ':one': 1,
            ':now': now.toISOString(),
            ':by': by,
            ':reason': `opened by hand: ${reason}`,
            ':none': [],
            // A person opened it: they know, there is nobody to escalate to.
            ':sent': { status: 'sent', sentAt: now.toISOString(), messageId: null },
          },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /**
   * Closes an open breaker. The window only counts openings after the reset, so the storm that
   * tripped it does not trip it again at once. False when it was not open.
   */
  async reset(by: string, reason: string, now: Date): Promise<boolean> {
    try {
      const updated = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: GUARDRAIL_KEYS.breaker,
          UpdateExpression: 'SET #status = :closed, resetAt = :now, resetBy = :by, resetReason = :reason',
          ConditionExpression: '#status = :open',
          ReturnValues: 'ALL_OLD',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':open': 'open',
            ':closed': 'closed',
            ':now': now.toISOString(),
            ':by': by,
            ':reason': reason,
          },
        }),
      );
      // An audit record per reset: who closed which episode, when and why (kept like incidents).
      const old = toBreaker(updated.Attributes);
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            pk: GUARDRAIL_KEYS.breaker.pk,
            sk: `reset#${now.toISOString()}`,
            episode: old.episode,
            trippedAt: old.trippedAt,
            reason: old.reason,
            heldCount: old.heldCount,
            resetBy: by,
            resetReason: reason,
            expiresAt: epochSeconds(now) + 365 * 86_400,
          },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /** The breaker and its fleet view as they stand: what the escalation and `breaker status` show. */
  async fleetView(now: Date): Promise<FleetView> {
    const breaker = await this.getBreaker();
    // While open, the window it tripped in; the configured one otherwise.
    const breakerSettings = (breaker.status === 'open' ? breaker.settings : null) ?? this.settings;
    const { windowMinutes } = breakerSettings;
    const [current, previous] = windowBuckets(now, windowMinutes);
    const windowItems = await Promise.all([
      this.get(GUARDRAIL_KEYS.window(current)),
      this.get(GUARDRAIL_KEYS.window(previous)),
    ]);
    // While open, the episode's view; while closed, the openings since the last reset.
    const since = breaker.status === 'open' ? null : breaker.resetAt;
    const recent = hostsInWindow(windowItems.flatMap(entriesOfWindowItem), now, windowMinutes, since);
    const open = breaker.status === 'open';
    // Instances: those in the window (at the trip and since), plus held ones not among them. Held
    // incidents are counted exactly; their hosts are known by name up to the sample limit.
    const counted = new Set<string>([
      ...(open ? breaker.tripHosts : []),
      ...recent.map((entry) => entry.host),
    ]);
    const baseCount = Math.max(open ? breaker.tripHostCount : 0, counted.size);
    const heldHosts = open ? breaker.heldHosts : [];
    const heldAlreadyCounted = heldHosts.filter((name) => counted.has(name)).length;
    const count = baseCount + (open ? Math.max(0, breaker.heldCount - heldAlreadyCounted) : 0);
    const hosts = new Set<string>([...counted, ...heldHosts]);
    const accounts = new Set<string>(open ? breaker.accounts : []);
    for (const entry of recent) if (entry.account !== '') accounts.add(entry.account);
    const ports = await this.topPortsOf(recent.map((entry) => entry.incidentId));
    return {
      status: breaker.status,
      trippedAt: breaker.trippedAt,
      reason: breaker.reason,
      settings: breakerSettings,
      instances: {
        count: Math.max(count, hosts.size),
        sample: [...hosts].sort().slice(0, FLEET_SAMPLE_LIMIT),
      },
      accounts: [...accounts].sort(),
      heldIncidents: open ? breaker.heldCount : 0,
      topPorts: fleetTopPorts(ports),
      diagnosedInstances: ports.length,
      resetAt: breaker.resetAt,
      resetBy: breaker.resetBy,
    };
  }

  /** The top ports the incidents' workflows recorded (those that got as far as diagnostics). */
  private async topPortsOf(incidentIds: readonly string[]): Promise<PortCount[][]> {
    const found: PortCount[][] = [];
    for (let i = 0; i < incidentIds.length; i += 100) {
      let keys: Record<string, unknown>[] = incidentIds
        .slice(i, i + 100)
        .map((id) => GUARDRAIL_KEYS.incident(id));
      for (let attempt = 0; keys.length > 0; attempt++) {
        if (attempt > 0) await sleep(jitter(attempt));
        const result = await this.client.send(
          new BatchGetCommand({
            RequestItems: {
              [this.tableName]: { Keys: keys, ProjectionExpression: 'topPorts', ConsistentRead: true },
            },
          }),
        );
        for (const item of result.Responses?.[this.tableName] ?? []) {
          if (Array.isArray(item.topPorts) && item.topPorts.length > 0)
            found.push(item.topPorts as PortCount[]);
        }
        keys =
          (result.UnprocessedKeys?.[this.tableName]?.Keys as Record<string, unknown>[] | undefined) ?? [];
      }
    }
    return found;
  }

  /** Keeps an incident's top ports for the fleet view. */
  async recordTopPorts(incidentId: string, ports: readonly PortCount[]): Promise<void> {
    if (ports.length === 0) return;
    await this.updateIgnoringCondition({
      Key: GUARDRAIL_KEYS.incident(incidentId),
      UpdateExpression: 'SET topPorts = :ports',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeValues: { ':ports': ports },
    });
  }
}

function toBreaker(item: Record<string, unknown> | undefined): BreakerRecord {
  if (item === undefined) return CLOSED_BREAKER;
  const text = (value: unknown) => (typeof value === 'string' ? value : null);
  const strings = (value: unknown): string[] =>
    value instanceof Set ? [...value].map(String).sort() : Array.isArray(value) ? value.map(String) : [];
  const escalation = (item.escalation ?? {}) as Record<string, unknown>;
  const escalationStatus = escalation.status;
  return {
    status: item.status === 'open' ? 'open' : 'closed',
    episode: typeof item.episode === 'number' ? item.episode : 0,
    trippedAt: text(item.trippedAt),
    trippedBy: text(item.trippedBy),
    reason: text(item.reason),
    resetAt: text(item.resetAt),
    resetBy: text(item.resetBy),
    resetReason: text(item.resetReason),
    tripHosts: strings(item.tripHosts),
    tripHostCount: typeof item.tripHostCount === 'number' ? item.tripHostCount : 0,
    heldCount: typeof item.heldCount === 'number' ? item.heldCount : 0,
    heldHosts: strings(item.heldHosts),
    accounts: strings(item.accounts),
    escalation: {
      status:
        escalationStatus === 'pending' || escalationStatus === 'sending' || escalationStatus === 'sent'
          ? escalationStatus
          : 'none',
      sentAt: text(escalation.sentAt),
      messageId: text(escalation.messageId),
    },
    settings: breakerSettingsOf(item.tripSettings),
  };
}

function breakerSettingsOf(value: unknown): BreakerSettings | null {
  const { maxInstances, windowMinutes } = (value ?? {}) as Record<string, unknown>;
  return typeof maxInstances === 'number' && typeof windowMinutes === 'number'
    ? { maxInstances, windowMinutes }
    : null;
}
