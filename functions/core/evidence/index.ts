export { packEvidenceBundle, sortedBundleFiles, unpackEvidenceArchive } from './archive.js';
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
  type BundleVerification,
  buildManifest,
  MANIFEST_PATH,
  type Manifest,
  ManifestSchema,
  sha256,
  verifyBundleFiles,
} from './manifest.js';
export { actionResult, renderPostmortem } from './postmortem.js';
export { decodeTar, encodeTar, type TarEntry } from './tar.js';
export { buildTimeline, type Timeline, type TimelineEvent } from './timeline.js';
