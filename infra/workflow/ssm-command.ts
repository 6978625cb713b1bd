import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import type { Construct } from 'constructs';
import { INVOCATION_DOES_NOT_EXIST, WORKFLOW_ERROR } from '../../functions/core/workflow/state-names.js';

/** An SSM Command document as the workflow knows it: the repository's file name and its name in AWS. */
export interface WorkflowDocument {
  /** File name under runbooks/ssm without `.yaml` (what plans and the local executor use). */
  readonly logicalName: string;
  /** The document's name in SSM (a plain string or a token from the SSM documents construct). */
  readonly awsName: string;
}

export interface SsmPolling {
  /** Pause between two GetCommandInvocation calls. */
  readonly intervalSeconds: number;
  /** Checks before the command counts as timed out (bounds the loop: intervalSeconds × maxPolls). */
  readonly maxPolls: number;
  /** SendCommand TimeoutSeconds: how long SSM may wait for the agent to pick the command up (≥ 30). */
  readonly deliveryTimeoutSeconds: number;
}

export interface SsmCommandLoopProps {
  /** Prefix of every state name in the loop, e.g. "Collect diagnostics". */
  readonly label: string;
  /** One document, or several chosen by `$.request.document` (the Map over remediation actions). */
  readonly documents: readonly WorkflowDocument[];
  readonly polling: SsmPolling;
}

const RUNNING_STATUSES = ['Pending', 'InProgress', 'Delayed'] as const;

/**
 * The instances the workflow may send its documents to: every EC2 instance of the account and
 * region, or with `tag` only those carrying it. Run Command checks `ssm:resourceTag/<key>` against
 * the instance's tags on the instance resource
 * (https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-rc-setting-up-cmdsec.html);
 * the condition sits in a statement of its own because the documents carry no such tag.
 */
export function sendCommandInstancesStatement(
  scope: Construct,
  tag?: { readonly key: string; readonly value: string },
): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: tag === undefined ? 'SendCommandToInstances' : 'SendCommandToManagedInstances',
    actions: ['ssm:SendCommand'],
    resources: [Stack.of(scope).formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' })],
    ...(tag === undefined
      ? {}
      : { conditions: { StringEquals: { [`ssm:resourceTag/${tag.key}`]: tag.value } } }),
  });
}

export function documentArn(scope: Construct, awsName: string): string {
  return Stack.of(scope).formatArn({ service: 'ssm', resource: 'document', resourceName: awsName });
}

/**
 * Runs one SSM command on the instance and waits for it without a Lambda sleeping: SendCommand,
 * then Wait → GetCommandInvocation → Choice until the invocation leaves Pending/InProgress/Delayed
 * or the poll budget is spent.
 *
 * Input of the first state: `{ instanceId, incidentId, parameters, request, polls: { count: 0 } }`
 * where `parameters` is the document's parameters in SSM's `{ Name: [value] }` form and `request`
 * is carried through untouched (with `request.document` choosing among several documents).
 * Output on success: `{ request, command: { commandId }, invocation: { status, statusDetails,
 * responseCode, stdout, stderr } }`. A failed command ends in a Fail state named
 * `SsmCommandFailed` (cause: status, exit code and stderr), a command that outlives the budget in
 * `SsmCommandTimedOut`; the enclosing Parallel or Map state catches both.
 */
