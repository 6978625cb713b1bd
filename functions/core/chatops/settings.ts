import {
  type Environment,
  EnvironmentSettingError,
  matching,
  optionalText,
  requiredText,
  type TextRule,
  textList,
  wholeNumber,
} from '../environment.js';
import {
  APP_ID_PATTERN,
  type ApproverRules,
  CHANNEL_ID_PATTERN,
  type SlackAppIdentity,
  TEAM_ID_PATTERN,
  USER_GROUP_ID_PATTERN,
  USER_ID_PATTERN,
} from './authorize.js';

/**
 * The Slack settings, by environment variable. The CDK construct writes them into the functions'
 * environment (secrets by ARN, never by value); the local twin reads the same names from the
 * shell, where the secrets themselves are given (`SLACK_BOT_TOKEN`, `SLACK_SIGNING_SECRET`).
 */
export const CHATOPS_ENVIRONMENT = {
  channelId: 'SLACK_CHANNEL_ID',
  teamId: 'SLACK_TEAM_ID',
  appId: 'SLACK_APP_ID',
  approverUserIds: 'SLACK_APPROVER_USER_IDS',
  approverUserGroupId: 'SLACK_APPROVER_USER_GROUP_ID',
  groupCacheSeconds: 'SLACK_GROUP_CACHE_SECONDS',
  apiBaseUrl: 'SLACK_API_BASE_URL',
  botTokenSecretArn: 'SLACK_BOT_TOKEN_SECRET_ARN',
  signingSecretArn: 'SLACK_SIGNING_SECRET_ARN',
  botToken: 'SLACK_BOT_TOKEN',
  signingSecret: 'SLACK_SIGNING_SECRET',
  /** The incidents table, where approvals and threads are kept (shared with the workflow's functions). */
  incidentTable: 'INCIDENT_TABLE_NAME',
} as const;

export const DEFAULT_SLACK_API_BASE_URL = 'https://slack.com/api/';
export const DEFAULT_GROUP_CACHE_SECONDS = 60;

export const GROUP_CACHE_SECONDS_RANGE = { min: 0, max: 3600 } as const;

export interface SlackSettings {
  readonly channelId: string;
  readonly app: SlackAppIdentity;
  readonly approvers: ApproverRules;
  readonly groupCacheSeconds: number;
  readonly apiBaseUrl: string;
}

const URL_RULE: TextRule = {
  rule: 'a URL',
  test: (text) => URL.canParse(text.endsWith('/') ? text : `${text}/`),
};

/** The non-secret Slack settings; throws naming the variable that is missing or malformed. */
export function slackSettingsFrom(env: Environment): SlackSettings {
  const E = CHATOPS_ENVIRONMENT;
  const channelId = requiredText(env, E.channelId, matching(CHANNEL_ID_PATTERN, 'a channel id (C…)'));
  const app = {
    teamId: requiredText(env, E.teamId, matching(TEAM_ID_PATTERN, 'a workspace id (T…)')),
    appId: requiredText(env, E.appId, matching(APP_ID_PATTERN, 'an app id (A…)')),
  };
  const userIds = [
    ...new Set(textList(env, E.approverUserIds, matching(USER_ID_PATTERN, 'Slack user ids (U… or W…)'))),
  ];
  const userGroupId =
    optionalText(env, E.approverUserGroupId, matching(USER_GROUP_ID_PATTERN, 'a user group id (S…)')) ?? null;
  if (userIds.length === 0 && userGroupId === null) {
    // Nobody could approve: one of the two is needed.
    throw new EnvironmentSettingError(
      E.approverUserIds,
      `set (Slack user ids) when ${E.approverUserGroupId} is not`,
      undefined,
    );
  }
  const base = optionalText(env, E.apiBaseUrl, URL_RULE) ?? DEFAULT_SLACK_API_BASE_URL;
  return {
    channelId,
    app,
    approvers: { userIds, userGroupId },
    groupCacheSeconds: wholeNumber(
      env,
      E.groupCacheSeconds,
      GROUP_CACHE_SECONDS_RANGE,
      DEFAULT_GROUP_CACHE_SECONDS,
    ),
    apiBaseUrl: new URL(base.endsWith('/') ? base : `${base}/`).toString(),
  };
}

/** Slack is optional for the workflow's functions: without a channel they only publish to SNS. */
export function slackConfigured(env: Environment): boolean {
  return optionalText(env, CHATOPS_ENVIRONMENT.channelId) !== undefined;
}

/** What a function that talks to Slack builds its runtime from (handlers/chatops.ts). */
export interface ChatopsRuntimeSettings {
  readonly slack: SlackSettings;
  /** The bot token's secret, by ARN (read through the Powertools cache). */
  readonly botTokenSecretArn: string;
  /** Where approvals and threads are kept. */
  readonly incidentTableName: string;
}

export function chatopsRuntimeSettingsFrom(env: Environment): ChatopsRuntimeSettings {
  return {
    slack: slackSettingsFrom(env),
    botTokenSecretArn: requiredText(env, CHATOPS_ENVIRONMENT.botTokenSecretArn),
    incidentTableName: requiredText(env, CHATOPS_ENVIRONMENT.incidentTable),
  };
}

/** True when the environment asks for a real Slack workspace (the local twin's switch). */
export function realSlackConfigured(env: Environment): boolean {
  const E = CHATOPS_ENVIRONMENT;
  return optionalText(env, E.botToken) !== undefined && optionalText(env, E.signingSecret) !== undefined;
}
