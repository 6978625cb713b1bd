import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { eventBridgeSink, PUT_EVENTS_BATCH } from '../../../functions/adapters/lifecycle-events.js';
import { lifecycleEvent } from '../../../functions/core/events/lifecycle.js';

/**
 * The EventBridge side at the SDK client boundary. PutEvents answers a partial failure with
 * FailedEntryCount > 0 and per-entry ErrorCode/ErrorMessage in request order, not with an error
 * (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html); at most 10
 * entries per call (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html).
 */

const eventBridge = mockClient(EventBridgeClient);
afterEach(() => eventBridge.reset());

const NOW = new Date('2026-12-06T02:00:00.000Z');
const subject = (n: number) => ({
  incidentId: `i-0abc1234def56789${n % 10}-full-20261206T0200Z`,
  instanceId: 'i-0abc1234def567890',
  host: 'i-0abc1234def567890',
  kind: 'table-full',
  mode: 'auto',
  executionId: null,
});
const events = (count: number) =>
  Array.from({ length: count }, (_, n) => lifecycleEvent('closed', subject(n), NOW));

describe('eventBridgeSink', () => {
  it('puts each event on the default bus as source, detail-type, JSON detail and time', async () => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
    const batch = events(1);
    const event = batch[0];
    const result = await eventBridgeSink(new EventBridgeClient({}))(batch);
    expect(result).toEqual({ sent: 1, failed: [] });
    const entries = eventBridge.commandCalls(PutEventsCommand)[0]?.args[0].input
      .Entries as PutEventsRequestEntry[];
    expect(entries).toEqual([
      {
        Source: 'conntrack-responder',
        DetailType: 'Incident Closed',
        Detail: JSON.stringify(event?.detail),
        Time: NOW,
      },
    ]);
    // No EventBusName: the account's default bus.
    expect(entries[0]).not.toHaveProperty('EventBusName');
    expect(JSON.parse(entries[0]?.Detail ?? '')).toMatchObject({ schemaVersion: '1', state: 'closed' });
  });

  it(`sends at most ${PUT_EVENTS_BATCH} entries per call`, async () => {
    eventBridge.on(PutEventsCommand).callsFake((input: { Entries: unknown[] }) => ({
      FailedEntryCount: 0,
      Entries: input.Entries.map((_, n) => ({ EventId: `e-${n}` })),
    }));
    const result = await eventBridgeSink(new EventBridgeClient({}))(events(23));
    expect(result).toEqual({ sent: 23, failed: [] });
    expect(
      eventBridge.commandCalls(PutEventsCommand).map((call) => call.args[0].input.Entries?.length),
    ).toEqual([10, 10, 3]);
  });

  it('reports the entries EventBridge refused (FailedEntryCount > 0) and counts the others sent', async () => {
    eventBridge.on(PutEventsCommand).resolves({
      FailedEntryCount: 1,
      Entries: [
        { EventId: 'e-1' },
        { ErrorCode: 'InternalFailure', ErrorMessage: 'try again' },
        { EventId: 'e-3' },
      ],
    });
    const batch = events(3);
    const result = await eventBridgeSink(new EventBridgeClient({}))(batch);
    expect(result.sent).toBe(2);
    expect(result.failed).toEqual([
      {
        detailType: 'Incident Closed',
        eventKey: batch[1]?.detail.eventKey,
        error: 'InternalFailure: try again',
      },
    ]);
  });

  it('never throws: a failed call reports every event of its batch and the next batch still goes', async () => {
    eventBridge
      .on(PutEventsCommand)
      .rejectsOnce(
        Object.assign(new Error('User is not authorized to perform: events:PutEvents'), {
          name: 'AccessDeniedException',
        }),
      )
      .resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-11' }] });
    const result = await eventBridgeSink(new EventBridgeClient({}))(events(11));
    expect(result.sent).toBe(1);
    expect(result.failed).toHaveLength(10);
    expect(result.failed[0]?.error).toBe(
      'AccessDeniedException: User is not authorized to perform: events:PutEvents',
    );
  });

  it('counts an entry without an EventId as failed', async () => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [] });
    const result = await eventBridgeSink(new EventBridgeClient({}))(events(1));
    expect(result).toMatchObject({ sent: 0, failed: [{ error: 'no EventId in the PutEvents answer' }] });
  });

  it('makes no call for no events', async () => {
    expect(await eventBridgeSink(new EventBridgeClient({}))([])).toEqual({ sent: 0, failed: [] });
    expect(eventBridge.commandCalls(PutEventsCommand)).toHaveLength(0);
  });
});
