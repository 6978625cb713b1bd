import { randomUUID } from 'node:crypto';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { breakerControl } from '../adapters/breaker-control.js';
import { FOLLOW_UP_FIELD, isFollowUpEvent, LambdaFollowUps } from '../adapters/follow-up-invoker.js';
import { signingSecretsFrom } from '../adapters/slack-secrets.js';
import { SlackWebApi } from '../adapters/slack-web-api.js';
import { StepFunctionsCallback } from '../adapters/workflow-callback.js';
import { GroupMembershipCache } from '../core/chatops/authorize.js';
import {
  type FunctionUrlEvent,
  type FunctionUrlResult,
  isFunctionUrlEvent,
  jsonResult,
  rawRequestFromEvent,
} from '../core/chatops/http.js';
import { handleInteraction, type InteractivityConfig } from '../core/chatops/interactivity.js';
import { type BreakerPort, handleSlashCommand, isSlashCommandBody } from '../core/chatops/slash-command.js';
import { slackInteractivitySettings } from '../core/function-settings.js';
import { chatopsRuntimeFrom } from './chatops.js';
import { withPowertools } from './middleware.js';
import { logger, metrics, tracer } from './powertools.js';

/**
 * The Slack interactivity endpoint, behind a Lambda Function URL (auth NONE: Slack cannot sign
 * with IAM; the Slack signature is the authentication). Two kinds of event arrive:
 *
 * - a button click (a Function URL event): verified, authorized and decided by
 *   `handleInteraction`, answered at once (Slack waits 3 s at most), with any Slack work queued as
 *   a follow-up by invoking this function asynchronously;
 * - that follow-up (an asynchronous invocation from itself): updates the approval message with who
 *   decided and when, or tells a user privately why their click did nothing.
 *
 * The log says what was decided or refused and why, never the payload, a secret or a task token.
 */

const settings = slackInteractivitySettings(process.env);
const { functionName, signingSecretArn } = settings;

const dynamo = tracer.captureAWSv3Client(new DynamoDBClient({}));
const runtime = chatopsRuntimeFrom(settings.chatops, dynamo, (message, fields) =>
  logger.warn(message, fields),
);
const config: InteractivityConfig = {
  app: runtime.settings.app,
  approvers: runtime.settings.approvers,
  channelId: runtime.settings.channelId,
};
// Reading the approvers group happens before Slack's 3 s are up: one short attempt, no waiting
// (a failure answers 503 and changes nothing; the person clicks again).
const quickSlack = new SlackWebApi({
  baseUrl: runtime.settings.apiBaseUrl,
  token: runtime.token,
  timeoutMs: 1000,
  maxRetries: 0,
});
const groups = new GroupMembershipCache(
  (groupId) => quickSlack.userGroupMembers(groupId),
  runtime.settings.groupCacheSeconds * 1000,
);
const signingSecrets = signingSecretsFrom(signingSecretArn);
const workflow = new StepFunctionsCallback(tracer.captureAWSv3Client(new SFNClient({})));
const followUps = new LambdaFollowUps(tracer.captureAWSv3Client(new LambdaClient({})), functionName);
// The fleet breaker lives in the same incidents table (see the guardrails' store).
const control = breakerControl(DynamoDBDocumentClient.from(dynamo), runtime.store.tableName, {
  settings: settings.guardrails,
  ...(settings.region ? { region: settings.region } : {}),
});
type BreakerReport = Awaited<ReturnType<typeof control.status>>;
const stateOf = (report: BreakerReport) => ({ open: report.breaker.status === 'open', text: report.text });
const breaker: BreakerPort = {
  status: async (now) => stateOf(await control.status(now)),
  reset: async (by, reason, now) => {
    const { changed, report } = await control.reset({ by, reason }, now);
    return { changed, state: stateOf(report) };
  },
  open: async (by, reason, now) => {
    const { changed, report } = await control.open({ by, reason }, now);
    return { changed, state: stateOf(report) };
  },
};

export const lambdaHandler = async (
  event: FunctionUrlEvent | Record<string, unknown>,
  _context?: Context,
): Promise<FunctionUrlResult | { readonly followedUp: string }> => {
  if (isFollowUpEvent(event)) {
    const followUp = event[FOLLOW_UP_FIELD];
    // A failed follow-up is only logged: retrying would repeat messages, and the decision is made.
    try {
      await runtime.chat.followUp(followUp);
      logger.info('Follow-up done', { kind: followUp.kind });
    } catch (error) {
      logger.error('Follow-up failed', { kind: followUp.kind, error: (error as Error).message });
      metrics.addMetric('SlackFollowUpsFailed', MetricUnit.Count, 1);
    }
    return { followedUp: followUp.kind };
  }
  if (!isFunctionUrlEvent(event)) {
    logger.error('Ignored an event that is neither a Function URL request nor a follow-up');
    return jsonResult(400, { error: 'bad-request', detail: 'not a Function URL request' });
  }
  const request = rawRequestFromEvent(event);
  if (isSlashCommandBody(request.body)) {
    const command = await handleSlashCommand(request, config, {
      signingSecrets,
      groupMembers: groups.members,
      now: () => new Date(),
      breaker,
    });
    const fields = {
      result: command.result,
      status: command.response.statusCode,
      detail: command.detail,
      userId: command.userId,
    };
    if (command.result === 'breaker-reset' || command.result === 'breaker-opened')
      logger.info('Fleet breaker changed from Slack', fields);
    else logger.info('Slash command answered', fields);
    return command.response;
  }
  const outcome = await handleInteraction(request, config, {
    signingSecrets,
    store: runtime.store,
    workflow,
    groupMembers: groups.members,
    now: () => new Date(),
    newAttemptId: randomUUID,
  });
  const fields = {
    result: outcome.result,
    status: outcome.response.statusCode,
    detail: outcome.detail,
    approvalId: outcome.approvalId,
    userId: outcome.userId,
  };
  if (outcome.result === 'decided') logger.info('Approval decided', fields);
  else logger.warn('Interaction refused', fields);
  metrics.addMetric(
    outcome.result === 'decided' ? 'ApprovalsDecided' : 'InteractionsRefused',
    MetricUnit.Count,
    1,
  );
  if (outcome.followUp !== null) {
    try {
      await followUps.schedule(outcome.followUp);
    } catch (error) {
      // The answer to Slack must not depend on it: the decision (if any) is already made.
      logger.error('Could not queue the follow-up', {
        kind: outcome.followUp.kind,
        error: (error as Error).message,
      });
    }
  }
  return outcome.response;
};

export const handler = withPowertools(lambdaHandler);
