/**
 * "Write the evidence bundle": the bundle to S3, then the incident record closed with its outcome,
 * the bundle's location and its manifest's sha256 (the digest that anchors it outside the bucket).
 * With a signing key configured (the construct's `evidenceSigning`), the manifest is signed with
 * KMS first and signature.json travels in the bundle; if KMS cannot sign, the bundle is still
 * written, unsigned, and the problem is reported (evidence is never lost for want of a signature).
 */

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { executionHistory, putEvidenceBundle } from '../../adapters/evidence-store.js';
import { kmsManifestSigner } from '../../adapters/kms-signer.js';
import { WorkflowStore } from '../../adapters/workflow-store.js';
import { buildEvidenceBundle, type EvidenceBundle, signEvidenceBundle } from '../../core/evidence/bundle.js';
import { evidenceFromWorkflow } from '../../core/evidence/from-workflow.js';
import type { EvidenceReference } from '../../core/evidence/reference.js';
import { writeEvidenceSettings } from '../../core/function-settings.js';
import { logger, tracer } from '../powertools.js';
import { workflowHandler } from './middleware.js';

const {
  evidenceBucketName: bucket,
  incidentTableName: tableName,
  signing,
} = writeEvidenceSettings(process.env);
const s3 = tracer.captureAWSv3Client(new S3Client({}));
const stepFunctions = tracer.captureAWSv3Client(new SFNClient({}));
const signer = signing
  ? kmsManifestSigner(tracer.captureAWSv3Client(new KMSClient({})), signing.keyId, signing.algorithm)
  : null;
const store = new WorkflowStore(
  DynamoDBDocumentClient.from(tracer.captureAWSv3Client(new DynamoDBClient({}))),
  tableName,
);

export const lambdaHandler = async (event: unknown) => {
  const state = (typeof event === 'object' && event !== null ? event : {}) as Record<string, unknown>;
  const executionArn = (state.execution as { id?: unknown } | undefined)?.id;
  const history = typeof executionArn === 'string' ? await executionHistory(stepFunctions, executionArn) : [];
  const closedAt = new Date().toISOString();
  const evidence = evidenceFromWorkflow({ state, history, closedAt });
  const problems = [...(evidence.notes ?? [])];
  for (const problem of problems) logger.warn('Evidence is incomplete', { problem });
  let bundle: EvidenceBundle = buildEvidenceBundle(evidence);
  if (signer) {
    try {
      bundle = await signEvidenceBundle(bundle, signer);
    } catch (error) {
      const problem = `the manifest could not be signed with ${signer.keyId}: ${(error as Error).message}; the bundle is written unsigned`;
      logger.error('Evidence bundle not signed', { problem });
      problems.push(problem);
    }
  }
  const stored = await putEvidenceBundle(s3, bucket, bundle);
  const reference: EvidenceReference = {
    location: stored.location,
    archive: stored.archive,
    manifestSha256: bundle.manifestSha256,
    signedBy: bundle.signature?.keyId ?? null,
  };
  const closed = await store.closeIncident(evidence.incidentId, evidence.outcome, closedAt, reference);
  logger.info('Wrote the evidence bundle', {
    location: stored.location,
    manifestSha256: bundle.manifestSha256,
    objects: stored.objects,
    incident: closed,
  });
  // $.evidence: read by the notification (functions/core/evidence/reference.ts) and the events.
  return {
    location: stored.location,
    archive: stored.archive,
    manifestSha256: bundle.manifestSha256,
    signature: bundle.signature
      ? { keyId: bundle.signature.keyId, algorithm: bundle.signature.algorithm }
      : null,
    incidentRecord: closed,
    problems,
  };
};

export const handler = workflowHandler(lambdaHandler);
