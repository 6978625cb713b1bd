import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoEniChangeStore } from '../../../functions/adapters/eni-change-store.js';
import type { EniChangeRecord } from '../../../functions/core/allowance/eni-change.js';
import { type LocalDynamo, startLocalDynamo } from '../../support/dynalite.js';

/** The ENI change records on a real DynamoDB-compatible server: created once, raced for real. */

const NOW = new Date('2026-12-01T10:00:00Z');
const record = (changeId: string, tcp = 432_000): EniChangeRecord => ({
  changeId,
  incidentId: 'inc-1',
  instanceId: 'i-0123456789abcdef0',
  networkInterfaceId: 'eni-0aaaaaaaaaaaaaaa1',
  requested: { tcpEstablished: 7875, udpStream: 120, udp: 30 },
  previous: { tcpEstablished: tcp, udpStream: 180, udp: 30 },
  previousSources: { tcpEstablished: 'instance-type', udpStream: 'instance-type', udp: 'instance-type' },
  applied: null,
  status: 'saved',
  savedAt: NOW.toISOString(),
});

describe('DynamoEniChangeStore on a real DynamoDB-compatible server', () => {
  let dynamo: LocalDynamo;
  let documents: DynamoDBDocumentClient;
  let tableName: string;
  let store: DynamoEniChangeStore;

  beforeAll(async () => {
    dynamo = await startLocalDynamo();
    documents = DynamoDBDocumentClient.from(dynamo.client);
  });
  afterAll(() => dynamo.close());
  beforeEach(async () => {
    tableName = await dynamo.createIncidentTable();
    store = new DynamoEniChangeStore(documents, tableName, 90, () => NOW);
  });

  it('keeps the first of many concurrent saves under one ChangeId: the previous values cannot be overwritten', async () => {
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => store.create(record('inc-1-eni', 432_000 - i))),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    const winner = results.indexOf(true);
    expect((await store.get('inc-1-eni'))?.previous.tcpEstablished).toBe(432_000 - winner);
  });

  it('updates only a record that was saved, and reads back exactly what it stored, TTL aside', async () => {
    await expect(store.update(record('never-saved'))).rejects.toThrow();
    await store.create(record('inc-1-eni'));
    const applied: EniChangeRecord = {
      ...record('inc-1-eni'),
      applied: { tcpEstablished: 7875, udpStream: 120, udp: 30 },
      status: 'applied',
      appliedAt: NOW.toISOString(),
    };
    await store.update(applied);
    expect(await store.get('inc-1-eni')).toEqual(applied);
    expect(await store.get('other')).toBeNull();
    const raw = await documents.send(
      new GetCommand({ TableName: tableName, Key: { pk: 'eni-change#inc-1-eni', sk: 'change' } }),
    );
    expect(raw.Item?.expiresAt).toBe(Math.floor(NOW.getTime() / 1000) + 90 * 86_400);
  });
});
