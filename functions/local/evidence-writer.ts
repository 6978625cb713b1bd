import { constants, createReadStream } from 'node:fs';
import { lstat, mkdir, open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { packEvidenceBundle, sortedBundleFiles } from '../core/evidence/archive.js';
import type { EvidenceBundle } from '../core/evidence/bundle.js';
import { type BundleVerification, type VerifyOptions, verifyBundle } from '../core/evidence/manifest.js';
import { BundleReadError } from '../core/evidence/read-error.js';
import {
  BundleCollector,
  type BundleContents,
  DEFAULT_READ_LIMITS,
  type ReadLimits,
  readBundleArchive,
} from '../core/evidence/reader.js';
import { assertSafePath, pathProblem } from '../core/evidence/tar.js';

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
 * Reads a bundle from a folder (the one holding manifest.json), a .tar.gz / .tar archive, or `-`
 * (an archive on standard input), streaming: every file is hashed as it is read, and only the
 * manifest and the signature are kept. Anything that is not a regular file or a folder is an
 * error: a bundle holds no links.
 */
export async function readEvidenceBundle(
  path: string,
  limits: ReadLimits = DEFAULT_READ_LIMITS,
  stdin: NodeJS.ReadableStream = process.stdin,
): Promise<BundleContents> {
  if (path === '-') return readBundleArchive(stdin as AsyncIterable<Buffer>, 'standard input', limits);
  const info = await stat(path).catch(() => {
    throw new BundleReadError('no-such-path', `no such file or folder: ${path}`);
  });
  if (info.isDirectory()) return readDirectory(path, limits);
  const stream = createReadStream(path, { highWaterMark: 64 * 1024 });
  try {
    return await readBundleArchive(stream, path, limits);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (!(error instanceof BundleReadError) && code !== undefined) {
      throw new BundleReadError('unreadable', `${path}: cannot be read (${code})`);
    }
    throw error;
  } finally {
    stream.destroy();
  }
}

async function readDirectory(root: string, limits: ReadLimits): Promise<BundleContents> {
  const collector = new BundleCollector(root, limits);
  const walk = async (directory: string): Promise<void> => {
    const entries = await readdir(directory, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const full = join(directory, entry.name);
      const path = relative(root, full).split(sep).join('/');
      const unsafe = pathProblem(path);
      if (unsafe)
        throw new BundleReadError('unsafe-path', `${root}: ${JSON.stringify(path)}: the path ${unsafe}`);
      if (entry.isDirectory()) {
        collector.directory(path);
        await walk(full);
      } else if (entry.isFile()) {
        collector.begin(path);
        // O_NOFOLLOW: a file swapped for a link between the listing and the read is refused too.
        const handle = await open(full, constants.O_RDONLY | constants.O_NOFOLLOW);
        try {
          collector.announce((await handle.stat()).size);
          for await (const chunk of handle.createReadStream({ highWaterMark: 64 * 1024, autoClose: false })) {
            collector.data(chunk as Buffer);
          }
        } finally {
          await handle.close();
        }
        collector.end();
      } else {
        const info = await lstat(full);
        const kind = info.isSymbolicLink()
          ? 'a symbolic link'
          : info.isFIFO()
            ? 'a FIFO'
            : info.isSocket()
              ? 'a socket'
              : info.isCharacterDevice() || info.isBlockDevice()
                ? 'a device'
                : 'not a regular file';
        throw new BundleReadError(
          'entry-type',
          `${root}: ${JSON.stringify(path)} is ${kind}; a bundle holds only regular files and folders`,
        );
      }
    }
  };
  await walk(root);
  return collector.contents();
}

export async function verifyEvidenceBundleAt(
  path: string,
  options: VerifyOptions = {},
  limits: ReadLimits = DEFAULT_READ_LIMITS,
  stdin: NodeJS.ReadableStream = process.stdin,
): Promise<BundleVerification> {
  return verifyBundle(await readEvidenceBundle(path, limits, stdin), options);
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}
