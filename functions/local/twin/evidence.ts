import { buildEvidenceBundle, signEvidenceBundle } from '../../core/evidence/bundle.js';
import { evidenceFromWorkflow } from '../../core/evidence/from-workflow.js';
import type { ManifestSigner } from '../../core/evidence/signature.js';
import { writeEvidenceBundle } from '../evidence-writer.js';
import type { EvidenceWriter } from './respond.js';

/**
 * Writes the bundle as `<outDir>/<incident id>/` and `<outDir>/<incident id>.tar.gz`, from the same
 * state-to-evidence mapping the Lambda uses, with the local interpreter's history; signed with
 * `signer` (a local key file) the way the Lambda signs with KMS.
 */
export function localEvidenceWriter(
  report: (line: string) => void = () => {},
  signer?: ManifestSigner,
): EvidenceWriter {
  return async ({ state, history, outDir }) => {
    const evidence = evidenceFromWorkflow({ state, history, closedAt: new Date().toISOString() });
    for (const note of evidence.notes ?? []) report(`evidence: ${note}`);
    const unsigned = buildEvidenceBundle(evidence);
    const bundle = signer ? await signEvidenceBundle(unsigned, signer) : unsigned;
    const written = await writeEvidenceBundle(outDir, bundle);
    return {
      location: written.directory,
      directory: written.directory,
      archive: written.archive,
      manifestSha256: bundle.manifestSha256,
      signature: bundle.signature
        ? { keyId: bundle.signature.keyId, algorithm: bundle.signature.algorithm }
        : null,
    };
  };
}
