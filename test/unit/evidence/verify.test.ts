import { describe, expect, it } from 'vitest';
import { buildEvidenceBundle } from '../../../functions/core/evidence/bundle.js';
import {
  type BundleVerification,
  MANIFEST_PATH,
  REQUIRED_FILES,
  sha256,
  toBuffer,
  verifyBundleFiles,
} from '../../../functions/core/evidence/manifest.js';
import { remediatedIncident } from '../../support/evidence-builder.js';
import { rehashed } from '../../support/hostile-tar.js';

const bundle = buildEvidenceBundle(remediatedIncident());
const pristine = () => new Map([...bundle.files].map(([path, content]) => [path, toBuffer(content)]));
const recordedDigest = sha256(toBuffer(bundle.files.get(MANIFEST_PATH) ?? ''));

/** The bundle with its manifest edited (and nothing else). */
function withManifest(
  edit: (manifest: { files: { path: string; sha256: string; bytes: number }[] }) => void,
) {
  const files = pristine();
  const manifest = JSON.parse(String(files.get(MANIFEST_PATH)));
  edit(manifest);
  files.set(MANIFEST_PATH, Buffer.from(JSON.stringify(manifest)));
  return files;
}

const rules = (result: BundleVerification) => result.problems.map((problem) => problem.rule);

describe('verifyBundleFiles: what held before', () => {
  it('accepts an untouched bundle and prints its manifest digest', () => {
    const result = verifyBundleFiles(pristine());
    expect(result).toMatchObject({ ok: true, problems: [], manifestSha256: recordedDigest });
    expect(result.verified.length).toBe(pristine().size - 1);
    expect(result.digest).toEqual({ status: 'not-given' });
    expect(result.signature).toEqual({ status: 'absent' });
  });

  it.each([
    'postmortem.md',
    'diagnostics/before.json',
    'commands/02-apply-raise-limits-limits/stdout.txt',
    'chart.svg',
  ])('names %s when one byte of it changed, and only it', (path) => {
    const files = pristine();
    const content = Buffer.from(files.get(path) ?? '');
    const middle = Math.floor(content.length / 2);
    content[middle] = (content[middle] ?? 0) ^ 0x01;
    files.set(path, content);
    const result = verifyBundleFiles(files);
    expect(result.ok).toBe(false);
    expect(result.altered.map((file) => file.path)).toEqual([path]);
    expect(result.altered[0]?.actual).toBe(sha256(content));
    expect([result.missing, result.unexpected]).toEqual([[], []]);
  });

  it('reports a deleted, an added and a changed file at once', () => {
    const files = pristine();
    files.delete('approvals.json');
    files.set('notes.txt', Buffer.from('hi'));
    files.set('impact.json', Buffer.from('{}'));
    const result = verifyBundleFiles(files);
    expect([result.altered.map((f) => f.path), result.missing, result.unexpected]).toEqual([
      ['impact.json'],
      ['approvals.json'],
      ['notes.txt'],
    ]);
  });

  it.each([
    ['missing', (files: Map<string, Buffer>) => files.delete(MANIFEST_PATH), 'manifest-missing'],
    ['not JSON', (files: Map<string, Buffer>) => files.set(MANIFEST_PATH, Buffer.from('{')), 'manifest-json'],
    [
      'of the wrong shape',
      (files: Map<string, Buffer>) => files.set(MANIFEST_PATH, Buffer.from('{"format":"zip"}')),
      'manifest-format',
    ],
    [
      'malformed in one entry',
      (files: Map<string, Buffer>) => {
        const manifest = JSON.parse(String(files.get(MANIFEST_PATH)));
        manifest.files[2].sha256 = 'not hex';
        files.set(MANIFEST_PATH, Buffer.from(JSON.stringify(manifest)));
      },
      'manifest-format',
    ],
  ])('fails with the rule that broke when the manifest is %s', (_name, damage, rule) => {
    const files = pristine();
    damage(files);
    const result = verifyBundleFiles(files);
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([expect.objectContaining({ file: MANIFEST_PATH, rule })]);
  });

  it('refuses a manifest that lists a file twice, naming the entry', () => {
    const result = verifyBundleFiles(
      withManifest((manifest) =>
        manifest.files.push({ ...(manifest.files[0] as (typeof manifest.files)[number]) }),
      ),
    );
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([
      {
        file: `${MANIFEST_PATH} files[${bundle.manifest.files.length}]`,
        rule: 'path-duplicate',
        detail: `lists ${JSON.stringify(bundle.manifest.files[0]?.path)} a second time`,
      },
    ]);
  });
});

