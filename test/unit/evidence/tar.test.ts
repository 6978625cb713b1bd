import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeTar, encodeTar } from '../../../functions/core/evidence/tar.js';
import { execFile } from '../../../functions/local/exec.js';

const entries = [
  { path: 'inc-1/manifest.json', content: Buffer.from('{"a":1}\n') },
  { path: 'inc-1/commands/01-apply-raise-limits-limits/stdout.txt', content: Buffer.from('x'.repeat(1500)) },
  { path: 'inc-1/empty.txt', content: Buffer.alloc(0) },
  { path: `inc-1/${'d'.repeat(90)}/${'f'.repeat(60)}.json`, content: Buffer.from('long path') },
];

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
    const archive = join(work, 'ours.tar');
    await writeFile(archive, encodeTar(entries, new Date('2026-11-21T10:00:00Z')));
    const target = join(work, 'extracted');
    await mkdir(target);
    await execFile('tar', ['-xf', archive, '-C', target]);
    for (const entry of entries) expect(await readFile(join(target, entry.path))).toEqual(entry.content);
  });

  it('reads archives the system tar writes, long names included', async () => {
    const source = join(work, 'source');
    for (const entry of entries) {
      await mkdir(join(source, entry.path, '..'), { recursive: true });
      await writeFile(join(source, entry.path), entry.content);
    }
    for (const format of ['gnu', 'posix', 'ustar']) {
      const archive = join(work, `theirs-${format}.tar`);
      await execFile('tar', [`--format=${format}`, '-cf', archive, '-C', source, 'inc-1']);
      const read = decodeTar(await readFile(archive));
      expect(read.sort((a, b) => a.path.localeCompare(b.path))).toEqual(
        [...entries].sort((a, b) => a.path.localeCompare(b.path)),
      );
    }
  });

  it('refuses links, paths that escape, and damaged headers', () => {
    const ok = encodeTar([{ path: 'a/b.txt', content: Buffer.from('b') }], new Date(0));
    const link = Buffer.from(ok);
    link[156] = '2'.charCodeAt(0);
    fixChecksum(link);
    expect(() => decodeTar(link)).toThrow(/type '2'/);

    expect(() => encodeTar([{ path: '../evil', content: Buffer.alloc(0) }], new Date(0))).toThrow(
      /unsafe path/,
    );
    const escaping = Buffer.from(encodeTar([{ path: 'aa/evil', content: Buffer.alloc(0) }], new Date(0)));
    // rename the file entry (second header: the first is the directory) to ../evil
    escaping.write('../evil\u0000', 512, 'ascii');
    fixChecksum(escaping.subarray(512));
    expect(() => decodeTar(escaping)).toThrow(/unsafe path/);

    const damaged = Buffer.from(ok);
    damaged[0] = (damaged[0] ?? 0) ^ 0xff;
    expect(() => decodeTar(damaged)).toThrow(/bad checksum/);
  });
});

function fixChecksum(header: Buffer): void {
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (let index = 0; index < 512; index++) sum += header[index] ?? 0;
  header.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'ascii');
}
