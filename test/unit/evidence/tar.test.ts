import { readFileSync } from 'node:fs';
import { link, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BundleReadError } from '../../../functions/core/evidence/read-error.js';
import { decodeTar, encodeTar, TarParser } from '../../../functions/core/evidence/tar.js';
import { execFile } from '../../../functions/local/exec.js';
import {
  archive,
  BLOCK,
  endOfArchive,
  file,
  fixChecksum,
  gnuLongName,
  header,
  padded,
  paxHeader,
} from '../../support/hostile-tar.js';

const entries = [
  { path: 'inc-1/manifest.json', content: Buffer.from('{"a":1}\n') },
  { path: 'inc-1/commands/01-apply-raise-limits-limits/stdout.txt', content: Buffer.from('x'.repeat(1500)) },
  { path: 'inc-1/empty.txt', content: Buffer.alloc(0) },
  { path: `inc-1/${'d'.repeat(90)}/${'f'.repeat(60)}.json`, content: Buffer.from('long path') },
];

/** The rule a read refused the input by (and the message, for the assertion's output). */
function refusal(read: () => unknown): { rule: string; message: string; limit: string | null } {
  try {
    read();
  } catch (error) {
    if (error instanceof BundleReadError)
      return { rule: error.rule, message: error.message, limit: error.limit };
    throw error;
  }
  throw new Error('the input was accepted');
}

