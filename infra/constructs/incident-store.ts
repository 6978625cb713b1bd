import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';

/**
 * The incidents table: one item per instance and kind holds the incident that is currently open
 * (dedupe and cooldown by conditional writes), and short-lived delivery markers make a retried
 * subscription delivery count once. Generic `pk`/`sk` keys leave room for later records
 * (approvals, the fleet circuit breaker) in the same table.
 */
export class IncidentStore extends Construct {
  /** Name of the attribute DynamoDB's TTL deletes expired items by (epoch seconds). */
  static readonly TTL_ATTRIBUTE = 'expiresAt';

  readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: IncidentStore.TTL_ATTRIBUTE,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      // Incident history is evidence: deleting the stack must not delete it.
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}
