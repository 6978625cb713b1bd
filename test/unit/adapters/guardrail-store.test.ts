import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GuardrailStore } from '../../../functions/adapters/guardrail-store.js';
import { DEFAULT_GUARDRAILS, type GuardrailSettings } from '../../../functions/core/guardrails/settings.js';
import { type LocalDynamo, startLocalDynamo } from '../../support/dynalite.js';

/**
 * The guardrails' records on a real DynamoDB-compatible server, raced for real: many callers at
 * once through Promise.all, each a separate conditional write on the same items.
 */

const START = new Date('2026-03-13T21:01:00Z');
const minutesAfter = (minutes: number) => new Date(START.getTime() + minutes * 60_000);
const host = (n: number) => `i-${n.toString(16).padStart(17, '0')}`;

function settingsWith(change: Partial<GuardrailSettings> = {}): GuardrailSettings {
  return { ...DEFAULT_GUARDRAILS, breaker: { maxInstances: 10, windowMinutes: 15 }, ...change };
}

describe('GuardrailStore on a real DynamoDB-compatible server', () => {
  let dynamo: LocalDynamo;
  let documents: DynamoDBDocumentClient;
  let tableName: string;
  let store: GuardrailStore;

  beforeAll(async () => {
    dynamo = await startLocalDynamo();
    documents = DynamoDBDocumentClient.from(dynamo.client);
  });
  afterAll(() => dynamo.close());
  beforeEach(async () => {
    tableName = await dynamo.createIncidentTable();
    store = new GuardrailStore(documents, tableName, settingsWith());
  });

  /** An incident item as the detect function opens it (only the fields the guardrails read). */
  async function openIncident(incidentId: string, hostName: string): Promise<void> {
    await documents.send(
      new PutCommand({
        TableName: tableName,
        Item: { pk: `incident#${incidentId}`, sk: 'incident', incidentId, host: hostName },
      }),
    );
  }

  async function admitMany(count: number, at: Date, first = 0, accountOf = (_n: number) => '111122223333') {
    const ids = Array.from({ length: count }, (_, i) => first + i);
    await Promise.all(ids.map((n) => openIncident(`${host(n)}-full`, host(n))));
    return Promise.all(
      ids.map((n) =>
        store.admit({ incidentId: `${host(n)}-full`, host: host(n), account: accountOf(n) }, undefined, at),
      ),
    );
  }

  describe('the fleet breaker', () => {
    it('admits exactly N of many instances opening at once, trips once, and holds the rest', async () => {
      // Act: 40 instances open incidents at the same moment.
      const results = await admitMany(40, START, 0, (n) => (n % 3 === 0 ? '444455556666' : '111122223333'));
      // Assess
      expect(results.filter((r) => r.admission.decision === 'admit')).toHaveLength(10);
      expect(results.filter((r) => r.admission.decision === 'hold')).toHaveLength(30);
      expect(results.filter((r) => r.tripped)).toHaveLength(1);
      const breaker = await store.getBreaker();
      expect(breaker).toMatchObject({
        status: 'open',
        episode: 1,
        heldCount: 30,
        tripHostCount: 11,
        escalation: { status: 'pending' },
      });
      expect(breaker.accounts).toEqual(['111122223333', '444455556666']);
      expect(breaker.reason).toBe(
        '11 instances opened incidents within 15 min, more than 10: the fleet breaker trips',
      );
      // The decision is on every incident, and says why.
      const stored = await documents.send(
        new GetCommand({ TableName: tableName, Key: { pk: `incident#${host(0)}-full`, sk: 'incident' } }),
      );
      expect(stored.Item?.admission).toMatchObject({ decision: expect.stringMatching(/admit|hold/) });
    });

    it('admits exactly N even when the racing invocations read their clocks in a different order', async () => {
      // Later writers read earlier clocks: what counts is the order of the writes, not the stamps.
      const ids = Array.from({ length: 30 }, (_, i) => i);
      await Promise.all(ids.map((n) => openIncident(`${host(n)}-full`, host(n))));
      const results = await Promise.all(
        ids.map((n) =>
          store.admit(
            { incidentId: `${host(n)}-full`, host: host(n), account: '1' },
            undefined,
            new Date(START.getTime() + (30 - n) * 7),
          ),
        ),
      );
      expect(results.filter((r) => r.admission.decision === 'admit')).toHaveLength(10);
      expect(results.filter((r) => r.tripped)).toHaveLength(1);
    });

    it('decides once per incident, however many deliveries ask at once', async () => {
      await openIncident('i-a-full', 'i-a');
      const answers = await Promise.all(
        Array.from({ length: 12 }, () =>
          store.admit({ incidentId: 'i-a-full', host: 'i-a', account: '1' }, undefined, START),
        ),
      );
      expect(new Set(answers.map((a) => JSON.stringify(a.admission))).size).toBe(1);
      // A later delivery that read the stored decision gets it back without writing anything.
      const stored = answers[0]?.admission;
      expect(
        await store.admit({ incidentId: 'i-a-full', host: 'i-a', account: '1' }, stored, minutesAfter(1)),
      ).toEqual({
        admission: stored,
        tripped: false,
      });
    });

    it('counts a held incident once even when its deliveries race', async () => {
      await admitMany(11, START);
      await openIncident('i-late-full', 'i-late');
      await Promise.all(
        Array.from({ length: 8 }, () =>
          store.admit(
            { incidentId: 'i-late-full', host: 'i-late', account: '1' },
            undefined,
            minutesAfter(1),
          ),
        ),
      );
      expect((await store.getBreaker()).heldCount).toBe(2);
    });

    it('slides: openings older than the window no longer count', async () => {
      await admitMany(8, START);
      // 20 minutes later the first eight are out of the 15-minute window: eight more do not trip it.
      const later = await admitMany(8, minutesAfter(20), 100);
      expect(later.every((r) => r.admission.decision === 'admit')).toBe(true);
      expect((await store.getBreaker()).status).toBe('closed');
      // But openings in the previous bucket that are inside the window do count.
      const third = await admitMany(3, minutesAfter(29), 200);
      expect(third.filter((r) => r.admission.decision === 'hold')).toHaveLength(1);
    });

    it('stays closed when turned off (0), whatever the storm', async () => {
      store = new GuardrailStore(
        documents,
        tableName,
        settingsWith({ breaker: { maxInstances: 0, windowMinutes: 15 } }),
      );
      const results = await admitMany(30, START);
      expect(results.every((r) => r.admission.decision === 'admit')).toBe(true);
      expect((await store.getBreaker()).status).toBe('closed');
    });

    it('is reset by a person; the storm that tripped it does not count afterwards, a new one trips it again', async () => {
      await admitMany(12, START);
      expect(await store.reset('alice', 'DDoS mitigated at the edge', minutesAfter(2))).toBe(true);
      expect(await store.reset('bob', 'twice', minutesAfter(2))).toBe(false);
      expect(await store.getBreaker()).toMatchObject({
        status: 'closed',
        resetBy: 'alice',
        resetReason: 'DDoS mitigated at the edge',
      });
      const after = await admitMany(10, minutesAfter(3), 100);
      expect(after.every((r) => r.admission.decision === 'admit')).toBe(true);
      const next = await admitMany(1, minutesAfter(4), 200);
      expect(next[0]).toMatchObject({ tripped: true, admission: { decision: 'hold', episode: 2 } });
      expect(await store.getBreaker()).toMatchObject({ status: 'open', episode: 2, heldCount: 1 });
    });

    it('can be opened by hand, which holds every new incident without an escalation', async () => {
      expect(await store.openByHand('carol', 'deploy freeze', START)).toBe(true);
      expect(await store.openByHand('carol', 'again', START)).toBe(false);
      const results = await admitMany(3, minutesAfter(1));
      expect(results.every((r) => r.admission.decision === 'hold' && !r.tripped)).toBe(true);
      expect(await store.claimEscalation(minutesAfter(1))).toBe(false);
      expect(await store.getBreaker()).toMatchObject({
        reason: 'opened by hand: deploy freeze',
        heldCount: 3,
      });
    });

    it('lets exactly one of many claim the escalation, and again only after a failed send gave it back', async () => {
      await admitMany(11, START);
      const claims = await Promise.all(
        Array.from({ length: 20 }, () => store.claimEscalation(minutesAfter(1))),
      );
      expect(claims.filter(Boolean)).toHaveLength(1);
      await store.releaseEscalationClaim();
      expect(await store.claimEscalation(minutesAfter(1))).toBe(true);
      // A claim whose sender died expires after 45 s, before Lambda retries that sender.
      expect(await store.claimEscalation(minutesAfter(1.5))).toBe(false);
      expect(await store.claimEscalation(minutesAfter(2))).toBe(true);
      await store.markEscalationSent(minutesAfter(4), 'message-1');
      expect(await store.claimEscalation(minutesAfter(10))).toBe(false);
      expect((await store.getBreaker()).escalation).toEqual({
        status: 'sent',
        sentAt: minutesAfter(4).toISOString(),
        messageId: 'message-1',
      });
    });

    it('builds the fleet view from the trip, the held incidents and the diagnosed ports', async () => {
      await admitMany(14, START);
      await store.recordTopPorts(`${host(0)}-full`, [
        { protocol: 'tcp', port: 443, direction: 'inbound', entries: 900 },
      ]);
      await store.recordTopPorts(`${host(1)}-full`, [
        { protocol: 'tcp', port: 443, direction: 'inbound', entries: 100 },
        { protocol: 'udp', port: 53, direction: 'outbound', entries: 50 },
      ]);
      const view = await store.fleetView(minutesAfter(1));
      expect(view).toMatchObject({
        status: 'open',
        instances: { count: 14 },
        heldIncidents: 4,
        accounts: ['111122223333'],
        diagnosedInstances: 2,
      });
      expect(view.instances.sample).toHaveLength(14);
      expect(view.topPorts[0]).toEqual({
        protocol: 'tcp',
        port: 443,
        direction: 'inbound',
        entries: 1000,
        instances: 2,
      });
    });
  });

  describe('remediation slots', () => {
    it('grants exactly max of many concurrent requests', async () => {
      store = new GuardrailStore(documents, tableName, settingsWith({ maxConcurrentRemediations: 5 }));
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) => store.acquireSlot(`incident-${i}`, START)),
      );
      const granted = results.filter((r) => r.granted);
      expect(granted).toHaveLength(5);
      expect((await store.slotHolders(START)).live).toHaveLength(5);
    });

    it('gives a released slot to the next one, and releasing twice is harmless', async () => {
      store = new GuardrailStore(documents, tableName, settingsWith({ maxConcurrentRemediations: 2 }));
      expect((await store.acquireSlot('a', START)).granted).toBe(true);
      expect((await store.acquireSlot('b', START)).granted).toBe(true);
      expect(await store.acquireSlot('c', START)).toEqual({ granted: false, holders: ['a', 'b'] });
      expect(await store.releaseSlot('a')).toBe(true);
      expect(await store.releaseSlot('a')).toBe(false);
      expect((await store.acquireSlot('c', START)).granted).toBe(true);
      expect((await store.slotHolders(START)).live).toEqual(['b', 'c']);
    });

    it('gives the same slot back to a retried request instead of a second one', async () => {
      store = new GuardrailStore(documents, tableName, settingsWith({ maxConcurrentRemediations: 2 }));
      const first = await store.acquireSlot('a', START);
      const retried = await Promise.all([store.acquireSlot('a', START), store.acquireSlot('a', START)]);
      expect(first).toMatchObject({ granted: true, alreadyHeld: false });
      expect(retried).toEqual([
        expect.objectContaining({ granted: true, alreadyHeld: true }),
        expect.objectContaining({ granted: true, alreadyHeld: true }),
      ]);
      expect((await store.slotHolders(START)).live).toEqual(['a']);
    });

    it('frees the slot of a workflow that never gave it back once its lease ends', async () => {
      store = new GuardrailStore(
        documents,
        tableName,
        settingsWith({ maxConcurrentRemediations: 1, slotLeaseSeconds: 600 }),
      );
      expect((await store.acquireSlot('dead', START)).granted).toBe(true);
      expect((await store.acquireSlot('next', minutesAfter(9))).granted).toBe(false);
      expect((await store.acquireSlot('next', minutesAfter(10))).granted).toBe(true);
      const item = await documents.send(
        new GetCommand({ TableName: tableName, Key: { pk: 'guardrail#remediations', sk: 'slots' } }),
      );
      expect(Object.keys(item.Item?.holders ?? {})).toEqual(['next']);
    });
  });

  describe('the cooldown after a change', () => {
    it('keeps the latest change of an instance, whatever order the records arrive in', async () => {
      expect(await store.lastChange('i-a')).toBeNull();
      await store.recordChange(
        'i-a',
        { at: '2026-03-13T21:10:00.000Z', incidentId: 'second', outcome: 'remediated' },
        90,
      );
      await store.recordChange(
        'i-a',
        { at: '2026-03-13T20:10:00.000Z', incidentId: 'first', outcome: 'remediated' },
        90,
      );
      expect(await store.lastChange('i-a')).toEqual({
        at: '2026-03-13T21:10:00.000Z',
        incidentId: 'second',
        outcome: 'remediated',
      });
    });
  });
});
