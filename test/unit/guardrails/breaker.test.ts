import { describe, expect, it } from 'vitest';
import {
  decideAdmission,
  entriesOfWindowItem,
  type FleetView,
  fleetEscalation,
  fleetTopPorts,
  hostsInWindow,
  type WindowEntry,
  windowBuckets,
} from '../../../functions/core/guardrails/breaker.js';
import { topPortsOfReport } from '../../../functions/core/guardrails/ports.js';
import { decideAcquire } from '../../../functions/core/guardrails/semaphore.js';
import { ReportBuilder } from '../../support/report-builder.js';

const NOW = new Date('2026-03-13T21:07:00Z');
const at = (iso: string, host: string, account = '111122223333'): WindowEntry => ({
  host,
  incidentId: `${host}-full`,
  account,
  at: iso,
});

describe('the breaker window', () => {
  it('uses the current bucket and the previous one', () => {
    expect(windowBuckets(NOW, 15).map((d) => d.toISOString())).toEqual([
      '2026-03-13T21:00:00.000Z',
      '2026-03-13T20:45:00.000Z',
    ]);
  });

  it.each([
    [
      'counts each host once, at its first opening',
      [at('2026-03-13T21:01:00Z', 'a'), at('2026-03-13T20:58:00Z', 'a')],
      null,
      ['a@20:58'],
    ],
    [
      'drops openings older than the window',
      [at('2026-03-13T20:51:59Z', 'old'), at('2026-03-13T20:52:00Z', 'edge')],
      null,
      ['edge@20:52'],
    ],
    [
      'drops openings before the last reset',
      [at('2026-03-13T21:01:00Z', 'before'), at('2026-03-13T21:03:00Z', 'after')],
      '2026-03-13T21:02:00Z',
      ['after@21:03'],
    ],
    [
      'counts openings a concurrent invocation stamped a moment later',
      [at('2026-03-13T21:07:00.050Z', 'skewed')],
      null,
      ['skewed@21:07'],
    ],
  ] as const)('%s', (_name, entries, resetAt, expected) => {
    const hosts = hostsInWindow(entries, NOW, 15, resetAt);
    expect(hosts.map((h) => `${h.host}@${h.at.slice(11, 16)}`)).toEqual(expected);
  });

  it('reads the h#<host> attributes of a window item and nothing else', () => {
    const item = {
      pk: 'guardrail#breaker',
      sk: 'window#2026-03-13T21:00:00.000Z',
      expiresAt: 1,
      'h#i-0abc': { incidentId: 'i-0abc-full', account: '111122223333', at: '2026-03-13T21:01:00Z' },
      'h#broken': 'not an entry',
    };
    expect(entriesOfWindowItem(item)).toEqual([
      { host: 'i-0abc', incidentId: 'i-0abc-full', account: '111122223333', at: '2026-03-13T21:01:00Z' },
    ]);
  });
});

describe('decideAdmission', () => {
  const settings = { maxInstances: 3, windowMinutes: 15 };
  it.each([
    ['the first instance', 'closed', 1, 'admit', false],
    ['the Nth instance', 'closed', 3, 'admit', false],
    ['the N+1th instance trips it', 'closed', 4, 'hold', true],
    ['later instances while it is open', 'open', 0, 'hold', false],
  ] as const)('%s', (_name, status, count, decision, trip) => {
    const admission = decideAdmission({ breaker: { status }, hostsInWindow: count, settings });
    expect(admission).toMatchObject({ decision, trip });
  });

  it('explains the trip with the numbers', () => {
    expect(decideAdmission({ breaker: { status: 'closed' }, hostsInWindow: 4, settings }).detail).toBe(
      '4 instances opened incidents within 15 min, more than 3: the fleet breaker trips',
    );
  });

  it('admits everything when turned off, but still holds while a person keeps it open', () => {
    const off = { maxInstances: 0, windowMinutes: 15 };
    expect(
      decideAdmission({ breaker: { status: 'closed' }, hostsInWindow: 10_000, settings: off }).decision,
    ).toBe('admit');
    expect(decideAdmission({ breaker: { status: 'open' }, hostsInWindow: 0, settings: off }).decision).toBe(
      'hold',
    );
  });
});

