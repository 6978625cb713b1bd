import { type KMSClient, SignCommand } from '@aws-sdk/client-kms';
import type { ManifestSigner, SigningAlgorithm } from '../core/evidence/signature.js';

/**
 * Signs an evidence manifest with an asymmetric AWS KMS key: `kms:Sign` over the manifest's SHA-256
 * with MessageType DIGEST (AWS KMS API Reference, Sign,
 * https://docs.aws.amazon.com/kms/latest/APIReference/API_Sign.html: with DIGEST, KMS signs the
 * given digest without hashing it again, so the signature is the one over the manifest's bytes that
 * `bundle verify --public-key` checks). The private key never leaves KMS; the key id recorded in
 * signature.json is the key ARN KMS answers with, so a reviewer knows which key's public key to ask
 * for.
 */
export function kmsManifestSigner(
  client: KMSClient,
  keyId: string,
  algorithm: SigningAlgorithm,
): ManifestSigner {
  let signedBy = keyId;
  return {
    get keyId() {
      return signedBy;
    },
    algorithm,
    async sign(_manifest, digest) {
      const answer = await client.send(
        new SignCommand({
          KeyId: keyId,
          Message: digest,
          MessageType: 'DIGEST',
          SigningAlgorithm: algorithm,
        }),
      );
      if (!answer.Signature || answer.Signature.length === 0)
        throw new Error(`KMS returned no signature for key ${keyId}`);
      if (answer.SigningAlgorithm !== undefined && answer.SigningAlgorithm !== algorithm)
        throw new Error(`KMS signed with ${answer.SigningAlgorithm}, not ${algorithm}, for key ${keyId}`);
      if (answer.KeyId) signedBy = answer.KeyId;
      return Buffer.from(answer.Signature);
    },
  };
}

/** Read in the core; named here too for the callers that know signing by its adapter. */
export { EVIDENCE_SIGNING_ENVIRONMENT, evidenceSigningFrom } from '../core/evidence/signing-settings.js';
