import { BundleReadError, hasControlCharacter } from './read-error.js';

/**
 * A minimal POSIX ustar writer and a strict streaming reader, enough for evidence bundles.
 *
 * The writer makes regular files and directories, deterministically (fixed mtime, owner 0, fixed
 * modes), paths up to 255 bytes.
 *
 * The reader (`TarParser`) takes the archive in chunks of any size and keeps at most one header
 * and one extended header in memory, so its memory does not depend on the archive. It accepts what
 * the writer and common `tar` implementations produce (ustar and GNU headers, pax `path`/`size`
 * records, GNU long names) and refuses everything else by rule: any entry type other than a
 * regular file or a directory (links, devices, FIFOs, sparse files, GNU volume and multi-volume
 * headers), paths that are not safe inside a folder, non-zero padding, and anything after the end
 * of the archive other than its second zero block and the zero padding up to the end of its
 * 10240-byte record. That last rule is the one `tar --ignore-zeros` shows the need for: data after
 * a single zero block is invisible to a plain `tar -t` but read by `--ignore-zeros`.
 * Format: POSIX.1-2001 pax / ustar (IEEE Std 1003.1, "pax" Archive Interchange Format); GNU
 * extensions as documented in the GNU tar manual, "Basic Tar Format".
 */

const BLOCK = 512;
/**
 * GNU tar, bsdtar and Python's tarfile all write archives in records of 20 blocks and pad the last
 * record with zeros; nothing they write goes past it.
 */
export const RECORD_BYTES = 20 * BLOCK;
/** Longest pax extended header accepted (they hold a path and a few times; 64 KiB is generous). */
const MAX_PAX_HEADER_BYTES = 64 * 1024;
/** Longest GNU long name accepted (PATH_MAX on Linux). */
const MAX_LONG_NAME_BYTES = 4096;
/** Extended headers before one entry: pax and GNU writers put one (or a global one and one). */
const MAX_META_HEADERS = 4;

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

/** How much a reader accepts; every limit is named in the error that enforces it. */
export interface TarLimits {
  /** Largest regular file. */
  readonly maxMemberBytes: number;
  /** Sum of every regular file's size. */
  readonly maxTotalBytes: number;
  /** Entries (regular files and directories). */
  readonly maxMembers: number;
}

export interface TarEntryHeader {
  /** The entry's path, checked safe; a directory's without its trailing slash. */
  readonly path: string;
  readonly kind: 'file' | 'directory';
  readonly size: number;
  /** Byte offset of the entry's header in the (uncompressed) archive. */
  readonly offset: number;
}

export interface TarEvents {
  readonly entry: (header: TarEntryHeader) => void;
  /** A piece of the current file's content (the parser keeps no reference to it). */
  readonly data: (chunk: Buffer) => void;
  readonly entryEnd: (header: TarEntryHeader) => void;
}

const ENTRY_TYPES: Readonly<Record<string, string>> = {
  '1': 'a hard link',
  '2': 'a symbolic link',
  '3': 'a character device',
  '4': 'a block device',
  '6': 'a FIFO',
  '7': 'a contiguous file',
  D: 'a GNU dump directory',
  K: 'a GNU long link name',
  M: 'a GNU multi-volume continuation',
  N: 'a GNU long-name (old form)',
  S: 'a GNU sparse file',
  V: 'a GNU volume label',
};

type ParserState = 'header' | 'meta' | 'data' | 'padding' | 'end-marker' | 'record-padding';

interface PendingMeta {
  path?: string;
  size?: number;
  readonly at: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The streaming reader: `write` chunks as they arrive, then `end`. Every refusal is a
 * BundleReadError whose message starts with `name` and gives the byte offset in the
 * uncompressed archive.
 */
export class TarParser {
  private state: ParserState = 'header';
  /** Absolute offset of the next byte. */
  private offset = 0;
  private readonly block = Buffer.alloc(BLOCK);
  private blockFill = 0;
  private remaining = 0;
  private metaType = '';
  private metaChunks: Buffer[] = [];
  private pending: PendingMeta | null = null;
  private current: TarEntryHeader | null = null;
  private members = 0;
  private totalBytes = 0;
  private recordEnd = 0;
  private zeroBlockAt = 0;
  /** Extended headers (pax, GNU long name) read since the last entry. */
  private metaHeaders = 0;
  /** What the padding being read follows, for its error message. */
  private paddingOf = '';

