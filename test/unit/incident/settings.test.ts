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
    [{ INCIDENT_TABLE_NAME: undefined }, 'environment variable INCIDENT_TABLE_NAME must be set, got nothing'],
    [{ NOTIFICATION_TOPIC_ARN: '' }, 'environment variable NOTIFICATION_TOPIC_ARN must be set, got nothing'],
    [
      { COOLDOWN_MINUTES: 'soon' },
      "environment variable COOLDOWN_MINUTES must be a whole number from 1 to 1440, got 'soon'",
    ],
    [
      { COOLDOWN_MINUTES: '0' },
      "environment variable COOLDOWN_MINUTES must be a whole number from 1 to 1440, got '0'",
    ],
    [
      { DEFAULT_MODE: 'yes' },
      "environment variable DEFAULT_MODE must be one of auto, approve, dry-run, got 'yes'",
    ],
    [
      { INSTANCE_ID_PATTERN: '(' },
      "environment variable INSTANCE_ID_PATTERN must be a regular expression that does not match the empty string, got '('",
    ],
  ])('names what is wrong: %j', (change, message) => {
    expect(() => detectSettingsFromEnvironment({ ...complete, ...change })).toThrow(message);
  });
});
