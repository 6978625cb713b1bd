import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { MANIFEST_PATH } from './manifest.js';
import { BundleReadError, type ReadLimitName } from './read-error.js';
import { SIGNATURE_PATH } from './signature.js';
import { type TarLimits, TarParser } from './tar.js';

/**
 * Reads an evidence bundle as a stream, in bounded memory: every file is hashed as it passes and
 * only manifest.json and signature.json are kept (each with its own cap). What comes out is what
 * verification needs, whatever the input was: an archive on disk, a pipe, S3 or a folder (the
 * folder walk lives in functions/local/evidence-writer.ts and feeds the same collector).
 */

export interface ReadLimits extends TarLimits {
  /**
   * Uncompressed bytes per compressed byte of a .tar.gz, judged once more than 1 MiB has come out:
   * a real bundle compresses about 6:1 (JSON and tar padding), a gzip bomb about 1000:1.
   */
  readonly maxCompressionRatio: number;
}

/**
 * Defaults: far above any bundle the responder writes (about 70 KB to a few MB: command output
 * is cut by SSM at 24,000 characters, the execution history at 5,000 events), far below what would
 * hurt the machine that checks it.
 */
export const DEFAULT_READ_LIMITS: ReadLimits = {
  maxMemberBytes: 64 * 1024 * 1024,
  maxTotalBytes: 256 * 1024 * 1024,
  maxMembers: 10_000,
  maxCompressionRatio: 100,
};

/** The compression ratio is not judged before this much has been uncompressed. */
const RATIO_GRACE_BYTES = 1024 * 1024;
/** A manifest lists at most maxMembers files of about 150 bytes each; 8 MiB is far more. */
export const MAX_MANIFEST_BYTES = 8 * 1024 * 1024;
export const MAX_SIGNATURE_BYTES = 64 * 1024;
/**
 * Compressed bytes may run ahead of the uncompressed ones by this much at most: deflate never
 * expands data by more than a few bytes per 64 KiB block, so more means bytes after the end of
 * the gzip stream, which zlib skips silently when they are zeros.
 */
const GZIP_SLACK_BYTES = 1024 * 1024;

export interface BundleMember {
  readonly sha256: string;
  readonly bytes: number;
}

export interface BundleContents {
  /** Every regular file by its path relative to the bundle's folder (`../…` for files outside it). */
  readonly members: ReadonlyMap<string, BundleMember>;
  /** The bytes of manifest.json, when there is one. */
  readonly manifest: Buffer | null;
  /** The bytes of signature.json, when there is one. */
  readonly signature: Buffer | null;
}

const KEPT: Readonly<Record<string, { max: number; rule: 'manifest-size' | 'signature-size' }>> = {
  [MANIFEST_PATH]: { max: MAX_MANIFEST_BYTES, rule: 'manifest-size' },
  [SIGNATURE_PATH]: { max: MAX_SIGNATURE_BYTES, rule: 'signature-size' },
};

/** The basename a bundle keeps the bytes of, when the path is at the top or one folder down. */
function keptName(path: string): string | null {
  const parts = path.split('/');
  const base = parts.at(-1) ?? '';
  return parts.length <= 2 && base in KEPT ? base : null;
}

/**
 * Hashes the files of one bundle as they stream past, enforcing the limits on sizes and counts;
 * archive and folder readers both feed it.
 */
export class BundleCollector {
  private readonly hashed = new Map<string, BundleMember>();
  private readonly directories = new Set<string>();
  private readonly kept = new Map<string, Buffer>();
  private total = 0;
  private current: { path: string; hash: Hash; bytes: number; chunks: Buffer[] | null } | null = null;

  constructor(
    private readonly name: string,
    private readonly limits: ReadLimits,
  ) {}

  private limitError(limit: ReadLimitName, message: string): BundleReadError {
    return new BundleReadError(limit, `${this.name}: ${message} (limit ${limit})`, limit);
  }

  private count(path: string): void {
    if (this.hashed.has(path) || this.directories.has(path)) {
      throw new BundleReadError('duplicate-entry', `${this.name}: holds ${JSON.stringify(path)} twice`);
    }
    if (this.hashed.size + this.directories.size >= this.limits.maxMembers) {
      throw this.limitError('maxMembers', `more than ${this.limits.maxMembers} entries`);
    }
  }

