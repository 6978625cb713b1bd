import { Aws, Duration, Fn, Names, RemovalPolicy, Validations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import {
  DEFAULT_MANAGED_INSTANCE_TAG,
  DEFAULTS,
  type ManagedInstanceTag,
} from '../../functions/core/defaults.js';
import { resolvePolicy } from '../../functions/core/plan/policy.js';
import { SOAK_SECONDS_RANGE } from '../../functions/core/workflow/settings.js';
import {
  buildIncidentDefinition,
  DEFAULT_APPROVAL_TIMEOUT,
  DEFAULT_POLLING,
  type IncidentDefinitionProps,
  workflowTimeBudget,
} from '../workflow/definition.js';
import { logicalIdOf, WorkflowFunctions } from '../workflow/functions.js';
import { sendCommandInstancesStatement } from '../workflow/ssm-command.js';
import type { RunbookDocuments } from './runbook-documents.js';

/** What the workflow's states may use; the definition grants itself access to what it uses. */
export interface IncidentWorkflowResources {
  readonly incidentTable: dynamodb.ITable;
  readonly evidenceBucket: s3.IBucket;
  readonly notificationTopic: sns.ITopic;
  /** The SSM documents; `documentName`/`documentArn` give what SendCommand and its policy need. */
  readonly documents: RunbookDocuments;
  /**
   * The guardrails function behind "Check the guardrails", "Take a remediation slot" and "Release
   * the remediation slot" (the Guardrails construct's, shared with its EventBridge rule).
   */
  readonly guardrailsFunction: lambda.IFunction;
}

export interface IncidentWorkflowProps {
  readonly resources: IncidentWorkflowResources;
  readonly logRetention: logs.RetentionDays;
  /** Upper bound of one incident, approval wait and soak included. */
  readonly timeout: Duration;
  /** How the workflow decides and waits; every field has a default. */
  readonly settings?: IncidentWorkflowSettings;
  /**
   * Send commands only to instances carrying this tag (an IAM condition on ssm:SendCommand).
   *
   * @default - any EC2 instance of the account and region (still only the workflow's documents)
   */
  readonly sendCommandTag?: ManagedInstanceTag;
  /**
   * The opt-in tag: ENI timeouts are changed only on ENIs that carry it.
   * @default DEFAULT_MANAGED_INSTANCE_TAG
   */
  readonly managedInstanceTag?: ManagedInstanceTag;
  /**
   * Days an ENI change record is kept in the incidents table.
   * @default 90
   */
  readonly incidentRetentionDays?: number;
}

export interface IncidentWorkflowSettings {
  /**
   * Policy overrides for planning, gating and verifying (functions/core/plan/policy.ts,
   * docs/policy.md): per-kind modes, memory budget, NOTRACK rules, verification thresholds.
   *
   * @default {} - the documented defaults (limit raises within budget automatic, NOTRACK and
   *   timeouts after approval)
   */
  readonly policy?: Readonly<Record<string, unknown>>;
  /**
   * Between the change and the verification.
   *
   * @default Duration.minutes(2)
   */
  readonly soak?: Duration;
  /**
   * How long a change waits for a person before the incident ends with no change, escalated.
   *
   * @default Duration.minutes(30)
   */
  readonly approvalTimeout?: Duration;
  /**
   * How SSM commands are awaited (Wait → GetCommandInvocation loop).
   *
   * @default 3 s between checks, at most 60 checks, 60 s delivery timeout
   */
  readonly polling?: IncidentDefinitionProps['polling'];
}

export const DEFAULT_SOAK = Duration.seconds(DEFAULTS.soakSeconds);
/** Approval waits of more than a week help nobody; the change would be planned on stale diagnostics. */
export const APPROVAL_TIMEOUT_SECONDS_RANGE = { min: 60, max: 7 * 86_400 } as const;
/**
 * Lambda refuses a function whose environment variables take more than 4 KB in all; the policy
 * travels as one of them (beside a few short ones), so it gets most of that.
 */
export const MAX_POLICY_JSON_BYTES = 3_584;

type WorkflowSetting = 'timeout' | keyof IncidentWorkflowSettings;

/**
 * Rejects at synth what would otherwise fail the first incident at run time (a policy the
 * functions refuse) or cut executions short (a timeout that leaves no room for the approval wait,
 * the soak and the steps around them). `nameOf` says how the caller calls each setting.
 */
export function checkWorkflowSettings(
  timeout: Duration,
  settings: IncidentWorkflowSettings,
  nameOf: (setting: WorkflowSetting) => string,
): void {
  const policy = settings.policy ?? {};
  try {
    resolvePolicy(policy);
  } catch (error) {
    throw new Error(`${nameOf('policy')} (docs/policy.md): ${(error as Error).message}`);
  }
  const policyBytes = Buffer.byteLength(JSON.stringify(policy), 'utf8');
  if (policyBytes > MAX_POLICY_JSON_BYTES) {
    throw new Error(
      `${nameOf('policy')} takes ${policyBytes} bytes as JSON; Lambda environment variables hold 4 KB in all, so it may take at most ${MAX_POLICY_JSON_BYTES}`,
    );
  }
  const seconds = (setting: WorkflowSetting, duration: Duration, range: { min: number; max: number }) => {
    const value = duration.toSeconds({ integral: false });
    if (!Number.isInteger(value) || value < range.min || value > range.max) {
      throw new Error(
        `${nameOf(setting)} must be a whole number of seconds from ${range.min} to ${range.max}, got ${duration.toHumanString()}`,
      );
    }
    return value;
  };
  const soak = seconds('soak', settings.soak ?? DEFAULT_SOAK, SOAK_SECONDS_RANGE);
  const approval = seconds(
    'approvalTimeout',
    settings.approvalTimeout ?? DEFAULT_APPROVAL_TIMEOUT,
    APPROVAL_TIMEOUT_SECONDS_RANGE,
  );
  const workflow = timeout.toSeconds({ integral: false });
  const budget = workflowTimeBudget({ ...DEFAULT_POLLING, ...settings.polling });
  const needed = approval + soak + budget.totalSeconds;
  if (workflow <= needed) {
    const minutes = (value: number) => `${Math.ceil(value / 60)} min`;
    throw new Error(
      `${nameOf('timeout')} (${minutes(workflow)}) must exceed ${nameOf('approvalTimeout')} (${minutes(approval)}) + ${nameOf('soak')} (${minutes(soak)}) + ${minutes(budget.totalSeconds)} for the rest of the workflow (up to two remediation-slot waits of ${minutes(budget.slotWaitSeconds / 2)}, ${budget.ssmCommands} SSM commands of up to ${minutes(budget.secondsPerSsmCommand)}, ${budget.lambdaSteps} Lambda steps): make it at least ${Math.floor(needed / 60) + 1} minutes, or shorten the others`,
    );
  }
}

/**
 * Step Functions adds every log group it delivers to to the account's CloudWatch Logs resource
 * policy, which is limited to 5,120 characters; names under `/aws/vendedlogs/` are covered by a
 * prefix instead, so a busy account's policy never fills
 * (https://docs.aws.amazon.com/step-functions/latest/dg/bp-cwl.html,
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/AWS-logs-and-resource-policy.html).
 * The stack's name and the construct's path (with their hash) keep two workflows apart; the
 * stack id's unique part keeps a retained group from clashing with the next deployment's.
 */
export const WORKFLOW_LOG_GROUP_PREFIX = '/aws/vendedlogs/states/';

function workflowLogGroupName(scope: Construct): string {
  const stackUuid = Fn.select(2, Fn.split('/', Aws.STACK_ID));
  return `${WORKFLOW_LOG_GROUP_PREFIX}${Names.uniqueResourceName(scope, { maxLength: 200, separator: '-' })}-${stackUuid}`;
}

/**
 * The Standard workflow one execution of which handles one incident. Everything it does is logged
 * (level ALL, with execution data) and traced with X-Ray.
 *
 * The states come from `infra/workflow/definition.ts` (collect, confirm, plan, gate, approve,
 * remediate, soak, verify, roll back, notify, bundle) and call the functions of
 * `infra/workflow/functions.ts`; the state machine's role is granted exactly what its states call.
 */
export class IncidentWorkflow extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly logGroup: logs.LogGroup;
  readonly functions: WorkflowFunctions;

  constructor(scope: Construct, id: string, props: IncidentWorkflowProps) {
    super(scope, id);
    checkWorkflowSettings(props.timeout, props.settings ?? {}, (field) =>
      field === 'timeout' ? `IncidentWorkflow ${field}` : `IncidentWorkflow settings.${field}`,
    );
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: workflowLogGroupName(this),
      retention: props.logRetention,
      // The executions' full record (level ALL, with their data) outlives the stack; its name
      // carries the stack's id, so a second deployment after a delete makes a new group.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const settings = props.settings ?? {};
    this.functions = new WorkflowFunctions(this, 'Functions', {
      incidentTable: props.resources.incidentTable,
      evidenceBucket: props.resources.evidenceBucket,
      notificationTopic: props.resources.notificationTopic,
      logRetention: props.logRetention,
      policy: settings.policy ?? {},
      soak: settings.soak ?? DEFAULT_SOAK,
      managedInstanceTag: props.managedInstanceTag ?? DEFAULT_MANAGED_INSTANCE_TAG,
      incidentRetentionDays: props.incidentRetentionDays ?? 90,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromChainable(this.definition(props.resources, settings)),
      comment: 'Handles one conntrack incident from detection to evidence bundle.',
      timeout: props.timeout,
      tracingEnabled: true,
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
    });
    this.stateMachine.addToRolePolicy(sendCommandInstancesStatement(this, props.sendCommandTag));
    Validations.of(this.stateMachine.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'X-Ray trace writes and CloudWatch Logs log delivery (CreateLogDelivery and friends) have no resource-level permissions.',
    });
    this.functions.allowReadingExecutionHistory(this.stateMachine);
    Validations.of(this.stateMachine.role).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]',
        reason:
          "SendCommand names the incident's instance, known only at run time (requireManagedInstanceTag narrows it to the opt-in tag); the documents are granted by name, so only our runbooks run.",
      },
      ...[...Object.values(this.functions.functions), props.resources.guardrailsFunction].map((fn) => ({
        id: `AwsSolutions-IAM5[Resource::<${logicalIdOf(fn)}.Arn>:*]`,
        reason:
          "Step Functions' Lambda integration grants the function's versions and aliases too; these are the workflow's own functions.",
      })),
    );
  }

  /** The workflow's states, in JSONPath so that the local interpreter runs the same definition. */
  protected definition(
    resources: IncidentWorkflowResources,
    settings: IncidentWorkflowSettings,
  ): sfn.IChainable {
    const { documents } = resources;
    return buildIncidentDefinition(this, {
      functions: { ...this.functions.functions, guardrails: resources.guardrailsFunction },
      documents: {
        collectDiagnostics: documents.documentName('collect-diagnostics'),
        raiseLimits: documents.documentName('raise-limits'),
        notrackPorts: documents.documentName('notrack-ports'),
        rollback: documents.documentName('rollback'),
      },
      ...(settings.approvalTimeout ? { approvalTimeout: settings.approvalTimeout } : {}),
      ...(settings.polling ? { polling: settings.polling } : {}),
    });
  }
}
