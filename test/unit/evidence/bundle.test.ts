import { describe, expect, it } from 'vitest';
import { buildEvidenceBundle } from '../../../functions/core/evidence/bundle.js';
import type { IncidentEvidence } from '../../../functions/core/evidence/incident.js';
import {
  MANIFEST_PATH,
  sha256,
  toBuffer,
  verifyBundleFiles,
} from '../../../functions/core/evidence/manifest.js';
import { OUTCOMES } from '../../../functions/core/workflow/outcome.js';
import { at, remediatedIncident } from '../../support/evidence-builder.js';

const asBuffers = (files: ReadonlyMap<string, string | Buffer>) =>
  new Map([...files].map(([path, content]) => [path, toBuffer(content)]));

describe('buildEvidenceBundle', () => {
  const bundle = buildEvidenceBundle(remediatedIncident());

  it('holds every artifact the issue asks for', () => {
    const paths = [...bundle.files.keys()];
    for (const expected of [
      'manifest.json',
      'postmortem.md',
      'chart.svg',
      'incident.json',
      'log-events.json',
      'diagnostics/before.json',
      'diagnostics/after.json',
      'plan.json',
      'approvals.json',
      'verification.json',
      'timeline.json',
      'impact.json',
      'execution-history.json',
      'commands/02-apply-raise-limits-limits/parameters.json',
      'commands/02-apply-raise-limits-limits/stdout.txt',
      'commands/02-apply-raise-limits-limits/stderr.txt',
      'commands/02-apply-raise-limits-limits/result.json',
    ]) {
      expect(paths).toContain(expected);
    }
    expect(bundle.root).toBe('inc-42');
  });

  it('records the exact parameters each command was sent', () => {
    const plan = remediatedIncident().plan;
    const sent = JSON.parse(
      String(bundle.files.get('commands/03-apply-raise-limits-timeouts/parameters.json')),
    );
    expect(sent).toEqual(plan?.actions.find((action) => action.id === 'timeouts')?.parameters);
  });

  it('lists every other file in the manifest with its sha256 and size, and not itself', () => {
    const listed = new Map(bundle.manifest.files.map((file) => [file.path, file]));
    expect(listed.has(MANIFEST_PATH)).toBe(false);
    expect(listed.size).toBe(bundle.files.size - 1);
    for (const [path, content] of bundle.files) {
      if (path === MANIFEST_PATH) continue;
      expect(listed.get(path)).toEqual({ path, sha256: sha256(content), bytes: toBuffer(content).length });
    }
    expect(bundle.manifest.incidentId).toBe('inc-42');
    expect(bundle.manifest.times).toMatchObject({ firstDrop: at(0), remediated: at(45), closed: at(125) });
  });

  it('is deterministic: the same evidence gives byte-identical files', () => {
    const again = buildEvidenceBundle(remediatedIncident());
    expect([...again.files.keys()]).toEqual([...bundle.files.keys()]);
    for (const [path, content] of bundle.files) expect(again.files.get(path)).toEqual(content);
  });

  it('makes a bundle for an incident that never reached the host', () => {
    const unmanaged: IncidentEvidence = {
      ...remediatedIncident(),
      outcome: OUTCOMES.notManaged,
      before: null,
      after: null,
      plan: null,
      approvals: [],
      commands: [],
      verification: null,
    };
    const result = buildEvidenceBundle(unmanaged);
    expect(result.files.has('plan.json')).toBe(false);
    expect(String(result.files.get('postmortem.md'))).toContain('No diagnostics could be collected');
    expect(verifyBundleFiles(asBuffers(result.files)).ok).toBe(true);
  });

  it('refuses an incident id that gives no folder name', () => {
    expect(() => buildEvidenceBundle({ ...remediatedIncident(), incidentId: '...' })).toThrow(
      /no usable folder name/,
    );
  });

  it('names the field of an unparseable time', () => {
    expect(() => buildEvidenceBundle({ ...remediatedIncident(), detectedAt: 'yesterday' })).toThrow(
      /detectedAt/,
    );
  });
});

describe('verifyBundleFiles', () => {
  const pristine = () => asBuffers(buildEvidenceBundle(remediatedIncident()).files);

  it('accepts an untouched bundle', () => {
    const result = verifyBundleFiles(pristine());
    expect(result.ok).toBe(true);
    expect(result.verified.length).toBe(pristine().size - 1);
    expect(result.manifestSha256).toBe(sha256(pristine().get(MANIFEST_PATH) ?? ''));
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
    expect(result.missing).toEqual([]);
    expect(result.unexpected).toEqual([]);
  });

  it('names a deleted file as missing', () => {
    const files = pristine();
    files.delete('plan.json');
    const result = verifyBundleFiles(files);
    expect(result.missing).toEqual(['plan.json']);
    expect(result.ok).toBe(false);
  });

  it('names an added file as unexpected', () => {
    const files = pristine();
    files.set('diagnostics/extra.json', Buffer.from('{}'));
    const result = verifyBundleFiles(files);
    expect(result.unexpected).toEqual(['diagnostics/extra.json']);
    expect(result.ok).toBe(false);
  });

  it('reports every discrepancy at once', () => {
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
    ['missing', (files: Map<string, Buffer>) => files.delete(MANIFEST_PATH), /manifest.json is missing/],
    [
      'not JSON',
      (files: Map<string, Buffer>) => files.set(MANIFEST_PATH, Buffer.from('{')),
      /not valid JSON/,
    ],
    [
      'of the wrong shape',
      (files: Map<string, Buffer>) => files.set(MANIFEST_PATH, Buffer.from('{"format":"zip"}')),
      /does not match the manifest format/,
    ],
  ])('fails with a clear problem when the manifest is %s', (_name, damage, message) => {
    const files = pristine();
    damage(files);
    const result = verifyBundleFiles(files);
    expect(result.ok).toBe(false);
    expect(result.problems.join('\n')).toMatch(message);
  });

  it('refuses a manifest that lists a file twice', () => {
    const files = pristine();
    const manifest = JSON.parse(String(files.get(MANIFEST_PATH)));
    manifest.files.push(manifest.files[0]);
    files.set(MANIFEST_PATH, Buffer.from(JSON.stringify(manifest)));
    expect(verifyBundleFiles(files).problems.join()).toMatch(/twice/);
  });
});
