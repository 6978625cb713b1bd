import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { EniChangeRecord, EniChangeStore } from '../core/allowance/eni-change.js';
import { INCIDENT_TABLE } from '../core/incident/incident.js';

/**
 * ENI timeout changes in the incidents table: `eni-change#<ChangeId>` / `change`, holding the
 * values in effect before the change (what the rollback restores). Written once with a
 * conditional put before EC2 is asked to change anything, then updated as the change is applied
 * and rolled back. Kept `retentionDays` (the table's TTL attribute `expiresAt`), like incidents.
 */

if (
  INCIDENT_TABLE.partitionKey !== 'pk' ||
  INCIDENT_TABLE.sortKey !== 'sk' ||
  INCIDENT_TABLE.ttlAttribute !== 'expiresAt'
) {
  throw new Error(
    'the ENI change store expects the incidents table keyed by pk/sk with TTL attribute expiresAt',
  );
}

export const ENI_CHANGE_KEY_PREFIX = 'eni-change#';
const key = (changeId: string) => ({ pk: `${ENI_CHANGE_KEY_PREFIX}${changeId}`, sk: 'change' });

export class DynamoEniChangeStore implements EniChangeStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly retentionDays: number,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async get(changeId: string): Promise<EniChangeRecord | null> {
    const result = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: key(changeId), ConsistentRead: true }),
    );
    const item = result.Item as
      | (EniChangeRecord & { pk?: string; sk?: string; expiresAt?: number })
      | undefined;
    if (!item) return null;
    const { pk: _pk, sk: _sk, expiresAt: _ttl, ...record } = item;
    return record;
  }

  async create(record: EniChangeRecord): Promise<boolean> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: this.item(record),
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  async update(record: EniChangeRecord): Promise<void> {
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: this.item(record),
        // Only ever a record created before: never a change that was not saved first.
        ConditionExpression: 'attribute_exists(pk)',
      }),
    );
  }

  private item(record: EniChangeRecord) {
    return {
      ...key(record.changeId),
      ...record,
      expiresAt: Math.floor(this.now().getTime() / 1000) + this.retentionDays * 86_400,
    };
  }
}
