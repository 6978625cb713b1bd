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
  ])('names the key it cannot read: %j', (values, message) => {
    expect(() => appSettingsFromContext(reader(values))).toThrow(message);
  });
});