  constructor(
    private readonly name: string,
    private readonly limits: TarLimits,
    private readonly events: TarEvents,
  ) {}

  /** True once the end-of-archive marker (two zero blocks) has been read. */
  get ended(): boolean {
    return this.state === 'record-padding';
  }

  write(chunk: Buffer): void {
    let index = 0;
    while (index < chunk.length) {
      const available = chunk.length - index;
      switch (this.state) {
        case 'header':
        case 'end-marker': {
          const take = Math.min(BLOCK - this.blockFill, available);
          chunk.copy(this.block, this.blockFill, index, index + take);
          this.blockFill += take;
          index += take;
          this.offset += take;
          if (this.blockFill === BLOCK) {
            this.blockFill = 0;
            this.headerBlock(this.offset - BLOCK);
          }
          break;
        }
        case 'meta': {
          const take = Math.min(this.remaining, available);
          this.metaChunks.push(Buffer.from(chunk.subarray(index, index + take)));
          this.advance(take);
          index += take;
          if (this.remaining === 0) this.metaDone();
          break;
        }
        case 'data': {
          const take = Math.min(this.remaining, available);
          this.events.data(chunk.subarray(index, index + take));
          this.advance(take);
          index += take;
          if (this.remaining === 0) this.dataDone();
          break;
        }
        case 'padding': {
          const take = Math.min(this.remaining, available);
          const nonZero = firstNonZero(chunk, index, index + take);
          if (nonZero !== -1) {
            throw this.error(
              'damaged-header',
              `the padding after ${this.paddingOf} holds a non-zero byte at byte ${this.offset + nonZero - index} (tar pads with zeros; data there is hidden from tar)`,
            );
          }
          this.advance(take);
          index += take;
          if (this.remaining === 0) this.state = 'header';
          break;
        }
        case 'record-padding': {
          const nonZero = firstNonZero(chunk, index, chunk.length);
          if (nonZero !== -1) {
            throw this.error(
              'data-after-end',
              `data after the end of the archive at byte ${this.offset + nonZero - index} (only zeros may follow the end marker)`,
            );
          }
          if (this.offset + available > this.recordEnd) {
            throw this.error(
              'data-after-end',
              `more than ${RECORD_BYTES} bytes of zeros after the end of the archive at byte ${this.recordEnd} (tar pads only to the end of its ${RECORD_BYTES}-byte record)`,
            );
          }
          this.offset += available;
          index = chunk.length;
          break;
        }
      }
    }
  }

  end(): void {
    switch (this.state) {
      case 'record-padding':
        return;
      case 'end-marker':
        throw this.error(
          'truncated',
          `ends after a single zero block at byte ${this.zeroBlockAt}; an archive ends with two`,
        );
      case 'header':
        if (this.offset === 0) throw this.error('not-a-tar-archive', 'not a tar archive: it is empty');
        if (this.blockFill > 0) {
          throw this.error(
            'truncated',
            `truncated inside the header at byte ${this.offset - this.blockFill}`,
          );
        }
        throw this.error(
          'truncated',
          `truncated: ends at byte ${this.offset} without the end-of-archive marker (two zero blocks)`,
        );
      default:
        throw this.error(
          'truncated',
          `truncated inside ${this.describeCurrent()}: ${this.remaining} more byte(s) were due after byte ${this.offset}`,
        );
    }
  }

  private advance(bytes: number): void {
    this.remaining -= bytes;
    this.offset += bytes;
  }

  private describeCurrent(): string {
    if (this.state === 'meta') return `the extended header at byte ${this.pending?.at ?? '?'}`;
    return this.current ? `entry ${JSON.stringify(this.current.path)}` : 'an entry';
  }

  private error(rule: ConstructorParameters<typeof BundleReadError>[0], message: string) {
    return new BundleReadError(rule, `${this.name}: ${message}`);
  }

  private limitError(limit: keyof TarLimits, message: string) {
    return new BundleReadError(limit, `${this.name}: ${message} (limit ${limit})`, limit);
  }

