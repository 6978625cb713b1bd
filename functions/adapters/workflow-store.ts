import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { PendingApproval } from '../core/workflow/approval.js';
import type { Outcome } from '../core/workflow/outcome.js';

/**
 * What the incident workflow keeps in the incidents table, next to the detect function's items:
 *
 * - `approval#<approvalId>` / `approval`: a pending approval and its Step Functions task token.
 *   The token never leaves this item; the Slack endpoint (issue 5) finds it by the single-use
 *   approval id from the button and flips `status` from `pending` exactly once (conditional write).
 * - `incident#<incidentId>` / `incident`: the workflow adds `status: closed`, `outcome`,
 *   `closedAt` and the evidence location when the incident ends; it never touches detect's counters.
 */

/** DynamoDB's TTL removes an approval record this long after it expired (kept for the audit trail). */
export const APPROVAL_RECORD_RETENTION_SECONDS = 30 * 24 * 3600;

export const approvalKey = (approvalId: string) => ({ pk: `approval#${approvalId}`, sk: 'approval' });
const incidentKey = (incidentId: string) => ({ pk: `incident#${incidentId}`, sk: 'incident' });

export class WorkflowStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** Stores a new pending approval; an approval id is never reused (the write fails if it exists). */
  async putPendingApproval(pending: PendingApproval): Promise<void> {
    const { request, taskToken } = pending;
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          ...approvalKey(request.approvalId),
          ...request,
          status: 'pending',
          taskToken,
          // `expiresAt` is the table's TTL attribute (epoch seconds); the ISO expiry is `approvalExpiresAt`.
          approvalExpiresAt: request.expiresAt,
          expiresAt: Math.floor(Date.parse(request.expiresAt) / 1000) + APPROVAL_RECORD_RETENTION_SECONDS,
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  /**
   * Marks the incident closed with its outcome. An incident started by hand (no item from detect)
   * is not an error: there is nothing to close.
   */
  async closeIncident(
    incidentId: string,
    outcome: Outcome,
    closedAt: string,
    evidence: string | null,
  ): Promise<'closed' | 'no-record'> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: incidentKey(incidentId),
          UpdateExpression:
            'SET #status = :closed, outcome = :outcome, closedAt = :closedAt, evidence = :evidence',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':closed': 'closed',
            ':outcome': outcome,
            ':closedAt': closedAt,
            ':evidence': evidence,
          },
        }),
      );
      return 'closed';
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return 'no-record';
      throw error;
    }
  }
}