describe('verifyBundleFiles: the cases that used to be accepted', () => {
  it('a manifest entry pointing outside the bundle (../outside.txt), even when such a file is offered', () => {
    const files = withManifest((manifest) =>
      manifest.files.push({ path: '../outside.txt', sha256: sha256('outside'), bytes: 7 }),
    );
    // An archive reader reports a file beside the bundle folder under this very name.
    files.set('../outside.txt', Buffer.from('outside'));
    const result = verifyBundleFiles(files);
    expect(result.ok).toBe(false);
    expect(result.verified).not.toContain('../outside.txt');
    expect(result.problems).toContainEqual({
      file: `${MANIFEST_PATH} files[${bundle.manifest.files.length}]`,
      rule: 'path-unsafe',
      detail: 'path "../outside.txt" has a ".." segment (it would leave the bundle folder)',
    });
  });

  it.each([
    ['/etc/passwd', 'is absolute'],
    ['./plan.json', 'has a "." segment'],
    ['commands//x', 'has an empty segment'],
    ['a\\b', 'contains a backslash'],
    ['x\u001b]0;pwned\u0007', 'contains a control character'],
    ['', 'is empty'],
  ])('a manifest path %j', (path, reason) => {
    const result = verifyBundleFiles(
      withManifest((manifest) => manifest.files.push({ path, sha256: sha256(''), bytes: 0 })),
    );
    expect(result.ok).toBe(false);
    expect(result.problems[0]).toMatchObject({ rule: 'path-unsafe' });
    expect(result.problems[0]?.detail).toContain(reason);
  });

  it('a manifest that lists manifest.json or signature.json', () => {
    for (const path of [MANIFEST_PATH, 'signature.json']) {
      const result = verifyBundleFiles(
        withManifest((manifest) => manifest.files.push({ path, sha256: sha256(''), bytes: 0 })),
      );
      expect(rules(result)).toEqual(['path-reserved']);
    }
  });

  it('a wrong bytes field, with the sha256 right', () => {
    const result = verifyBundleFiles(
      withManifest((manifest) => {
        for (const entry of manifest.files) if (entry.path === 'plan.json') entry.bytes += 1;
      }),
    );
    expect(result.ok).toBe(false);
    const plan = bundle.manifest.files.find((file) => file.path === 'plan.json') ?? { sha256: '', bytes: 0 };
    expect(result.altered).toEqual([
      {
        path: 'plan.json',
        expected: plan.sha256,
        actual: plan.sha256,
        expectedBytes: plan.bytes + 1,
        actualBytes: plan.bytes,
      },
    ]);
  });

  it('a manifest listing zero files', () => {
    const result = verifyBundleFiles(
      withManifest((manifest) => {
        manifest.files = [];
      }),
    );
    expect(result.ok).toBe(false);
    expect(
      result.problems.filter((problem) => problem.rule === 'required-file').map((problem) => problem.detail),
    ).toEqual(REQUIRED_FILES.map((path) => `does not list ${path}, which every bundle holds`));
  });

  it('a partial manifest: a required file left out of the manifest and the folder together', () => {
    const files = rehashed(bundle, (all) => all.delete('execution-history.json'));
    const result = verifyBundleFiles(files);
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([
      {
        file: MANIFEST_PATH,
        rule: 'required-file',
        detail: 'does not list execution-history.json, which every bundle holds',
      },
    ]);
  });

  it('a partial manifest: one file of a command folder left out', () => {
    const files = rehashed(bundle, (all) => all.delete('commands/02-apply-raise-limits-limits/stderr.txt'));
    const result = verifyBundleFiles(files);
    expect(result.problems).toEqual([
      {
        file: MANIFEST_PATH,
        rule: 'required-file',
        detail:
          'lists commands/02-apply-raise-limits-limits/ without stderr.txt (every command folder holds parameters.json, result.json, stderr.txt, stdout.txt)',
      },
    ]);
  });

  it('postmortem.md changed and re-hashed into the manifest: integrity holds, the recorded digest does not', () => {
    const files = rehashed(bundle, (all) =>
      all.set(
        'postmortem.md',
        Buffer.from(String(all.get('postmortem.md')).replace('remediated', 'no action needed')),
      ),
    );
    // Integrity alone cannot see it: that is why the digest is anchored outside the bundle.
    expect(verifyBundleFiles(files).ok).toBe(true);
    const anchored = verifyBundleFiles(files, { expectedDigest: recordedDigest });
    expect(anchored.ok).toBe(false);
    expect(anchored.digest).toEqual({ status: 'differs', expected: recordedDigest });
    expect(anchored.problems).toEqual([
      {
        file: MANIFEST_PATH,
        rule: 'digest-mismatch',
        detail: `sha256 ${anchored.manifestSha256} is not the recorded ${recordedDigest}: this is not the manifest the responder wrote`,
      },
    ]);
  });

  it('the untouched bundle against its recorded digest', () => {
    const result = verifyBundleFiles(pristine(), { expectedDigest: recordedDigest });
    expect(result).toMatchObject({ ok: true, digest: { status: 'matches', expected: recordedDigest } });
  });
});
