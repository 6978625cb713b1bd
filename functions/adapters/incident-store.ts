import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  candidateIncidentIds,
  DELIVERY_MARKER_TTL_SECONDS,
  type DropObservation,
  decideRecording,
  deliveryKeyOf,
  type Incident,
  type IncidentPolicy,
  isOpenAt,
} from '../core/incident/incident.js';

/**
 * The incidents table, driven by the pure decisions of `core/incident/incident.ts`. Every write is
 * a single-item conditional write, so concurrent and repeated deliveries cannot open two incidents:
 *
 * - `incident#<incidentId>` / `incident`: one incident (see `Incident`). Opened with a put that
 *   requires the id to be new; a repeat adds its counts with an update that requires the incident
 *   to be inside its cooldown window. Other writers (the workflow) own their own attributes and
 *   must not rewrite the counters.
 * - `delivery#<deliveryKey>` / `delivery`: written after a delivery's drops were recorded, so that
 *   a retried delivery adds nothing twice. It is written last on purpose: a crash before it can at
 *   worst count one delivery twice, never lose an incident.
 */

export type RecordingOutcome = 'opened' | 'added' | 'duplicate';

export interface RecordedDrops {
  readonly outcome: RecordingOutcome;
  readonly incident: Incident;
  readonly deliveryKey: string;
}

/** How often a write that lost a race with a concurrent delivery is re-decided before giving up. */
const MAX_ATTEMPTS = 5;

/** The partition-key prefixes of this store's items (the detect function's IAM policy is scoped to them). */
export const INCIDENT_STORE_KEY_PREFIXES = { incident: 'incident#', delivery: 'delivery#' } as const;

const incidentKey = (incidentId: string) => ({
  pk: `${INCIDENT_STORE_KEY_PREFIXES.incident}${incidentId}`,
  sk: 'incident',
});
const deliveryKey = (key: string) => ({
  pk: `${INCIDENT_STORE_KEY_PREFIXES.delivery}${key}`,
  sk: 'delivery',
});

export class IncidentStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** Opens an incident for these drops, adds them to the open one, or recognises a repeated delivery. */
  async recordDrops(observation: DropObservation, now: Date, policy: IncidentPolicy): Promise<RecordedDrops> {
    const key = deliveryKeyOf(observation);
    const marker = await this.get(deliveryKey(key));
    if (marker !== undefined) {
      const incident = await this.getIncident(String(marker.incidentId));
      if (incident !== undefined) return { outcome: 'duplicate', incident, deliveryKey: key };
    }
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const ids = candidateIncidentIds(observation.host, observation.kind, now, policy.cooldownMinutes);
      const candidates = await Promise.all(ids.map((id) => this.getIncident(id)));
      const decision = decideRecording(candidates, observation, now, policy);
      try {
        if (decision.action === 'open') {
          await this.client.send(
            new PutCommand({
              TableName: this.tableName,
              Item: { ...incidentKey(decision.incident.incidentId), ...decision.incident },
              ConditionExpression: 'attribute_not_exists(pk)',
            }),
          );
          return { outcome: 'opened', incident: decision.incident, deliveryKey: key };
        }
        const updated = await this.client.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: incidentKey(decision.incidentId),
            UpdateExpression:
              'SET lastSeenAt = :now ADD dropLines :dropLines, suppressed :suppressed, deliveries :one',
            ConditionExpression: 'attribute_exists(pk) AND windowEndsAt > :now',
            ExpressionAttributeValues: {
              ':now': now.toISOString(),
              ':dropLines': observation.dropLines,
              ':suppressed': observation.suppressed,
              ':one': 1,
            },
            ReturnValues: 'ALL_NEW',
          }),
        );
        return { outcome: 'added', incident: toIncident(updated.Attributes), deliveryKey: key };
      } catch (error) {
        // Another delivery opened this bucket's incident, or the window closed: decide again.
        if (error instanceof ConditionalCheckFailedException) continue;
        throw error;
      }
    }
    throw new Error(
      `could not record drops of ${observation.host} (${observation.kind}): the incident changed concurrently ${MAX_ATTEMPTS} times`,
    );
  }

  /** Remembers that a delivery was recorded, so that its retry is recognised. */
  async rememberDelivery(recorded: RecordedDrops, now: Date): Promise<void> {
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          ...deliveryKey(recorded.deliveryKey),
          incidentId: recorded.incident.incidentId,
          recordedAt: now.toISOString(),
          expiresAt: Math.floor(now.getTime() / 1000) + DELIVERY_MARKER_TTL_SECONDS,
        },
      }),
    );
  }

  /** Notes that the incident's workflow runs, so that later deliveries do not try to start it again. */
  async markExecutionStarted(incidentId: string): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: incidentKey(incidentId),
        UpdateExpression: 'SET executionStarted = :true',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':true': true },
      }),
    );
  }

  /** The incident of this host and kind still open at `now` (inside its cooldown window), if any. */
  async findOpenIncident(
    host: string,
    kind: Incident['kind'],
    now: Date,
    policy: Pick<IncidentPolicy, 'cooldownMinutes'>,
  ): Promise<Incident | undefined> {
    for (const id of candidateIncidentIds(host, kind, now, policy.cooldownMinutes)) {
      const incident = await this.getIncident(id);
      if (incident !== undefined && isOpenAt(incident, now)) return incident;
    }
    return undefined;
  }

  async getIncident(incidentId: string): Promise<Incident | undefined> {
    const item = await this.get(incidentKey(incidentId));
    return item === undefined ? undefined : toIncident(item);
  }

  private async get(key: { pk: string; sk: string }): Promise<Record<string, unknown> | undefined> {
    const result = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }),
    );
    return result.Item;
  }
}

function toIncident(item: Record<string, unknown> | undefined): Incident {
  if (item === undefined || typeof item.incidentId !== 'string' || typeof item.windowEndsAt !== 'string') {
    throw new Error(
      `incident record ${JSON.stringify(item?.pk ?? null)} is malformed: no incidentId or windowEndsAt`,
    );
  }
  const { pk: _pk, sk: _sk, ...incident } = item;
  return incident as unknown as Incident;
}
