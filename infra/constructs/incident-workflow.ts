import { type Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { RunbookDocuments } from './runbook-documents.js';

/** What the workflow's states may use; the definition grants itself access to what it uses. */
export interface IncidentWorkflowResources {
  readonly incidentTable: dynamodb.ITable;
  readonly evidenceBucket: s3.IBucket;
  readonly notificationTopic: sns.ITopic;
  /** The SSM documents; `documentName`/`documentArn` give what SendCommand and its policy need. */
  readonly documents: RunbookDocuments;
}

export interface IncidentWorkflowProps {
  readonly resources: IncidentWorkflowResources;
  readonly logRetention: logs.RetentionDays;
  /** Upper bound of one incident, approval wait and soak included. */
  readonly timeout: Duration;
}

/**
 * The Standard workflow one execution of which handles one incident. Everything it does is logged
 * (level ALL, with execution data) and traced with X-Ray.
 *
 * The states themselves come from `definition()`: for now it only records the incident; the
 * incident workflow (collect, confirm, plan, gate, approve, remediate, verify, notify, bundle)
 * replaces that one method.
 */
export class IncidentWorkflow extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: IncidentWorkflowProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromChainable(this.definition(props.resources)),
      comment: 'Handles one conntrack incident from detection to evidence bundle.',
      timeout: props.timeout,
      tracingEnabled: true,
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
    });
    Validations.of(this.stateMachine.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'X-Ray trace writes and CloudWatch Logs log delivery (CreateLogDelivery and friends) have no resource-level permissions.',
    });
  }

  /** The workflow's states, in JSONPath so that the local interpreter runs the same definition. */
  protected definition(_resources: IncidentWorkflowResources): sfn.IChainable {
    const record = new sfn.Pass(this, 'Record the incident', {
      comment: 'The execution input is the incident opened by the detect function.',
    });
    return record.next(new sfn.Succeed(this, 'Incident recorded'));
  }
}
