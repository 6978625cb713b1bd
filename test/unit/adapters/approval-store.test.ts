import { randomUUID } from 'node:crypto';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoApprovalStore } from '../../../functions/adapters/approval-store.js';
import { type Approver, decisionFor, newApprovalRecord } from '../../../functions/core/chatops/approval.js';
import { type LocalDynamo, startLocalDynamo } from '../../support/dynalite.js';

const approver: Approver = {
  id: 'U0APPROVER',
  name: 'alice',
  teamId: 'T0TEAM',
  via: 'slack',
  basis: 'allowlist',
};

describe('the approval store on a local DynamoDB', () => {
  let dynamo: LocalDynamo;
  let store: DynamoApprovalStore;
  let documents: DynamoDBDocumentClient;
  let table: string;

  beforeAll(async () => {
    dynamo = await startLocalDynamo();
    table = await dynamo.createIncidentTable('incidents');
    store = new DynamoApprovalStore(dynamo.client, table);
    documents = DynamoDBDocumentClient.from(dynamo.client);
  });
  afterAll(async () => {
    await dynamo.close();
  });

  async function pending(options: { now?: Date; timeoutSeconds?: number; incidentId?: string } = {}) {
    const record = newApprovalRecord({
      approvalId: randomUUID(),
      incidentId: options.incidentId ?? 'inc-1',
      instanceId: 'i-0abc',
      executionId: 'arn:exec',
      now: options.now ?? new Date(),
      timeoutSeconds: options.timeoutSeconds ?? 600,
      actions: [{ id: 'limits', title: 'Raise' }],
      alternative: null,
    });
    await store.create(record, 'TASK-TOKEN-SECRET');
    return record;
  }

  it('stores the token next to the record but never returns it with the record', async () => {
    const record = await pending();
    const read = await store.get(record.approvalId);
    expect(read).toEqual(record);
    expect(JSON.stringify(read)).not.toContain('TASK-TOKEN-SECRET');
    const raw = await documents.send(
      new GetCommand({ TableName: table, Key: { pk: `approval#${record.approvalId}`, sk: 'approval' } }),
    );
    expect(raw.Item?.taskToken).toBe('TASK-TOKEN-SECRET');
    // TTL in epoch seconds, 30 days after the approval expires.
    expect(raw.Item?.expiresAt).toBe(Math.ceil(Date.parse(record.expiresAt) / 1000) + 30 * 24 * 3600);
  });

  it('refuses to reuse an approval id', async () => {
    const record = await pending();
    await expect(store.create(record, 'other')).rejects.toThrow();
  });

  it('lets exactly one of five concurrent decisions through, and only that one gets the token', async () => {
    const record = await pending();
    const now = new Date();
    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        store.decide(record.approvalId, decisionFor(record, 'approve', approver, now, `attempt-${i}`), now),
      ),
    );
    const winners = results.filter((result) => result.outcome === 'decided');
    expect(winners).toHaveLength(1);
    expect(results.filter((result) => result.outcome === 'already-decided')).toHaveLength(4);
    expect(winners[0]?.outcome === 'decided' && winners[0].taskToken).toBe('TASK-TOKEN-SECRET');
    for (const loser of results.filter((result) => result.outcome !== 'decided')) {
      expect(JSON.stringify(loser)).not.toContain('TASK-TOKEN-SECRET');
    }
  });

  it('refuses a decision after the expiry, and says so', async () => {
    const record = await pending({ now: new Date(Date.now() - 3600_000), timeoutSeconds: 60 });
    const now = new Date();
    const result = await store.decide(
      record.approvalId,
      decisionFor(record, 'approve', approver, now, 'a'),
      now,
    );
    expect(result.outcome).toBe('expired');
    expect((await store.get(record.approvalId))?.status).toBe('pending');
  });

  it('answers not-found for an unknown approval', async () => {
    const now = new Date();
    const record = newApprovalRecord({
      approvalId: randomUUID(),
      incidentId: 'inc-x',
      instanceId: null,
      executionId: 'e',
      now,
      timeoutSeconds: 60,
      actions: [],
      alternative: null,
    });
    expect(
      (await store.decide(record.approvalId, decisionFor(record, 'reject', approver, now, 'a'), now)).outcome,
    ).toBe('not-found');
  });

  it('undoes only its own decision; expires a pending approval once', async () => {
    const record = await pending();
    const now = new Date();
    await store.decide(record.approvalId, decisionFor(record, 'approve', approver, now, 'mine'), now);
    expect(await store.undoDecision(record.approvalId, 'someone-else')).toBe(false);
    expect(await store.undoDecision(record.approvalId, 'mine')).toBe(true);
    expect((await store.get(record.approvalId))?.status).toBe('pending');
    expect(await store.expire(record.approvalId, 'timed out')).toBe(true);
    expect(await store.expire(record.approvalId, 'again')).toBe(false);
    expect(await store.get(record.approvalId)).toMatchObject({
      status: 'expired',
      expiredReason: 'timed out',
    });
  });

  it("notes who decided on detect's incident item, and creates none for an incident started by hand", async () => {
    await documents.send(
      new PutCommand({
        TableName: table,
        Item: { pk: 'incident#inc-detected', sk: 'incident', incidentId: 'inc-detected' },
      }),
    );
    const detected = await pending({ incidentId: 'inc-detected' });
    const byHand = await pending({ incidentId: 'inc-by-hand' });
    const now = new Date();
    await store.decide(detected.approvalId, decisionFor(detected, 'approve', approver, now, 'a'), now);
    await store.decide(byHand.approvalId, decisionFor(byHand, 'approve', approver, now, 'b'), now);
    const incident = await documents.send(
      new GetCommand({ TableName: table, Key: { pk: 'incident#inc-detected', sk: 'incident' } }),
    );
    expect(incident.Item?.approval).toMatchObject({
      approvalId: detected.approvalId,
      decision: 'approved',
      approver: { id: 'U0APPROVER', teamId: 'T0TEAM', via: 'slack' },
    });
    const none = await documents.send(
      new GetCommand({ TableName: table, Key: { pk: 'incident#inc-by-hand', sk: 'incident' } }),
    );
    expect(none.Item).toBeUndefined();
  });

  it('keeps one thread per incident', async () => {
    const first = await store.putThread({ incidentId: 'inc-t', channel: 'C1', ts: '1.1', approvalId: null });
    const second = await store.putThread({ incidentId: 'inc-t', channel: 'C1', ts: '2.2', approvalId: null });
    expect(second).toEqual(first);
    await store.setThreadApproval('inc-t', 'a-1');
    expect(await store.getThread('inc-t')).toEqual({ ...first, approvalId: 'a-1' });
  });

  it("finds an incident's latest approval by the incident id, and nothing for an incident that never asked", async () => {
    const incidentId = `inc-${randomUUID().slice(0, 8)}`;
    expect(await store.findByIncident(incidentId)).toBeUndefined();
    const first = await pending({ incidentId });
    expect(await store.findByIncident(incidentId)).toEqual(first);
    const second = await pending({ incidentId });
    expect(await store.findByIncident(incidentId)).toEqual(second);
    // The pointer lives under the approval# prefix (the writers' IAM condition) and expires with the approval.
    const raw = await documents.send(
      new GetCommand({ TableName: table, Key: { pk: `approval#incident#${incidentId}`, sk: 'latest' } }),
    );
    expect(raw.Item).toMatchObject({ approvalId: second.approvalId, expiresAt: expect.any(Number) });
    // A decided approval is still found (so that a late caller learns who decided).
    const now = new Date();
    await store.decide(second.approvalId, decisionFor(second, 'reject', approver, now, 'a'), now);
    expect((await store.findByIncident(incidentId))?.status).toBe('decided');
  });
});
