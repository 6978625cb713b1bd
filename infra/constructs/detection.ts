import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambdaDestinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as logsDestinations from 'aws-cdk-lib/aws-logs-destinations';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { ALLOWANCE_BASELINE_KEY_PREFIX } from '../../functions/adapters/allowance-baseline-store.js';
import { GUARDRAIL_KEYS } from '../../functions/adapters/guardrail-table.js';
import { INCIDENT_STORE_KEY_PREFIXES } from '../../functions/adapters/incident-store.js';
import { SAMPLE_WINDOW_KEY_PREFIX } from '../../functions/adapters/sample-window-store.js';
import { CONNTRACK_FILTER_PATTERN } from '../../functions/core/detect/index.js';
import { FORECAST_ENVIRONMENT, SAMPLE_FILTER_TERM } from '../../functions/core/forecast/index.js';
import type { GuardrailSettings } from '../../functions/core/guardrails/settings.js';
import { DETECT_ENVIRONMENT, type ResponseMode } from '../../functions/core/incident/settings.js';
import type { SdkRetryConfig } from '../../functions/core/sdk-retry.js';
import {
  IGNORED_DROP_TEXT_METRICS,
  METRICS_NAMESPACE,
  SERVICE_NAME,
} from '../../functions/handlers/metric-names.js';
import { guardrailFunctionEnvironment } from './guardrails.js';
import { allowPuttingLifecycleEvents } from './lifecycle-events.js';
import { responderFunctionProps } from './responder-function.js';

/**
 * Which log events reach the `detect` function: the detection core's pattern (every drop form plus
 * the rate-limit lines it attributes to them) and the host sampler's lines (the forecast core's
 * term), each kept with the code that interprets them.
 */
export const DETECT_FILTER_PATTERN_TEXT = `${CONNTRACK_FILTER_PATTERN} ${SAMPLE_FILTER_TERM}`;
export const KERNEL_DROP_FILTER_PATTERN = logs.FilterPattern.literal(DETECT_FILTER_PATTERN_TEXT);

export interface DetectionProps {
  /** Existing log groups to subscribe; empty means the construct creates the kernel log group. */
  readonly logGroupNames: readonly string[];
  /** The created kernel log group's name; CloudFormation generates one when it is not given. */
  readonly createdLogGroupName?: string;
  readonly subscriptionFilterName: string;
  readonly instanceIdPattern: string;
  readonly cooldownMinutes: number;
  readonly defaultMode: ResponseMode;
  readonly incidentRetentionDays: number;
  readonly logRetention: logs.RetentionDays;
  readonly incidentTable: dynamodb.ITable;
  readonly stateMachine: sfn.IStateMachine;
  /** Told when an event lands in the failed-events queue, and where the fleet breaker escalates. */
  readonly alarmTopic: sns.ITopic;
  /** The fleet breaker's settings (detect decides whether an incident's workflow may start). */
  readonly guardrails: GuardrailSettings;
  readonly sdkRetry: SdkRetryConfig;
  /** Near-full incidents: predicted full within this many minutes (docs/forecast.md). */
  readonly nearFullHorizonMinutes: number;
  /** ... or a sample at or above this usage, in percent. */
  readonly nearFullUsagePercent: number;
  /** Publish each host sample as per-instance metrics (ConntrackEntries, ConntrackUsage, ConntrackDropCounter). */
  readonly hostSampleMetrics: boolean;
}

/**
 * The partition keys the detect function reads and writes (IAM `dynamodb:LeadingKeys` patterns):
 * its incidents and delivery markers (IncidentStore, plus each incident's admission and the fleet
 * view's reads), each host's window of samples (SampleWindowStore), each host's last ENA allowance
 * reading (AllowanceBaselineStore), and the breaker item with its window buckets
 * (GuardrailStore.admit and the escalation), all under the one partition key `guardrail#breaker`.
 */
export const DETECT_LEADING_KEYS = [
  `${INCIDENT_STORE_KEY_PREFIXES.incident}*`,
  `${INCIDENT_STORE_KEY_PREFIXES.delivery}*`,
  `${SAMPLE_WINDOW_KEY_PREFIX}*`,
  `${ALLOWANCE_BASELINE_KEY_PREFIX}*`,
  GUARDRAIL_KEYS.breaker.pk,
] as const;

