import { describe, expect, it } from 'vitest';
import {
  type BeforeSsmFacts,
  decideBeforeChange,
  decideBeforeSsm,
  type GuardrailDecision,
  preconditionFailures,
} from '../../../functions/core/guardrails/decisions.js';
import { DEFAULT_GUARDRAILS, MANUAL_RUNBOOK } from '../../../functions/core/guardrails/settings.js';
import { compareVersions, isAtLeast, parseVersion } from '../../../functions/core/guardrails/version.js';
import { stricterMode as stricter } from '../../../functions/core/workflow/incident.js';

const NOW = new Date('2026-03-13T21:00:00Z');
const ONLINE = { PingStatus: 'Online', AgentVersion: '3.3.2746.0', PlatformType: 'Linux' };

function facts(change: Partial<BeforeSsmFacts> = {}): BeforeSsmFacts {
  return {
    incident: { incidentId: 'i-0abc-full-20260313T2030Z', instanceId: 'i-0abc', mode: 'approve' },
    information: [ONLINE],
    tag: { key: 'conntrack-responder:mode', value: null, source: 'ec2' },
    calendar: null,
    breaker: { status: 'closed' },
    lastChange: null,
    now: NOW,
    settings: DEFAULT_GUARDRAILS,
    ...change,
  };
}

const effects = (decisions: readonly GuardrailDecision[]) =>
  Object.fromEntries(decisions.map((decision) => [decision.guardrail, decision.effect]));

describe('SSM Agent versions', () => {
  it.each([
    ['3.3.2746.0', '3.3.2746.0', true],
    ['3.3.2747.0', '3.3.2746.0', true],
    ['3.10.0.0', '3.3.2746.0', true],
    ['3.3.987.0', '3.3.2746.0', false],
    ['3.2.9999.0', '3.3.2746.0', false],
    ['2.3.1644.0', '3.3.2746.0', false],
    ['4', '3.3.2746.0', true],
    ['local-executor', '3.3.2746.0', false],
    ['', '3.3.2746.0', false],
  ])('%s is at least %s: %s', (version, minimum, expected) => {
    expect(isAtLeast(version, minimum)).toBe(expected);
  });

  it('compares numerically, not as text', () => {
    expect(compareVersions(parseVersion('3.10.0') ?? [], parseVersion('3.9.9') ?? [])).toBeGreaterThan(0);
    expect(parseVersion('3.x')).toBeNull();
  });
});

describe('the modes', () => {
  it.each([
    ['auto', 'approve', 'approve'],
    ['approve', 'auto', 'approve'],
    ['dry-run', 'approve', 'dry-run'],
    ['auto', 'auto', 'auto'],
  ] as const)('the stricter of %s and %s is %s', (a, b, expected) => {
    expect(stricter(a, b)).toBe(expected);
  });
});

describe('preconditions before any SSM call', () => {
  it.each([
    ['an online Linux instance with a new agent', [ONLINE], []],
    ['an instance SSM does not know', [], [/SSM does not know the instance/]],
    [
      'an agent that lost its connection',
      [{ ...ONLINE, PingStatus: 'ConnectionLost', LastPingDateTime: '2026-03-13T19:00:00Z' }],
      [/not online \(PingStatus ConnectionLost, last ping 2026-03-13T19:00:00Z\)/],
    ],
    [
      'an agent too old for ENV_VAR parameters',
      [{ ...ONLINE, AgentVersion: '3.2.582.0' }],
      [/SSM Agent 3\.2\.582\.0 is older than 3\.3\.2746\.0.*ENV_VAR.*silently ignore/],
    ],
    ['a Windows instance', [{ ...ONLINE, PlatformType: 'Windows' }], [/platform is Windows/]],
    [
      'an old agent that is also offline',
      [{ PingStatus: 'Inactive', AgentVersion: '2.3.1.0', PlatformType: 'Linux' }],
      [/PingStatus Inactive/, /2\.3\.1\.0 is older/],
    ],
    ['an agent that reports no version', [{ PingStatus: 'Online' }], [/\(version unknown\) is older/]],
  ])('%s', (_name, information, expected) => {
    const failures = preconditionFailures(information, '3.3.2746.0');
    expect(failures).toHaveLength(expected.length);
    expected.forEach((pattern, index) => {
      expect(failures[index]).toMatch(pattern);
    });
  });
});

