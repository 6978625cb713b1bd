import { type KMSClient, SignCommand } from '@aws-sdk/client-kms';
import {
  type ManifestSigner,
  SIGNING_ALGORITHMS,
  type SigningAlgorithm,
} from '../core/evidence/signature.js';

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

/** The settings of evidence signing in a function's environment (the CDK construct writes them). */
export const EVIDENCE_SIGNING_ENVIRONMENT = {
  keyId: 'EVIDENCE_SIGNING_KEY_ID',
  algorithm: 'EVIDENCE_SIGNING_ALGORITHM',
} as const;

/**
 * The signing settings from a function's environment: null when no key is set (bundles are not
 * signed); an unknown algorithm fails at init, naming the variable.
 */
export function evidenceSigningFrom(
  env: Readonly<Record<string, string | undefined>>,
): { readonly keyId: string; readonly algorithm: SigningAlgorithm } | null {
  const keyId = env[EVIDENCE_SIGNING_ENVIRONMENT.keyId]?.trim() ?? '';
  if (keyId === '') return null;
  const algorithm = env[EVIDENCE_SIGNING_ENVIRONMENT.algorithm]?.trim() || 'ECDSA_SHA_256';
  if (!(SIGNING_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw new Error(
      `${EVIDENCE_SIGNING_ENVIRONMENT.algorithm} must be one of ${SIGNING_ALGORITHMS.join(', ')}, got '${algorithm}'`,
    );
  }
  return { keyId, algorithm: algorithm as SigningAlgorithm };
}