  directory(path: string): void {
    this.count(path);
    this.directories.add(path);
  }

  begin(path: string): void {
    this.count(path);
    this.current = { path, hash: createHash('sha256'), bytes: 0, chunks: keptName(path) ? [] : null };
  }

  /**
   * A file's size known before its content (a folder's stat): refused at once when it breaks a
   * limit, instead of after reading up to the limit. The content is still counted as it comes.
   */
  announce(bytes: number): void {
    const current = this.current;
    if (!current) throw new Error('BundleCollector: announce outside a file');
    if (bytes > this.limits.maxMemberBytes) {
      throw this.limitError(
        'maxMemberBytes',
        `${JSON.stringify(current.path)} is ${bytes} bytes, more than ${this.limits.maxMemberBytes}`,
      );
    }
    if (this.total + bytes > this.limits.maxTotalBytes) {
      throw this.limitError(
        'maxTotalBytes',
        `the files add up to more than ${this.limits.maxTotalBytes} bytes`,
      );
    }
  }

  data(chunk: Buffer): void {
    const current = this.current;
    if (!current) throw new Error('BundleCollector: data outside a file');
    current.bytes += chunk.length;
    this.total += chunk.length;
    if (current.bytes > this.limits.maxMemberBytes) {
      throw this.limitError(
        'maxMemberBytes',
        `${JSON.stringify(current.path)} is more than ${this.limits.maxMemberBytes} bytes`,
      );
    }
    if (this.total > this.limits.maxTotalBytes) {
      throw this.limitError(
        'maxTotalBytes',
        `the files add up to more than ${this.limits.maxTotalBytes} bytes`,
      );
    }
    current.hash.update(chunk);
    if (current.chunks) {
      const kept = KEPT[keptName(current.path) ?? ''];
      if (kept && current.bytes > kept.max) {
        throw new BundleReadError(
          kept.rule,
          `${this.name}: ${JSON.stringify(current.path)} is more than ${kept.max} bytes`,
        );
      }
      current.chunks.push(Buffer.from(chunk));
    }
  }

  end(): void {
    const current = this.current;
    if (!current) throw new Error('BundleCollector: end outside a file');
    this.hashed.set(current.path, { sha256: current.hash.digest('hex'), bytes: current.bytes });
    if (current.chunks) this.kept.set(current.path, Buffer.concat(current.chunks));
    this.current = null;
  }

  /**
   * The bundle: its folder is the top of the input, or the single top-level folder that holds
   * manifest.json; files outside it keep their place as `../<path>` so that they are reported.
   */
  contents(): BundleContents {
    const manifests = [...this.hashed.keys()].filter(
      (path) => path === MANIFEST_PATH || /^[^/]+\/manifest\.json$/.test(path),
    );
    if (manifests.length > 1) {
      throw new BundleReadError(
        'several-manifests',
        `${this.name}: holds ${manifests.length} manifest.json files: ${manifests.map((path) => JSON.stringify(path)).join(', ')}`,
      );
    }
    const prefix = manifests[0]?.slice(0, -MANIFEST_PATH.length) ?? '';
    const members = new Map<string, BundleMember>();
    for (const [path, member] of this.hashed) {
      members.set(path.startsWith(prefix) ? path.slice(prefix.length) : `../${path}`, member);
    }
    return {
      members,
      manifest: this.kept.get(`${prefix}${MANIFEST_PATH}`) ?? null,
      signature: this.kept.get(`${prefix}${SIGNATURE_PATH}`) ?? null,
    };
  }
}

/** A chunk as a Buffer over the same memory (Buffer.from(buffer) would copy it). */
function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

const OTHER_FORMATS: ReadonlyArray<[Buffer, string]> = [
  [Buffer.from('PK\u0003\u0004', 'latin1'), 'a zip file'],
  [Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), 'xz-compressed'],
  [Buffer.from('BZh', 'latin1'), 'bzip2-compressed'],
  [Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), 'zstd-compressed'],
];

