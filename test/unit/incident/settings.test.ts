import { describe, expect, it } from 'vitest';
import { detectSettingsFromEnvironment } from '../../../functions/core/incident/settings.js';

const complete = {
  INCIDENT_TABLE_NAME: 'incidents',
  INCIDENT_STATE_MACHINE_ARN: 'arn:aws:states:eu-west-1:123456789012:stateMachine:incident',
  INSTANCE_ID_PATTERN: 'i-[0-9a-f]{8,17}',
  COOLDOWN_MINUTES: '30',
  DEFAULT_MODE: 'approve',
  INCIDENT_RETENTION_DAYS: '90',
  NOTIFICATION_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:conntrack-responder',
};

describe('detectSettingsFromEnvironment', () => {
  it('reads every setting', () => {
    const settings = detectSettingsFromEnvironment(complete);
    expect(settings).toMatchObject({
      incidentTableName: 'incidents',
      cooldownMinutes: 30,
      defaultMode: 'approve',
    });
    expect(settings.instanceIdPattern.test('stream-i-0123456789abcdef0')).toBe(true);
  });

  it.each([
    [{ INCIDENT_TABLE_NAME: undefined }, 'environment variable INCIDENT_TABLE_NAME is not set'],
    [{ NOTIFICATION_TOPIC_ARN: '' }, 'environment variable NOTIFICATION_TOPIC_ARN is not set'],
    [{ COOLDOWN_MINUTES: 'soon' }, "environment variable COOLDOWN_MINUTES is not a whole number: 'soon'"],
    [{ COOLDOWN_MINUTES: '0' }, 'COOLDOWN_MINUTES must be a whole number from 1 to 1440, got 0'],
    [{ DEFAULT_MODE: 'yes' }, "DEFAULT_MODE must be one of auto, approve, dry-run, got 'yes'"],
    [{ INSTANCE_ID_PATTERN: '(' }, "instance id pattern '(' is not a valid regular expression"],
  ])('names what is wrong: %j', (change, message) => {
    expect(() => detectSettingsFromEnvironment({ ...complete, ...change })).toThrow(message);
  });
});
