/**
 * The settings the `detect` function runs with. The CDK construct writes them as environment
 * variables and the handler reads them back through `detectSettingsFromEnvironment`, so both sides
 * share one list of names and one set of rules.
 */

import { type Environment, oneOf, requiredText, type TextRule, wholeNumber } from '../environment.js';

/** How the incident workflow may change a host: on its own, after a person approves, or never. */
export const RESPONSE_MODES = ['auto', 'approve', 'dry-run'] as const;
export type ResponseMode = (typeof RESPONSE_MODES)[number];

export const DEFAULT_INSTANCE_ID_PATTERN = 'i-[0-9a-f]{8,17}';

export const DETECT_ENVIRONMENT = {
  incidentTableName: 'INCIDENT_TABLE_NAME',
  stateMachineArn: 'INCIDENT_STATE_MACHINE_ARN',
  instanceIdPattern: 'INSTANCE_ID_PATTERN',
  cooldownMinutes: 'COOLDOWN_MINUTES',
  defaultMode: 'DEFAULT_MODE',
  incidentRetentionDays: 'INCIDENT_RETENTION_DAYS',
  /** Where the fleet breaker's one escalation is published. */
  notificationTopicArn: 'NOTIFICATION_TOPIC_ARN',
} as const;

export interface DetectSettings {
  readonly incidentTableName: string;
  readonly stateMachineArn: string;
  /** Finds the EC2 instance id inside a log stream name. */
  readonly instanceIdPattern: RegExp;
  /** A repeat within this many minutes of an incident's opening adds to it instead of opening another. */
  readonly cooldownMinutes: number;
  readonly defaultMode: ResponseMode;
  /** Days an incident record is kept in the table (DynamoDB TTL). */
  readonly incidentRetentionDays: number;
  readonly notificationTopicArn: string;
}

export const COOLDOWN_MINUTES_RANGE = { min: 1, max: 1440 } as const;
export const INCIDENT_RETENTION_DAYS_RANGE = { min: 1, max: 3650 } as const;

export function isResponseMode(value: string): value is ResponseMode {
  return (RESPONSE_MODES as readonly string[]).includes(value);
}

/** Compiles an instance id pattern, or says why it cannot be one. */
export function compileInstanceIdPattern(source: string): RegExp {
  if (source.length === 0) throw new Error('instance id pattern must not be empty');
  let pattern: RegExp;
  try {
    pattern = new RegExp(source);
  } catch (error) {
    throw new Error(
      `instance id pattern '${source}' is not a valid regular expression: ${(error as Error).message}`,
    );
  }
  if (pattern.test('')) throw new Error(`instance id pattern '${source}' matches the empty string`);
  return pattern;
}

export function checkWholeNumberInRange(
  name: string,
  value: number,
  range: { min: number; max: number },
): number {
  if (!Number.isInteger(value) || value < range.min || value > range.max) {
    throw new Error(`${name} must be a whole number from ${range.min} to ${range.max}, got ${value}`);
  }
  return value;
}

/** The rule of an instance id pattern, for a reader of the environment (the construct checks its prop with compileInstanceIdPattern). */
export const INSTANCE_ID_PATTERN_RULE: TextRule = {
  rule: 'a regular expression that does not match the empty string',
  test: (source) => {
    try {
      compileInstanceIdPattern(source);
      return true;
    } catch {
      return false;
    }
  },
};

/** The detect settings in a function's environment; a missing or malformed one throws, naming it. */
export function detectSettingsFromEnvironment(env: Environment): DetectSettings {
  const E = DETECT_ENVIRONMENT;
  return {
    incidentTableName: requiredText(env, E.incidentTableName),
    stateMachineArn: requiredText(env, E.stateMachineArn),
    instanceIdPattern: compileInstanceIdPattern(
      requiredText(env, E.instanceIdPattern, INSTANCE_ID_PATTERN_RULE),
    ),
    cooldownMinutes: wholeNumber(env, E.cooldownMinutes, COOLDOWN_MINUTES_RANGE),
    defaultMode: oneOf(env, E.defaultMode, RESPONSE_MODES),
    incidentRetentionDays: wholeNumber(env, E.incidentRetentionDays, INCIDENT_RETENTION_DAYS_RANGE),
    notificationTopicArn: requiredText(env, E.notificationTopicArn),
  };
}
