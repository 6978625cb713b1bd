import {
  createHash,
  createPublicKey,
  constants as cryptoConstants,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { z } from 'zod';
import { formatIssues } from '../zod-issues.js';

/**
 * The signed form of a bundle: `signature.json`, beside manifest.json and not listed in it (it
 * signs the manifest), holds a signature over manifest.json made with an asymmetric key, either
 * AWS KMS (`kms:Sign`) or a local key file (the local twin). Anyone with the public key can then
 * check offline, with Node's crypto, that the manifest is the one the responder wrote.
 *
 * What KMS returns, and so what this must accept (AWS KMS API Reference, Sign,
 * https://docs.aws.amazon.com/kms/latest/APIReference/API_Sign.html):
 * - the responder sends the manifest's SHA-256 with MessageType DIGEST: KMS then skips its own
 *   hashing step, so the signature is the same as a signature over the manifest's bytes with
 *   SHA-256, which is how it is verified here (crypto.verify('sha256', manifest, …));
 * - ECDSA_SHA_256 signatures are DER-encoded (ANSI X9.62-2005, RFC 3279 section 2.2.3), not the
 *   raw r||s form WebCrypto uses: verification passes dsaEncoding 'der';
 * - RSASSA_PSS_SHA_256 is PKCS #1 v2.2 section 8.1 with SHA-256 for the digest and for MGF1 and a
 *   256-bit (32-byte) salt (AWS KMS Developer Guide, Asymmetric key specs,
 *   https://docs.aws.amazon.com/kms/latest/developerguide/asymmetric-key-specs.html).
 * GetPublicKey returns the public key as DER SubjectPublicKeyInfo (RFC 5280), base64 in the CLI
 * (https://docs.aws.amazon.com/kms/latest/APIReference/API_GetPublicKey.html): a key file may be
 * that, the raw DER, or PEM.
 */

export const SIGNATURE_PATH = 'signature.json';
export const SIGNATURE_FORMAT = 'conntrack-responder-evidence-signature';

export const SIGNING_ALGORITHMS = ['ECDSA_SHA_256', 'RSASSA_PSS_SHA_256'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

/** The salt KMS uses for RSASSA_PSS_SHA_256: the length of a SHA-256 digest. */
const PSS_SALT_BYTES = 32;

export const SignatureFileSchema = z.strictObject({
  format: z.literal(SIGNATURE_FORMAT),
  formatVersion: z.literal(1),
  /** sha256 of manifest.json: what was signed (as a digest). */
  manifestSha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits'),
  algorithm: z.enum(SIGNING_ALGORITHMS),
  /** The KMS key ARN, or `local:<sha256 of the public key>` for a local key file. */
  keyId: z.string().min(1).max(2048),
  /** The signature, base64. */
  signature: z
    .string()
    .min(1)
    .max(4096)
    .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be base64'),
});

export type SignatureFile = z.infer<typeof SignatureFileSchema>;

/** Signs a manifest. KMS takes the digest; a local key signs the bytes (the same signature). */
export interface ManifestSigner {
  readonly keyId: string;
  readonly algorithm: SigningAlgorithm;
  sign(manifest: Buffer, digest: Buffer): Promise<Buffer>;
}

export async function signManifest(manifest: Buffer, signer: ManifestSigner): Promise<SignatureFile> {
  const digest = createHash('sha256').update(manifest).digest();
  const signature = await signer.sign(manifest, digest);
  return {
    format: SIGNATURE_FORMAT,
    formatVersion: 1,
    manifestSha256: digest.toString('hex'),
    algorithm: signer.algorithm,
    keyId: signer.keyId,
    signature: signature.toString('base64'),
  };
}

export function signatureFileText(file: SignatureFile): string {
  return `${JSON.stringify(file, null, 2)}\n`;
}

/**
 * A public key from a file's bytes: PEM ("-----BEGIN PUBLIC KEY-----"), DER SubjectPublicKeyInfo,
 * or the base64 of that DER (what `aws kms get-public-key --query PublicKey --output text` and the
 * stack's EvidenceSigningPublicKey output print).
 */
export function parsePublicKey(bytes: Buffer): KeyObject {
  const text = bytes.toString('latin1').trim();
  if (text.startsWith('-----BEGIN')) return createPublicKey({ key: text, format: 'pem' });
  if (/^[A-Za-z0-9+/\s]+={0,2}$/.test(text)) {
    return createPublicKey({
      key: Buffer.from(text.replace(/\s+/g, ''), 'base64'),
      format: 'der',
      type: 'spki',
    });
  }
  return createPublicKey({ key: bytes, format: 'der', type: 'spki' });
}

/** sha256 of the key's DER SubjectPublicKeyInfo: how a key is named in messages and local key ids. */
export function keyFingerprint(key: KeyObject): string {
  return createHash('sha256')
    .update(key.export({ format: 'der', type: 'spki' }))
    .digest('hex');
}

/** Which algorithm a public key can check, or why it cannot be used. */
export function algorithmFor(key: KeyObject): SigningAlgorithm | { readonly problem: string } {
  if (key.type !== 'public') return { problem: 'is not a public key' };
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    return curve === 'prime256v1'
      ? 'ECDSA_SHA_256'
      : { problem: `is an EC key on ${curve ?? 'an unknown curve'}, not P-256` };
  }
  if (key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    return bits >= 2048 ? 'RSASSA_PSS_SHA_256' : { problem: `is a ${bits}-bit RSA key (at least 2048 bits)` };
  }
  return { problem: `is a ${key.asymmetricKeyType ?? 'unknown'} key (P-256 ECDSA or RSA-PSS only)` };
}

export type SignatureCheck =
  | {
      readonly status: 'valid';
      readonly algorithm: SigningAlgorithm;
      readonly keyId: string;
      readonly key: string;
    }
  | { readonly status: 'invalid'; readonly rule: string; readonly detail: string };

/**
 * Checks signature.json against manifest.json and the given public key. Every way it can fail has
 * its own rule: unreadable file, digest of another manifest, key of another kind, bad signature.
 */
export function checkSignature(manifest: Buffer, signatureBytes: Buffer, key: KeyObject): SignatureCheck {
  let file: SignatureFile;
  try {
    const parsed = SignatureFileSchema.safeParse(JSON.parse(signatureBytes.toString('utf8')));
    if (!parsed.success) {
      return {
        status: 'invalid',
        rule: 'signature-format',
        detail: `does not match the signature format (${formatIssues(parsed.error, { root: '(top)' })})`,
      };
    }
    file = parsed.data;
  } catch (error) {
    return {
      status: 'invalid',
      rule: 'signature-format',
      detail: `is not valid JSON (${(error as Error).message})`,
    };
  }
  const digest = createHash('sha256').update(manifest).digest('hex');
  if (file.manifestSha256 !== digest) {
    return {
      status: 'invalid',
      rule: 'signature-digest',
      detail: `signs a manifest with sha256 ${file.manifestSha256}, but manifest.json has ${digest}`,
    };
  }
  const usable = algorithmFor(key);
  if (typeof usable !== 'string')
    return { status: 'invalid', rule: 'signature-key', detail: `the public key ${usable.problem}` };
  if (usable !== file.algorithm) {
    return {
      status: 'invalid',
      rule: 'signature-key',
      detail: `the bundle was signed with ${file.algorithm}, but the public key is for ${usable}`,
    };
  }
  const signature = Buffer.from(file.signature, 'base64');
  let valid: boolean;
  try {
    valid =
      file.algorithm === 'ECDSA_SHA_256'
        ? verify('sha256', manifest, { key, dsaEncoding: 'der' }, signature)
        : verify(
            'sha256',
            manifest,
            { key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: PSS_SALT_BYTES },
            signature,
          );
  } catch {
    valid = false;
  }
  if (!valid) {
    return {
      status: 'invalid',
      rule: 'signature-invalid',
      detail: `the ${file.algorithm} signature does not verify with the key ${keyFingerprint(key)}: the manifest was not signed by this key`,
    };
  }
  return { status: 'valid', algorithm: file.algorithm, keyId: file.keyId, key: keyFingerprint(key) };
}

/** The key id a signature file names, for the message when no key was given (null when unreadable). */
export function signatureKeyId(signatureBytes: Buffer): string | null {
  try {
    const parsed = SignatureFileSchema.safeParse(JSON.parse(signatureBytes.toString('utf8')));
    return parsed.success ? parsed.data.keyId : null;
  } catch {
    return null;
  }
}

/**
 * A signer over a private key held locally (the local twin's key file): the same algorithms, the
 * same signature encodings as KMS (DER ECDSA; PSS with a 32-byte salt), so that a bundle the lab
 * signs is checked exactly as a bundle KMS signed. Its key id is `local:<public key sha256>`.
 */
export function privateKeySigner(privateKey: KeyObject): ManifestSigner {
  if (privateKey.type !== 'private') throw new Error('the signing key is not a private key');
  const publicKey = createPublicKey(privateKey);
  const algorithm = algorithmFor(publicKey);
  if (typeof algorithm !== 'string') throw new Error(`the signing key ${algorithm.problem}`);
  return {
    keyId: `local:${keyFingerprint(publicKey)}`,
    algorithm,
    sign: async (manifest) =>
      algorithm === 'ECDSA_SHA_256'
        ? sign('sha256', manifest, { key: privateKey, dsaEncoding: 'der' })
        : sign('sha256', manifest, {
            key: privateKey,
            padding: cryptoConstants.RSA_PKCS1_PSS_PADDING,
            saltLength: PSS_SALT_BYTES,
          }),
  };
}
