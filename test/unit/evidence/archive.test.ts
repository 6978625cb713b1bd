import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  packEvidenceBundle,
  sortedBundleFiles,
  unpackEvidenceArchive,
} from '../../../functions/core/evidence/archive.js';
import { buildEvidenceBundle } from '../../../functions/core/evidence/bundle.js';
import { decodeTar, encodeTar } from '../../../functions/core/evidence/tar.js';
import { remediatedIncident } from '../../support/evidence-builder.js';

describe('evidence archive (in memory)', () => {
  const bundle = buildEvidenceBundle(remediatedIncident());

  it('packs every file under the incident folder, in path order, and unpacks the same bytes', () => {
    const archive = packEvidenceBundle(bundle);
    const paths = decodeTar(gunzipSync(archive)).map((entry) => entry.path);
    const files = sortedBundleFiles(bundle);
    expect(paths.filter((path) => !path.endsWith('/'))).toEqual(files.map(([path]) => `inc-42/${path}`));
    expect(unpackEvidenceArchive(archive, 'inc-42.tar.gz')).toEqual(new Map(files));
  });

  it('packs byte-identical archives for the same bundle', () => {
    expect(
      packEvidenceBundle(bundle).equals(packEvidenceBundle(buildEvidenceBundle(remediatedIncident()))),
    ).toBe(true);
  });

  it('unpacks an uncompressed tar whose manifest sits at the top', () => {
    const tar = encodeTar(
      [
        { path: 'manifest.json', content: Buffer.from('{}') },
        { path: 'plan.json', content: Buffer.from('[]') },
      ],
      new Date(0),
    );
    expect([...unpackEvidenceArchive(tar, 'flat.tar').keys()]).toEqual(['manifest.json', 'plan.json']);
  });

  it('names the archive when it holds two manifests or is not readable gzip', () => {
    const twoManifests = encodeTar(
      [
        { path: 'a/manifest.json', content: Buffer.from('{}') },
        { path: 'b/manifest.json', content: Buffer.from('{}') },
      ],
      new Date(0),
    );
    expect(() => unpackEvidenceArchive(twoManifests, 'two.tar')).toThrow(
      /two\.tar: the archive holds 2 manifest\.json files: a\/manifest\.json, b\/manifest\.json/,
    );
    const damaged = packEvidenceBundle(bundle).subarray(0, 200);
    expect(() => unpackEvidenceArchive(damaged, 'cut.tar.gz')).toThrow(
      /cut\.tar\.gz: not a readable gzip file/,
    );
  });
});
