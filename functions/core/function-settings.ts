import {
  approvalUrlFrom,
  type IamApprovalSettings,
  iamApprovalSettingsFrom,
} from './chatops/iam-approval.js';
import {
  CHATOPS_ENVIRONMENT,
  type ChatopsRuntimeSettings,
  chatopsRuntimeSettingsFrom,
  slackConfigured,
} from './chatops/settings.js';
import { DEFAULTS } from './defaults.js';
import { type Environment, optionalText, requiredText, wholeNumber } from './environment.js';
import { type EvidenceSigningSettings, evidenceSigningFrom } from './evidence/signing-settings.js';
import {
  type ForecastSettings,
  forecastSettingsFromEnvironment,
  hostMetricsFromEnvironment,
} from './forecast/settings.js';
import {
  type GuardrailFunctionSettings,
  type GuardrailSettings,
  guardrailFunctionSettingsFrom,
  guardrailSettingsFromEnvironment,
} from './guardrails/settings.js';
import {
  type DetectSettings,
  detectSettingsFromEnvironment,
  INCIDENT_RETENTION_DAYS_RANGE,
} from './incident/settings.js';
import { type SdkRetryConfig, sdkRetrySettingsFrom } from './sdk-retry.js';
import {
  requiredSetting,
  WORKFLOW_ENVIRONMENT,
  type WorkflowSettings,
  workflowSettingsFrom,
} from './workflow/settings.js';

/**
 * One reader per Lambda function: each handler calls its own, once, at init, with `process.env`,
 * and gets everything it runs with; a missing or malformed variable fails the init, naming it
 * (EnvironmentSettingError). The readers are built from the concerns' own readers (detect,
 * guardrails, forecast, workflow, chatops, evidence signing, SDK retries), which the CDK construct
 * shares for the variables' names; nothing else in functions/handlers reads the environment
 * (test/unit/handlers/environment-readers.test.ts checks it).
 */

/** Variables Lambda itself sets (Lambda Developer Guide, "Defined runtime environment variables"). */
export const LAMBDA_ENVIRONMENT = {
  region: 'AWS_REGION',
  functionName: 'AWS_LAMBDA_FUNCTION_NAME',
} as const;

export interface DetectFunctionSettings {
  readonly detect: DetectSettings;
  readonly guardrails: GuardrailSettings;
  readonly forecast: ForecastSettings;
  /** Whether each host sample is published as per-instance metrics. */
  readonly hostMetrics: boolean;
  readonly retry: SdkRetryConfig;
  /** The region the fleet escalation names (Lambda sets it). */
  readonly region: string | undefined;
}

export function detectFunctionSettings(env: Environment): DetectFunctionSettings {
  return {
    detect: detectSettingsFromEnvironment(env),
    guardrails: guardrailSettingsFromEnvironment(env),
    forecast: forecastSettingsFromEnvironment(env),
    hostMetrics: hostMetricsFromEnvironment(env),
    retry: sdkRetrySettingsFrom(env),
    region: optionalText(env, LAMBDA_ENVIRONMENT.region),
  };
}

/** The `guardrails` function: the guardrails, where their records are kept, and the SDK retries. */
export interface GuardrailsFunctionSettings extends GuardrailFunctionSettings {
  readonly retry: SdkRetryConfig;
}

export function guardrailsFunctionSettings(env: Environment): GuardrailsFunctionSettings {
  return { ...guardrailFunctionSettingsFrom(env), retry: sdkRetrySettingsFrom(env) };
}

/** The Slack interactivity endpoint. */
export interface SlackInteractivitySettings {
  readonly chatops: ChatopsRuntimeSettings;
  readonly signingSecretArn: string;
  /** Its own name: follow-ups are asynchronous invocations of itself. */
  readonly functionName: string;
  /** The fleet breaker the slash command shows and changes. */
  readonly guardrails: GuardrailSettings;
  readonly region: string | undefined;
}

export function slackInteractivitySettings(env: Environment): SlackInteractivitySettings {
  return {
    chatops: chatopsRuntimeSettingsFrom(env),
    signingSecretArn: requiredText(env, CHATOPS_ENVIRONMENT.signingSecretArn),
    functionName: requiredText(env, LAMBDA_ENVIRONMENT.functionName),
    guardrails: guardrailSettingsFromEnvironment(env),
    region: optionalText(env, LAMBDA_ENVIRONMENT.region),
  };
}