describe('decideBeforeSsm', () => {
  it.each([
    // name, facts, next, mode, effects of interest
    ['no tag: the default mode', {}, 'collect', 'approve', { 'instance-policy': 'pass' }],
    [
      'tag auto loosens the fleet default',
      { tag: { key: 'conntrack-responder:mode', value: 'auto', source: 'ec2' as const } },
      'collect',
      'auto',
      { 'instance-policy': 'set-mode' },
    ],
    [
      'tag values are read case-insensitively',
      { tag: { key: 'conntrack-responder:mode', value: ' Dry-Run ', source: 'ssm' as const } },
      'collect',
      'dry-run',
      { 'instance-policy': 'set-mode' },
    ],
    [
      'tag off opts the instance out before anything else',
      {
        tag: { key: 'conntrack-responder:mode', value: 'off', source: 'ec2' as const },
        information: [],
      },
      'opted-out',
      'dry-run',
      { 'instance-policy': 'opt-out' },
    ],
    [
      'an unknown tag value is treated as approve',
      {
        incident: { incidentId: 'x', instanceId: 'i-0abc', mode: 'auto' as const },
        tag: { key: 'conntrack-responder:mode', value: 'yes please', source: 'ec2' as const },
      },
      'collect',
      'approve',
      { 'instance-policy': 'cap-mode' },
    ],
    [
      'an offline instance escalates with the runbook',
      { information: [{ ...ONLINE, PingStatus: 'ConnectionLost' }] },
      'escalate',
      'approve',
      { preconditions: 'escalate' },
    ],
    [
      'a closed change calendar caps auto to approve',
      {
        tag: { key: 'conntrack-responder:mode', value: 'auto', source: 'ec2' as const },
        calendar: { name: 'prod-freeze', state: 'CLOSED' },
      },
      'collect',
      'approve',
      { 'change-calendar': 'cap-mode' },
    ],
    [
      'an open change calendar lets auto through',
      {
        tag: { key: 'conntrack-responder:mode', value: 'auto', source: 'ec2' as const },
        calendar: { name: 'prod-freeze', state: 'OPEN' },
      },
      'collect',
      'auto',
      { 'change-calendar': 'pass' },
    ],
    [
      'a calendar state nobody knows counts as closed',
      {
        tag: { key: 'conntrack-responder:mode', value: 'auto', source: 'ec2' as const },
        calendar: { name: 'prod-freeze', state: 'MAYBE' },
      },
      'collect',
      'approve',
      { 'change-calendar': 'cap-mode' },
    ],
    [
      'an open breaker caps auto to approve',
      {
        tag: { key: 'conntrack-responder:mode', value: 'auto', source: 'ec2' as const },
        breaker: { status: 'open' as const, trippedAt: '2026-03-13T20:55:00Z' },
      },
      'collect',
      'approve',
      { 'fleet-breaker': 'cap-mode' },
    ],
    [
      'an open breaker leaves dry-run as it is',
      {
        tag: { key: 'conntrack-responder:mode', value: 'dry-run', source: 'ec2' as const },
        breaker: { status: 'open' as const },
      },
      'collect',
      'dry-run',
      { 'fleet-breaker': 'pass' },
    ],
    [
      'a change 30 min ago caps auto to approve (cooldown 240 min)',
      {
        tag: { key: 'conntrack-responder:mode', value: 'auto', source: 'ec2' as const },
        lastChange: {
          at: '2026-03-13T20:30:00Z',
          incidentId: 'i-0abc-full-20260313T2000Z',
          outcome: 'remediated',
        },
      },
      'collect',
      'approve',
      { 'remediation-cooldown': 'cap-mode' },
    ],
    [
      'a change 5 h ago is past the cooldown',
      {
        tag: { key: 'conntrack-responder:mode', value: 'auto', source: 'ec2' as const },
        lastChange: { at: '2026-03-13T16:00:00Z', incidentId: 'old', outcome: 'remediated' },
      },
      'collect',
      'auto',
      { 'remediation-cooldown': 'pass' },
    ],
    [
      'a cooldown of 0 never caps',
      {
        tag: { key: 'conntrack-responder:mode', value: 'auto', source: 'ec2' as const },
        lastChange: { at: '2026-03-13T20:59:00Z', incidentId: 'recent', outcome: 'rolled-back' },
        settings: { ...DEFAULT_GUARDRAILS, remediationCooldownMinutes: 0 },
      },
      'collect',
      'auto',
      { 'remediation-cooldown': 'pass' },
    ],
  ] as const)('%s', (_name, change, next, mode, expectedEffects) => {
    const verdict = decideBeforeSsm(facts(change as Partial<BeforeSsmFacts>));
    expect(verdict.next).toBe(next);
    expect(verdict.mode).toBe(mode);
    expect(effects(verdict.decisions)).toMatchObject(expectedEffects);
    for (const decision of verdict.decisions) {
      expect(decision).toMatchObject({ step: 'before-ssm', at: NOW.toISOString() });
      expect(decision.detail.length).toBeGreaterThan(10);
    }
  });

  it('names the runbook and every failed precondition when it escalates', () => {
    const verdict = decideBeforeSsm(
      facts({
        information: [{ PingStatus: 'ConnectionLost', AgentVersion: '3.1.0.0', PlatformType: 'Linux' }],
      }),
    );
    expect(verdict.escalation?.runbook).toBe(MANUAL_RUNBOOK);
    expect(verdict.escalation?.reasons).toEqual([
      expect.stringMatching(/PingStatus ConnectionLost/),
      expect.stringMatching(/3\.1\.0\.0 is older than 3\.3\.2746\.0/),
    ]);
  });

  it('records every guardrail it consulted, in order, so the evidence shows who decided what', () => {
    const verdict = decideBeforeSsm(
      facts({
        tag: { key: 'conntrack-responder:mode', value: 'auto', source: 'ec2' },
        calendar: { name: 'prod-freeze', state: 'CLOSED' },
        breaker: { status: 'open', trippedAt: '2026-03-13T20:55:00Z', reason: '11 instances' },
      }),
    );
    expect(verdict.decisions.map((d) => [d.guardrail, d.effect, d.mode])).toEqual([
      ['instance-policy', 'set-mode', 'auto'],
      ['preconditions', 'pass', undefined],
      ['change-calendar', 'cap-mode', 'approve'],
      // Already capped by the calendar: the breaker agrees, it does not cap again.
      ['fleet-breaker', 'pass', 'approve'],
      ['remediation-cooldown', 'pass', undefined],
    ]);
    expect(verdict.decisions[3]?.detail).toMatch(
      /breaker is open since 2026-03-13T20:55:00Z \(11 instances\)/,
    );
  });
});

describe('decideBeforeChange', () => {
  it.each([
    ['nothing changed', false, null, 'closed', false, []],
    ['the calendar closed meanwhile', false, 'CLOSED', 'closed', true, ['change-calendar']],
    ['the breaker tripped meanwhile', false, 'OPEN', 'open', true, ['fleet-breaker']],
    ['both', false, 'CLOSED', 'open', true, ['change-calendar', 'fleet-breaker']],
    ['a person approved it: neither stops it', true, 'CLOSED', 'open', false, []],
  ] as const)('%s', (_name, approved, calendarState, breaker, needsApproval, guardrails) => {
    const result = decideBeforeChange({
      approved,
      calendar: calendarState === null ? null : { name: 'prod-freeze', state: calendarState },
      breaker: { status: breaker },
      now: NOW,
    });
    expect(result.needsApproval).toBe(needsApproval);
    expect(result.decisions.map((d) => d.guardrail)).toEqual(guardrails);
    for (const decision of result.decisions)
      expect(decision).toMatchObject({ effect: 'cap-mode', mode: 'approve' });
  });
});
