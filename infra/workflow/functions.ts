import { ArnFormat, type CfnElement, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { ENI_CHANGE_KEY_PREFIX } from '../../functions/adapters/eni-change-store.js';
import { EVIDENCE_PREFIX } from '../../functions/adapters/evidence-store.js';
import type { ManagedInstanceTag } from '../../functions/core/defaults.js';
import { WORKFLOW_ENVIRONMENT } from '../../functions/core/workflow/settings.js';
import type { WorkflowFunctionRole } from '../../functions/core/workflow/state-names.js';
import { allowPuttingLifecycleEvents } from '../constructs/lifecycle-events.js';
import { responderFunctionProps } from '../constructs/responder-function.js';

/** The roles this construct makes functions for; the guardrails function is the Guardrails construct's. */
export type WorkflowOwnRole = Exclude<WorkflowFunctionRole, 'guardrails'>;

export interface WorkflowFunctionsProps {
  readonly incidentTable: dynamodb.ITable;
  readonly evidenceBucket: s3.IBucket;
  readonly notificationTopic: sns.ITopic;
  readonly logRetention: logs.RetentionDays;
  /** JSON policy overrides for planning, gating and verifying (docs/policy.md); `{}` = the defaults. */
  readonly policy: Readonly<Record<string, unknown>>;
  /** Between the change and the verification. */
  readonly soak: Duration;
  /** The opt-in tag: the network function may change the idle timeouts only of ENIs that carry it. */
  readonly managedInstanceTag: ManagedInstanceTag;
  /** Days an ENI change record (the values its rollback restores) is kept. */
  readonly incidentRetentionDays: number;
}

interface FunctionSpec {
  readonly entry: string;
  readonly description: string;
  readonly memorySize: number;
  readonly timeout: Duration;
  readonly environment: Record<string, string>;
}

/** Each function's handler, sizing and environment. */
function functionSpecs(props: WorkflowFunctionsProps): Record<WorkflowOwnRole, FunctionSpec> {
  const settings = {
    [WORKFLOW_ENVIRONMENT.policy]: JSON.stringify(props.policy),
    [WORKFLOW_ENVIRONMENT.soakSeconds]: String(props.soak.toSeconds()),
  };
  const table = { [WORKFLOW_ENVIRONMENT.incidentTableName]: props.incidentTable.tableName };
  const topic = { [WORKFLOW_ENVIRONMENT.notificationTopicArn]: props.notificationTopic.topicArn };
  const bucket = { [WORKFLOW_ENVIRONMENT.evidenceBucketName]: props.evidenceBucket.bucketName };
  return {
    assess: {
      entry: 'assess.ts',
      description: 'Confirms a conntrack alert from the host counters and plans the remediation',
      memorySize: 512,
      timeout: Duration.seconds(30),
      environment: settings,
    },
    policyGate: {
      entry: 'policy-gate.ts',
      description: 'Decides which planned changes run now, wait for approval, or are only recorded',
      memorySize: 256,
      timeout: Duration.seconds(15),
      environment: settings,
    },
    requestApproval: {
      entry: 'request-approval.ts',
      description: 'Stores the task token under a single-use approval id and announces the request',
      memorySize: 256,
      timeout: Duration.seconds(30),
      environment: { ...table, ...topic },
    },
    verify: {
      entry: 'verify.ts',
      description: 'Verifies a conntrack fix from the diagnostics before and after the soak',
      memorySize: 512,
      timeout: Duration.seconds(30),
      environment: {},
    },
    announce: {
      entry: 'announce.ts',
      description: 'Puts the lifecycle event of a change applied on the host',
      memorySize: 256,
      timeout: Duration.seconds(15),
      environment: {},
    },
    notify: {
      entry: 'notify.ts',
      description: "Publishes an incident's outcome",
      memorySize: 256,
      // SNS first, then Slack, whose rate limit may be waited out.
      timeout: Duration.seconds(30),
      // Where the evidence went comes from the evidence step's output ($.evidence).
      environment: { ...topic },
    },
    network: {
      entry: 'network.ts',
      description:
        "Describes an instance's network interfaces and changes or restores their idle tracking timeouts (EC2)",
      memorySize: 256,
      // A few EC2 calls, each retried on throttling by the SDK.
      timeout: Duration.seconds(60),
      environment: {
        ...settings,
        ...table,
        [WORKFLOW_ENVIRONMENT.incidentRetentionDays]: String(props.incidentRetentionDays),
        [WORKFLOW_ENVIRONMENT.managedInstanceTagKey]: props.managedInstanceTag.key,
        [WORKFLOW_ENVIRONMENT.managedInstanceTagValue]: props.managedInstanceTag.value,
      },
    },
    writeEvidence: {
      entry: 'write-evidence.ts',
      description: "Writes an incident's evidence bundle to S3 and closes the incident record",
      memorySize: 1024,
      timeout: Duration.seconds(90),
      environment: { ...bucket, ...table },
    },
  };
}

/**
 * The Lambda functions behind the workflow's Task states: thin handlers over the pure core in
 * functions/core/workflow, one role each with only what that function calls.
 */
export class WorkflowFunctions extends Construct {
  readonly functions: Record<WorkflowOwnRole, nodejs.NodejsFunction>;
  readonly roles: Record<WorkflowOwnRole, iam.Role>;

  constructor(scope: Construct, id: string, props: WorkflowFunctionsProps) {
    super(scope, id);
    const functions = {} as Record<WorkflowOwnRole, nodejs.NodejsFunction>;
    const roles = {} as Record<WorkflowOwnRole, iam.Role>;
    const specs = functionSpecs(props);
    for (const name of Object.keys(specs) as WorkflowOwnRole[]) {
      const { fn, role } = this.addFunction(name, specs[name], props.logRetention);
      functions[name] = fn;
      roles[name] = role;
    }
    this.grantLeastPrivilege(roles, props);
    this.functions = functions;
    this.roles = roles;
  }

  /** One function with its own log group and role. */
  private addFunction(
    role: WorkflowOwnRole,
    spec: FunctionSpec,
    logRetention: logs.RetentionDays,
  ): { fn: nodejs.NodejsFunction; role: iam.Role } {
    const logGroup = new logs.LogGroup(this, `${role}Logs`, {
      retention: logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const functionRole = new iam.Role(this, `${role}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `conntrack-responder workflow: ${spec.description}`,
    });
    logGroup.grantWrite(functionRole);
    Validations.of(functionRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'X-Ray trace writes (PutTraceSegments, PutTelemetryRecords) have no resource-level permissions.',
    });

    const fn = new nodejs.NodejsFunction(this, `${role}Function`, {
      ...responderFunctionProps(`functions/handlers/workflow/${spec.entry}`, spec.environment),
      description: spec.description,
      memorySize: spec.memorySize,
      timeout: spec.timeout,
      role: functionRole,
      logGroup,
    });
    Validations.of(fn).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason:
        'Step Functions invokes this function synchronously and catches its errors; there is no event to keep.',
    });
    return { fn, role: functionRole };
  }

  /** Least privilege, per function. */
  private grantLeastPrivilege(roles: Record<WorkflowOwnRole, iam.Role>, props: WorkflowFunctionsProps): void {
    // The lifecycle events each step puts (functions/core/events/lifecycle.ts EVENTS_AFTER_STEP).
    for (const role of ['assess', 'policyGate', 'requestApproval', 'announce', 'verify', 'notify'] as const) {
      allowPuttingLifecycleEvents(roles[role]);
    }
    const approvalItems = new iam.PolicyStatement({
      sid: 'StorePendingApprovals',
      actions: ['dynamodb:PutItem'],
      resources: [props.incidentTable.tableArn],
      // Only approval items: the detect function's incident records are not this function's.
      conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['approval#*'] } },
    });
    roles.requestApproval.addToPrincipalPolicy(approvalItems);
    for (const publisher of [roles.requestApproval, roles.notify]) {
      props.notificationTopic.grantPublish(publisher);
      if (props.notificationTopic.masterKey) {
        Validations.of(publisher).acknowledge({
          id: 'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
          reason:
            "Publishing to the encrypted topic needs the data-key actions of the topic's own key, and only of that key.",
        });
      }
    }
    roles.writeEvidence.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'WriteEvidenceBundles',
        actions: ['s3:PutObject'],
        resources: [props.evidenceBucket.arnForObjects(`${EVIDENCE_PREFIX}*`)],
      }),
    );
    props.evidenceBucket.encryptionKey?.grantEncrypt(roles.writeEvidence);
    roles.writeEvidence.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'CloseIncidents',
        actions: ['dynamodb:UpdateItem'],
        resources: [props.incidentTable.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['incident#*'] } },
      }),
    );
    this.grantNetworkChanges(roles.network, props);
    Validations.of(roles.writeEvidence).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${logicalIdOf(props.evidenceBucket)}.Arn>/${EVIDENCE_PREFIX}*]`,
      reason:
        'Each incident writes its own bundle files under the incidents/ prefix; their names are known only at run time.',
    });
  }

  /**
   * The network function: read the instance's ENIs, its type's default timeouts and its security
   * groups' rules; change the idle timeouts of opted-in ENIs only; keep the values each change
   * replaced. What the Service Authorization Reference for Amazon EC2 says
   * (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html):
   * - DescribeNetworkInterfaces, DescribeInstances, DescribeInstanceTypes and
   *   DescribeSecurityGroupRules list no resource type: they take Resource "*" and no tag condition.
   * - ModifyNetworkInterfaceAttribute requires the network-interface resource type, whose
   *   condition keys include aws:ResourceTag/${TagKey}; instance and security-group are optional
   *   resource types of the same action. The statement names network interfaces (and instances,
   *   should EC2 authorize against the ENI's instance) that carry the opt-in tag, and no security
   *   group: a change to an ENI's security groups (the Groups attribute) is denied to this role, so
   *   security groups can never be changed automatically, whatever the code does.
   */
  private grantNetworkChanges(role: iam.Role, props: WorkflowFunctionsProps): void {
    const stack = Stack.of(this);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'DescribeNetworkInterfaces',
        actions: [
          'ec2:DescribeNetworkInterfaces',
          'ec2:DescribeInstances',
          'ec2:DescribeInstanceTypes',
          'ec2:DescribeSecurityGroupRules',
        ],
        resources: ['*'],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ChangeIdleTimeoutsOfOptedInInterfaces',
        actions: ['ec2:ModifyNetworkInterfaceAttribute'],
        resources: [
          stack.formatArn({ service: 'ec2', resource: 'network-interface', resourceName: '*' }),
          stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' }),
        ],
        conditions: {
          StringEquals: {
            [`aws:ResourceTag/${props.managedInstanceTag.key}`]: props.managedInstanceTag.value,
          },
        },
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'KeepEniChanges',
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem'],
        resources: [props.incidentTable.tableArn],
        conditions: {
          'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${ENI_CHANGE_KEY_PREFIX}*`] },
        },
      }),
    );
    Validations.of(role).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*]',
        reason:
          "The incident's ENIs are known only at run time; the statement allows only ENIs that carry the stack's opt-in tag (aws:ResourceTag condition).",
      },
      {
        id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]',
        reason:
          "The incident's instance is known only at run time; the statement allows only instances that carry the stack's opt-in tag (aws:ResourceTag condition).",
      },
    );
  }

  /**
   * Lets the evidence function read the history of this state machine's executions. A separate
   * policy, because the functions' default policies must not depend on the state machine that
   * depends on the functions.
   */
  allowReadingExecutionHistory(stateMachine: sfn.StateMachine): void {
    const executions = Stack.of(this).formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${stateMachine.stateMachineName}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const policy = new iam.Policy(this, 'ReadExecutionHistory', {
      roles: [this.roles.writeEvidence],
      statements: [
        new iam.PolicyStatement({ actions: ['states:GetExecutionHistory'], resources: [executions] }),
      ],
    });
    Validations.of(policy).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<${logicalIdOf(stateMachine)}.Name>:*]`,
      reason:
        "Each incident is its own execution of this one state machine, named at run time by the incident's id.",
    });
  }
}

/** The logical id of a construct's CloudFormation resource (what cdk-nag findings name). */
export function logicalIdOf(construct: Construct): string {
  return Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement);
}
