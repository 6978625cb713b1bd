import { describe, expect, it } from 'vitest';
import { EnvironmentSettingError } from '../../functions/core/environment.js';
import {
  assessSettings,
  detectFunctionSettings,
  guardrailsFunctionSettings,
  iamApprovalFunctionSettings,
  networkFunctionSettings,
  notifySettings,
  policyGateSettings,
  requestApprovalSettings,
  slackInteractivitySettings,
  workflowProgressSettings,
  writeEvidenceSettings,
} from '../../functions/core/function-settings.js';

type Env = Record<string, string | undefined>;

const ACCOUNT = '123456789012';
const SLACK: Env = {
  SLACK_CHANNEL_ID: 'C0123456789',
  SLACK_TEAM_ID: 'T0123456789',
  SLACK_APP_ID: 'A0123456789',
  SLACK_APPROVER_USER_IDS: 'U0123456789',
  SLACK_BOT_TOKEN_SECRET_ARN: `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:bot`,
  SLACK_SIGNING_SECRET_ARN: `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:signing`,
  INCIDENT_TABLE_NAME: 'incidents',
};

/** Each function's reader with an environment as the construct writes it, one missing variable and one bad value. */
const READERS: readonly {
  readonly name: string;
  readonly read: (env: Env) => unknown;
  readonly env: Env;
  readonly expected: Record<string, unknown>;
  readonly missing: string;
  readonly bad: readonly [variable: string, value: string];
}[] = [
  {
    name: 'detect',
    read: detectFunctionSettings,
    env: {
      INCIDENT_TABLE_NAME: 'incidents',
      INCIDENT_STATE_MACHINE_ARN: `arn:aws:states:eu-west-1:${ACCOUNT}:stateMachine:incident`,
      INSTANCE_ID_PATTERN: 'i-[0-9a-f]{8,17}',
      COOLDOWN_MINUTES: '30',
      DEFAULT_MODE: 'approve',
      INCIDENT_RETENTION_DAYS: '90',
      NOTIFICATION_TOPIC_ARN: `arn:aws:sns:eu-west-1:${ACCOUNT}:topic`,
      BREAKER_MAX_INSTANCES: '3',
      NEAR_FULL_HORIZON_MINUTES: '10',
      HOST_SAMPLE_METRICS: 'off',
      AWS_MAX_ATTEMPTS: '5',
      AWS_RETRY_MODE: 'adaptive',
      AWS_REGION: 'eu-west-1',
    },
    expected: {
      guardrails: expect.objectContaining({ breaker: expect.objectContaining({ maxInstances: 3 }) }),
      forecast: expect.objectContaining({ horizonSeconds: 600 }),
      hostMetrics: false,
      retry: { maxAttempts: 5, retryMode: 'adaptive' },
      region: 'eu-west-1',
    },
    missing: 'INCIDENT_STATE_MACHINE_ARN',
    bad: ['AWS_MAX_ATTEMPTS', '0'],
  },
  {
    name: 'guardrails',
    read: guardrailsFunctionSettings,
    env: { INCIDENT_TABLE_NAME: 'incidents', CHANGE_CALENDAR: 'freeze', AWS_RETRY_MODE: 'standard' },
    expected: {
      incidentTableName: 'incidents',
      incidentRetentionDays: 90,
      guardrails: expect.objectContaining({ changeCalendar: 'freeze' }),
      retry: { maxAttempts: 8, retryMode: 'standard' },
    },
    missing: 'INCIDENT_TABLE_NAME',
    bad: ['CHANGE_CALENDAR', 'x'],
  },
  {
    name: 'slack-interactivity',
    read: slackInteractivitySettings,
    env: { ...SLACK, AWS_LAMBDA_FUNCTION_NAME: 'interactivity', AWS_REGION: 'eu-west-1' },
    expected: {
      functionName: 'interactivity',
      signingSecretArn: SLACK.SLACK_SIGNING_SECRET_ARN,
      chatops: expect.objectContaining({ incidentTableName: 'incidents' }),
      region: 'eu-west-1',
    },
    missing: 'AWS_LAMBDA_FUNCTION_NAME',
    bad: ['SLACK_CHANNEL_ID', 'general'],
  },
  {
    name: 'iam-approval',
    read: iamApprovalFunctionSettings,
    env: {
      INCIDENT_TABLE_NAME: 'incidents',
      APPROVER_ROLE_ARNS: `arn:aws:iam::${ACCOUNT}:role/OnCall`,
      APPROVER_POLICY_HOLDERS: 'false',
    },
    expected: {
      chatops: null,
      incidentTableName: 'incidents',
      approvers: { roleArns: [`arn:aws:iam::${ACCOUNT}:role/OnCall`], policyHolders: false },
    },
    missing: 'APPROVER_POLICY_HOLDERS',
    bad: ['APPROVER_POLICY_HOLDERS', 'yes'],
  },
  {
    name: 'workflow-progress',
    read: workflowProgressSettings,
    env: SLACK,
    expected: { chatops: expect.objectContaining({ botTokenSecretArn: SLACK.SLACK_BOT_TOKEN_SECRET_ARN }) },
    missing: 'SLACK_BOT_TOKEN_SECRET_ARN',
    bad: ['SLACK_GROUP_CACHE_SECONDS', '3601'],
  },
  {
    name: 'assess',
    read: assessSettings,
    env: { SOAK_SECONDS: '45', RESPONDER_POLICY: '{"memoryBudgetPercent": 3}' },
    expected: { soakSeconds: 45, policy: expect.objectContaining({ memoryBudgetPercent: 3 }) },
    missing: '',
    bad: ['SOAK_SECONDS', '-1'],
  },
  {
    name: 'policy-gate',
    read: policyGateSettings,
    env: { SOAK_SECONDS: '45' },
    expected: { soakSeconds: 45 },
    missing: '',
    bad: ['RESPONDER_POLICY', '{'],
  },
  {
    name: 'network',
    read: networkFunctionSettings,
    env: {
      INCIDENT_TABLE_NAME: 'incidents',
      MANAGED_INSTANCE_TAG_KEY: 'conntrack-responder:managed',
      MANAGED_INSTANCE_TAG_VALUE: 'true',
    },
    expected: {
      incidentTableName: 'incidents',
      incidentRetentionDays: 90,
      optIn: { key: 'conntrack-responder:managed', value: 'true' },
      retry: { maxAttempts: 8, retryMode: 'standard' },
    },
    missing: 'MANAGED_INSTANCE_TAG_VALUE',
    bad: ['INCIDENT_RETENTION_DAYS', 'ninety'],
  },
  {
    name: 'notify',
    read: notifySettings,
    env: { ...SLACK, NOTIFICATION_TOPIC_ARN: `arn:aws:sns:eu-west-1:${ACCOUNT}:topic` },
    expected: {
      notificationTopicArn: `arn:aws:sns:eu-west-1:${ACCOUNT}:topic`,
      approvalUrl: null,
      chatops: expect.objectContaining({ incidentTableName: 'incidents' }),
    },
    missing: 'NOTIFICATION_TOPIC_ARN',
    bad: ['SLACK_TEAM_ID', 'team'],
  },
  {
    name: 'request-approval',
    read: requestApprovalSettings,
    env: {
      INCIDENT_TABLE_NAME: 'incidents',
      NOTIFICATION_TOPIC_ARN: `arn:aws:sns:eu-west-1:${ACCOUNT}:topic`,
      APPROVAL_URL: 'https://abc123.lambda-url.eu-west-1.on.aws/',
    },
    expected: {
      incidentTableName: 'incidents',
      approvalUrl: 'https://abc123.lambda-url.eu-west-1.on.aws/',
      chatops: null,
    },
    missing: 'INCIDENT_TABLE_NAME',
    bad: ['SLACK_CHANNEL_ID', 'general'],
  },
  {
    name: 'write-evidence',
    read: writeEvidenceSettings,
    env: {
      EVIDENCE_BUCKET_NAME: 'evidence',
      INCIDENT_TABLE_NAME: 'incidents',
      EVIDENCE_SIGNING_KEY_ID: 'alias/evidence',
    },
    expected: {
      evidenceBucketName: 'evidence',
      signing: { keyId: 'alias/evidence', algorithm: 'ECDSA_SHA_256' },
    },
    missing: 'EVIDENCE_BUCKET_NAME',
    bad: ['EVIDENCE_SIGNING_ALGORITHM', 'MD5'],
  },
];

function refusal(read: () => unknown): EnvironmentSettingError {
  try {
    read();
  } catch (error) {
    expect(error).toBeInstanceOf(EnvironmentSettingError);
    return error as EnvironmentSettingError;
  }
  throw new Error('expected a refusal, got settings');
}

describe.each(READERS)(
  'the $name function reads its environment',
  ({ read, env, expected, missing, bad }) => {
    it('takes everything it runs with from a complete environment', () => {
      expect(read(env)).toMatchObject(expected);
    });

    // assess and the policy gate need no variable: every setting of theirs has a default.
    if (missing !== '')
      it('refuses a missing required variable, naming it', () => {
        const error = refusal(() => read({ ...env, [missing]: undefined }));
        expect(error.variable).toBe(missing);
        expect(error.message).toContain(`environment variable ${missing} must be`);
        expect(error.message).toContain('got nothing');
      });

    it('refuses a bad value, naming the variable and the value', () => {
      const [variable, value] = bad;
      const error = refusal(() => read({ ...env, [variable]: value }));
      expect(error.variable).toBe(variable);
      expect(error.message).toContain(`environment variable ${variable} must be`);
      expect(error.message).toContain(`got '${value}'`);
    });
  },
);
