import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { IAM_APPROVAL_ENVIRONMENT, ROLE_ARN_PATTERN } from '../../functions/core/chatops/iam-approval.js';
import { WORKFLOW_ENVIRONMENT } from '../../functions/core/workflow/settings.js';
import { responderFunctionProps } from './responder-function.js';

export interface ApprovalUrlProps {
  /** Approvals live in the incidents table. */
  readonly incidentTable: dynamodb.ITable;
  readonly logRetention: logs.RetentionDays;
  /** IAM roles whose sessions may decide (from the stack's account or another one). */
  readonly approverRoleArns: readonly string[];
  /** Whether to create the approver managed policy (its holders in the stack's account may decide). */
  readonly approverPolicy: boolean;
}

/** Checks the approver props at synth, naming the prop. */
export function validateApproverProps(roleArns: readonly string[], prefix = 'ConntrackResponder'): void {
  for (const arn of roleArns) {
    if (!ROLE_ARN_PATTERN.test(arn)) {
      throw new Error(
        `${prefix} approverRoleArns: '${arn}' is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)`,
      );
    }
  }
  if (new Set(roleArns).size !== roleArns.length) {
    throw new Error(`${prefix} approverRoleArns lists a role twice`);
  }
}

/**
 * Approval without Slack: the approval URL behind `conntrack-responder approve|reject
 * INCIDENT_ID` — a Lambda function URL with AWS_IAM auth, so that Lambda authenticates the
 * caller's SigV4 signature and authorizes the call before the function runs, and the function
 * reads who the caller is from the request context (it never trusts a name in the body).
 *
 * Why a function URL with AWS_IAM rather than the alternatives: a plain `lambda:InvokeFunction`
 * call gives the function no trustworthy caller identity (the payload is whatever the caller
 * wrote), and an identity the CLI reads with `sts:GetCallerIdentity` and sends along proves
 * nothing to the server; a function URL's request context carries the identity Lambda itself
 * authenticated (https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html,
 * https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html). API Gateway with IAM auth
 * would give the same, with one more service, stage and cost and nothing this needs.
 *
 * Who may call it (both permissions, as function URLs created since October 2025 require:
 * `lambda:InvokeFunctionUrl` with `lambda:FunctionUrlAuthType = AWS_IAM`, and
 * `lambda:InvokeFunction` only with `lambda:InvokedViaFunctionUrl = true`, so that neither grant
 * allows a direct Invoke with a made-up request context):
 * - the roles named in `approverRoleArns`, through the function's resource-based policy (a role of
 *   another account also needs the same actions in its own identity policy);
 * - whoever the operator attaches the approver managed policy to (stack output ApproverPolicyArn).
 * The function checks the caller again against the same rule, so that a principal IAM lets through
 * by some broader grant is still refused unless the stack named it.
 */
export class ApprovalUrl extends Construct {
  readonly function: nodejs.NodejsFunction;
  readonly url: lambda.FunctionUrl;
  /** The managed policy to attach to approvers; absent when `approverPolicy` is false. */
  readonly approverPolicy: iam.ManagedPolicy | undefined;

  constructor(scope: Construct, id: string, props: ApprovalUrlProps) {
    super(scope, id);
    validateApproverProps(props.approverRoleArns);

    const functionLogs = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description:
        'conntrack-responder approval URL: decide an approval for an IAM caller and resume the workflow',
    });
    functionLogs.grantWrite(role);
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'X-Ray trace writes (PutTraceSegments, PutTelemetryRecords) have no resource-level permissions.',
    });
    this.function = new nodejs.NodejsFunction(this, 'Function', {
      ...responderFunctionProps('functions/handlers/iam-approval.ts', {
        [WORKFLOW_ENVIRONMENT.incidentTableName]: props.incidentTable.tableName,
        [IAM_APPROVAL_ENVIRONMENT.roleArns]: props.approverRoleArns.join(','),
        [IAM_APPROVAL_ENVIRONMENT.policyHolders]: String(props.approverPolicy),
      }),
      description:
        'Approval URL (AWS_IAM): decides an incident approval for an IAM caller and resumes the workflow',
      memorySize: 256,
      timeout: Duration.seconds(30),
      role,
      logGroup: functionLogs,
    });
    Validations.of(this.function).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason:
        'Requests arrive synchronously through the function URL and are answered; there is no event to keep.',
    });
    this.url = this.function.addFunctionUrl({
      authType: lambda.FunctionUrlAuthType.AWS_IAM,
      invokeMode: lambda.InvokeMode.BUFFERED,
    });
    for (const roleArn of props.approverRoleArns) this.url.grantInvokeUrl(new iam.ArnPrincipal(roleArn));

    if (props.approverPolicy) {
      this.approverPolicy = new iam.ManagedPolicy(this, 'ApproverPolicy', {
        description:
          'conntrack-responder: decide incident approvals from the command line (conntrack-responder approve|reject)',
        statements: [
          new iam.PolicyStatement({
            sid: 'CallTheApprovalUrl',
            actions: ['lambda:InvokeFunctionUrl'],
            resources: [this.function.functionArn],
            conditions: { StringEquals: { 'lambda:FunctionUrlAuthType': 'AWS_IAM' } },
          }),
          new iam.PolicyStatement({
            sid: 'OnlyThroughTheUrl',
            actions: ['lambda:InvokeFunction'],
            resources: [this.function.functionArn],
            conditions: { Bool: { 'lambda:InvokedViaFunctionUrl': 'true' } },
          }),
        ],
      });
    }

    // Read and decide approvals, note the decision on the incident item; nothing else in the table.
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'DecideApprovals',
        actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        resources: [props.incidentTable.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['approval#*', 'incident#*'] } },
      }),
    );
  }

  /**
   * Lets the function resume (only) this workflow's waiting approval tasks. A separate policy: the
   * workflow's approval request names this URL, so the function's own policy must not depend on
   * the state machine.
   */
  allowDecisionsOn(stateMachine: sfn.IStateMachine): void {
    new iam.Policy(this, 'ResumeApprovalTasks', {
      roles: [this.function.role as iam.IRole],
      statements: [
        new iam.PolicyStatement({
          sid: 'ResumeApprovalTasks',
          actions: ['states:SendTaskSuccess'],
          resources: [stateMachine.stateMachineArn],
        }),
      ],
    });
  }
}
