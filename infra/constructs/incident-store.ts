import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { INCIDENT_TABLE } from '../../functions/core/incident/incident.js';

/**
 * The incidents table: one item per instance and kind holds the incident that is currently open
 * (dedupe and cooldown by conditional writes), and short-lived delivery markers make a retried
 * subscription delivery count once. Generic `pk`/`sk` keys leave room for later records
 * (approvals, the fleet circuit breaker) in the same table.
 */
export class IncidentStore extends Construct {
  readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: INCIDENT_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: INCIDENT_TABLE.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // Epoch seconds; incidents and delivery markers expire by it.
      timeToLiveAttribute: INCIDENT_TABLE.ttlAttribute,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      // Incident history is evidence: deleting the stack must not delete it.
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}
