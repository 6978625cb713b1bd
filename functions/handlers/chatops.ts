import { randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoApprovalStore } from '../adapters/approval-store.js';
import { botTokenFrom } from '../adapters/slack-secrets.js';
import { SlackWebApi } from '../adapters/slack-web-api.js';
import { IncidentChat } from '../core/chatops/incident-chat.js';
import {
  CHATOPS_ENVIRONMENT,
  ChatopsSettingsError,
  type SlackSettings,
  slackSettingsFrom,
} from '../core/chatops/settings.js';

/**
 * What every function that talks to Slack builds from its environment (set by the CDK construct):
 * the settings, the Web API client with the bot token from Secrets Manager, the approvals store in
 * the incidents table, and the incident thread service on top of them.
 */
type Env = Readonly<Record<string, string | undefined>>;

export interface ChatopsRuntime {
  readonly settings: SlackSettings;
  readonly slack: SlackWebApi;
  /** The bot token, from Secrets Manager through the Powertools cache. */
  readonly token: () => Promise<string>;
  readonly store: DynamoApprovalStore;
  readonly chat: IncidentChat;
}

/** Slack is optional for the workflow's functions: without a channel they only publish to SNS. */
export function slackConfigured(env: Env): boolean {
  return (env[CHATOPS_ENVIRONMENT.channelId]?.trim() ?? '') !== '';
}

function required(env: Env, name: string): string {
  const value = env[name]?.trim() ?? '';
  if (value === '') throw new ChatopsSettingsError(`${name} must be set (the CDK construct sets it)`);
  return value;
}

export function chatopsRuntimeFrom(
  env: Env,
  dynamo: DynamoDBClient,
  warn: (message: string, fields: Record<string, unknown>) => void,
  slackOptions: { timeoutMs?: number; maxRetries?: number } = {},
): ChatopsRuntime {
  const settings = slackSettingsFrom(env);
  const token = botTokenFrom(required(env, CHATOPS_ENVIRONMENT.botTokenSecretArn));
  const slack = new SlackWebApi({ baseUrl: settings.apiBaseUrl, token, ...slackOptions });
  const store = new DynamoApprovalStore(dynamo, required(env, CHATOPS_ENVIRONMENT.incidentTable), warn);
  const chat = new IncidentChat({
    slack,
    threads: store,
    approvals: store,
    channel: settings.channelId,
    now: () => new Date(),
    newApprovalId: randomUUID,
  });
  return { settings, slack, token, store, chat };
}
