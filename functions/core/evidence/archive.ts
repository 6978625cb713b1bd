import { gunzipSync, gzipSync } from 'node:zlib';
import type { EvidenceBundle } from './bundle.js';
import { MANIFEST_PATH, toBuffer } from './manifest.js';
import { decodeTar, encodeTar } from './tar.js';

/**
 * An evidence bundle as one archive and back, in memory: a gzip-compressed tar with every file
 * under `<root>/`. Where the bytes go (a folder, S3) is the caller's business.
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

/**
 * The files of a .tar.gz or .tar archive (`name` is for error messages), keyed by their path
 * relative to the bundle's folder: the archive's top or its single top-level folder holding
 * manifest.json.
 */
export function unpackEvidenceArchive(data: Buffer, name: string): Map<string, Buffer> {
  let tar = data;
  if (data[0] === 0x1f && data[1] === 0x8b) {
    try {
      tar = gunzipSync(data);
    } catch (error) {
      throw new Error(`${name}: not a readable gzip file (${(error as Error).message})`);
    }
  }
  const entries = decodeTar(tar);
  const manifests = entries.filter(
    (entry) => entry.path === MANIFEST_PATH || /^[^/]+\/manifest\.json$/.test(entry.path),
  );
  if (manifests.length > 1) {
    throw new Error(
      `${name}: the archive holds ${manifests.length} manifest.json files: ${manifests.map((entry) => entry.path).join(', ')}`,
    );
  }
  const prefix = manifests[0]?.path.slice(0, -MANIFEST_PATH.length) ?? '';
  const files = new Map<string, Buffer>();
  for (const entry of entries) {
    // Files outside the bundle's folder stay visible (prefixed with ../) so that they are reported as unexpected.
    const path = entry.path.startsWith(prefix) ? entry.path.slice(prefix.length) : `../${entry.path}`;
    if (files.has(path)) throw new Error(`${name}: the archive holds ${entry.path} twice`);
    files.set(path, entry.content);
  }
  return files;
}
