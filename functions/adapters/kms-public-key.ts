import { GetPublicKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import type { SigningAlgorithm } from '../core/evidence/signature.js';

/**
 * The public key of the evidence signing key, for the stack output a reviewer verifies with
 * (`bundle verify --public-key`). GetPublicKey returns it as DER SubjectPublicKeyInfo bytes
 * (https://docs.aws.amazon.com/kms/latest/APIReference/API_GetPublicKey.html); it is passed on as
 * base64, which `bundle verify --public-key` reads as it is. The key must be one that signs with
 * the configured algorithm: an existing key of another kind fails the deployment here, naming it,
 * instead of failing every incident later.
 */
export async function evidencePublicKey(
  client: KMSClient,
  keyId: string,
  algorithm: SigningAlgorithm,
): Promise<{ readonly keyArn: string; readonly publicKey: string }> {
  const answer = await client.send(new GetPublicKeyCommand({ KeyId: keyId }));
  if (answer.KeyUsage !== 'SIGN_VERIFY')
    throw new Error(`KMS key ${keyId} is an ${answer.KeyUsage ?? 'unknown'} key, not SIGN_VERIFY`);
  if (!(answer.SigningAlgorithms ?? []).includes(algorithm)) {
    throw new Error(
      `KMS key ${keyId} (${answer.KeySpec ?? 'unknown spec'}) cannot sign with ${algorithm}; it signs with ${(answer.SigningAlgorithms ?? []).join(', ') || 'nothing'}`,
    );
  }
  if (!answer.PublicKey || answer.PublicKey.length === 0)
    throw new Error(`KMS returned no public key for ${keyId}`);
  return { keyArn: answer.KeyId ?? keyId, publicKey: Buffer.from(answer.PublicKey).toString('base64') };
}

/** A CloudFormation custom resource request, as far as this function reads it. */
export interface CustomResourceRequest {
  readonly RequestType: 'Create' | 'Update' | 'Delete';
  readonly ResponseURL: string;
  readonly StackId: string;
  readonly RequestId: string;
  readonly LogicalResourceId: string;
  readonly PhysicalResourceId?: string;
  readonly ResourceProperties: Readonly<Record<string, unknown>>;
}

/**
 * Answers CloudFormation: a PUT of the JSON response to the request's pre-signed ResponseURL, with
 * an empty Content-Type (AWS CloudFormation User Guide, Custom resource response objects,
 * https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-responses.html).
 * The reason is cut short: the whole response must stay under 4096 bytes.
 */
export async function answerCloudFormation(
  request: CustomResourceRequest,
  result:
    | {
        readonly status: 'SUCCESS';
        readonly physicalResourceId: string;
        readonly data: Record<string, string>;
      }
    | { readonly status: 'FAILED'; readonly physicalResourceId: string; readonly reason: string },
): Promise<void> {
  const body = JSON.stringify({
    Status: result.status,
    Reason: result.status === 'FAILED' ? result.reason.slice(0, 1000) : undefined,
    PhysicalResourceId: result.physicalResourceId,
    StackId: request.StackId,
    RequestId: request.RequestId,
    LogicalResourceId: request.LogicalResourceId,
    Data: result.status === 'SUCCESS' ? result.data : undefined,
  });
  const response = await fetch(request.ResponseURL, {
    method: 'PUT',
    headers: { 'content-type': '' },
    body,
  });
  if (!response.ok) throw new Error(`CloudFormation refused the response: HTTP ${response.status}`);
}
