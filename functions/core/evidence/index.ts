export { packEvidenceBundle, sortedBundleFiles } from './archive.js';
export {
  buildEvidenceBundle,
  bundleRootName,
  CHART_PATH,
  type EvidenceBundle,
  POSTMORTEM_PATH,
} from './bundle.js';
export { dropIntervals, renderChart } from './chart.js';
export { estimateImpact, type ImpactEstimate } from './impact.js';
export type * from './incident.js';
export {
  type BundleProblem,
  type BundleVerification,
  buildManifest,
  contentsOf,
  MANIFEST_PATH,
  type Manifest,
  ManifestSchema,
  REQUIRED_FILES,
  sha256,
  type VerifyOptions,
  verifyBundle,
  verifyBundleFiles,
} from './manifest.js';
export { actionResult, renderPostmortem } from './postmortem.js';
export { BundleReadError, printable } from './read-error.js';
export {
  type BundleContents,
  DEFAULT_READ_LIMITS,
  type ReadLimits,
  readBundleArchive,
} from './reader.js';
export {
  checkSignature,
  type ManifestSigner,
  parsePublicKey,
  SIGNATURE_PATH,
  type SigningAlgorithm,
  signManifest,
} from './signature.js';
export { decodeTar, encodeTar, pathProblem, type TarEntry, TarParser } from './tar.js';
export { buildTimeline, type Timeline, type TimelineEvent } from './timeline.js';
