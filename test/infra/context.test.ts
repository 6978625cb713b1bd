import { Duration } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { appSettingsFromContext } from '../../infra/context.js';

const reader = (values: Record<string, unknown>) => (key: string) => values[key];

describe('appSettingsFromContext', () => {
  it('gives the defaults when nothing is set', () => {
    expect(appSettingsFromContext(reader({}))).toEqual({ stackName: 'ConntrackResponder', responder: {} });
  });

  it('reads -c strings and cdk.json values alike', () => {
    const fromCommandLine = appSettingsFromContext(
      reader({
        'conntrack-responder:logGroupNames': '/var/log/messages, /var/log/kern.log',
        'conntrack-responder:cooldownMinutes': '45',
        'conntrack-responder:objectLock': 'true',
        'conntrack-responder:defaultMode': 'dry-run',
        'conntrack-responder:stackName': 'Ctr',
      }),
    );
    const fromCdkJson = appSettingsFromContext(
      reader({
        'conntrack-responder:logGroupNames': ['/var/log/messages', '/var/log/kern.log'],
        'conntrack-responder:cooldownMinutes': 45,
        'conntrack-responder:objectLock': true,
        'conntrack-responder:defaultMode': 'dry-run',
        'conntrack-responder:stackName': 'Ctr',
      }),
    );
    expect(fromCommandLine).toEqual({
      stackName: 'Ctr',
      responder: {
        logGroupNames: ['/var/log/messages', '/var/log/kern.log'],
        cooldownMinutes: 45,
        objectLock: true,
        defaultMode: 'dry-run',
      },
    });
    expect(fromCdkJson).toEqual(fromCommandLine);
  });

  it('reads the workflow settings: minutes as Durations, the policy as an object from JSON text or cdk.json', () => {
    const settings = appSettingsFromContext(
      reader({
        'conntrack-responder:approvalTimeoutMinutes': '90',
        'conntrack-responder:soakMinutes': '0',
        'conntrack-responder:workflowTimeoutMinutes': 360,
        'conntrack-responder:policy': '{"modes":{"raise-limits":"approve"}}',
      }),
    );
    expect(settings.responder).toEqual({
      approvalTimeoutMinutes: 90,
      soak: Duration.minutes(0),
      workflowTimeout: Duration.minutes(360),
      policy: { modes: { 'raise-limits': 'approve' } },
    });
    const fromCdkJson = appSettingsFromContext(
      reader({ 'conntrack-responder:policy': { modes: { 'raise-limits': 'approve' } } }),
    );
    expect(fromCdkJson.responder).toEqual({ policy: { modes: { 'raise-limits': 'approve' } } });
  });

  it.each([
    [
      { 'conntrack-responder:cooldownMinutes': 'half an hour' },
      /cooldownMinutes must be a whole number, got "half an hour"/,
    ],
    [{ 'conntrack-responder:objectLock': 'yes' }, /objectLock must be true or false, got "yes"/],
    [
      { 'conntrack-responder:logGroupNames': 42 },
      /logGroupNames must be a comma-separated string or an array of strings/,
    ],
    [{ 'conntrack-responder:soakMinutes': '90s' }, /soakMinutes must be a whole number, got "90s"/],
    [
      { 'conntrack-responder:policy': '{memoryBudgetPercent: 3}' },
      /context conntrack-responder:policy must be a JSON object \(.*JSON.*\), got "\{memoryBudgetPercent: 3\}"/,
    ],
    [{ 'conntrack-responder:policy': '[1, 2]' }, /policy must be a JSON object, got "\[1, 2\]"/],
    [{ 'conntrack-responder:policy': 5 }, /policy must be a JSON object, got 5/],
  ])('names the key it cannot read: %j', (values, message) => {
    expect(() => appSettingsFromContext(reader(values))).toThrow(message);
  });
});
