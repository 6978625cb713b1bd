import { ResponderError } from '../errors.js';
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

type Env = Readonly<Record<string, string | undefined>>;

export class ChatopsSettingsError extends ResponderError {
  override readonly name = 'ChatopsSettingsError';
}

function required(env: Env, name: string): string {
  const value = env[name]?.trim() ?? '';
  if (value === '') throw new ChatopsSettingsError(`${name} is not set`);
  return value;
}

function matching(name: string, value: string, pattern: RegExp, what: string): string {
  if (!pattern.test(value)) throw new ChatopsSettingsError(`${name}='${value}' is not ${what}`);
  return value;
}

/** Comma- or space-separated user ids, each checked. */
export function parseUserIds(name: string, text: string | undefined): string[] {
  const ids = (text ?? '')
    .split(/[\s,]+/)
    .map((id) => id.trim())
    .filter((id) => id !== '');
  for (const id of ids) matching(name, id, USER_ID_PATTERN, 'a Slack user id (U… or W…)');
  return [...new Set(ids)];
}

export interface SlackSettings {
  readonly channelId: string;
  readonly app: SlackAppIdentity;
  readonly approvers: ApproverRules;
  readonly groupCacheSeconds: number;
  readonly apiBaseUrl: string;
}

/** The non-secret Slack settings; throws naming the variable that is missing or malformed. */
export function slackSettingsFrom(env: Env): SlackSettings {
  const E = CHATOPS_ENVIRONMENT;
  const channelId = matching(
    E.channelId,
    required(env, E.channelId),
    CHANNEL_ID_PATTERN,
    'a channel id (C…)',
  );
  const teamId = matching(E.teamId, required(env, E.teamId), TEAM_ID_PATTERN, 'a workspace id (T…)');
  const appId = matching(E.appId, required(env, E.appId), APP_ID_PATTERN, 'an app id (A…)');
  const userIds = parseUserIds(E.approverUserIds, env[E.approverUserIds]);
  const groupText = env[E.approverUserGroupId]?.trim() ?? '';
  const userGroupId =
    groupText === ''
      ? null
      : matching(E.approverUserGroupId, groupText, USER_GROUP_ID_PATTERN, 'a user group id (S…)');
  if (userIds.length === 0 && userGroupId === null) {
    throw new ChatopsSettingsError(
      `nobody could approve: set ${E.approverUserIds} (Slack user ids) and/or ${E.approverUserGroupId} (a user group id)`,
    );
  }
  const cacheText = env[E.groupCacheSeconds]?.trim() ?? '';
  const groupCacheSeconds = cacheText === '' ? DEFAULT_GROUP_CACHE_SECONDS : Number(cacheText);
  if (!Number.isInteger(groupCacheSeconds) || groupCacheSeconds < 0 || groupCacheSeconds > 3600) {
    throw new ChatopsSettingsError(
      `${E.groupCacheSeconds} must be whole seconds from 0 to 3600, got '${cacheText}'`,
    );
  }
  const base = env[E.apiBaseUrl]?.trim() || DEFAULT_SLACK_API_BASE_URL;
  let apiBaseUrl: string;
  try {
    apiBaseUrl = new URL(base.endsWith('/') ? base : `${base}/`).toString();
  } catch {
    throw new ChatopsSettingsError(`${E.apiBaseUrl}='${base}' is not a URL`);
  }
  return {
    channelId,
    app: { teamId, appId },
    approvers: { userIds, userGroupId },
    groupCacheSeconds,
    apiBaseUrl,
  };
}

/** True when the environment asks for a real Slack workspace (the local twin's switch). */
export function realSlackConfigured(env: Env): boolean {
  const E = CHATOPS_ENVIRONMENT;
  return Boolean(env[E.botToken]?.trim() && env[E.signingSecret]?.trim());
}
