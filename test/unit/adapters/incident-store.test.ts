import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { IncidentStore } from '../../../functions/adapters/incident-store.js';
import type { DropObservation, IncidentPolicy } from '../../../functions/core/incident/incident.js';
import { type LocalDynamo, startLocalDynamo } from '../../support/dynalite.js';

const policy: IncidentPolicy = { cooldownMinutes: 30, defaultMode: 'auto', incidentRetentionDays: 90 };
const INSTANCE = 'i-0123456789abcdef0';
let eventIds = 0;

/** A fresh delivery (new event ids) of `dropLines` drop lines from one instance. */
function delivery(dropLines = 2, host = INSTANCE): DropObservation {
  const events = Array.from({ length: dropLines }, () => ({
    id: String(++eventIds).padStart(56, '0'),
    timestamp: 1_773_433_305_000,
    message: 'Mar 13 20:21:45 ip-10-0-0-1 kernel: nf_conntrack: table full, dropping packet.',
  }));
  return {
    host,
    kind: 'table-full',
    netns: null,
    dropLines,
    suppressed: 10,
    firstSeen: null,
    lastSeen: null,
    source: { owner: '123456789012', logGroup: '/conntrack-responder/kernel', logStream: host },
    events,
  };
}

const minutesAfter = (start: Date, minutes: number) => new Date(start.getTime() + minutes * 60_000);

describe('IncidentStore on a real DynamoDB-compatible server', () => {
  let dynamo: LocalDynamo;
  let documents: DynamoDBDocumentClient;
  let tableName: string;
  let store: IncidentStore;
  const start = new Date('2026-03-13T20:21:50Z');

  beforeAll(async () => {
    dynamo = await startLocalDynamo();
    documents = DynamoDBDocumentClient.from(dynamo.client);
  });
  afterAll(() => dynamo.close());
  beforeEach(async () => {
    tableName = await dynamo.createIncidentTable();
    store = new IncidentStore(documents, tableName);
  });

  const incidents = async () =>
    ((await documents.send(new ScanCommand({ TableName: tableName }))).Items ?? []).filter((item) =>
      String(item.pk).startsWith('incident#'),
    );

  it('opens an incident, then adds a repeat within the cooldown to it', async () => {
    // Act
    const first = await store.recordDrops(delivery(2), start, policy);
    await store.rememberDelivery(first, start);
    const repeat = await store.recordDrops(delivery(3), minutesAfter(start, 10), policy);
    // Assess
    expect(first.outcome).toBe('opened');
    expect(repeat).toMatchObject({ outcome: 'added', incident: { incidentId: first.incident.incidentId } });
    expect(await incidents()).toEqual([
      expect.objectContaining({
        incidentId: first.incident.incidentId,
        dropLines: 5,
        suppressed: 20,
        deliveries: 2,
        lastSeenAt: minutesAfter(start, 10).toISOString(),
      }),
    ]);
  });

  it('keeps adding across a bucket boundary until the cooldown ends, then opens a new incident', async () => {
    // start is 20:21:50 in bucket 20:00; 20:40 is the next bucket but still inside the cooldown.
    const first = await store.recordDrops(delivery(), start, policy);
    const acrossBoundary = await store.recordDrops(delivery(), new Date('2026-03-13T20:40:00Z'), policy);
    const afterCooldown = await store.recordDrops(delivery(), new Date('2026-03-13T20:51:50Z'), policy);
    expect(acrossBoundary).toMatchObject({
      outcome: 'added',
      incident: { incidentId: first.incident.incidentId },
    });
    expect(afterCooldown.outcome).toBe('opened');
    expect(afterCooldown.incident.incidentId).toBe(`${INSTANCE}-full-20260313T2030Z`);
    expect(await incidents()).toHaveLength(2);
  });

  it('recognises a retried delivery once it was remembered, and adds nothing', async () => {
    const observation = delivery(4);
    const first = await store.recordDrops(observation, start, policy);
    await store.rememberDelivery(first, start);
    const retry = await store.recordDrops(observation, minutesAfter(start, 1), policy);
    expect(retry).toMatchObject({
      outcome: 'duplicate',
      incident: { incidentId: first.incident.incidentId },
    });
    expect(await incidents()).toEqual([expect.objectContaining({ dropLines: 4, deliveries: 1 })]);
  });

  it('opens exactly one incident when many deliveries race', async () => {
    // Act: 12 different deliveries for one instance at the same moment, 3 for another.
    const results = await Promise.all([
      ...Array.from({ length: 12 }, () => store.recordDrops(delivery(1), start, policy)),
      ...Array.from({ length: 3 }, () =>
        store.recordDrops(delivery(1, 'i-0fedcba9876543210'), start, policy),
      ),
    ]);
    // Assess
    const opened = results.filter((result) => result.outcome === 'opened');
    expect(opened.map((result) => result.incident.host).sort()).toEqual([INSTANCE, 'i-0fedcba9876543210']);
    const stored = await incidents();
    expect(stored.map((item) => [item.host, item.dropLines, item.deliveries]).sort()).toEqual([
      [INSTANCE, 12, 12],
      ['i-0fedcba9876543210', 3, 3],
    ]);
  });

  it('remembers that the workflow was started', async () => {
    const first = await store.recordDrops(delivery(), start, policy);
    await store.markExecutionStarted(first.incident.incidentId);
    expect(await store.getIncident(first.incident.incidentId)).toMatchObject({ executionStarted: true });
    await expect(store.markExecutionStarted('no-such-incident')).rejects.toThrow(
      /conditional request failed/i,
    );
  });
});