  private headerBlock(at: number): void {
    const block = this.block;
    if (this.state === 'end-marker') {
      if (firstNonZero(block, 0, BLOCK) !== -1) {
        throw this.error(
          'data-after-end',
          `data after the end of the archive: the zero block at byte ${this.zeroBlockAt} is followed by a non-zero block at byte ${at} (tar --ignore-zeros would read entries hidden there)`,
        );
      }
      this.state = 'record-padding';
      this.recordEnd = Math.ceil(this.offset / RECORD_BYTES) * RECORD_BYTES;
      return;
    }
    if (firstNonZero(block, 0, BLOCK) === -1) {
      if (at === 0) {
        throw this.error(
          'not-a-tar-archive',
          'not a tar archive: it begins with an empty block (an evidence bundle begins with its first entry)',
        );
      }
      if (this.pending) {
        throw this.error(
          'damaged-header',
          `the extended header at byte ${this.pending.at} is followed by the end of the archive, not by an entry`,
        );
      }
      this.zeroBlockAt = at;
      this.state = 'end-marker';
      return;
    }
    const problem = headerProblem(block);
    if (problem) {
      throw at === 0
        ? this.error('not-a-tar-archive', `not a tar archive: ${problem}`)
        : this.error('damaged-header', `the header at byte ${at} is damaged: ${problem}`);
    }
    const type = String.fromCharCode(block[156] ?? 0);
    const size = this.numberField(block, 124, 12, 'size', at);

    if (type === 'x' || type === 'g' || type === 'L') {
      const max = type === 'L' ? MAX_LONG_NAME_BYTES : MAX_PAX_HEADER_BYTES;
      if (size > max) {
        throw this.error(
          'damaged-header',
          `the ${type === 'L' ? 'GNU long name' : 'pax header'} at byte ${at} is ${size} bytes (at most ${max})`,
        );
      }
      this.metaHeaders += 1;
      if (this.metaHeaders > MAX_META_HEADERS) {
        throw this.error(
          'damaged-header',
          `more than ${MAX_META_HEADERS} extended headers in a row at byte ${at} (each entry has one or two)`,
        );
      }
      this.pending ??= { at };
      this.metaType = type;
      this.metaChunks = [];
      this.remaining = size;
      this.state = 'meta';
      if (size === 0) this.metaDone();
      return;
    }
    if (type !== '0' && type !== '\0' && type !== '5') {
      const what = ENTRY_TYPES[type] ?? `of unknown type ${JSON.stringify(type)}`;
      const path = this.pending?.path ?? lenientPath(block);
      throw this.error(
        'entry-type',
        `entry ${JSON.stringify(path)} at byte ${at} is ${what}; a bundle holds only regular files and directories`,
      );
    }

    let path = this.pending?.path;
    if (path === undefined) {
      try {
        path = ustarPath(block);
      } catch {
        throw this.error('unsafe-path', `the entry at byte ${at} has a path that is not valid UTF-8`);
      }
    }
    const entrySize = this.pending?.size ?? size;
    this.pending = null;
    this.metaHeaders = 0;
    const kind = type === '5' ? 'directory' : 'file';
    if (kind === 'directory') {
      if (entrySize !== 0) {
        throw this.error(
          'damaged-header',
          `directory entry ${JSON.stringify(path)} at byte ${at} has content`,
        );
      }
      path = path.replace(/\/$/, '');
    }
    const unsafe = pathProblem(path);
    if (unsafe) {
      throw this.error('unsafe-path', `entry ${JSON.stringify(path)} at byte ${at}: the path ${unsafe}`);
    }
    this.members += 1;
    if (this.members > this.limits.maxMembers) {
      throw this.limitError('maxMembers', `more than ${this.limits.maxMembers} entries`);
    }
    if (kind === 'file') {
      if (entrySize > this.limits.maxMemberBytes) {
        throw this.limitError(
          'maxMemberBytes',
          `entry ${JSON.stringify(path)} at byte ${at} is ${entrySize} bytes, more than ${this.limits.maxMemberBytes}`,
        );
      }
      this.totalBytes += entrySize;
      if (this.totalBytes > this.limits.maxTotalBytes) {
        throw this.limitError(
          'maxTotalBytes',
          `the files add up to more than ${this.limits.maxTotalBytes} bytes (at entry ${JSON.stringify(path)}, byte ${at})`,
        );
      }
    }
    this.current = { path, kind, size: entrySize, offset: at };
    this.events.entry(this.current);
    this.remaining = entrySize;
    this.state = 'data';
    if (entrySize === 0) this.dataDone();
  }

