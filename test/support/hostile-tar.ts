import { gzipSync } from 'node:zlib';
import { packEvidenceBundle, sortedBundleFiles } from '../../functions/core/evidence/archive.js';
import { buildEvidenceBundle, type EvidenceBundle } from '../../functions/core/evidence/bundle.js';
import { buildManifest, MANIFEST_PATH, toBuffer } from '../../functions/core/evidence/manifest.js';
import { SIGNATURE_PATH } from '../../functions/core/evidence/signature.js';
import { encodeTar } from '../../functions/core/evidence/tar.js';
import { remediatedIncident } from './evidence-builder.js';

/**
 * Builders for hostile tar archives, written byte by byte here so that every case is made by the
 * test itself (no checked-in binaries): headers of any type, pax and GNU long-name records, data
 * after the end marker, damaged padding.
 */

export const BLOCK = 512;

export interface HeaderFields {
  readonly path: string;
  readonly size?: number;
  /** Entry type flag: '0' file, '5' directory, '1' hard link, '2' symlink, '6' FIFO, 'x' pax, 'L' GNU long name … */
  readonly type?: string;
  readonly linkname?: string;
  /** 'posix' writes 'ustar\0' '00', 'gnu' writes 'ustar  \0'. */
  readonly magic?: 'posix' | 'gnu' | 'none';
}

export function fixChecksum(header: Buffer): Buffer {
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (let index = 0; index < BLOCK; index++) sum += header[index] ?? 0;
  header.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'ascii');
  return header;
}

export function header(fields: HeaderFields): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(fields.path, 0, 100, 'utf8');
  block.write('0000644\u0000', 100, 'ascii');
  block.write('0000000\u0000', 108, 'ascii');
  block.write('0000000\u0000', 116, 'ascii');
  block.write(`${(fields.size ?? 0).toString(8).padStart(11, '0')}\u0000`, 124, 'ascii');
  block.write('00000000000\u0000', 136, 'ascii');
  block.write(fields.type ?? '0', 156, 1, 'latin1');
  if (fields.linkname) block.write(fields.linkname, 157, 100, 'utf8');
  const magic = fields.magic ?? 'posix';
  if (magic === 'posix') block.write('ustar\u000000', 257, 'latin1');
  if (magic === 'gnu') block.write('ustar  \u0000', 257, 'latin1');
  return fixChecksum(block);
}

export function padded(content: Buffer): Buffer {
  const padding = (BLOCK - (content.length % BLOCK)) % BLOCK;
  return Buffer.concat([content, Buffer.alloc(padding)]);
}

export function file(path: string, content: string | Buffer, type = '0'): Buffer {
  const bytes = Buffer.from(content);
  return Buffer.concat([header({ path, size: bytes.length, type }), padded(bytes)]);
}

/** One pax record: "<length> <key>=<value>\n", the length counting itself. */
export function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body);
  while (String(length).length + Buffer.byteLength(body) !== length)
    length = String(length).length + Buffer.byteLength(body);
  return `${length}${body}`;
}

export function paxHeader(records: Readonly<Record<string, string>>, type = 'x'): Buffer {
  const data = Buffer.from(
    Object.entries(records)
      .map(([key, value]) => paxRecord(key, value))
      .join(''),
  );
  return Buffer.concat([header({ path: 'PaxHeaders/x', size: data.length, type }), padded(data)]);
}

export function gnuLongName(path: string): Buffer {
  const data = Buffer.from(`${path}\u0000`);
  return Buffer.concat([
    header({ path: '././@LongLink', size: data.length, type: 'L', magic: 'gnu' }),
    padded(data),
  ]);
}

/** The end-of-archive marker (two zero blocks) and zero padding to a 10240-byte record. */
export function endOfArchive(length: number): Buffer {
  const withMarker = length + 2 * BLOCK;
  return Buffer.alloc(Math.ceil(withMarker / 10240) * 10240 - length);
}

export function archive(...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([body, endOfArchive(body.length)]);
}

/** A genuine bundle and its files, as the responder writes it. */
export function genuineBundle(): EvidenceBundle {
  return buildEvidenceBundle(remediatedIncident());
}

/** The bundle's entries as `<root>/<path>` tar entries, for rebuilding archives with changes. */
export function bundleEntries(bundle: EvidenceBundle = genuineBundle()): { path: string; content: Buffer }[] {
  return sortedBundleFiles(bundle).map(([path, content]) => ({ path: `${bundle.root}/${path}`, content }));
}

/** A .tar.gz of the given entries, as packEvidenceBundle writes them. */
export function targz(entries: readonly { path: string; content: Buffer }[]): Buffer {
  return gzipSync(encodeTar(entries, new Date(0)));
}

/**
 * The bundle's files with `change` applied, and the manifest rebuilt over the result: what a
 * tamperer who re-hashes the manifest makes. The manifest keeps the original header fields.
 */
export function rehashed(
  bundle: EvidenceBundle,
  change: (files: Map<string, Buffer>) => void,
): Map<string, Buffer> {
  const files = new Map([...bundle.files].map(([path, content]) => [path, toBuffer(content)]));
  change(files);
  files.delete(MANIFEST_PATH);
  // A tamperer drops the old signature with the old manifest (a test may put it back).
  files.delete(SIGNATURE_PATH);
  const { format: _format, formatVersion: _version, files: _files, ...header } = bundle.manifest;
  const manifest = buildManifest(header, files);
  files.set(MANIFEST_PATH, Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`));
  return files;
}

export { packEvidenceBundle };
