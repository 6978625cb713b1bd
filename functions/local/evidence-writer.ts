import { lstat, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { EvidenceBundle } from '../core/evidence/bundle.js';
import {
  type BundleVerification,
  MANIFEST_PATH,
  toBuffer,
  verifyBundleFiles,
} from '../core/evidence/manifest.js';
import { assertSafePath, decodeTar, encodeTar } from '../core/evidence/tar.js';

/**
 * Writes evidence bundles to disk (a folder and a .tar.gz) and reads them back for verification.
 * The bundle's contents come from the pure builder (functions/core/evidence); this module only
 * moves bytes.
 */

export interface WrittenBundle {
  readonly directory: string;
  readonly archive: string;
}

/** Writes `<parent>/<root>/…` and `<parent>/<root>.tar.gz`. Refuses to overwrite an existing bundle. */
export async function writeEvidenceBundle(parent: string, bundle: EvidenceBundle): Promise<WrittenBundle> {
  const directory = join(parent, bundle.root);
  const archive = `${directory}.tar.gz`;
  for (const path of [directory, archive]) {
    if (await exists(path)) throw new Error(`evidence bundle already exists, not overwriting: ${path}`);
  }
  await mkdir(parent, { recursive: true });
  try {
    for (const [path, content] of sortedEntries(bundle)) {
      assertSafePath(path);
      const target = join(directory, ...path.split('/'));
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, content, { flag: 'wx' });
    }
    await writeFile(archive, packEvidenceBundle(bundle), { flag: 'wx' });
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    await rm(archive, { force: true });
    throw error;
  }
  return { directory, archive };
}

/** The bundle as a gzip-compressed tar with every file under `<root>/`; byte-identical for the same bundle. */
export function packEvidenceBundle(bundle: EvidenceBundle): Buffer {
  const entries = sortedEntries(bundle).map(([path, content]) => ({
    path: `${bundle.root}/${path}`,
    content,
  }));
  return gzipSync(encodeTar(entries, new Date(bundle.manifest.createdAt)), { level: 9 });
}

function sortedEntries(bundle: EvidenceBundle): [string, Buffer][] {
  return [...bundle.files.entries()]
    .map(([path, content]): [string, Buffer] => [path, toBuffer(content)])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Reads a bundle from a folder (the one holding manifest.json) or a .tar.gz / .tar archive, into
 * paths relative to the bundle's folder. Anything that is not a regular file is an error: a
 * bundle holds no links.
 */
export async function readEvidenceBundle(path: string): Promise<Map<string, Buffer>> {
  const info = await stat(path).catch(() => {
    throw new Error(`no such file or folder: ${path}`);
  });
  if (info.isDirectory()) return readDirectory(path);
  return readArchive(await readFile(path), path);
}

async function readDirectory(root: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const walk = async (directory: string): Promise<void> => {
    const entries = await readdir(directory, { withFileTypes: true });
    for (const entry of entries) {
      const full = join(directory, entry.name);
      const path = relative(root, full).split(sep).join('/');
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) files.set(path, await readFile(full));
      else {
        const kind = (await lstat(full)).isSymbolicLink() ? 'a symbolic link' : 'not a regular file';
        throw new Error(`${path} is ${kind}: a bundle holds regular files only`);
      }
    }
  };
  await walk(root);
  return files;
}

function readArchive(data: Buffer, name: string): Map<string, Buffer> {
  let tar = data;
  if (data[0] === 0x1f && data[1] === 0x8b) {
    try {
      tar = gunzipSync(data);
    } catch (error) {
      throw new Error(`${name}: not a readable gzip file (${(error as Error).message})`);
    }
  }
  const entries = decodeTar(tar);
  // The manifest sits at the top of the archive or in its single top-level folder.
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

export async function verifyEvidenceBundleAt(path: string): Promise<BundleVerification> {
  return verifyBundleFiles(await readEvidenceBundle(path));
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}
