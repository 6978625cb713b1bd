import { gzipSync } from 'node:zlib';
import type { EvidenceBundle } from './bundle.js';
import { toBuffer } from './manifest.js';
import { encodeTar } from './tar.js';

/**
 * An evidence bundle as one archive, in memory: a gzip-compressed tar with every file under
 * `<root>/`. Where the bytes go (a folder, S3) is the caller's business; reading one back is
 * streamed (reader.ts).
 */

/** The bundle's files as bytes, in path order: the order of the archive and of every upload. */
export function sortedBundleFiles(bundle: EvidenceBundle): [string, Buffer][] {
  return [...bundle.files.entries()]
    .map(([path, content]): [string, Buffer] => [path, toBuffer(content)])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The bundle as a gzip-compressed tar with every file under `<root>/`; byte-identical for the same bundle. */
export function packEvidenceBundle(bundle: EvidenceBundle): Buffer {
  const entries = sortedBundleFiles(bundle).map(([path, content]) => ({
    path: `${bundle.root}/${path}`,
    content,
  }));
  return gzipSync(encodeTar(entries, new Date(bundle.manifest.createdAt)), { level: 9 });
}