function notATarHint(first: Buffer): string {
  const match = OTHER_FORMATS.find(([magic]) => first.subarray(0, magic.length).equals(magic));
  return match ? ` (it looks ${match[1]}; a bundle is a .tar.gz or a .tar)` : '';
}

/**
 * Reads a .tar.gz or .tar bundle from a stream of chunks (`name` is for messages). Gzip is
 * recognised by its magic bytes, whatever the file is called. The stream is consumed only as far
 * as needed: any refusal stops reading.
 */
export async function readBundleArchive(
  source: AsyncIterable<Uint8Array>,
  name: string,
  limits: ReadLimits = DEFAULT_READ_LIMITS,
): Promise<BundleContents> {
  const collector = new BundleCollector(name, limits);
  const parser = new TarParser(name, limits, {
    entry: (header) =>
      header.kind === 'directory' ? collector.directory(header.path) : collector.begin(header.path),
    data: (chunk) => collector.data(chunk),
    entryEnd: (header) => {
      if (header.kind === 'file') collector.end();
    },
  });
  const iterator = source[Symbol.asyncIterator]();
  let first = Buffer.alloc(0);
  let done = false;
  while (first.length < 2 && !done) {
    const next = await iterator.next();
    if (next.done) done = true;
    else first = Buffer.concat([first, asBuffer(next.value)]);
  }
  const rest = async function* (): AsyncGenerator<Buffer> {
    if (first.length > 0) yield first;
    if (done) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield asBuffer(next.value);
    }
  };

  const hinted = (error: unknown): unknown =>
    error instanceof BundleReadError && error.rule === 'not-a-tar-archive'
      ? new BundleReadError(error.rule, `${error.message}${notATarHint(first)}`)
      : error;

  try {
    if (first[0] === 0x1f && first[1] === 0x8b) await gunzipInto(rest(), parser, name, limits);
    else {
      for await (const chunk of rest()) parser.write(chunk);
      parser.end();
    }
  } catch (error) {
    await iterator.return?.();
    throw hinted(error);
  }
  return collector.contents();
}

async function gunzipInto(
  compressed: AsyncIterable<Buffer>,
  parser: TarParser,
  name: string,
  limits: ReadLimits,
): Promise<void> {
  let compressedBytes = 0;
  let uncompressedBytes = 0;
  const counted = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of compressed) {
      compressedBytes += chunk.length;
      if (compressedBytes > uncompressedBytes + GZIP_SLACK_BYTES) {
        throw new BundleReadError(
          'data-after-end',
          `${name}: data after the end of the gzip stream (more than ${GZIP_SLACK_BYTES} compressed bytes produce nothing)`,
        );
      }
      yield chunk;
    }
  };
  const gunzip = createGunzip();
  const input = Readable.from(counted());
  input.on('error', (error) => gunzip.destroy(error));
  input.pipe(gunzip);
  try {
    for await (const chunk of gunzip) {
      uncompressedBytes += chunk.length;
      if (
        uncompressedBytes > RATIO_GRACE_BYTES &&
        uncompressedBytes > limits.maxCompressionRatio * compressedBytes
      ) {
        throw new BundleReadError(
          'maxCompressionRatio',
          `${name}: expands more than ${limits.maxCompressionRatio} times (${uncompressedBytes} bytes from ${compressedBytes}; a gzip bomb?) (limit maxCompressionRatio)`,
          'maxCompressionRatio',
        );
      }
      parser.write(chunk as Buffer);
    }
  } catch (error) {
    input.destroy();
    gunzip.destroy();
    if (error instanceof BundleReadError) throw error;
    const code = (error as { code?: string }).code;
    if (code === 'Z_BUF_ERROR')
      throw new BundleReadError('truncated', `${name}: the gzip stream is truncated`);
    throw new BundleReadError(
      'damaged-gzip',
      `${name}: not a readable gzip stream (${(error as Error).message})`,
    );
  }
  parser.end();
  if (gunzip.bytesWritten < compressedBytes) {
    throw new BundleReadError(
      'data-after-end',
      `${name}: ${compressedBytes - gunzip.bytesWritten} byte(s) after the end of the gzip stream`,
    );
  }
}
