import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../functions/core/defaults.js';
import {
  DEFAULT_GUARDRAILS,
  guardrailFunctionSettingsFrom,
} from '../../../functions/core/guardrails/settings.js';

describe('guardrailFunctionSettingsFrom', () => {
  it('reads the table, the retention and the guardrails from one environment', () => {
    const settings = guardrailFunctionSettingsFrom({
      INCIDENT_TABLE_NAME: ' incidents ',
      INCIDENT_RETENTION_DAYS: '30',
      MAX_CONCURRENT_REMEDIATIONS: '2',
    });
    expect(settings.incidentTableName).toBe('incidents');
    expect(settings.incidentRetentionDays).toBe(30);
    expect(settings.guardrails.maxConcurrentRemediations).toBe(2);
    expect(settings.guardrails.breaker).toEqual(DEFAULT_GUARDRAILS.breaker);
  });

  it('keeps incident records as long as the construct does by default when the retention is absent', () => {
    const settings = guardrailFunctionSettingsFrom({ INCIDENT_TABLE_NAME: 'incidents' });
    expect(settings.incidentRetentionDays).toBe(DEFAULTS.incidentRetentionDays);
    expect(settings.incidentRetentionDays).toBe(90);
  });

  it.each([
    [{ INCIDENT_TABLE_NAME: '  ' }, 'environment variable INCIDENT_TABLE_NAME must be set, got nothing'],
    [{}, 'environment variable INCIDENT_TABLE_NAME must be set, got nothing'],
    [
      { INCIDENT_TABLE_NAME: 'incidents', INCIDENT_RETENTION_DAYS: '0' },
      "environment variable INCIDENT_RETENTION_DAYS must be a whole number from 1 to 3650, got '0'",
    ],
    [
      { INCIDENT_TABLE_NAME: 'incidents', BREAKER_MAX_INSTANCES: 'many' },
      "environment variable BREAKER_MAX_INSTANCES must be a whole number from 0 to 100000, got 'many'",
    ],
  ])('names what is wrong: %j', (env, message) => {
    expect(() => guardrailFunctionSettingsFrom(env)).toThrow(message);
  });
});