export const LOG_GROUP_NAME = /^[.\-_/#A-Za-z0-9]{1,512}$/;

/**
 * From kernel log lines to incidents: subscription filters on the kernel log groups invoke the
 * `detect` function asynchronously; it opens at most one incident per instance and starts the
 * incident workflow. An event it cannot decode fails the invocation and, after Lambda's retries,
 * lands in the failed-events queue with its error, where an alarm reports it.
 */
export class Detection extends Construct {
  readonly function: nodejs.NodejsFunction;
  readonly failedEventsQueue: sqs.Queue;
  readonly subscribedLogGroups: logs.ILogGroup[];
  /** Set when no log group names were given and the construct made its own. */
  readonly createdLogGroup?: logs.LogGroup;

  constructor(scope: Construct, id: string, props: DetectionProps) {
    super(scope, id);
    this.failedEventsQueue = this.failedEventsStore();
    const { fn, role } = this.detectFunction(props, this.failedEventsQueue);
    this.function = fn;
    this.grantDetect(role, props);
    this.subscribedLogGroups = [];
    const created = this.subscribeKernelLogs(props);
    if (created !== undefined) this.createdLogGroup = created;
    this.addAlarms(props);
  }

  /** Where an event the function could not process is kept, with its error. */
  private failedEventsStore(): sqs.Queue {
    const queue = new sqs.Queue(this, 'FailedEvents', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(queue).acknowledge(
      {
        id: 'AwsSolutions-SQS3',
        reason:
          'This queue is itself the dead-letter store of the detect function; an alarm reports every message.',
      },
      {
        id: 'Serverless-SQSRedrivePolicy',
        reason:
          'This queue is itself the dead-letter store of the detect function; an alarm reports every message.',
      },
    );
    return queue;
  }

  /** The detect function, with its own log group and role. */
  private detectFunction(
    props: DetectionProps,
    failedEventsQueue: sqs.IQueue,
  ): { fn: nodejs.NodejsFunction; role: iam.Role } {
    const functionLogs = new logs.LogGroup(this, 'FunctionLogs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(this, 'FunctionRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'conntrack-responder detect: open incidents and start their workflow, nothing else',
    });
    functionLogs.grantWrite(role);

    const fn = new nodejs.NodejsFunction(this, 'Function', {
      ...responderFunctionProps('functions/handlers/detect.ts', {
        [DETECT_ENVIRONMENT.incidentTableName]: props.incidentTable.tableName,
        [DETECT_ENVIRONMENT.stateMachineArn]: props.stateMachine.stateMachineArn,
        [DETECT_ENVIRONMENT.instanceIdPattern]: props.instanceIdPattern,
        [DETECT_ENVIRONMENT.cooldownMinutes]: String(props.cooldownMinutes),
        [DETECT_ENVIRONMENT.defaultMode]: props.defaultMode,
        [DETECT_ENVIRONMENT.incidentRetentionDays]: String(props.incidentRetentionDays),
        [DETECT_ENVIRONMENT.notificationTopicArn]: props.alarmTopic.topicArn,
        ...guardrailFunctionEnvironment(props.guardrails, props.sdkRetry),
        [FORECAST_ENVIRONMENT.horizonMinutes]: String(props.nearFullHorizonMinutes),
        [FORECAST_ENVIRONMENT.usagePercent]: String(props.nearFullUsagePercent),
        [FORECAST_ENVIRONMENT.hostMetrics]: props.hostSampleMetrics ? 'on' : 'off',
      }),
      description:
        'Turns conntrack drop lines and host samples from CloudWatch Logs into incidents and starts their workflow',
      memorySize: 256,
      timeout: Duration.seconds(30),
      role,
      logGroup: functionLogs,
      // Subscription deliveries are asynchronous: two retries, then the event and its error are kept.
      retryAttempts: 2,
      maxEventAge: Duration.hours(6),
      onFailure: new lambdaDestinations.SqsDestination(failedEventsQueue),
    });
    Validations.of(fn).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason:
        'The asynchronous on-failure destination (SQS) keeps failed events with their error, superseding a dead-letter queue.',
    });
    return { fn, role };
  }

  private grantDetect(role: iam.Role, props: DetectionProps): void {
    // Least privilege: read and conditionally write incident items and the breaker's records
    // (BatchGetItem: the fleet view reads the window's incidents), start this workflow, publish
    // the breaker's one escalation, nothing more. Only the items it owns (DETECT_LEADING_KEYS):
    // not approvals, remediation slots or the instances' last changes, which share the table.
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'OpenIncidents',
        actions: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
        resources: [props.incidentTable.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [...DETECT_LEADING_KEYS] } },
      }),
    );
    props.alarmTopic.grantPublish(role);
    // The opened and held lifecycle events.
    allowPuttingLifecycleEvents(role);
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
      reason:
        'Publishing to the KMS-encrypted topic needs GenerateDataKey for its data keys, scoped to the topic key alone.',
    });
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'StartIncidentWorkflow',
        actions: ['states:StartExecution'],
        resources: [props.stateMachine.stateMachineArn],
      }),
    );
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'X-Ray trace writes (PutTraceSegments, PutTelemetryRecords) have no resource-level permissions.',
    });
  }

  /** The kernel log groups subscribed: the ones named, or one the construct makes (returned). */
  private subscribeKernelLogs(props: DetectionProps): logs.LogGroup | undefined {
    if (props.logGroupNames.length === 0) {
      // Kept when the stack is deleted: the hosts' kernel lines are their own record of an
      // outage. Kept under a generated name, a second deployment gets a new group instead of
      // failing on the old one ("already exists"); a fixed name is the operator's choice.
      const created = new logs.LogGroup(this, 'KernelLogs', {
        ...(props.createdLogGroupName === undefined ? {} : { logGroupName: props.createdLogGroupName }),
        retention: props.logRetention,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      this.subscribe(created, 'KernelLogs', props.subscriptionFilterName);
      return created;
    }
    for (const name of uniqueLogGroupNames(props.logGroupNames)) {
      // The id derives from the name alone, so adding or reordering names never replaces a filter
      // (a replacement is create-before-delete and fails on a log group already at its filter limit).
      const id = `LogGroup${encodeURIComponent(name)}`;
      this.subscribe(logs.LogGroup.fromLogGroupName(this, id, name), id, props.subscriptionFilterName);
    }
    return undefined;
  }

  /** Failed events, and drop text that did not count as the kernel's, reported on the alarm topic. */
  private addAlarms(props: DetectionProps): void {
    const failedEvents = new cloudwatch.Alarm(this, 'FailedEventsAlarm', {
      alarmDescription:
        'A kernel log delivery could not be processed by the detect function; it is kept in the failed-events queue.',
      metric: this.failedEventsQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
      }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    failedEvents.addAlarmAction(new cloudwatchActions.SnsAction(props.alarmTopic));

    // Drop text that did not count as the kernel's means the shipping is wrong somewhere: said on
    // the first such delivery, not found at the next outage. The function's warning log names
    // the log group and stream.
    const ignored = (metricName: string) =>
      new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        dimensionsMap: { service: SERVICE_NAME },
        statistic: cloudwatch.Stats.SUM,
        period: Duration.minutes(5),
      });
    const ignoredDropText = new cloudwatch.Alarm(this, 'IgnoredDropTextAlarm', {
      alarmDescription:
        'Kernel log deliveries carry conntrack drop or suppression text that did not count as kernel drops (not-kernel or unreadable): check the CloudWatch agent configuration. The detect function logs a warning naming the log group and stream; see README "Is shipping working?".',
      metric: new cloudwatch.MathExpression({
        expression: 'FILL(notKernel, 0) + FILL(unreadable, 0)',
        usingMetrics: {
          notKernel: ignored(IGNORED_DROP_TEXT_METRICS.notKernel),
          unreadable: ignored(IGNORED_DROP_TEXT_METRICS.unreadable),
        },
        period: Duration.minutes(5),
      }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    ignoredDropText.addAlarmAction(new cloudwatchActions.SnsAction(props.alarmTopic));
  }

  private subscribe(logGroup: logs.ILogGroup, id: string, filterName: string): void {
    new logs.SubscriptionFilter(this, `${id}DropFilter`, {
      logGroup,
      destination: new logsDestinations.LambdaDestination(this.function),
      filterPattern: KERNEL_DROP_FILTER_PATTERN,
      filterName,
    });
    this.subscribedLogGroups.push(logGroup);
  }
}

function uniqueLogGroupNames(names: readonly string[]): string[] {
  const seen = new Set<string>();
  for (const name of names) {
    if (!LOG_GROUP_NAME.test(name)) {
      throw new Error(
        `log group name '${name}' is not valid: 1 to 512 characters from letters, digits and . - _ / #`,
      );
    }
    if (seen.has(name)) throw new Error(`log group name '${name}' is listed twice`);
    seen.add(name);
  }
  return [...seen];
}