describe('the fleet view', () => {
  it('ranks ports by how many instances have them, then by entries', () => {
    const ports = fleetTopPorts([
      [
        { protocol: 'tcp', port: 443, direction: 'inbound', entries: 9000 },
        { protocol: 'udp', port: 53, direction: 'outbound', entries: 100 },
      ],
      [{ protocol: 'udp', port: 53, direction: 'outbound', entries: 50 }],
      [
        { protocol: 'udp', port: 53, direction: 'outbound', entries: 70 },
        { protocol: 'tcp', port: 8080, direction: 'inbound', entries: 20_000 },
      ],
    ]);
    expect(ports.map((p) => [`${p.port}/${p.protocol}`, p.instances, p.entries])).toEqual([
      ['53/udp', 3, 220],
      ['8080/tcp', 1, 20_000],
      ['443/tcp', 1, 9000],
    ]);
  });

  it("takes an instance's top ports from its diagnostics report, inbound and outbound", () => {
    const report = ReportBuilder.healthy()
      .localPort('tcp', 8080, 50_000, 49_000)
      .remotePort('udp', 53, 3_000, 3_000)
      .build();
    expect(topPortsOfReport(JSON.stringify(report), 3)).toEqual([
      { protocol: 'tcp', port: 8080, direction: 'inbound', entries: 50_000 },
      { protocol: 'udp', port: 53, direction: 'outbound', entries: 3_000 },
    ]);
    expect(topPortsOfReport('not json')).toEqual([]);
    expect(topPortsOfReport({ table: {} })).toEqual([]);
  });

  const view: FleetView = {
    status: 'open',
    trippedAt: '2026-03-13T21:02:00.000Z',
    reason: '11 instances opened incidents within 15 min, more than 10: the fleet breaker trips',
    settings: { maxInstances: 10, windowMinutes: 15 },
    instances: { count: 250, sample: ['i-0001', 'i-0002', 'stream with spaces'] },
    accounts: ['111122223333', '444455556666'],
    heldIncidents: 239,
    topPorts: [{ protocol: 'tcp', port: 443, direction: 'inbound', entries: 9000, instances: 7 }],
    diagnosedInstances: 8,
    resetAt: null,
    resetBy: null,
  };
  const commands = {
    status: 'npx conntrack-responder breaker status --table t',
    reset: 'npx conntrack-responder breaker reset --table t',
  };

  it('makes one escalation with instances, accounts and top ports, and an SNS-safe subject', () => {
    const message = fleetEscalation(view, commands);
    expect(message.subject).toBe('conntrack-responder: fleet breaker tripped, 250 instances in 15 min');
    expect(message.subject).toMatch(/^[\x20-\x7e]{1,99}$/);
    expect(message.text).toContain('Instances (250): i-0001, i-0002, "stream with spaces", and 247 more');
    expect(message.text).toContain('Accounts (2): 111122223333, 444455556666');
    expect(message.text).toContain('Held incidents: 239');
    expect(message.text).toContain(
      'Top ports (from 8 diagnosed instances): 443/tcp inbound on 7 instances (9000 entries)',
    );
    expect(message.text).toContain(`Reset, once the cause is understood: ${commands.reset}`);
    expect(message.attributes).toEqual({
      severity: 'critical',
      action: 'fleet-breaker',
      instance: 'fleet',
      account: 'multiple',
      outcome: 'escalated',
    });
    expect(message.summary).toMatchObject({ kind: 'fleet-breaker', heldIncidents: 239, maxInstances: 10 });
  });

  it('says so when no diagnostics have come in yet', () => {
    const message = fleetEscalation({ ...view, topPorts: [], diagnosedInstances: 0 }, commands);
    expect(message.text).toMatch(/Top ports: not known yet/);
  });
});

describe('remediation slots', () => {
  const now = 1_000_000;
  it.each([
    ['a free slot', {}, 2, { action: 'acquire', expired: [] }],
    ['the last free slot', { a: now + 10 }, 2, { action: 'acquire', expired: [] }],
    ['no free slot', { a: now + 10, b: now + 20 }, 2, { action: 'busy', holders: ['a', 'b'] }],
    ['a slot whose lease ended', { a: now + 10, b: now - 1 }, 2, { action: 'acquire', expired: ['b'] }],
    [
      'a lease ending this very second is over',
      { a: now + 10, b: now },
      2,
      { action: 'acquire', expired: ['b'] },
    ],
    [
      'a slot it already holds (a retried step)',
      { me: now + 5, a: now + 10 },
      2,
      { action: 'held', leaseEndsAt: now + 5 },
    ],
    ['its own expired lease, with room', { me: now - 5 }, 1, { action: 'acquire', expired: [] }],
  ] as const)('%s', (_name, holders, max, expected) => {
    expect(decideAcquire(holders, 'me', now, max, 3600)).toMatchObject(expected);
  });

  it('leases a new slot for the lease length', () => {
    expect(decideAcquire({}, 'me', now, 1, 3600)).toEqual({
      action: 'acquire',
      expired: [],
      leaseEndsAt: now + 3600,
    });
  });
});
