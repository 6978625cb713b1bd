/**
 * The settings the `detect` function runs with. The CDK construct writes them as environment
 * variables and the handler reads them back through `detectSettingsFromEnvironment`, so both sides
 * share one list of names and one set of rules.
 */

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

export function detectSettingsFromEnvironment(
  env: Readonly<Record<string, string | undefined>>,
): DetectSettings {
  const read = (name: string): string => {
    const value = env[name];
    if (value === undefined || value === '') throw new Error(`environment variable ${name} is not set`);
    return value;
  };
  const readNumber = (name: string, range: { min: number; max: number }): number => {
    const text = read(name);
    if (!/^[0-9]+$/.test(text))
      throw new Error(`environment variable ${name} is not a whole number: '${text}'`);
    return checkWholeNumberInRange(name, Number(text), range);
  };
  const mode = read(DETECT_ENVIRONMENT.defaultMode);
  if (!isResponseMode(mode)) {
    throw new Error(
      `environment variable ${DETECT_ENVIRONMENT.defaultMode} must be one of ${RESPONSE_MODES.join(', ')}, got '${mode}'`,
    );
  }
  return {
    incidentTableName: read(DETECT_ENVIRONMENT.incidentTableName),
    stateMachineArn: read(DETECT_ENVIRONMENT.stateMachineArn),
    instanceIdPattern: compileInstanceIdPattern(read(DETECT_ENVIRONMENT.instanceIdPattern)),
    cooldownMinutes: readNumber(DETECT_ENVIRONMENT.cooldownMinutes, COOLDOWN_MINUTES_RANGE),
    defaultMode: mode,
    incidentRetentionDays: readNumber(
      DETECT_ENVIRONMENT.incidentRetentionDays,
      INCIDENT_RETENTION_DAYS_RANGE,
    ),
    notificationTopicArn: read(DETECT_ENVIRONMENT.notificationTopicArn),
  };
}
