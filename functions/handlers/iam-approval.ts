/**
 * The approval URL (a Lambda Function URL with AWS_IAM auth) behind
 * `conntrack-responder approve|reject INCIDENT_ID`: Lambda has verified the caller's SigV4
 * signature and IAM permissions before this runs; `handleIamDecision` takes the caller's identity
 * from the request context, checks it against the approvers the stack names, and decides the
 * incident's approval exactly once. With Slack configured, the approval message in the incident's
 * thread is then settled (its buttons give way to who decided), best effort.
 *
 * The log says who decided what or why nothing was decided, never a task token.
 */

import { randomUUID } from 'node:crypto';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import type { Context } from 'aws-lambda';
import { DynamoApprovalStore } from '../adapters/approval-store.js';
import { StepFunctionsCallback } from '../adapters/workflow-callback.js';
import {
  type FunctionUrlEvent,
  type FunctionUrlResult,
  isFunctionUrlEvent,
  jsonResult,
} from '../core/chatops/http.js';
import { handleIamDecision, type IamApprovers, iamApproversOf } from '../core/chatops/iam-approval.js';
import { iamApprovalFunctionSettings } from '../core/function-settings.js';
import { chatopsRuntimeFrom } from './chatops.js';
import { withPowertools } from './middleware.js';
import { logger, metrics, tracer } from './powertools.js';

const settings = iamApprovalFunctionSettings(process.env);
const dynamo = tracer.captureAWSv3Client(new DynamoDBClient({}));
const warn = (message: string, fields: Record<string, unknown>) => logger.warn(message, fields);
const slack = settings.chatops ? chatopsRuntimeFrom(settings.chatops, dynamo, warn) : null;
const store = slack?.store ?? new DynamoApprovalStore(dynamo, settings.incidentTableName, warn);
const workflow = new StepFunctionsCallback(tracer.captureAWSv3Client(new SFNClient({})));

let approvers: IamApprovers | undefined;

/** The function's own account, from its ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME). */
function accountOf(context: Context | undefined): string {
  return context?.invokedFunctionArn?.split(':')[4] ?? '';
}

export const lambdaHandler = async (event: unknown, context?: Context): Promise<FunctionUrlResult> => {
  if (!isFunctionUrlEvent(event)) {
    logger.error('Ignored an event that is not a Function URL request');
    return jsonResult(400, { result: 'bad-request', detail: 'not a Function URL request' });
  }
  approvers ??= iamApproversOf(settings.approvers, accountOf(context));
  const outcome = await handleIamDecision(event as FunctionUrlEvent, approvers, {
    store,
    workflow,
    newAttemptId: randomUUID,
    now: () => new Date(),
  });
  const fields = {
    result: outcome.answer.result,
    status: outcome.response.statusCode,
    detail: outcome.answer.detail,
    caller: outcome.caller,
    incidentId: outcome.answer.incidentId,
    approvalId: outcome.answer.approvalId,
  };
  if (outcome.answer.result === 'decided') logger.info('Approval decided from the approval URL', fields);
  else logger.warn('Approval URL request refused', fields);
  metrics.addMetric(
    outcome.answer.result === 'decided' ? 'ApprovalsDecided' : 'ApprovalRequestsRefused',
    MetricUnit.Count,
    1,
  );
  if (outcome.settle !== null && slack !== null) {
    try {
      await slack.chat.settleApproval(outcome.settle);
    } catch (error) {
      // The decision is made and the workflow resumed; only the Slack message is out of date.
      logger.error('Could not settle the approval message in Slack', {
        approvalId: outcome.settle,
        error: (error as Error).message,
      });
    }
  }
  return outcome.response;
};

export const handler = withPowertools(lambdaHandler);
