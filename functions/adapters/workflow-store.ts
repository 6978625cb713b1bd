import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { EvidenceReference } from '../core/evidence/reference.js';
import type { Outcome } from '../core/workflow/outcome.js';

/**
 * What the incident workflow keeps in the incidents table, next to the detect function's items:
 *
 * - approvals and incident threads: see `approval-store.ts` (the ChatOps store writes and decides them);
 * - `incident#<incidentId>` / `incident`: the workflow adds `status: closed`, `outcome`,
 *   `closedAt`, the evidence location (`evidence`, `evidenceArchive`), the manifest's sha256
 *   (`evidenceManifestSha256`) and the signing key (`evidenceSignedBy`) when the incident ends;
 *   it never touches detect's counters.
 */

const incidentKey = (incidentId: string) => ({ pk: `incident#${incidentId}`, sk: 'incident' });

export class WorkflowStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /**
   * Marks the incident closed with its outcome. An incident started by hand (no item from detect)
   * is not an error: there is nothing to close.
   */
  /**
   * Closes the record with its outcome and where its evidence is. The manifest's sha256 is kept
   * here (`evidenceManifestSha256`), outside the bucket that holds the bundle, so that a reviewer
   * can check a bundle against it: `bundle verify PATH --digest …` (README, "Verifying a bundle").
   */
  async closeIncident(
    incidentId: string,
    outcome: Outcome,
    closedAt: string,
    evidence: EvidenceReference | null,
  ): Promise<'closed' | 'no-record'> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: incidentKey(incidentId),
          UpdateExpression:
            'SET #status = :closed, outcome = :outcome, closedAt = :closedAt, evidence = :evidence, evidenceArchive = :archive, evidenceManifestSha256 = :digest, evidenceSignedBy = :signedBy',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':closed': 'closed',
            ':outcome': outcome,
            ':closedAt': closedAt,
            ':evidence': evidence?.location ?? null,
            ':archive': evidence?.archive ?? null,
            ':digest': evidence?.manifestSha256 ?? null,
            ':signedBy': evidence?.signedBy ?? null,
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
