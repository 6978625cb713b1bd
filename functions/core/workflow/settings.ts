import { DEFAULTS } from '../defaults.js';
import {
  type Environment,
  EnvironmentSettingError,
  jsonValue,
  requiredText,
  wholeNumber,
} from '../environment.js';
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
export function requiredSetting(env: Environment, setting: ResourceSetting): string {
  return requiredText(env, WORKFLOW_ENVIRONMENT[setting]);
}

export const DEFAULT_SOAK_SECONDS = DEFAULTS.soakSeconds;
export const SOAK_SECONDS_RANGE = { min: 0, max: 86_400 } as const;

export interface WorkflowSettings {
  readonly policy: Policy;
  readonly soakSeconds: number;
}

/** The policy overrides of RESPONDER_POLICY over the defaults; overrides that break the policy's rules fail, naming the variable. */
function policyFrom(env: Environment): Policy {
  const name = WORKFLOW_ENVIRONMENT.policy;
  const overrides = jsonValue(env, name) ?? {};
  try {
    return resolvePolicy(overrides);
  } catch (error) {
    const rule = `a policy as docs/policy.md describes (${(error as Error).message})`;
    throw new EnvironmentSettingError(name, rule, env[name], { cause: error });
  }
}

export function workflowSettingsFrom(env: Environment): WorkflowSettings {
  return {
    policy: policyFrom(env),
    soakSeconds: wholeNumber(env, WORKFLOW_ENVIRONMENT.soakSeconds, SOAK_SECONDS_RANGE, DEFAULT_SOAK_SECONDS),
  };
}
