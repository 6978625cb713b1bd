/**
 * A minimal POSIX ustar writer and reader, enough for evidence bundles: regular files and
 * directories, deterministic output (fixed mtime, owner 0, fixed modes), paths up to 255 bytes.
 * The reader accepts what the writer and common `tar` implementations produce (ustar and GNU
 * headers, pax `path` records) and refuses anything else, including links and paths that would
 * escape the extraction folder.
 */

const BLOCK = 512;

export interface TarEntry {
  readonly path: string;
  readonly content: Buffer;
}

export function encodeTar(entries: readonly TarEntry[], mtime: Date): Buffer {
  const seconds = Math.floor(mtime.getTime() / 1000);
  const blocks: Buffer[] = [];
  const directories = new Set<string>();
  for (const entry of entries) {
    assertSafePath(entry.path);
    const parts = entry.path.split('/');
    for (let depth = 1; depth < parts.length; depth++) {
      const directory = `${parts.slice(0, depth).join('/')}/`;
      if (directories.has(directory)) continue;
      directories.add(directory);
      blocks.push(header(directory, 0, seconds, '5', 0o755));
    }
    blocks.push(header(entry.path, entry.content.length, seconds, '0', 0o644));
    blocks.push(entry.content);
    const padding = (BLOCK - (entry.content.length % BLOCK)) % BLOCK;
    if (padding > 0) blocks.push(Buffer.alloc(padding));
  }
  blocks.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(blocks);
}

function header(path: string, size: number, mtime: number, type: '0' | '5', mode: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  const { name, prefix } = splitPath(path);
  block.write(name, 0, 100, 'utf8');
  writeOctal(block, mode, 100, 8);
  writeOctal(block, 0, 108, 8);
  writeOctal(block, 0, 116, 8);
  writeOctal(block, size, 124, 12);
  writeOctal(block, mtime, 136, 12);
  block.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  block.write(type, 156, 1, 'ascii');
  block.write('ustar\u000000', 257, 8, 'binary');
  block.write(prefix, 345, 155, 'utf8');
  const checksum = block.reduce((sum, byte) => sum + byte, 0);
  block.write(`${checksum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'ascii');
  return block;
}

function splitPath(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  // ustar: prefix (<= 155 bytes) + '/' + name (<= 100 bytes)
  for (let index = path.indexOf('/'); index !== -1; index = path.indexOf('/', index + 1)) {
    const prefix = path.slice(0, index);
    const name = path.slice(index + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name.length > 0) {
      return { name, prefix };
    }
  }
  throw new Error(`tar: path too long for a ustar header: ${path}`);
}

function writeOctal(block: Buffer, value: number, offset: number, length: number): void {
  const text = value.toString(8).padStart(length - 1, '0');
  if (text.length > length - 1) throw new Error(`tar: value ${value} does not fit in ${length} bytes`);
  block.write(`${text}\u0000`, offset, length, 'ascii');
}

export function decodeTar(archive: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  let offset = 0;
  let pendingPath: string | undefined;
  while (offset + BLOCK <= archive.length) {
    const block = archive.subarray(offset, offset + BLOCK);
    if (block.every((byte) => byte === 0)) break;
    verifyChecksum(block, offset);
    const type = String.fromCharCode(block[156] ?? 0);
    const size = readOctal(block, 124, 12, offset);
    const dataStart = offset + BLOCK;
    const dataEnd = dataStart + size;
    if (dataEnd > archive.length) throw new Error(`tar: entry at byte ${offset} is truncated`);
    const data = archive.subarray(dataStart, dataEnd);
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;

    // POSIX ustar ('ustar\0') has a path prefix field; GNU tar ('ustar ') uses those bytes otherwise.
    const posix = block.toString('binary', 257, 263) === 'ustar\u0000';
    const prefix = posix ? readString(block, 345, 155) : '';
    const name = readString(block, 0, 100);
    const path = pendingPath ?? (prefix ? `${prefix}/${name}` : name);
    pendingPath = undefined;

    if (type === 'x') {
      pendingPath = paxPath(data);
      continue;
    }
    if (type === 'g') continue; // global pax header: nothing we use
    if (type === 'L') {
      pendingPath = data.toString('utf8').replace(/\0+$/, '');
      continue;
    }
    if (type === '5') continue;
    if (type !== '0' && type !== '\0' && type !== '7') {
      throw new Error(
        `tar: entry ${path} has type '${type}' (only regular files and directories are allowed)`,
      );
    }
    assertSafePath(path);
    entries.push({ path, content: Buffer.from(data) });
  }
  return entries;
}

function verifyChecksum(block: Buffer, offset: number): void {
  const stored = readOctal(block, 148, 8, offset);
  let sum = 0;
  for (let index = 0; index < BLOCK; index++) sum += index >= 148 && index < 156 ? 0x20 : (block[index] ?? 0);
  if (sum !== stored)
    throw new Error(`tar: header at byte ${offset} has a bad checksum (not a tar archive?)`);
}

function readOctal(block: Buffer, offset: number, length: number, at: number): number {
  const text = block
    .toString('ascii', offset, offset + length)
    .replace(/[\0 ]+$/, '')
    .trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new Error(`tar: header at byte ${at} has a malformed number field`);
  return Number.parseInt(text, 8);
}

function readString(block: Buffer, offset: number, length: number): string {
  const raw = block.subarray(offset, offset + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? length : end).toString('utf8');
}

function paxPath(data: Buffer): string | undefined {
  let rest = data.toString('utf8');
  while (rest.length > 0) {
    const space = rest.indexOf(' ');
    const length = Number.parseInt(rest.slice(0, space), 10);
    if (!Number.isFinite(length) || length <= 0) break;
    const record = rest.slice(space + 1, length - 1);
    rest = rest.slice(length);
    const equals = record.indexOf('=');
    if (record.slice(0, equals) === 'path') return record.slice(equals + 1);
  }
  return undefined;
}

/** Refuses absolute paths, `..` and empty segments: a bundle must never write outside its folder. */
export function assertSafePath(path: string): void {
  const trimmed = path.replace(/\/$/, '');
  if (
    trimmed === '' ||
    trimmed.startsWith('/') ||
    trimmed.includes('\\') ||
    trimmed.split('/').some((part) => part === '' || part === '.' || part === '..')
  ) {
    throw new Error(`unsafe path in bundle: ${JSON.stringify(path)}`);
  }
}