  private dataDone(): void {
    const current = this.current;
    if (current) this.events.entryEnd(current);
    this.toPadding(current?.size ?? 0, this.describeCurrent());
  }

  private toPadding(size: number, of: string): void {
    this.paddingOf = of;
    this.remaining = (BLOCK - (size % BLOCK)) % BLOCK;
    this.state = this.remaining === 0 ? 'header' : 'padding';
  }

  private metaDone(): void {
    const data = Buffer.concat(this.metaChunks);
    this.metaChunks = [];
    const pending = this.pending ?? { at: this.offset };
    this.pending = pending;
    if (this.metaType === 'L') {
      const end = data.indexOf(0);
      try {
        pending.path = utf8.decode(data.subarray(0, end === -1 ? data.length : end));
      } catch {
        throw this.error('unsafe-path', `the GNU long name at byte ${pending.at} is not valid UTF-8`);
      }
    } else {
      const records = this.paxRecords(data, pending.at);
      if (this.metaType === 'g') {
        if (records.has('path') || records.has('size')) {
          throw this.error(
            'damaged-header',
            `the global pax header at byte ${pending.at} sets a path or size for every entry (not accepted)`,
          );
        }
        // A global header describes no entry of its own.
        this.pending = null;
      } else {
        for (const key of records.keys()) {
          if (key.startsWith('GNU.sparse.')) {
            throw this.error(
              'entry-type',
              `the entry after byte ${pending.at} is a GNU sparse file; a bundle holds only regular files and directories`,
            );
          }
        }
        const path = records.get('path');
        if (path !== undefined) pending.path = path;
        const size = records.get('size');
        if (size !== undefined) {
          if (!/^[0-9]{1,16}$/.test(size)) {
            throw this.error('damaged-header', `the pax header at byte ${pending.at} has a malformed size`);
          }
          pending.size = Number(size);
        }
      }
    }
    this.toPadding(data.length, `the extended header at byte ${pending.at}`);
  }

  /** pax records: "<length> <key>=<value>\n", the length counting the whole record in bytes. */
  private paxRecords(data: Buffer, at: number): Map<string, string> {
    const records = new Map<string, string>();
    let position = 0;
    const malformed = () =>
      this.error('damaged-header', `the pax header at byte ${at} is malformed near its byte ${position}`);
    while (position < data.length) {
      // Zero padding after the last record is tolerated (some writers round the data up).
      if (firstNonZero(data, position, data.length) === -1) break;
      const space = data.indexOf(0x20, position);
      if (space === -1 || space - position > 8) throw malformed();
      const lengthText = data.toString('ascii', position, space);
      if (!/^[1-9][0-9]*$/.test(lengthText)) throw malformed();
      const length = Number(lengthText);
      const end = position + length;
      if (end > data.length || data[end - 1] !== 0x0a) throw malformed();
      let record: string;
      try {
        record = utf8.decode(data.subarray(space + 1, end - 1));
      } catch {
        throw this.error('unsafe-path', `the pax header at byte ${at} is not valid UTF-8`);
      }
      const equals = record.indexOf('=');
      if (equals <= 0) throw malformed();
      records.set(record.slice(0, equals), record.slice(equals + 1));
      position = end;
    }
    return records;
  }

