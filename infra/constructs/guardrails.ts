import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { type GuardrailSettings, guardrailEnvironment } from '../../functions/core/guardrails/settings.js';
import { DETECT_ENVIRONMENT } from '../../functions/core/incident/settings.js';
import { SDK_RETRY_ENVIRONMENT, type SdkRetryConfig } from '../../functions/core/sdk-retry.js';
import { responderFunctionProps } from './responder-function.js';

export interface GuardrailsProps {
  readonly settings: GuardrailSettings;
  readonly sdkRetry: SdkRetryConfig;
  readonly incidentTable: dynamodb.ITable;
  readonly incidentRetentionDays: number;
  readonly logRetention: logs.RetentionDays;
}

/** The environment every function that applies guardrails runs with. */
export function guardrailFunctionEnvironment(settings: GuardrailSettings, retry: SdkRetryConfig) {
  return {
    ...guardrailEnvironment(settings),
    [SDK_RETRY_ENVIRONMENT.maxAttempts]: String(retry.maxAttempts),
    [SDK_RETRY_ENVIRONMENT.retryMode]: retry.retryMode,
  };
}

/** A calendar prop (name or ARN) as the ARN `ssm:GetCalendarState` is authorised on. */
export function calendarArn(scope: Construct, calendar: string): string {
  if (calendar.startsWith('arn:')) return calendar;
  return Stack.of(scope).formatArn({ service: 'ssm', resource: 'document', resourceName: calendar });
}

/**
 * The `guardrails` function behind the workflow's "Check the guardrails", "Take a remediation
 * slot" and "Release the remediation slot" states, with exactly the access those need: guardrail
 * and incident items of the incidents table, instance tags, and the change calendar if there is
 * one. `releaseSlotsOfEndedExecutions` adds the rule that gives back the slot of an execution that
 * ended without reaching its release state.
 */
export class Guardrails extends Construct {
  readonly function: nodejs.NodejsFunction;
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: GuardrailsProps) {
    super(scope, id);
    const logGroup = new logs.LogGroup(this, 'FunctionLogs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.role = new iam.Role(this, 'FunctionRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description:
        'conntrack-responder guardrails: instance policy, preconditions, fleet breaker, remediation slots',
    });
    logGroup.grantWrite(this.role);

    this.function = new nodejs.NodejsFunction(this, 'Function', {
      ...responderFunctionProps('functions/handlers/guardrails.ts', {
        [DETECT_ENVIRONMENT.incidentTableName]: props.incidentTable.tableName,
        [DETECT_ENVIRONMENT.incidentRetentionDays]: String(props.incidentRetentionDays),
        ...guardrailFunctionEnvironment(props.settings, props.sdkRetry),
      }),
      description:
        'Fleet guardrails of the incident workflow: policy tag, calendar, breaker, preconditions, slots',
      memorySize: 256,
      // Long enough for every SDK retry with backoff (8 tries, capped at 20 s each, usually far less).
      timeout: Duration.seconds(60),
      role: this.role,
      logGroup,
    });
    Validations.of(this.function).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason:
        'Step Functions invokes this function synchronously and retries and catches its errors; a lost slot release from the EventBridge rule is ended by the slot lease.',
    });

    // Least privilege: only the guardrail records and the incidents' admission/top ports.
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'GuardrailRecords',
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
        resources: [props.incidentTable.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['guardrail#*', 'incident#*'] } },
      }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadInstanceModeTags',
        actions: ['ec2:DescribeTags'],
        // DescribeTags has no resource-level permissions.
        resources: ['*'],
      }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadManagedNodeModeTags',
        actions: ['ssm:ListTagsForResource'],
        resources: [
          Stack.of(this).formatArn({ service: 'ssm', resource: 'managed-instance', resourceName: '*' }),
        ],
      }),
    );
    if (props.settings.changeCalendar !== null) {
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'ReadChangeCalendar',
          actions: ['ssm:GetCalendarState'],
          resources: [calendarArn(this, props.settings.changeCalendar)],
        }),
      );
    }
    Validations.of(this.role).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'EC2 DescribeTags and the X-Ray trace writes have no resource-level permissions; DescribeTags only reads tags.',
      },
      {
        id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:managed-instance/*]',
        reason:
          "The managed node whose mode tag is read is the incident's, known only at run time; the action only reads tags.",
      },
    );
  }

  /**
   * An execution that is aborted, times out or fails outside its own catches never reaches the
   * release state; this rule gives its slot back (the execution's name is the slot's holder).
   */
  releaseSlotsOfEndedExecutions(stateMachine: sfn.IStateMachine): events.Rule {
    const rule = new events.Rule(this, 'EndedExecutions', {
      description: 'Gives back the remediation slot of an incident workflow that ended without releasing it',
      eventPattern: {
        source: ['aws.states'],
        detailType: ['Step Functions Execution Status Change'],
        detail: {
          status: ['FAILED', 'TIMED_OUT', 'ABORTED'],
          stateMachineArn: [stateMachine.stateMachineArn],
        },
      },
      targets: [
        new targets.LambdaFunction(this.function, { retryAttempts: 8, maxEventAge: Duration.hours(6) }),
      ],
    });
    Validations.of(rule).acknowledge({
      id: 'Serverless-EventBusDLQ',
      reason:
        'An event that outlives its eight retries only delays a slot release; the slot lease ends the slot anyway.',
    });
    return rule;
  }
}
