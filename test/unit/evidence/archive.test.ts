import { createGzip, gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { packEvidenceBundle, sortedBundleFiles } from '../../../functions/core/evidence/archive.js';
import { buildEvidenceBundle } from '../../../functions/core/evidence/bundle.js';
import { contentsOf, MANIFEST_PATH, toBuffer } from '../../../functions/core/evidence/manifest.js';
import { BundleReadError } from '../../../functions/core/evidence/read-error.js';
import {
  type BundleContents,
  DEFAULT_READ_LIMITS,
  readBundleArchive,
} from '../../../functions/core/evidence/reader.js';
import { decodeTar, encodeTar } from '../../../functions/core/evidence/tar.js';
import { remediatedIncident } from '../../support/evidence-builder.js';
import { archive, bundleEntries, file, header, targz } from '../../support/hostile-tar.js';

async function* chunks(data: Buffer, size = 65536): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
}

async function read(data: Buffer, name = 'bundle.tar.gz', size?: number): Promise<BundleContents> {
  return readBundleArchive(chunks(data, size), name);
}

async function refusal(promise: Promise<unknown>): Promise<BundleReadError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof BundleReadError) return error;
    throw error;
  }
  throw new Error('the input was accepted');
}

describe('evidence archive', () => {
  const bundle = buildEvidenceBundle(remediatedIncident());
  const files = new Map(sortedBundleFiles(bundle));

  it('packs every file under the incident folder, in path order, and reads back the same files', async () => {
    const packed = packEvidenceBundle(bundle);
    const paths = decodeTar(gunzipSync(packed)).map((entry) => entry.path);
    expect(paths).toEqual([...files.keys()].map((path) => `inc-42/${path}`));
    const contents = await read(packed);
    const expected = contentsOf(files);
    expect(contents.members).toEqual(expected.members);
    expect(contents.manifest?.equals(toBuffer(bundle.files.get(MANIFEST_PATH) ?? ''))).toBe(true);
    expect(contents.signature).toBeNull();
  });

  it('reads the same files from a stream cut into odd-sized chunks', async () => {
    const packed = packEvidenceBundle(bundle);
    const whole = await read(packed);
    for (const size of [3, 511, 513]) expect((await read(packed, 'x', size)).members).toEqual(whole.members);
  });

  it('packs byte-identical archives for the same bundle', () => {
    expect(
      packEvidenceBundle(bundle).equals(packEvidenceBundle(buildEvidenceBundle(remediatedIncident()))),
    ).toBe(true);
  });

  it('reads an uncompressed tar whose manifest sits at the top', async () => {
    const tar = encodeTar(
      [
        { path: 'manifest.json', content: Buffer.from('{}') },
        { path: 'plan.json', content: Buffer.from('[]') },
      ],
      new Date(0),
    );
    expect([...(await read(tar, 'flat.tar')).members.keys()]).toEqual(['manifest.json', 'plan.json']);
  });

  it('keeps files outside the bundle folder visible as ../<path>, so that they are reported', async () => {
    const contents = await read(
      targz([...bundleEntries(bundle), { path: 'outside.txt', content: Buffer.from('x') }]),
    );
    expect(contents.members.has('../outside.txt')).toBe(true);
  });

  it('names the archive when it holds two manifests, or one path twice', async () => {
    const two = encodeTar(
      [
        { path: 'a/manifest.json', content: Buffer.from('{}') },
        { path: 'b/manifest.json', content: Buffer.from('{}') },
      ],
      new Date(0),
    );
    const several = await refusal(read(two, 'two.tar'));
    expect(several.rule).toBe('several-manifests');
    expect(several.message).toBe(
      'two.tar: holds 2 manifest.json files: "a/manifest.json", "b/manifest.json"',
    );
    const twice = archive(file('inc/plan.json', '[]'), file('inc/plan.json', '[1]'));
    const duplicate = await refusal(read(twice, 'twice.tar'));
    expect(duplicate.rule).toBe('duplicate-entry');
    expect(duplicate.message).toBe('twice.tar: holds "inc/plan.json" twice');
  });

  it('refuses a manifest.json larger than 8 MiB before keeping it', async () => {
    const huge = Buffer.alloc(8 * 1024 * 1024 + 1, 0x20);
    const error = await refusal(
      read(encodeTar([{ path: 'inc/manifest.json', content: huge }], new Date(0)), 'm.tar'),
    );
    expect(error.rule).toBe('manifest-size');
  });

  describe('gzip', () => {
    const packed = packEvidenceBundle(bundle);

    it('a truncated gzip stream', async () => {
      const error = await refusal(read(packed.subarray(0, packed.length - 40), 'cut.tar.gz'));
      expect(error.rule).toBe('truncated');
      expect(error.message).toBe('cut.tar.gz: the gzip stream is truncated');
    });

    it('a damaged gzip stream', async () => {
      const damaged = Buffer.from(packed);
      damaged[200] = (damaged[200] ?? 0) ^ 0xff;
      expect((await refusal(read(damaged, 'bad.tar.gz'))).message).toMatch(
        /^bad\.tar\.gz: (not a readable gzip|.*damaged)/,
      );
    });

    it('zeros after the end of the gzip stream (zlib itself would skip them silently)', async () => {
      const error = await refusal(read(Buffer.concat([packed, Buffer.alloc(100)]), 'z.tar.gz'));
      expect(error.rule).toBe('data-after-end');
      expect(error.message).toBe('z.tar.gz: 100 byte(s) after the end of the gzip stream');
    });

    it('a second gzip member carrying more entries after the end of the archive', async () => {
      const appended = Buffer.concat([packed, gzipSync(archive(file('inc-42/planted.txt', 'x')))]);
      expect((await refusal(read(appended))).rule).toBe('data-after-end');
    });

    it('megabytes of zeros after the gzip stream stop reading early', async () => {
      async function* endless(): AsyncGenerator<Buffer> {
        yield packed;
        for (let index = 0; index < 10_000; index++) yield Buffer.alloc(65536);
        throw new Error('read 655 MB of trailing zeros: the reader did not stop');
      }
      const error = await refusal(readBundleArchive(endless(), 'endless.tar.gz'));
      expect(error.rule).toBe('data-after-end');
    });

    it('a gzip bomb: refused by its compression ratio after about a megabyte', async () => {
      // One 512 MiB member of zeros compresses to about half a megabyte (1000:1).
      const gzip = createGzip({ level: 9 });
      const compressed: Buffer[] = [];
      gzip.on('data', (chunk: Buffer) => compressed.push(chunk));
      const done = new Promise((resolve) => gzip.on('end', resolve));
      gzip.write(header({ path: 'inc/bomb', size: 512 * 1024 * 1024 }));
      const zeros = Buffer.alloc(1024 * 1024);
      for (let index = 0; index < 512; index++) {
        if (!gzip.write(zeros)) await new Promise((resolve) => gzip.once('drain', resolve));
      }
      gzip.end();
      await done;
      const bomb = Buffer.concat(compressed);
      expect(bomb.length).toBeLessThan(1024 * 1024);
      const error = await refusal(
        readBundleArchive(chunks(bomb), 'bomb.tar.gz', {
          ...DEFAULT_READ_LIMITS,
          maxMemberBytes: 2 ** 40,
          maxTotalBytes: 2 ** 40,
        }),
      );
      expect(error.limit).toBe('maxCompressionRatio');
      expect(error.message).toMatch(
        /^bomb\.tar\.gz: expands more than 100 times .*\(limit maxCompressionRatio\)$/,
      );
    });
  });

  it.each([
    [
      'a zip file',
      Buffer.concat([Buffer.from('PK\u0003\u0004'), Buffer.alloc(600, 1)]),
      /it looks a zip file/,
    ],
    [
      'xz',
      Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.alloc(600, 1)]),
      /xz-compressed/,
    ],
    [
      'text',
      Buffer.from('not an archive\n'.repeat(100)),
      /^t: not a tar archive: no ustar or GNU tar magic in the header$/,
    ],
    ['gzip of text', gzipSync(Buffer.from('hello\n'.repeat(200))), /not a tar archive/],
  ])('says "not a tar archive" for %s', async (_name, data, message) => {
    const error = await refusal(read(data, 't'));
    expect(error.rule).toBe('not-a-tar-archive');
    expect(error.message).toMatch(message);
  });
});
