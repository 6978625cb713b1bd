import { KMSClient } from '@aws-sdk/client-kms';
import {
  answerCloudFormation,
  type CustomResourceRequest,
  evidencePublicKey,
} from '../adapters/kms-public-key.js';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../core/evidence/signature.js';
import { logger } from './powertools.js';

/**
 * The custom resource behind the stack output EvidenceSigningPublicKey: CloudFormation cannot read
 * a KMS public key itself, and the generic AwsCustomResource decodes binary answers as UTF-8 text,
 * which mangles the DER key (aws-cdk issue 19065), so this small function calls GetPublicKey and
 * hands CloudFormation the key as base64. Delete has nothing to undo.
 */
const kms = new KMSClient({});

export const handler = async (request: CustomResourceRequest): Promise<void> => {
  const physicalResourceId = request.PhysicalResourceId ?? `evidence-public-key-${request.LogicalResourceId}`;
  if (request.RequestType === 'Delete') {
    await answerCloudFormation(request, { status: 'SUCCESS', physicalResourceId, data: {} });
    return;
  }
  try {
    const keyId = String(request.ResourceProperties.KeyId ?? '');
    const algorithm = String(request.ResourceProperties.SigningAlgorithm ?? '');
    if (!(SIGNING_ALGORITHMS as readonly string[]).includes(algorithm))
      throw new Error(`SigningAlgorithm must be one of ${SIGNING_ALGORITHMS.join(', ')}, got '${algorithm}'`);
    const key = await evidencePublicKey(kms, keyId, algorithm as SigningAlgorithm);
    await answerCloudFormation(request, {
      status: 'SUCCESS',
      physicalResourceId: key.keyArn,
      data: { PublicKey: key.publicKey, KeyArn: key.keyArn },
    });
  } catch (error) {
    logger.error('Could not read the evidence signing public key', { error });
    await answerCloudFormation(request, {
      status: 'FAILED',
      physicalResourceId,
      reason: (error as Error).message,
    });
  }
};
