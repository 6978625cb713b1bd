import { describe, expect, it } from 'vitest';
import {
  bucketStart,
  candidateIncidentIds,
  type DropObservation,
  decideRecording,
  deliveryKeyOf,
  type IncidentPolicy,
  incidentIdFor,
  instanceIdOf,
  MAX_EVENT_MESSAGE_LENGTH,
  MAX_TRIGGER_EVENTS,
  mayStartWorkflow,
  newIncident,
  workflowExecutionFor,
} from '../../../functions/core/incident/incident.js';

const policy: IncidentPolicy = { cooldownMinutes: 30, defaultMode: 'approve', incidentRetentionDays: 90 };

function observation(overrides: Partial<DropObservation> = {}): DropObservation {
  return {
    host: 'i-0123456789abcdef0',
    kind: 'table-full',
    netns: null,
    dropLines: 2,
    suppressed: 30,
    firstSeen: '2026-03-13T20:21:45.000Z',
    lastSeen: '2026-03-13T20:21:45.000Z',
    source: {
      owner: '123456789012',
      logGroup: '/conntrack-responder/kernel',
      logStream: 'i-0123456789abcdef0',
    },
    events: [
      {
        id: '1',
        timestamp: 1,
        message: 'Mar 13 20:21:45 fashion kernel: __ratelimit: 30 callbacks suppressed',
      },
      {
        id: '2',
        timestamp: 1,
        message: 'Mar 13 20:21:45 fashion kernel: nf_conntrack: table full, dropping packet.',
      },
    ],
    ...overrides,
  };
}

const at = (iso: string) => new Date(iso);

describe('incident ids', () => {
  it('cut time into cooldown-long buckets aligned on the epoch', () => {
    expect(bucketStart(at('2026-03-13T20:29:59.999Z'), 30).toISOString()).toBe('2026-03-13T20:00:00.000Z');
    expect(bucketStart(at('2026-03-13T20:30:00.000Z'), 30).toISOString()).toBe('2026-03-13T20:30:00.000Z');
    const odd = bucketStart(at('2026-03-13T20:31:00.000Z'), 7).getTime();
    expect(odd % (7 * 60_000)).toBe(0);
    expect(at('2026-03-13T20:31:00.000Z').getTime() - odd).toBeLessThan(7 * 60_000);
  });

  it('read as host, kind and bucket, and are valid Step Functions execution names', () => {
    expect(incidentIdFor('i-0123456789abcdef0', 'table-full', at('2026-03-13T20:00:00Z'))).toBe(
      'i-0123456789abcdef0-full-20260313T2000Z',
    );
    expect(incidentIdFor('i-0123456789abcdef0', 'expect-table-full', at('2026-03-13T20:30:00Z'))).toBe(
      'i-0123456789abcdef0-expect-20260313T2030Z',
    );
  });

  it('keep hosts apart even when their names had to be changed to fit', () => {
    const bucket = at('2026-03-13T20:00:00Z');
    const slash = incidentIdFor('web/01', 'table-full', bucket);
    const underscore = incidentIdFor('web_01', 'table-full', bucket);
    const long = incidentIdFor('x'.repeat(200), 'table-full', bucket);
    expect(slash).not.toBe(underscore);
    for (const id of [slash, underscore, long]) {
      expect(id).toMatch(/^[A-Za-z0-9_-]{1,80}$/);
    }
  });

  it('name the current bucket first, then the previous one', () => {
    expect(candidateIncidentIds('i-0123456789abcdef0', 'table-full', at('2026-03-13T20:10:00Z'), 30)).toEqual(
      ['i-0123456789abcdef0-full-20260313T2000Z', 'i-0123456789abcdef0-full-20260313T1930Z'],
    );
  });
});

describe('decideRecording', () => {
  it('opens an incident when none exists', () => {
    const decision = decideRecording(
      [undefined, undefined],
      observation(),
      at('2026-03-13T20:21:50Z'),
      policy,
    );
    expect(decision).toMatchObject({
      action: 'open',
      incident: {
        incidentId: 'i-0123456789abcdef0-full-20260313T2000Z',
        windowEndsAt: '2026-03-13T20:51:50.000Z',
      },
    });
  });

  it('adds to an incident of the previous bucket while its cooldown runs', () => {
    const previous = { incidentId: 'prev', windowEndsAt: '2026-03-13T20:51:50.000Z' };
    expect(decideRecording([undefined, previous], observation(), at('2026-03-13T20:40:00Z'), policy)).toEqual(
      {
        action: 'add',
        incidentId: 'prev',
      },
    );
  });

  it('opens a new incident once the cooldown is over', () => {
    const previous = { incidentId: 'prev', windowEndsAt: '2026-03-13T20:51:50.000Z' };
    const decision = decideRecording(
      [undefined, previous],
      observation(),
      at('2026-03-13T20:51:50Z'),
      policy,
    );
    expect(decision).toMatchObject({
      action: 'open',
      incident: { incidentId: 'i-0123456789abcdef0-full-20260313T2030Z' },
    });
  });
});

