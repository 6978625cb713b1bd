import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../functions/core/defaults.js';

/**
 * The construct's props document their defaults (@default, what a reader of the API sees); the
 * values applied come from functions/core/defaults.ts. They must say the same thing.
 */
const source = readFileSync(new URL('../../infra/conntrack-responder.ts', import.meta.url), 'utf8');

function documentedDefault(prop: string): string {
  const declaration = source.indexOf(`  readonly ${prop}?:`);
  expect(declaration, `prop ${prop}`).toBeGreaterThan(0);
  const comment = source.slice(source.lastIndexOf('/**', declaration), declaration);
  const match = /@default (.+)/.exec(comment);
  expect(match, `@default of ${prop}`).not.toBeNull();
  return match?.[1]?.trim() ?? '';
}

describe('the construct documents the defaults it applies', () => {
  it.each([
    ['cooldownMinutes', String(DEFAULTS.cooldownMinutes)],
    ['defaultMode', `'${DEFAULTS.defaultMode}'`],
    ['evidenceRetentionDays', String(DEFAULTS.evidenceRetentionDays)],
    ['incidentRetentionDays', String(DEFAULTS.incidentRetentionDays)],
    ['workflowTimeout', `Duration.hours(${DEFAULTS.workflowTimeoutHours})`],
    ['approvalTimeoutMinutes', String(DEFAULTS.approvalTimeoutMinutes)],
    ['soak', `Duration.minutes(${DEFAULTS.soakSeconds / 60})`],
    ['hostSamplerIntervalSeconds', String(DEFAULTS.hostSamplerIntervalSeconds)],
  ])('%s', (prop, documented) => {
    expect(documentedDefault(prop)).toBe(documented);
  });
});