  private numberField(block: Buffer, offset: number, length: number, field: string, at: number): number {
    const first = block[offset] ?? 0;
    if (first & 0x80) {
      // GNU base-256: big-endian binary after the marker bit; only positive values make sense here.
      if (first !== 0x80) {
        throw this.error('damaged-header', `the header at byte ${at} has a negative ${field}`);
      }
      let value = 0;
      for (let index = offset + 1; index < offset + length; index++)
        value = value * 256 + (block[index] ?? 0);
      return value;
    }
    const text = block.toString('latin1', offset, offset + length).replace(/^[\0 ]+|[\0 ]+$/g, '');
    if (text === '') return 0;
    if (!/^[0-7]+$/.test(text)) {
      throw this.error(
        'damaged-header',
        `the header at byte ${at} has a ${field} field that is not an octal number`,
      );
    }
    return Number.parseInt(text, 8);
  }
}

function firstNonZero(buffer: Buffer, from: number, to: number): number {
  for (let index = from; index < to; index++) if (buffer[index] !== 0) return index;
  return -1;
}

/** Why a block is not a ustar/GNU header (bad checksum, no magic), or null when it is one. */
function headerProblem(block: Buffer): string | null {
  const magic = block.toString('latin1', 257, 265);
  if (magic !== 'ustar\u000000' && magic !== 'ustar  \u0000') {
    return 'no ustar or GNU tar magic in the header';
  }
  const storedText = block.toString('latin1', 148, 156).replace(/^[\0 ]+|[\0 ]+$/g, '');
  if (!/^[0-7]{1,7}$/.test(storedText)) return 'its checksum field is not an octal number';
  let sum = 0;
  for (let index = 0; index < BLOCK; index++) sum += index >= 148 && index < 156 ? 0x20 : (block[index] ?? 0);
  return sum === Number.parseInt(storedText, 8) ? null : 'bad header checksum';
}

function field(block: Buffer, offset: number, length: number): Buffer {
  const raw = block.subarray(offset, offset + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? length : end);
}

/** The path of a ustar header: POSIX ustar ('ustar\0') has a prefix field; GNU uses those bytes otherwise. */
function ustarPath(block: Buffer): string {
  const name = utf8.decode(field(block, 0, 100));
  const posix = block.toString('latin1', 257, 263) === 'ustar\u0000';
  const prefix = posix ? utf8.decode(field(block, 345, 155)) : '';
  return prefix ? `${prefix}/${name}` : name;
}

/** A path for an error message only, whatever bytes it holds. */
function lenientPath(block: Buffer): string {
  return field(block, 0, 100).toString('utf8');
}

/** Longest path accepted inside a bundle (PATH_MAX on Linux). */
const MAX_PATH_BYTES = 4096;

/**
 * Why a path is not a safe, normalised, relative path inside a bundle folder, or null when it is:
 * no absolute paths, no `..`, `.` or empty segments, no backslashes, no control characters,
 * Unicode normal form C (so that two spellings of one name cannot both appear), at most 4096 bytes.
 */
export function pathProblem(path: string): string | null {
  if (path === '') return 'is empty';
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) return `is longer than ${MAX_PATH_BYTES} bytes`;
  if (path.startsWith('/')) return 'is absolute';
  if (path.includes('\\')) return 'contains a backslash';
  if (hasControlCharacter(path)) return 'contains a control character';
  const segments = path.split('/');
  if (segments.includes('..')) return 'has a ".." segment (it would leave the bundle folder)';
  if (segments.includes('.')) return 'has a "." segment (not normalised)';
  if (segments.includes('')) return 'has an empty segment (not normalised)';
  if (path.normalize('NFC') !== path) return 'is not in Unicode normal form C';
  return null;
}

/** Refuses any path `pathProblem` refuses (a trailing slash, for a directory, aside). */
export function assertSafePath(path: string): void {
  const problem = pathProblem(path.replace(/\/$/, ''));
  if (problem) throw new Error(`unsafe path in bundle: ${JSON.stringify(path)} ${problem}`);
}

/** Generous limits for archives built in memory by this project (tests, the writer's round trip). */
export const IN_MEMORY_TAR_LIMITS: TarLimits = {
  maxMemberBytes: 2 ** 31,
  maxTotalBytes: 2 ** 31,
  maxMembers: 1_000_000,
};

/** Every regular file of an archive held in memory, through the same strict reader. */
export function decodeTar(
  archive: Buffer,
  name = 'tar',
  limits: TarLimits = IN_MEMORY_TAR_LIMITS,
): TarEntry[] {
  const entries: TarEntry[] = [];
  let chunks: Buffer[] = [];
  const parser = new TarParser(name, limits, {
    entry: () => {
      chunks = [];
    },
    data: (chunk) => chunks.push(Buffer.from(chunk)),
    entryEnd: (header) => {
      if (header.kind === 'file') entries.push({ path: header.path, content: Buffer.concat(chunks) });
    },
  });
  parser.write(archive);
  parser.end();
  return entries;
}
