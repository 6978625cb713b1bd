import { z } from 'zod';
import { SIGNING_ALGORITHMS } from './signature.js';

/**
 * Where an incident's evidence bundle went and the digest that anchors it: what the "Write the
 * evidence bundle" step returns into `$.evidence`, what the incident record keeps
 * (`evidence`, `evidenceManifestSha256`, `evidenceSignedBy`), and what the notification, the Slack
 * thread and the lifecycle events carry. The manifest's sha256 is recorded in all of these because
 * whoever can rewrite the bundle in the bucket cannot rewrite them: `bundle verify --digest`
 * checks a bundle against it.
 */
export interface EvidenceReference {
  /** The bundle's folder: s3://bucket/incidents/<id>/ on AWS, a local path in the twin. */
  readonly location: string;
  /** The bundle's .tar.gz. */
  readonly archive: string | null;
  /** sha256 of the bundle's manifest.json. */
  readonly manifestSha256: string;
  /** The signing key (KMS key ARN, or local:<public key sha256>) when the bundle is signed. */
  readonly signedBy: string | null;
}

const EvidenceOutputSchema = z.looseObject({
  location: z.string().min(1),
  archive: z.string().min(1).nullish(),
  manifestSha256: z.string().regex(/^[0-9a-f]{64}$/),
  signature: z.looseObject({ keyId: z.string().min(1), algorithm: z.enum(SIGNING_ALGORITHMS) }).nullish(),
});

/** The evidence step's output (`$.evidence`) as a reference, or null when it has none usable. */
export function evidenceReferenceOf(evidence: unknown): EvidenceReference | null {
  const parsed = EvidenceOutputSchema.safeParse(evidence);
  if (!parsed.success) return null;
  return {
    location: parsed.data.location,
    archive: parsed.data.archive ?? null,
    manifestSha256: parsed.data.manifestSha256,
    signedBy: parsed.data.signature?.keyId ?? null,
  };
}

/** The lines a person reads: where the bundle is and how to check it against this digest. */
export function evidenceLines(reference: EvidenceReference): string[] {
  const name = reference.archive ?? reference.location;
  return [
    `Evidence bundle: ${reference.location}${reference.archive ? ` (archive ${reference.archive})` : ''}`,
    `Manifest sha256: ${reference.manifestSha256}${reference.signedBy ? ` (signed by ${reference.signedBy})` : ''}`,
    `Check it: npx conntrack-responder bundle verify ${basename(name)} --digest ${reference.manifestSha256}`,
  ];
}

function basename(path: string): string {
  return path.replace(/\/+$/, '').split('/').pop() || path;
}
