import { randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoApprovalStore } from '../adapters/approval-store.js';
import { botTokenFrom } from '../adapters/slack-secrets.js';
import { SlackWebApi } from '../adapters/slack-web-api.js';
import { IncidentChat } from '../core/chatops/incident-chat.js';
import type { ChatopsRuntimeSettings, SlackSettings } from '../core/chatops/settings.js';

/**
 * What every function that talks to Slack builds from its settings (its reader gives them):
 * the settings, the Web API client with the bot token from Secrets Manager, the approvals store in
 * the incidents table, and the incident thread service on top of them.
 */
export interface ChatopsRuntime {
  readonly settings: SlackSettings;
  readonly slack: SlackWebApi;
  /** The bot token, from Secrets Manager through the Powertools cache. */
  readonly token: () => Promise<string>;
  readonly store: DynamoApprovalStore;
  readonly chat: IncidentChat;
}

export function chatopsRuntimeFrom(
  runtimeSettings: ChatopsRuntimeSettings,
  dynamo: DynamoDBClient,
  warn: (message: string, fields: Record<string, unknown>) => void,
  slackOptions: { timeoutMs?: number; maxRetries?: number } = {},
): ChatopsRuntime {
  const settings = runtimeSettings.slack;
  const token = botTokenFrom(runtimeSettings.botTokenSecretArn);
  const slack = new SlackWebApi({ baseUrl: settings.apiBaseUrl, token, ...slackOptions });
  const store = new DynamoApprovalStore(dynamo, runtimeSettings.incidentTableName, warn);
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
