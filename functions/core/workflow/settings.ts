import { DEFAULTS } from '../defaults.js';
import { type Policy, resolvePolicy } from '../plan/index.js';

/**
 * Settings of the workflow's functions. The CDK construct writes them as environment variables
 * and the handlers (and the local twin) read them back here, so both share one list of names.
 */
export const WORKFLOW_ENVIRONMENT = {
  /** JSON policy overrides (functions/core/plan/policy.ts, docs/policy.md); empty = the defaults. */
  policy: 'RESPONDER_POLICY',
  /** Seconds between the change and the verification. */
  soakSeconds: 'SOAK_SECONDS',
  incidentTableName: 'INCIDENT_TABLE_NAME',
  notificationTopicArn: 'NOTIFICATION_TOPIC_ARN',
  evidenceBucketName: 'EVIDENCE_BUCKET_NAME',
  /** Days an ENI change record (what its rollback restores) is kept in the incidents table. */
  incidentRetentionDays: 'INCIDENT_RETENTION_DAYS',
  /** The opt-in tag: the network function reports which ENIs carry it (only those may be changed). */
  managedInstanceTagKey: 'MANAGED_INSTANCE_TAG_KEY',
  managedInstanceTagValue: 'MANAGED_INSTANCE_TAG_VALUE',
} as const;

type ResourceSetting =
  | 'incidentTableName'
  | 'notificationTopicArn'
  | 'evidenceBucketName'
  | 'managedInstanceTagKey'
  | 'managedInstanceTagValue';

/** A resource name a function needs from its environment; a missing one fails at init, naming the variable. */
export function requiredSetting(
  env: Readonly<Record<string, string | undefined>>,
  setting: ResourceSetting,
): string {
  const name = WORKFLOW_ENVIRONMENT[setting];
  const value = env[name]?.trim() ?? '';
  if (value === '') throw new Error(`${name} must be set (the CDK construct sets it)`);
  return value;
}

export const DEFAULT_SOAK_SECONDS = DEFAULTS.soakSeconds;
export const SOAK_SECONDS_RANGE = { min: 0, max: 86_400 } as const;

export interface WorkflowSettings {
  readonly policy: Policy;
  readonly soakSeconds: number;
}

export function workflowSettingsFrom(env: Readonly<Record<string, string | undefined>>): WorkflowSettings {
  const policyText = env[WORKFLOW_ENVIRONMENT.policy]?.trim() ?? '';
  let overrides: unknown = {};
  if (policyText !== '') {
    try {
      overrides = JSON.parse(policyText);
    } catch (error) {
      throw new Error(`${WORKFLOW_ENVIRONMENT.policy} is not valid JSON: ${(error as Error).message}`);
    }
  }
  const soakText = env[WORKFLOW_ENVIRONMENT.soakSeconds]?.trim() ?? '';
  const soakSeconds = soakText === '' ? DEFAULT_SOAK_SECONDS : Number(soakText);
  if (
    !Number.isInteger(soakSeconds) ||
    soakSeconds < SOAK_SECONDS_RANGE.min ||
    soakSeconds > SOAK_SECONDS_RANGE.max
  ) {
    throw new Error(
      `${WORKFLOW_ENVIRONMENT.soakSeconds} must be a whole number of seconds from ${SOAK_SECONDS_RANGE.min} to ${SOAK_SECONDS_RANGE.max}, got '${soakText}'`,
    );
  }
  return { policy: resolvePolicy(overrides), soakSeconds };
}
