/**
 * The app's settings, read from CDK context so that a deployment is configured without editing
 * code: `npx cdk deploy -c conntrack-responder:logGroupNames=/var/log/messages,/var/log/kern.log`,
 * or the same keys under "context" in cdk.json. `-c` values arrive as strings; cdk.json values may
 * also be JSON numbers, booleans, arrays and objects. Duration props are read in whole minutes
 * under a key named for the unit: `soakMinutes` for `soak`, `workflowTimeoutMinutes` for
 * `workflowTimeout`; `logRetention` is `logRetentionDays`.
 */

import { Duration } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { ConntrackResponderProps } from './conntrack-responder.js';

export const CONTEXT_PREFIX = 'conntrack-responder:';

export interface AppSettings {
  readonly stackName: string;
  readonly responder: ConntrackResponderProps;
}

type ContextReader = (key: string) => unknown;

export function appSettingsFromContext(read: ContextReader): AppSettings {
  const get = (name: string): unknown => read(`${CONTEXT_PREFIX}${name}`);
  const fail = (name: string, expected: string, value: unknown): never => {
    throw new Error(`context ${CONTEXT_PREFIX}${name} must be ${expected}, got ${JSON.stringify(value)}`);
  };
  const text = (name: string): string | undefined => {
    const value = get(name);
    if (value === undefined) return undefined;
    return typeof value === 'string' ? value : fail(name, 'a string', value);
  };
  const wholeNumber = (name: string): number | undefined => {
    const value = get(name);
    if (value === undefined) return undefined;
    if (typeof value === 'number' && Number.isInteger(value)) return value;
    if (typeof value === 'string' && /^[0-9]+$/.test(value)) return Number(value);
    return fail(name, 'a whole number', value);
  };
  const flag = (name: string): boolean | undefined => {
    const value = get(name);
    if (value === undefined) return undefined;
    if (value === true || value === 'true') return true;
    if (value === false || value === 'false') return false;
    return fail(name, 'true or false', value);
  };
  const list = (name: string): string[] | undefined => {
    const value = get(name);
    if (value === undefined) return undefined;
    if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value;
    if (typeof value === 'string') {
      return value
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== '');
    }
    return fail(name, 'a comma-separated string or an array of strings', value);
  };
  const minutes = (name: string): Duration | undefined => {
    const value = wholeNumber(name);
    return value === undefined ? undefined : Duration.minutes(value);
  };
  /** A JSON object: as such in cdk.json, as its JSON text with `-c`. */
  const object = (name: string): Record<string, unknown> | undefined => {
    let value = get(name);
    if (value === undefined) return undefined;
    if (typeof value === 'string') {
      try {
        value = JSON.parse(value);
      } catch (error) {
        return fail(name, `a JSON object (${(error as Error).message})`, get(name));
      }
    }
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
    return fail(name, 'a JSON object', get(name));
  };
  /** CloudWatch Logs accepts only its own list of retention periods, so any other number fails here. */
  const retentionDays = (name: string): logs.RetentionDays | undefined => {
    const days = wholeNumber(name);
    if (days === undefined) return undefined;
    const allowed = Object.values(logs.RetentionDays).filter((value) => typeof value === 'number');
    return allowed.includes(days)
      ? (days as logs.RetentionDays)
      : fail(name, `one of CloudWatch Logs' retention periods in days (${allowed.join(', ')})`, get(name));
  };
  const defaultMode = text('defaultMode');
  const objectLockMode = text('objectLockMode');
  const responder: Record<string, unknown> = {
    logGroupNames: list('logGroupNames'),
    createdLogGroupName: text('createdLogGroupName'),
    subscriptionFilterName: text('subscriptionFilterName'),
    instanceIdPattern: text('instanceIdPattern'),
    cooldownMinutes: wholeNumber('cooldownMinutes'),
    defaultMode,
    evidenceRetentionDays: wholeNumber('evidenceRetentionDays'),
    objectLock: flag('objectLock'),
    objectLockMode,
    documentNamePrefix: text('documentNamePrefix'),
    incidentRetentionDays: wholeNumber('incidentRetentionDays'),
    workflowTimeout: minutes('workflowTimeoutMinutes'),
    // The opt-in tag of the instances the stack manages; the construct checks both.
    managedInstanceTagKey: text('managedInstanceTagKey'),
    managedInstanceTagValue: text('managedInstanceTagValue'),
    hostSampler: flag('hostSampler'),
    hostSamplerIntervalSeconds: wholeNumber('hostSamplerIntervalSeconds'),
    kernelLogShipping: flag('kernelLogShipping'),
    nearFullHorizonMinutes: wholeNumber('nearFullHorizonMinutes'),
    nearFullUsagePercent: wholeNumber('nearFullUsagePercent'),
    hostSampleMetrics: flag('hostSampleMetrics'),
    requireManagedInstanceTag: flag('requireManagedInstanceTag'),
    approvalTimeoutMinutes: wholeNumber('approvalTimeoutMinutes'),
    soak: minutes('soakMinutes'),
    // Checked by the construct against the functions' own schema (docs/policy.md).
    policy: object('policy'),
    logRetention: retentionDays('logRetentionDays'),
    // Fleet guardrails (docs/guardrails.md); the construct checks their ranges.
    breakerMaxInstances: wholeNumber('breakerMaxInstances'),
    breakerWindowMinutes: wholeNumber('breakerWindowMinutes'),
    maxConcurrentRemediations: wholeNumber('maxConcurrentRemediations'),
    remediationCooldownMinutes: wholeNumber('remediationCooldownMinutes'),
    modeTagKey: text('modeTagKey'),
    changeCalendar: text('changeCalendar'),
    minSsmAgentVersion: text('minSsmAgentVersion'),
    awsMaxAttempts: wholeNumber('awsMaxAttempts'),
    awsRetryMode: text('awsRetryMode'),
    // Approval without Slack (the approval URL); the construct checks the ARNs.
    approverRoleArns: list('approverRoleArns'),
    approverPolicy: flag('approverPolicy'),
  };
  // Slack is configured as a whole: a channel id turns it on, and the construct checks the rest.
  const slackChannelId = text('slackChannelId');
  if (slackChannelId !== undefined) {
    const slack: Record<string, unknown> = {
      channelId: slackChannelId,
      teamId: text('slackTeamId') ?? fail('slackTeamId', 'set when slackChannelId is', undefined),
      appId: text('slackAppId') ?? fail('slackAppId', 'set when slackChannelId is', undefined),
      approverUserIds: list('slackApproverUserIds'),
      approverUserGroupId: text('slackApproverUserGroupId'),
      groupCacheSeconds: wholeNumber('slackGroupCacheSeconds'),
      reservedConcurrency:
        get('slackReservedConcurrency') === false || get('slackReservedConcurrency') === 'false'
          ? false
          : wholeNumber('slackReservedConcurrency'),
    };
    for (const key of Object.keys(slack)) if (slack[key] === undefined) delete slack[key];
    responder.slack = slack;
  }
  // Signed evidence: evidenceSigning=true creates the key; evidenceSigningKeyArn names an existing one.
  const signingKeyArn = text('evidenceSigningKeyArn');
  const signingAlgorithm = text('evidenceSigningAlgorithm');
  const signing = flag('evidenceSigning');
  if (signing === false && (signingKeyArn !== undefined || signingAlgorithm !== undefined))
    fail(
      'evidenceSigning',
      'true (or unset) when evidenceSigningKeyArn or evidenceSigningAlgorithm is set',
      false,
    );
  if (signing === true || signingKeyArn !== undefined || signingAlgorithm !== undefined) {
    const evidenceSigning: Record<string, unknown> = { keyArn: signingKeyArn, algorithm: signingAlgorithm };
    for (const key of Object.keys(evidenceSigning))
      if (evidenceSigning[key] === undefined) delete evidenceSigning[key];
    responder.evidenceSigning = evidenceSigning;
  }
  for (const key of Object.keys(responder)) if (responder[key] === undefined) delete responder[key];
  // The construct validates every value (mode, ranges, patterns) and names the prop it rejects.
  return {
    stackName: text('stackName') ?? 'ConntrackResponder',
    responder: responder as ConntrackResponderProps,
  };
}
