import { ResponderError } from '../core/errors.js';

/**
 * Decompresses a gzip stream member by member, the way `gzip -dc` does, yielding every byte it
 * recovers before reporting what was wrong. Node's own Gunzip stream throws away the output of
 * the last input chunk when garbage follows the data (a rotated log with a few stray bytes at the
 * end loses its last lines); here each member is inflated on its own, so the data ahead of a
 * problem is always delivered first, then GzipError says what followed.
 *
 * Format: RFC 1952 (header, raw deflate data, CRC-32 and size of the uncompressed data, members
 * concatenated).
 */
export class GzipError extends ResponderError {
  override readonly name = 'GzipError';
}

const FHCRC = 0x02;
const FEXTRA = 0x04;
const FNAME = 0x08;
const FCOMMENT = 0x10;

/** Input bytes not consumed yet, filled from the source on demand. */
class ByteQueue {
  private buffers: Buffer[] = [];
  private length = 0;
  private done = false;

  constructor(private readonly source: AsyncIterator<Buffer>) {}

  get size(): number {
    return this.length;
  }

  unshift(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.buffers.unshift(bytes);
    this.length += bytes.length;
  }

  /** Reads until `count` bytes are queued or the source ends; true when they are there. */
  async fill(count: number): Promise<boolean> {
    while (this.length < count && !this.done) {
      const next = await this.source.next();
      if (next.done) this.done = true;
      else this.append(Buffer.from(next.value));
    }
    return this.length >= count;
  }

  /** The next chunk of input (queued first), or null at the end. */
  async next(): Promise<Buffer | null> {
    if (this.length > 0) return this.take(this.length);
    if (this.done) return null;
    const next = await this.source.next();
    if (next.done) {
      this.done = true;
      return null;
    }
    return Buffer.from(next.value);
  }

  peek(count: number): Buffer {
    const joined = Buffer.concat(this.buffers);
    this.buffers = [joined];
    return joined.subarray(0, count);
  }

  take(count: number): Buffer {
    const bytes = this.peek(count);
    const joined = this.buffers[0] as Buffer;
    this.buffers = joined.length > count ? [joined.subarray(count)] : [];
    this.length -= bytes.length;
    return bytes;
  }

  /** Counts the rest of the input without keeping it. */
  async drain(): Promise<number> {
    let count = this.length;
    this.buffers = [];
    this.length = 0;
    for (let next = await this.next(); next !== null; next = await this.next()) count += next.length;
    return count;
  }

  private append(bytes: Buffer): void {
    this.buffers.push(bytes);
    this.length += bytes.length;
  }
}

/** Parses a member header at the queue's head; returns false when the input does not start one. */
async function readHeader(input: ByteQueue, first: boolean): Promise<boolean> {
  if (!(await input.fill(10))) {
    if (input.size === 0 && !first) return false;
    throw new GzipError(
      first ? 'not gzip data: too short' : `${input.size} bytes of trailing garbage after the gzip data`,
    );
  }
  const head = input.peek(10);
  if (head[0] !== 0x1f || head[1] !== 0x8b || head[2] !== 8) {
    if (first) throw new GzipError('not gzip data');
    const garbage = await input.drain();
    throw new GzipError(
      `${garbage} bytes of trailing garbage after the gzip data (gzip -dc ignores them too)`,
    );
  }
  const flags = head[3] as number;
  input.take(10);
  if (flags & FEXTRA) {
    if (!(await input.fill(2))) throw new GzipError('the gzip header is cut short');
    const extra = input.take(2).readUInt16LE(0);
    if (!(await input.fill(extra))) throw new GzipError('the gzip header is cut short');
    input.take(extra);
  }
  for (const flag of [FNAME, FCOMMENT]) {
    if (!(flags & flag)) continue;
    // A zero-terminated string; bounded by what the input holds.
    for (;;) {
      if (!(await input.fill(1))) throw new GzipError('the gzip header is cut short');
      if (input.take(1)[0] === 0) break;
    }
  }
  if (flags & FHCRC) {
    if (!(await input.fill(2))) throw new GzipError('the gzip header is cut short');
    input.take(2);
  }
  return true;
}

/** Resolves on the first of the events (and stops listening to the others). */
function firstOf(emitter: NodeJS.EventEmitter, events: string[]): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      for (const event of events) emitter.off(event, done);
      resolve();
    };
    for (const event of events) emitter.on(event, done);
  });
}

/** Yields the decompressed bytes of every member; throws GzipError after the last good byte. */
export async function* gunzipMembers(source: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  // Loaded here, not at the top: most inputs are plain text, and zlib costs every run start-up time.
  const { constants, crc32, createInflateRaw } = await import('node:zlib');
  const input = new ByteQueue(source);
  for (let first = true; await readHeader(input, first); first = false) {
    // Z_SYNC_FLUSH on end: a member cut short still yields what it holds, then we say so.
    const inflate = createInflateRaw({ finishFlush: constants.Z_SYNC_FLUSH });
    // Written chunks the inflater may not have consumed yet (older ones are dropped as it goes).
    let written: Buffer[] = [];
    let dropped = 0;
    let ended = false;
    let failure: Error | null = null;
    inflate.once('end', () => {
      ended = true;
    });
    inflate.once('error', (error) => {
      failure = error;
    });
    const feed = (async () => {
      while (!ended && failure === null) {
        const chunk = await input.next();
        if (chunk === null) {
          inflate.end();
          return;
        }
        while (written.length > 0 && dropped + (written[0] as Buffer).length <= inflate.bytesWritten) {
          dropped += (written.shift() as Buffer).length;
        }
        written.push(chunk);
        if (!inflate.write(chunk) && !ended) await firstOf(inflate, ['drain', 'end', 'close', 'error']);
      }
    })();
    let crc = 0;
    let size = 0;
    try {
      for await (const out of inflate) {
        const bytes = out as Buffer;
        crc = crc32(bytes, crc);
        size = (size + bytes.length) >>> 0;
        yield bytes;
      }
    } catch (error) {
      failure = error as Error;
    }
    await feed;
    if (failure !== null) throw new GzipError(`corrupt gzip data: ${(failure as Error).message}`);
    // What the member did not consume is its trailer and whatever follows it.
    const unconsumed = Buffer.concat(written).subarray(inflate.bytesWritten - dropped);
    written = [];
    input.unshift(unconsumed);
    if (!(await input.fill(8))) throw new GzipError('the gzip data is cut short (unexpected end of file)');
    const trailer = input.take(8);
    if (trailer.readUInt32LE(0) !== crc >>> 0 || trailer.readUInt32LE(4) !== size) {
      throw new GzipError('the gzip data is corrupt (its CRC or length does not match)');
    }
  }
}
