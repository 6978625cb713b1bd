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