/** A small deterministic PRNG (mulberry32), so that a failing split can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('tar', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'ctr-tar-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('reads back what it writes', () => {
    expect(decodeTar(encodeTar(entries, new Date('2026-11-21T10:00:00Z')))).toEqual(entries);
  });

  it('writes the same bytes for the same input', () => {
    const date = new Date('2026-11-21T10:00:00Z');
    expect(encodeTar(entries, date).equals(encodeTar(entries, date))).toBe(true);
  });

  it('writes archives the system tar extracts byte for byte', async () => {
    const path = join(work, 'ours.tar');
    await writeFile(path, encodeTar(entries, new Date('2026-11-21T10:00:00Z')));
    const target = join(work, 'extracted');
    await mkdir(target);
    await execFile('tar', ['-xf', path, '-C', target]);
    for (const entry of entries) expect(await readFile(join(target, entry.path))).toEqual(entry.content);
  });

  it('reads archives the system tar writes (gnu, posix/pax, ustar), long names included', async () => {
    const source = join(work, 'source');
    for (const entry of entries) {
      await mkdir(join(source, entry.path, '..'), { recursive: true });
      await writeFile(join(source, entry.path), entry.content);
    }
    for (const format of ['gnu', 'posix', 'ustar']) {
      const path = join(work, `theirs-${format}.tar`);
      await execFile('tar', [`--format=${format}`, '-cf', path, '-C', source, 'inc-1']);
      const read = decodeTar(await readFile(path));
      expect(read.sort((a, b) => a.path.localeCompare(b.path))).toEqual(
        [...entries].sort((a, b) => a.path.localeCompare(b.path)),
      );
    }
  });

  it('gives the same entries however the archive is cut into chunks (200 random splits)', () => {
    const tar = encodeTar(entries, new Date(0));
    const next = random(11);
    for (let round = 0; round < 200; round++) {
      const read: { path: string; content: Buffer }[] = [];
      let chunks: Buffer[] = [];
      const parser = new TarParser(
        'split.tar',
        { maxMemberBytes: 1e9, maxTotalBytes: 1e9, maxMembers: 100 },
        {
          entry: () => {
            chunks = [];
          },
          data: (chunk) => chunks.push(Buffer.from(chunk)),
          entryEnd: (entry) => {
            if (entry.kind === 'file') read.push({ path: entry.path, content: Buffer.concat(chunks) });
          },
        },
      );
      let offset = 0;
      while (offset < tar.length) {
        // Mostly small pieces (down to one byte) so that every boundary lands mid-header and mid-data.
        const size = round % 2 === 0 ? 1 + Math.floor(next() * 700) : 1 + Math.floor(next() * 8);
        parser.write(tar.subarray(offset, offset + size));
        offset += size;
      }
      parser.end();
      expect(read).toEqual(entries);
    }
  });

  describe('refuses every entry type but regular files and directories', () => {
    it.each([
      ['1', 'a hard link'],
      ['2', 'a symbolic link'],
      ['3', 'a character device'],
      ['4', 'a block device'],
      ['6', 'a FIFO'],
      ['7', 'a contiguous file'],
      ['K', 'a GNU long link name'],
      ['S', 'a GNU sparse file'],
      ['V', 'a GNU volume label'],
      ['M', 'a GNU multi-volume continuation'],
      ['Z', 'of unknown type "Z"'],
    ])('type %s (%s)', (type, what) => {
      const tar = archive(file('inc/a.txt', 'a'), header({ path: 'inc/odd', type, linkname: '/etc/passwd' }));
      const result = refusal(() => decodeTar(tar, 'hostile.tar'));
      expect(result.rule).toBe('entry-type');
      expect(result.message).toContain(`hostile.tar: entry "inc/odd" at byte 1024 is ${what}`);
    });

    it('symbolic links, hard links and FIFOs as the system tar archives them', async () => {
      const source = join(work, 'specials');
      await mkdir(join(source, 'inc'), { recursive: true });
      await writeFile(join(source, 'inc', 'manifest.json'), '{}');
      const cases: [string, () => Promise<void>, RegExp][] = [
        ['symlink', () => symlink('/etc/hostname', join(source, 'inc', 'link')), /is a symbolic link/],
        [
          'hardlink',
          () => link(join(source, 'inc', 'manifest.json'), join(source, 'inc', 'hard')),
          /is a hard link/,
        ],
        ['fifo', async () => void (await execFile('mkfifo', [join(source, 'inc', 'fifo')])), /is a FIFO/],
      ];
      for (const [name, make, message] of cases) {
        await rm(join(source, 'inc'), { recursive: true, force: true });
        await mkdir(join(source, 'inc'));
        await writeFile(join(source, 'inc', 'manifest.json'), '{}');
        await make();
        const path = join(work, `${name}.tar`);
        await execFile('tar', ['--format=gnu', '-cf', path, '-C', source, 'inc']);
        const result = refusal(() => decodeTar(readFileSync(path), name));
        expect(result.rule, result.message).toBe('entry-type');
        expect(result.message).toMatch(message);
      }
    });

    it('GNU sparse files in the pax form (a regular type flag with GNU.sparse records)', () => {
      const tar = archive(
        paxHeader({ 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': 'inc/big' }),
        file('inc/GNUSparseFile.0/big', 'x'),
      );
      expect(refusal(() => decodeTar(tar)).message).toMatch(/GNU sparse file/);
    });
  });

  describe('refuses paths that are not safe inside a folder', () => {
    it.each([
      ['../outside.txt', 'has a ".." segment'],
      ['inc/../../etc/passwd', 'has a ".." segment'],
      ['/etc/passwd', 'is absolute'],
      ['inc/./a', 'has a "." segment'],
      ['inc//a', 'has an empty segment'],
      ['inc\\a', 'contains a backslash'],
      ['inc/\u001b[2Ja', 'contains a control character'],
      ['inc/cafe\u0301', 'is not in Unicode normal form C'],
    ])('in the header: %j', (path, reason) => {
      const result = refusal(() => decodeTar(archive(file(path, 'x'))));
      expect(result.rule).toBe('unsafe-path');
      expect(result.message).toContain(reason);
    });

    it('in a pax path record, which overrides a harmless header name', () => {
      const tar = archive(paxHeader({ path: '../outside.txt' }), file('inc/harmless.txt', 'x'));
      const result = refusal(() => decodeTar(tar));
      expect(result).toMatchObject({ rule: 'unsafe-path' });
      expect(result.message).toContain('"../outside.txt"');
    });

    it('in a GNU long name, which overrides a harmless header name', () => {
      const tar = archive(
        gnuLongName(`inc/${'a'.repeat(120)}/../../../etc/cron.d/x`),
        file('inc/harmless.txt', 'x'),
      );
      expect(refusal(() => decodeTar(tar)).rule).toBe('unsafe-path');
    });

    it('that are not valid UTF-8', () => {
      const bad = header({ path: 'inc/x', size: 1 });
      bad[4] = 0xff;
      fixChecksum(bad);
      expect(refusal(() => decodeTar(archive(bad, padded(Buffer.from('x'))))).rule).toBe('unsafe-path');
    });
  });

  describe('refuses anything after the end of the archive', () => {
    const genuine = encodeTar([{ path: 'inc/a.txt', content: Buffer.from('a') }], new Date(0));
    const bodyLength = 3 * BLOCK; // directory header, file header, one data block

    it('accepts the end marker padded to its 10240-byte record, or not padded at all', () => {
      expect(decodeTar(genuine).map((entry) => entry.path)).toEqual(['inc/a.txt']);
      const padded = Buffer.concat([genuine.subarray(0, bodyLength), endOfArchive(bodyLength)]);
      expect(padded.length).toBe(10240);
      expect(decodeTar(padded).map((entry) => entry.path)).toEqual(['inc/a.txt']);
    });

    it('an entry hidden after a single zero block (what tar --ignore-zeros reads)', async () => {
      const hidden = Buffer.concat([
        genuine.subarray(0, bodyLength),
        Buffer.alloc(BLOCK),
        file('inc/hidden.txt', 'planted'),
        Buffer.alloc(2 * BLOCK),
      ]);
      const path = join(work, 'hidden.tar');
      await writeFile(path, hidden);
      // The system tar shows why this matters: only --ignore-zeros lists the hidden entry.
      expect((await execFile('tar', ['-tf', path])).stdout).not.toContain('hidden.txt');
      expect((await execFile('tar', ['--ignore-zeros', '-tf', path])).stdout).toContain('hidden.txt');
      const result = refusal(() => decodeTar(hidden, 'hidden.tar'));
      expect(result.rule).toBe('data-after-end');
      expect(result.message).toContain(
        `the zero block at byte ${bodyLength} is followed by a non-zero block`,
      );
    });

    it('an entry after the two zero blocks', () => {
      const after = Buffer.concat([genuine, file('inc/hidden.txt', 'planted')]);
      expect(refusal(() => decodeTar(after)).rule).toBe('data-after-end');
    });

    it('a single non-zero byte in the record padding', () => {
      const tampered = Buffer.from(genuine);
      tampered[tampered.length - 1] = 0x41;
      expect(refusal(() => decodeTar(tampered)).rule).toBe('data-after-end');
    });

    it('zeros beyond the 10240-byte record', () => {
      const long = Buffer.concat([genuine, Buffer.alloc(10240)]);
      const result = refusal(() => decodeTar(long));
      expect(result.rule).toBe('data-after-end');
      expect(result.message).toMatch(/more than 10240 bytes of zeros/);
    });

    it('data in the padding of an entry', () => {
      const tampered = Buffer.from(genuine);
      tampered[2 * BLOCK + 100] = 0x41; // inside the padding after the one-byte file
      const result = refusal(() => decodeTar(tampered));
      expect(result.rule).toBe('damaged-header');
      expect(result.message).toContain('the padding after entry "inc/a.txt"');
    });
  });

  describe('refuses damaged and truncated archives', () => {
    const genuine = encodeTar(entries, new Date(0));

    it('a damaged header checksum, naming its offset', () => {
      const damaged = Buffer.from(genuine);
      // Layout: inc-1/ (0), manifest.json (512, data 1024), inc-1/commands/ (1536), …
      damaged[BLOCK * 3 + 10] = (damaged[BLOCK * 3 + 10] ?? 0) ^ 0xff;
      const result = refusal(() => decodeTar(damaged));
      expect(result.rule).toBe('damaged-header');
      expect(result.message).toContain(`the header at byte ${BLOCK * 3} is damaged: bad header checksum`);
    });

    it('something that is not a tar archive at all', () => {
      expect(refusal(() => decodeTar(Buffer.from('{"not":"a tar"}\n'.repeat(100)))).rule).toBe(
        'not-a-tar-archive',
      );
      expect(refusal(() => decodeTar(Buffer.alloc(0))).message).toMatch(/not a tar archive: it is empty/);
      expect(refusal(() => decodeTar(Buffer.alloc(BLOCK * 4))).message).toMatch(/begins with an empty block/);
    });

    it.each([
      ['inside a header', BLOCK + 100, /truncated inside the header at byte 512/],
      ['inside an entry', BLOCK * 6 + 700, /truncated inside entry .*stdout\.txt/],
      ['before the end marker', genuine.length - 2 * BLOCK, /without the end-of-archive marker/],
      ['after a single zero block', genuine.length - BLOCK, /ends after a single zero block/],
    ])('truncated %s', (_where, length, message) => {
      const result = refusal(() => decodeTar(genuine.subarray(0, length)));
      expect(result.rule).toBe('truncated');
      expect(result.message).toMatch(message);
    });

    it('a pax header followed by the end of the archive, and malformed pax records', () => {
      expect(refusal(() => decodeTar(archive(paxHeader({ path: 'inc/a' })))).message).toMatch(
        /not by an entry/,
      );
      const malformed = Buffer.from('99 path=inc/a\n');
      const tar = archive(
        header({ path: 'P/x', size: malformed.length, type: 'x' }),
        padded(malformed),
        file('inc/a', 'a'),
      );
      expect(refusal(() => decodeTar(tar)).message).toMatch(/pax header at byte 0 is malformed/);
    });
  });

  describe('limits, checked from the header before any content is read', () => {
    const limits = { maxMemberBytes: 1000, maxTotalBytes: 1500, maxMembers: 3 };

    it('a member larger than maxMemberBytes, even one whose content never arrives', () => {
      // A header that declares 8 GiB (base-256 size field) and nothing after it.
      const huge = header({ path: 'inc/huge', size: 0 });
      huge.fill(0, 124, 136);
      huge[124] = 0x80;
      huge.writeUIntBE(8 * 1024 ** 3, 130, 6);
      fixChecksum(huge);
      const result = refusal(() => decodeTar(huge, 'huge.tar', limits));
      expect(result).toMatchObject({ rule: 'maxMemberBytes', limit: 'maxMemberBytes' });
      expect(result.message).toContain(`is ${8 * 1024 ** 3} bytes, more than 1000 (limit maxMemberBytes)`);
    });

    it('members that add up to more than maxTotalBytes', () => {
      const tar = archive(file('inc/a', Buffer.alloc(800)), file('inc/b', Buffer.alloc(800)));
      expect(refusal(() => decodeTar(tar, 't', limits))).toMatchObject({ limit: 'maxTotalBytes' });
    });

    it('more than maxMembers entries', () => {
      const tar = archive(...['a', 'b', 'c', 'd'].map((name) => file(`inc/${name}`, name)));
      expect(refusal(() => decodeTar(tar, 't', limits))).toMatchObject({ limit: 'maxMembers' });
    });

    it('a pax header larger than 64 KiB, and endless extended headers', () => {
      const big = archive(header({ path: 'P/x', size: 70_000, type: 'x' }));
      expect(refusal(() => decodeTar(big)).message).toMatch(/pax header at byte 0 is 70000 bytes/);
      const endless = archive(
        ...Array.from({ length: 6 }, () => paxHeader({ mtime: '1' })),
        file('inc/a', 'a'),
      );
      expect(refusal(() => decodeTar(endless)).message).toMatch(/extended headers in a row/);
    });
  });
});
