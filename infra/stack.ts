import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { ConntrackResponder, type ConntrackResponderProps } from './conntrack-responder.js';

export interface ConntrackResponderStackProps extends StackProps {
  readonly responder?: ConntrackResponderProps;
}

/** The deployable unit: one `ConntrackResponder` and the outputs an operator needs after deploying. */
export class ConntrackResponderStack extends Stack {
  readonly responder: ConntrackResponder;

  constructor(scope: Construct, id: string, props: ConntrackResponderStackProps = {}) {
    super(scope, id, props);
    this.responder = new ConntrackResponder(this, 'Responder', props.responder);
    const outputs: Record<string, { value: string; description: string }> = {
      KernelLogGroups: {
        value: this.responder.kernelLogGroups.map((group) => group.logGroupName).join(','),
        description:
          'Log groups the CloudWatch agent must ship kernel messages to (stream name {instance_id})',
      },
      DocumentNamePrefix: {
        value: this.responder.documents.documentName(''),
        description: 'SSM documents are <prefix><runbook file name>, e.g. <prefix>raise-limits',
      },
      StateMachineArn: {
        value: this.responder.stateMachine.stateMachineArn,
        description: 'Incident workflow',
      },
      IncidentTableName: { value: this.responder.incidentTable.tableName, description: 'Incident records' },
      EvidenceBucketName: {
        value: this.responder.evidenceBucket.bucketName,
        description: 'Evidence bundles',
      },
      NotificationTopicArn: {
        value: this.responder.notificationTopic.topicArn,
        description: 'Subscribe here to hear about incidents',
      },
      FailedEventsQueueUrl: {
        value: this.responder.failedEventsQueue.queueUrl,
        description: 'Kernel log deliveries the detect function could not process',
      },
      ApprovalUrl: {
        value: this.responder.approvalUrl.url.url,
        description:
          'conntrack-responder approve|reject INCIDENT_ID --url <this> (or set CONNTRACK_RESPONDER_APPROVAL_URL)',
      },
    };
    const approverPolicy = this.responder.approvalUrl.approverPolicy;
    if (approverPolicy !== undefined) {
      outputs.ApproverPolicyArn = {
        value: approverPolicy.managedPolicyArn,
        description: 'Attach to the roles, users or groups that may approve or reject from the command line',
      };
    }
    const signing = this.responder.evidenceSigning;
    if (signing !== undefined) {
      outputs.EvidenceSigningKeyArn = {
        value: signing.keyArn,
        description: 'KMS key that signs evidence bundle manifests',
      };
      outputs.EvidenceSigningPublicKey = {
        value: signing.publicKey,
        description:
          'Its public key (base64 DER): save it to a file, then conntrack-responder bundle verify BUNDLE --public-key FILE',
      };
    }
    for (const [name, output] of Object.entries(outputs)) new CfnOutput(this, name, output);
  }
}
