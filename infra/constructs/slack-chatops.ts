import { Annotations, CfnOutput, Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as logsDestinations from 'aws-cdk-lib/aws-logs-destinations';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import {
  APP_ID_PATTERN,
  CHANNEL_ID_PATTERN,
  TEAM_ID_PATTERN,
  USER_GROUP_ID_PATTERN,
  USER_ID_PATTERN,
} from '../../functions/core/chatops/authorize.js';
import { STEP_EXIT_TYPES } from '../../functions/core/chatops/execution-log.js';
import { CHATOPS_ENVIRONMENT } from '../../functions/core/chatops/settings.js';
import { THREAD_STEPS } from '../../functions/core/chatops/steps.js';
import { responderFunctionProps } from './responder-function.js';

/** The execution log records that may become a thread line: exits of the steps in THREAD_STEPS. */
export const WORKFLOW_STEP_PATTERN = logs.FilterPattern.all(
  logs.FilterPattern.any(
    ...STEP_EXIT_TYPES.map((type) => logs.FilterPattern.stringValue('$.type', '=', type)),
  ),
  logs.FilterPattern.any(
    ...[...THREAD_STEPS.keys()].map((name) => logs.FilterPattern.stringValue('$.details.name', '=', name)),
  ),
);

/** The Slack side of conntrack-responder: where it posts and who may approve. */
export interface SlackProps {
  /** The channel (C…) incident threads and approval requests go to; invite the app there. */
  readonly channelId: string;
  /** The workspace (T…) the app is installed in; clicks from any other workspace are refused. */
  readonly teamId: string;
  /** The Slack app (A…) whose buttons these are (Basic Information → App ID). */
  readonly appId: string;
  /**
   * Slack user ids (U… or W…) allowed to approve or reject.
   *
   * @default - none: approvers come from `approverUserGroupId` only
   */
  readonly approverUserIds?: readonly string[];
  /**
   * A user group (S…) whose members may approve or reject (needs a paid Slack plan and the
   * `usergroups:read` scope). At least one of `approverUserIds` and this must be given.
   *
   * @default - none
   */
  readonly approverUserGroupId?: string;
  /**
   * Seconds a read of the user group's members is reused (usergroups.users.list is rate limited;
   * a removed approver loses the right after at most this long).
   *
   * @default 60
   */
  readonly groupCacheSeconds?: number;
  /**
   * Concurrent executions reserved for (and capping) the public interactivity endpoint, so that a
   * flood of unsigned requests can neither run up unbounded invocations nor take the account's
   * concurrency from the incident functions. Approvals need very little (a click is answered in
   * well under a second). Lambda lets a function reserve only what leaves 100 unreserved
   * (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html): check
   * `aws lambda get-account-settings` (UnreservedConcurrentExecutions must be at least 100 + this);
   * a new account's quota is often 10, where only `false` deploys (synth then warns of the risk)
   * until a quota increase.
   *
   * @default 5
   */
  readonly reservedConcurrency?: number | false;
}

export interface SlackChatopsProps extends SlackProps {
  /** Approvals and threads live in the incidents table. */
  readonly incidentTable: dynamodb.ITable;
  readonly logRetention: logs.RetentionDays;
}

/** Checks props that would only fail at the first click, naming the prop. */
/** The default cap of the public endpoint: a few concurrent clicks are plenty. */
export const DEFAULT_SLACK_RESERVED_CONCURRENCY = 5;

export function validateSlackProps(props: SlackProps, prefix = 'ConntrackResponder slack'): void {
  const check = (name: string, value: string, pattern: RegExp, what: string) => {
    if (!pattern.test(value)) throw new Error(`${prefix}.${name} '${value}' is not ${what}`);
  };
  check('channelId', props.channelId, CHANNEL_ID_PATTERN, 'a Slack channel id (C…)');
  check('teamId', props.teamId, TEAM_ID_PATTERN, 'a Slack workspace id (T…)');
  check('appId', props.appId, APP_ID_PATTERN, 'a Slack app id (A…)');
  for (const id of props.approverUserIds ?? [])
    check('approverUserIds', id, USER_ID_PATTERN, 'a Slack user id (U… or W…)');
  if (props.approverUserGroupId !== undefined) {
    check(
      'approverUserGroupId',
      props.approverUserGroupId,
      USER_GROUP_ID_PATTERN,
      'a Slack user group id (S…)',
    );
  }
  if ((props.approverUserIds ?? []).length === 0 && props.approverUserGroupId === undefined) {
    throw new Error(`${prefix}: give approverUserIds and/or approverUserGroupId, or nobody could approve`);
  }
  const cache = props.groupCacheSeconds ?? 60;
  if (!Number.isInteger(cache) || cache < 0 || cache > 3600) {
    throw new Error(`${prefix}.groupCacheSeconds must be whole seconds from 0 to 3600, got ${cache}`);
  }
  const reserved = props.reservedConcurrency;
  if (
    reserved !== undefined &&
    reserved !== false &&
    (!Number.isInteger(reserved) || reserved < 1 || reserved > 1000)
  ) {
    throw new Error(
      `${prefix}.reservedConcurrency must be a whole number from 1 to 1000 or false, got ${reserved}`,
    );
  }
}

/**
 * Approval in Slack: the two secrets (created with a random placeholder, which verifies nothing
 * and is no bot token, until the operator stores the Slack app's values after deploying), the interactivity endpoint (a Lambda Function URL the Slack app's
 * Request URL points to), and what any other function needs to post in incident threads
 * (`connect`). Access is least privilege: each function reads only the secrets it uses, touches
 * only approval, thread and incident items of the incidents table, and the endpoint may only
 * resume tasks of the given workflow.
 *
 * Why a Function URL rather than API Gateway: Slack cannot sign requests with IAM, so the
 * endpoint is public either way and its authentication is the Slack signature, verified in the
 * function before anything else; API Gateway would add a hop, a cost and a 29 s limit without
 * adding a check Slack can pass. The function answers within Slack's 3 seconds and does its Slack
 * work in an asynchronous invocation of itself.
 */
export class SlackChatops extends Construct {
  readonly signingSecret: secretsmanager.Secret;
  readonly botTokenSecret: secretsmanager.Secret;
  readonly interactivityFunction: nodejs.NodejsFunction;
  readonly interactivityUrl: lambda.FunctionUrl;
  /** The Slack settings every function that posts to Slack gets (no secret values, only ARNs). */
  readonly environment: Readonly<Record<string, string>>;
  private readonly table: dynamodb.ITable;
  private readonly logRetention: logs.RetentionDays;

  constructor(scope: Construct, id: string, props: SlackChatopsProps) {
    super(scope, id);
    validateSlackProps(props);
    this.table = props.incidentTable;
    this.logRetention = props.logRetention;

    this.signingSecret = new secretsmanager.Secret(this, 'SigningSecret', {
      description:
        "conntrack-responder: the Slack app's signing secret (Basic Information → App Credentials). Several, separated by spaces, while it is being replaced.",
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.botTokenSecret = new secretsmanager.Secret(this, 'BotToken', {
      description: "conntrack-responder: the Slack app's bot token, xoxb-… (OAuth & Permissions)",
      removalPolicy: RemovalPolicy.DESTROY,
    });
    for (const secret of [this.signingSecret, this.botTokenSecret]) {
      Validations.of(secret).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason:
          'Slack issues these values and offers no API to rotate a signing secret; the operator regenerates them in the Slack app and stores the new value (the signing secret accepts old and new side by side meanwhile).',
      });
    }

    this.environment = {
      [CHATOPS_ENVIRONMENT.channelId]: props.channelId,
      [CHATOPS_ENVIRONMENT.teamId]: props.teamId,
      [CHATOPS_ENVIRONMENT.appId]: props.appId,
      [CHATOPS_ENVIRONMENT.approverUserIds]: (props.approverUserIds ?? []).join(','),
      [CHATOPS_ENVIRONMENT.approverUserGroupId]: props.approverUserGroupId ?? '',
      [CHATOPS_ENVIRONMENT.groupCacheSeconds]: String(props.groupCacheSeconds ?? 60),
      [CHATOPS_ENVIRONMENT.botTokenSecretArn]: this.botTokenSecret.secretArn,
      [CHATOPS_ENVIRONMENT.incidentTable]: props.incidentTable.tableName,
    };

    const functionLogs = new logs.LogGroup(this, 'InteractivityLogs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(this, 'InteractivityRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description:
        'conntrack-responder Slack endpoint: verify clicks, record the decision, resume the workflow',
    });
    functionLogs.grantWrite(role);

    const reservedConcurrency = props.reservedConcurrency ?? DEFAULT_SLACK_RESERVED_CONCURRENCY;
    this.interactivityFunction = new nodejs.NodejsFunction(this, 'Interactivity', {
      ...responderFunctionProps('functions/handlers/slack-interactivity.ts', {
        ...this.environment,
        [CHATOPS_ENVIRONMENT.signingSecretArn]: this.signingSecret.secretArn,
      }),
      description: 'Slack interactivity endpoint: verifies approval clicks and resumes the incident workflow',
      memorySize: 256,
      // A click is answered in well under Slack's 3 s; a follow-up may wait out Slack's rate limit.
      timeout: Duration.seconds(30),
      role,
      logGroup: functionLogs,
      ...(reservedConcurrency === false ? {} : { reservedConcurrentExecutions: reservedConcurrency }),
    });
    if (reservedConcurrency === false) {
      Annotations.of(this.interactivityFunction).addWarning(
        'The public Slack interactivity endpoint has no concurrency cap (slack.reservedConcurrency: false): a flood of requests, signed or not, can run up unbounded invocations and take the account\'s unreserved concurrency from the incident functions. Reserve some as soon as the account allows it (README "Slack").',
      );
    }
    Validations.of(this.interactivityFunction).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason:
        'Clicks arrive synchronously through the Function URL; the only asynchronous events are its own follow-ups, whose failures the function logs and swallows (a kept or repeated follow-up would post twice).',
    });

    // Public on purpose: Slack cannot sign with IAM. The Slack signature is checked first thing.
    this.interactivityUrl = this.interactivityFunction.addFunctionUrl({
      authType: lambda.FunctionUrlAuthType.NONE,
      invokeMode: lambda.InvokeMode.BUFFERED,
    });

    this.signingSecret.grantRead(role);
    this.botTokenSecret.grantRead(role);
    this.grantApprovalItems(role, ['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    // Its own asynchronous invocation (the follow-up). A separate policy: the function does not
    // wait for it, so the reference to its own ARN makes no dependency cycle.
    new iam.Policy(this, 'InvokeOwnFollowUps', {
      roles: [role],
      statements: [
        new iam.PolicyStatement({
          sid: 'QueueFollowUps',
          actions: ['lambda:InvokeFunction'],
          resources: [this.interactivityFunction.functionArn],
        }),
      ],
    });
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'X-Ray trace writes (PutTraceSegments, PutTelemetryRecords) have no resource-level permissions.',
    });

    new CfnOutput(this, 'InteractivityRequestUrl', {
      value: this.interactivityUrl.url,
      description: 'Paste into the Slack app: Interactivity & Shortcuts → Request URL',
    });
    new CfnOutput(this, 'SigningSecretArn', {
      value: this.signingSecret.secretArn,
      description: "Store the Slack app's signing secret here",
    });
    new CfnOutput(this, 'BotTokenSecretArn', {
      value: this.botTokenSecret.secretArn,
      description: "Store the Slack app's bot token (xoxb-…) here",
    });
  }

  /**
   * Lets a function post in incident threads and request approvals: the Slack settings in its
   * environment, the bot token (not the signing secret), and approval/thread/incident items.
   */
  connect(fn: lambda.Function): void {
    for (const [name, value] of Object.entries(this.environment)) fn.addEnvironment(name, value);
    this.botTokenSecret.grantRead(fn);
    if (fn.role === undefined) throw new Error(`${fn.node.path} has no role to grant Slack access to`);
    this.grantApprovalItems(fn.role, ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
  }

  /** Lets the endpoint resume (only) this workflow's waiting approval tasks. */
  allowDecisionsOn(stateMachine: sfn.IStateMachine): void {
    this.interactivityFunction.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ResumeApprovalTasks',
        actions: ['states:SendTaskSuccess'],
        resources: [stateMachine.stateMachineArn],
      }),
    );
  }

  /**
   * A line in the incident's thread for every step: the workflow's execution log, filtered down to
   * the exits of the steps worth a line (THREAD_STEPS), feeds a small function that posts them.
   */
  followWorkflow(workflowLogs: logs.ILogGroup): nodejs.NodejsFunction {
    const functionLogs = new logs.LogGroup(this, 'ProgressLogs', {
      retention: this.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(this, 'ProgressRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: "conntrack-responder Slack progress: a line per workflow step in the incident's thread",
    });
    functionLogs.grantWrite(role);
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'X-Ray trace writes (PutTraceSegments, PutTelemetryRecords) have no resource-level permissions.',
    });
    const progress = new nodejs.NodejsFunction(this, 'Progress', {
      ...responderFunctionProps('functions/handlers/workflow-progress.ts', {}),
      description: "Posts a line per incident workflow step in the incident's Slack thread",
      memorySize: 256,
      timeout: Duration.seconds(30),
      role,
      logGroup: functionLogs,
    });
    Validations.of(progress).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason:
        'Step lines are best effort: the function logs and swallows a failed post, and the outcome message does not depend on them.',
    });
    this.connect(progress);
    new logs.SubscriptionFilter(this, 'ProgressFilter', {
      logGroup: workflowLogs,
      destination: new logsDestinations.LambdaDestination(progress),
      filterPattern: WORKFLOW_STEP_PATTERN,
      filterName: 'conntrack-responder-slack-progress',
    });
    return progress;
  }

  /**
   * Lets approvers use the fleet breaker from Slack (`/conntrack-responder breaker …`): the
   * guardrail settings, and the breaker's items (its state, windows and reset audit records, the
   * remediation slots, and the incidents' top ports it shows).
   */
  allowBreakerControl(guardrailEnvironment: Readonly<Record<string, string>>): void {
    for (const [name, value] of Object.entries(guardrailEnvironment)) {
      this.interactivityFunction.addEnvironment(name, value);
    }
    this.interactivityFunction.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'FleetBreaker',
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:BatchGetItem'],
        resources: [this.table.tableArn],
        conditions: {
          'ForAllValues:StringLike': {
            'dynamodb:LeadingKeys': ['guardrail#breaker', 'guardrail#remediations', 'incident#*'],
          },
        },
      }),
    );
  }

  private grantApprovalItems(grantee: iam.IGrantable, actions: string[]): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ApprovalAndThreadItems',
        actions,
        resources: [this.table.tableArn],
        // Only the items ChatOps owns or annotates, never detect's delivery markers.
        conditions: {
          'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['approval#*', 'thread#*', 'incident#*'] },
        },
      }),
    );
  }
}