/** The IAM approval URL's function. */
export interface IamApprovalFunctionSettings {
  /** Slack's settings when a channel is configured (a decision there updates the approval message). */
  readonly chatops: ChatopsRuntimeSettings | null;
  readonly incidentTableName: string;
  readonly approvers: IamApprovalSettings;
}

export function iamApprovalFunctionSettings(env: Environment): IamApprovalFunctionSettings {
  return {
    chatops: slackConfigured(env) ? chatopsRuntimeSettingsFrom(env) : null,
    incidentTableName: requiredSetting(env, 'incidentTableName'),
    approvers: iamApprovalSettingsFrom(env),
  };
}

/** The function that posts each workflow step to the incident's Slack thread. */
export interface WorkflowProgressSettings {
  readonly chatops: ChatopsRuntimeSettings;
}

export function workflowProgressSettings(env: Environment): WorkflowProgressSettings {
  return { chatops: chatopsRuntimeSettingsFrom(env) };
}

/** The workflow's assess step: the policy and the soak period. */
export function assessSettings(env: Environment): WorkflowSettings {
  return workflowSettingsFrom(env);
}

/** The workflow's policy gate: the policy and the soak period. */
export function policyGateSettings(env: Environment): WorkflowSettings {
  return workflowSettingsFrom(env);
}

/** The workflow's network step (ENI timeouts on EC2). */
export interface NetworkFunctionSettings {
  readonly workflow: WorkflowSettings;
  /** Where each ENI change (what its rollback restores) is kept. */
  readonly incidentTableName: string;
  readonly incidentRetentionDays: number;
  /** The opt-in tag: only the ENIs of instances carrying it may be changed. */
  readonly optIn: { readonly key: string; readonly value: string };
  readonly retry: SdkRetryConfig;
}

export function networkFunctionSettings(env: Environment): NetworkFunctionSettings {
  return {
    workflow: workflowSettingsFrom(env),
    incidentTableName: requiredSetting(env, 'incidentTableName'),
    incidentRetentionDays: wholeNumber(
      env,
      WORKFLOW_ENVIRONMENT.incidentRetentionDays,
      INCIDENT_RETENTION_DAYS_RANGE,
      DEFAULTS.incidentRetentionDays,
    ),
    optIn: {
      key: requiredSetting(env, 'managedInstanceTagKey'),
      value: requiredSetting(env, 'managedInstanceTagValue'),
    },
    retry: sdkRetrySettingsFrom(env),
  };
}

/** The workflow's notify step. */
export interface NotifySettings {
  readonly notificationTopicArn: string;
  /** The approval URL the notification's commands name, when the stack has one. */
  readonly approvalUrl: string | null;
  /** Slack's settings when a channel is configured; SNS alone otherwise. */
  readonly chatops: ChatopsRuntimeSettings | null;
}

export function notifySettings(env: Environment): NotifySettings {
  return {
    notificationTopicArn: requiredSetting(env, 'notificationTopicArn'),
    approvalUrl: approvalUrlFrom(env),
    chatops: slackConfigured(env) ? chatopsRuntimeSettingsFrom(env) : null,
  };
}

/** The workflow's request-approval step. */
export interface RequestApprovalSettings extends NotifySettings {
  /** Where the approval is kept when Slack is not configured (Slack's settings name the same table). */
  readonly incidentTableName: string;
}

export function requestApprovalSettings(env: Environment): RequestApprovalSettings {
  return { ...notifySettings(env), incidentTableName: requiredSetting(env, 'incidentTableName') };
}

/** The workflow's write-evidence step. */
export interface WriteEvidenceSettings {
  readonly evidenceBucketName: string;
  readonly incidentTableName: string;
  /** The KMS key and algorithm the manifest is signed with; null = bundles are not signed. */
  readonly signing: EvidenceSigningSettings | null;
}

export function writeEvidenceSettings(env: Environment): WriteEvidenceSettings {
  return {
    evidenceBucketName: requiredSetting(env, 'evidenceBucketName'),
    incidentTableName: requiredSetting(env, 'incidentTableName'),
    signing: evidenceSigningFrom(env),
  };
}