export function ssmCommandLoop(scope: Construct, props: SsmCommandLoopProps): sfn.IChainable {
  const { label, documents, polling } = props;
  if (documents.length === 0) throw new Error(`${label}: an SSM command loop needs at least one document`);
  if (polling.deliveryTimeoutSeconds < 30) {
    throw new Error(
      `${label}: SendCommand TimeoutSeconds must be at least 30, got ${polling.deliveryTimeoutSeconds}`,
    );
  }

  const wait = new sfn.Wait(scope, `${label}: wait`, {
    time: sfn.WaitTime.duration(Duration.seconds(polling.intervalSeconds)),
  });

  const getInvocation = new tasks.CallAwsService(scope, `${label}: get the result`, {
    service: 'ssm',
    action: 'getCommandInvocation',
    // GetCommandInvocation supports no resource-level permissions.
    iamResources: ['*'],
    iamAction: 'ssm:GetCommandInvocation',
    parameters: {
      CommandId: sfn.JsonPath.stringAt('$.command.commandId'),
      InstanceId: sfn.JsonPath.stringAt('$.instanceId'),
    },
    resultSelector: {
      status: sfn.JsonPath.stringAt('$.Status'),
      statusDetails: sfn.JsonPath.stringAt('$.StatusDetails'),
      responseCode: sfn.JsonPath.numberAt('$.ResponseCode'),
      stdout: sfn.JsonPath.stringAt('$.StandardOutputContent'),
      stderr: sfn.JsonPath.stringAt('$.StandardErrorContent'),
    },
    resultPath: '$.invocation',
  });
  // Right after SendCommand the invocation may not exist yet: that race is expected, not a failure.
  getInvocation.addRetry({
    errors: [INVOCATION_DOES_NOT_EXIST],
    interval: Duration.seconds(1),
    maxAttempts: 5,
    backoffRate: 2,
  });
  getInvocation.addRetry(throttlingRetry());

  const countPoll = new sfn.Pass(scope, `${label}: count the check`, {
    parameters: { count: sfn.JsonPath.mathAdd(sfn.JsonPath.numberAt('$.polls.count'), 1) },
    resultPath: '$.polls',
  });

  const succeeded = new sfn.Pass(scope, `${label}: succeeded`, {
    parameters: {
      request: sfn.JsonPath.objectAt('$.request'),
      command: sfn.JsonPath.objectAt('$.command'),
      invocation: sfn.JsonPath.objectAt('$.invocation'),
    },
  });

  const describeFailure = new sfn.Pass(scope, `${label}: describe the failure`, {
    parameters: {
      cause: sfn.JsonPath.format(
        `${label} on {}: {} ({}), exit code {}: {}`,
        sfn.JsonPath.stringAt('$.instanceId'),
        sfn.JsonPath.stringAt('$.invocation.status'),
        sfn.JsonPath.stringAt('$.invocation.statusDetails'),
        sfn.JsonPath.stringAt('$.invocation.responseCode'),
        sfn.JsonPath.stringAt('$.invocation.stderr'),
      ),
    },
    resultPath: '$.failure',
  });
  const failed = new sfn.Fail(scope, `${label}: failed`, {
    error: WORKFLOW_ERROR.commandFailed,
    causePath: '$.failure.cause',
  });
  const timedOut = new sfn.Fail(scope, `${label}: timed out`, {
    error: WORKFLOW_ERROR.commandTimedOut,
    cause: `${label} did not finish within ${polling.maxPolls} checks ${polling.intervalSeconds} s apart`,
  });

  const stillRunning = sfn.Condition.or(
    ...RUNNING_STATUSES.map((status) => sfn.Condition.stringEquals('$.invocation.status', status)),
  );
  const finished = new sfn.Choice(scope, `${label}: finished?`)
    .when(sfn.Condition.stringEquals('$.invocation.status', 'Success'), succeeded)
    .when(
      sfn.Condition.and(stillRunning, sfn.Condition.numberLessThan('$.polls.count', polling.maxPolls)),
      wait,
    )
    .when(stillRunning, timedOut)
    .otherwise(describeFailure.next(failed));

  wait.next(getInvocation).next(countPoll).next(finished);

  const sends = documents.map((document) => {
    const send = new tasks.CallAwsService(scope, `${label}: send ${document.logicalName}`, {
      service: 'ssm',
      action: 'sendCommand',
      iamAction: 'ssm:SendCommand',
      // SendCommand is authorised on both the document and the instance: this grants the
      // document; the instances are granted once by the caller (sendCommandInstancesStatement),
      // where an instance tag condition can narrow them without applying to the document.
      iamResources: [documentArn(scope, document.awsName)],
      parameters: {
        DocumentName: document.awsName,
        InstanceIds: sfn.JsonPath.array(sfn.JsonPath.stringAt('$.instanceId')),
        Parameters: sfn.JsonPath.objectAt('$.parameters'),
        TimeoutSeconds: polling.deliveryTimeoutSeconds,
        Comment: sfn.JsonPath.format(
          'conntrack-responder incident {}',
          sfn.JsonPath.stringAt('$.incidentId'),
        ),
      },
      resultSelector: { commandId: sfn.JsonPath.stringAt('$.Command.CommandId') },
      resultPath: '$.command',
    });
    send.addRetry(throttlingRetry());
    send.next(wait);
    return { document, send };
  });

  const [only] = sends;
  if (sends.length === 1 && only !== undefined) return only.send;

  const unknown = new sfn.Fail(scope, `${label}: unknown document`, {
    error: WORKFLOW_ERROR.unknownDocument,
    cause: `${label}: the action names a document this workflow may not run`,
  });
  const choose = new sfn.Choice(scope, `${label}: which document?`);
  for (const { document, send } of sends) {
    choose.when(sfn.Condition.stringEquals('$.request.document', document.logicalName), send);
  }
  return choose.otherwise(unknown);
}

/** Throttling and transient service errors are retried with backoff and jitter, never dropped. */
export function throttlingRetry(): sfn.RetryProps {
  return {
    errors: ['Ssm.ThrottlingException', 'Ssm.InternalServerErrorException'],
    interval: Duration.seconds(2),
    maxAttempts: 6,
    backoffRate: 2,
    jitterStrategy: sfn.JitterType.FULL,
  };
}
