import { lstat, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { packEvidenceBundle, sortedBundleFiles, unpackEvidenceArchive } from '../core/evidence/archive.js';
import type { EvidenceBundle } from '../core/evidence/bundle.js';
import { type BundleVerification, verifyBundleFiles } from '../core/evidence/manifest.js';
import { assertSafePath } from '../core/evidence/tar.js';

/**
 * Writes evidence bundles to disk (a folder and a .tar.gz) and reads them back for verification.
 * The bundle's contents and its archive come from the pure core (functions/core/evidence); this
 * module only moves bytes.
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
    for (const [path, content] of sortedBundleFiles(bundle)) {
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
  return unpackEvidenceArchive(await readFile(path), path);
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