describe('mayStartWorkflow', () => {
  const opened = {
    executionStarted: false,
    openedByDelivery: 'opening-delivery',
    openedAt: '2026-03-13T20:21:50.000Z',
  };
  it.each([
    ['the delivery that opened it (or its retry)', opened, 'opening-delivery', '2026-03-13T20:21:51Z', true],
    [
      'another delivery while the opener is still starting it',
      opened,
      'other',
      '2026-03-13T20:22:49Z',
      false,
    ],
    ['another delivery once the opener had a minute', opened, 'other', '2026-03-13T20:22:50Z', true],
    [
      'any delivery once it is marked started',
      { ...opened, executionStarted: true },
      'opening-delivery',
      '2026-03-13T20:30:00Z',
      false,
    ],
    [
      'any delivery for an incident opened before openers were recorded',
      { ...opened, openedByDelivery: undefined },
      'other',
      '2026-03-13T20:21:51Z',
      true,
    ],
  ])('%s: %s', (_name, incident, deliveryKey, now, expected) => {
    expect(mayStartWorkflow(incident, deliveryKey, at(now))).toBe(expected);
  });
});

describe('newIncident', () => {
  it('records what opened it and when it expires', () => {
    const now = at('2026-03-13T20:21:50Z');
    const incident = newIncident(observation({ netns: '4026532177' }), now, policy);
    expect(incident).toMatchObject({
      host: 'i-0123456789abcdef0',
      instanceId: 'i-0123456789abcdef0',
      kind: 'table-full',
      status: 'open',
      mode: 'approve',
      openedAt: '2026-03-13T20:21:50.000Z',
      dropLines: 2,
      suppressed: 30,
      deliveries: 1,
      executionName: incident.incidentId,
      executionStarted: false,
      openedByDelivery: deliveryKeyOf(observation({ netns: '4026532177' })),
      expiresAt: Math.floor(now.getTime() / 1000) + 90 * 86_400,
      trigger: { logGroup: '/conntrack-responder/kernel', netns: '4026532177', eventsOmitted: 0 },
    });
    expect(incident.trigger.events).toHaveLength(2);
  });

  it('keeps at most 20 triggering events, each cut at 2000 characters', () => {
    const events = Array.from({ length: 25 }, (_, i) => ({
      id: String(i),
      timestamp: i,
      message: 'x'.repeat(3000),
    }));
    const incident = newIncident(observation({ events }), at('2026-03-13T20:21:50Z'), policy);
    expect(incident.trigger.events).toHaveLength(MAX_TRIGGER_EVENTS);
    expect(incident.trigger.eventsOmitted).toBe(5);
    expect(incident.trigger.events[0]?.message).toHaveLength(MAX_EVENT_MESSAGE_LENGTH + 1);
  });

  it('knows an instance id, a hybrid managed node id, and a host that is neither', () => {
    expect(instanceIdOf('i-0123456789abcdef0')).toBe('i-0123456789abcdef0');
    expect(instanceIdOf('i-01234567')).toBe('i-01234567');
    expect(instanceIdOf('mi-0123456789abcdef0')).toBe('mi-0123456789abcdef0');
    expect(instanceIdOf('cache-01')).toBeNull();
    expect(instanceIdOf('i-0123456789abcdef0_cache-01')).toBeNull();
  });
});

describe('deliveryKeyOf', () => {
  it('is the same for a retried delivery and differs for other lines or another stream', () => {
    const key = deliveryKeyOf(observation());
    expect(deliveryKeyOf(observation())).toBe(key);
    expect(deliveryKeyOf(observation({ events: [{ id: '3', timestamp: 2, message: 'm' }] }))).not.toBe(key);
    const otherStream = { ...observation().source, logStream: 'i-0fedcba9876543210' };
    expect(deliveryKeyOf(observation({ source: otherStream }))).not.toBe(key);
    expect(deliveryKeyOf(observation({ netns: '4026532177' }))).not.toBe(key);
  });
});

describe('workflowExecutionFor', () => {
  it('names the execution after the incident and sends only fields fixed at opening', () => {
    const incident = newIncident(observation(), at('2026-03-13T20:21:50Z'), policy);
    const later = { ...incident, dropLines: 500, deliveries: 9, lastSeenAt: '2026-03-13T20:40:00.000Z' };
    const execution = workflowExecutionFor(incident);
    expect(execution.name).toBe('i-0123456789abcdef0-full-20260313T2000Z');
    expect(workflowExecutionFor(later)).toEqual(execution);
    expect(Object.keys(execution.input).sort()).toEqual(
      ['host', 'incidentId', 'instanceId', 'kind', 'mode', 'openedAt', 'trigger', 'windowEndsAt'].sort(),
    );
  });
});
