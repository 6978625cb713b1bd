import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';

/**
 * The guardrails' records in the incidents table (generic `pk`/`sk` keys), each changed only by
 * single-item conditional writes:
 *
 * - `guardrail#breaker` / `state`: the fleet breaker (status, when and why it tripped, the fleet
 *   view of the episode, the escalation's delivery state, who reset it).
 * - `guardrail#breaker` / `window#<bucket start>`: one attribute `h#<host>` per host that opened an
 *   incident in that time bucket (its first opening there), expiring with TTL.
 * - `guardrail#remediations` / `slots`: the remediation slots (holder → lease end) and a version.
 * - `guardrail#instance#<instance id>` / `last-change`: the last change made on an instance.
 * - on each incident item: `admission` (the breaker's decision for it, written once) and
 *   `topPorts` (from its diagnostics, for the fleet view).
 */

export const GUARDRAIL_KEYS = {
  breaker: { pk: 'guardrail#breaker', sk: 'state' },
  window: (bucket: Date) => ({ pk: 'guardrail#breaker', sk: `window#${bucket.toISOString()}` }),
  slots: { pk: 'guardrail#remediations', sk: 'slots' },
  lastChange: (instanceId: string) => ({ pk: `guardrail#instance#${instanceId}`, sk: 'last-change' }),
  incident: (incidentId: string) => ({ pk: `incident#${incidentId}`, sk: 'incident' }),
} as const;

/** How often a write that lost a race with a concurrent writer is re-decided. */
export const MAX_ATTEMPTS = 25;

export const epochSeconds = (time: Date) => Math.floor(time.getTime() / 1000);

/** Full jitter: a random pause up to a doubling bound, so racing writers spread out. */
export const jitter = (attempt: number) => Math.floor(Math.random() * Math.min(200, 5 * 2 ** attempt));

/** What every guardrail record's store shares: the table, consistent reads and conditional updates. */
export abstract class GuardrailTable {
  constructor(
    protected readonly client: DynamoDBDocumentClient,
    protected readonly tableName: string,
  ) {}

  protected async get(key: { pk: string; sk: string }): Promise<Record<string, unknown> | undefined> {
    const result = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }),
    );
    return result.Item;
  }

  /** A conditional update whose failed condition means "nothing to do". */
  protected async updateIgnoringCondition(
    input: Omit<ConstructorParameters<typeof UpdateCommand>[0], 'TableName'>,
  ): Promise<boolean> {
    try {
      await this.client.send(new UpdateCommand({ TableName: this.tableName, ...input }));
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }
}
