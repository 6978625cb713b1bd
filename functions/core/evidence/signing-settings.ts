import { type Environment, oneOf, optionalText } from '../environment.js';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from './signature.js';

/** The settings of evidence signing in a function's environment (the CDK construct writes them). */
export const EVIDENCE_SIGNING_ENVIRONMENT = {
  keyId: 'EVIDENCE_SIGNING_KEY_ID',
  algorithm: 'EVIDENCE_SIGNING_ALGORITHM',
} as const;

/** The algorithm when none is given: the one of the P-256 key the construct makes itself. */
export const DEFAULT_SIGNING_ALGORITHM: SigningAlgorithm = 'ECDSA_SHA_256';

export interface EvidenceSigningSettings {
  readonly keyId: string;
  readonly algorithm: SigningAlgorithm;
}

/**
 * The signing settings from a function's environment: null when no key is set (bundles are not
 * signed); an unknown algorithm fails at init, naming the variable.
 */
export function evidenceSigningFrom(env: Environment): EvidenceSigningSettings | null {
  const keyId = optionalText(env, EVIDENCE_SIGNING_ENVIRONMENT.keyId);
  if (keyId === undefined) return null;
  const algorithm = oneOf(
    env,
    EVIDENCE_SIGNING_ENVIRONMENT.algorithm,
    SIGNING_ALGORITHMS,
    DEFAULT_SIGNING_ALGORITHM,
  );
  return { keyId, algorithm };
}
