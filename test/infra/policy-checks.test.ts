import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PolicyValidationPluginReport } from 'aws-cdk-lib';
import { Stack, Validations } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { describe, expect, it } from 'vitest';
import { ConntrackResponder } from '../../infra/conntrack-responder.js';
import { addPolicyChecks, policyPacks } from '../../infra/policy-checks.js';
import { FIXTURE_RUNBOOKS, synthesize, testApp } from './support.js';

const findings = (report: PolicyValidationPluginReport) =>
  report.violations.flatMap((violation) =>
    violation.violatingResources.map((resource) => `${violation.ruleName} at ${resource.constructPath}`),
  );

/** The packs' findings as if nothing had been acknowledged. */
function rawFindings(scope: Parameters<ReturnType<typeof policyPacks>[number]['validateScope']>[0]) {
  return policyPacks().flatMap((pack) => {
    // The pack consults acknowledgements through this one method; without it, it reports everything.
    Object.assign(pack, { isAcknowledged: () => false });
    return pack.validateScope(scope).violations.flatMap((violation) =>
      violation.violatingResources.map((resource) => ({
        rule: violation.ruleName,
        path: resource.constructPath ?? '',
      })),
    );
  });
}

function acknowledgements(scope: ReturnType<typeof testApp>) {
  return scope.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
          path: construct.node.path,
          rule: id.replace(/^annotation::/i, ''),
          reason,
        })),
      ),
  );
}

describe('cdk-nag AwsSolutions and Serverless packs', () => {
  it.each([
    ['defaults', {}],
    [
      'existing log groups, Object Lock and runbook documents',
      {
        logGroupNames: ['/var/log/messages', '/var/log/kern.log'],
        objectLock: true,
        runbookDirectory: FIXTURE_RUNBOOKS,
      },
    ],
  ])('report no unacknowledged finding (%s)', (_name, props) => {
    const { app } = synthesize(props);
    for (const pack of policyPacks()) expect(findings(pack.validateScope(app))).toEqual([]);
  });

  it('run at synth and pass on the stack as deployed', () => {
    // Prepare
    const { app } = synthesize();
    addPolicyChecks(app);
    // Act / Assess
    expect(() => app.synth()).not.toThrow();
  });

  it('fail the synth when a construct brings a new finding, and name it in the report', () => {
    // Prepare
    const outdir = mkdtempSync(join(tmpdir(), 'ctr-nag-'));
    const app = testApp(outdir);
    const stack = new Stack(app, 'WithFinding');
    new ConntrackResponder(stack, 'Responder');
    new s3.Bucket(stack, 'CarelessBucket');
    addPolicyChecks(app);
    // Act / Assess
    try {
      expect(() => app.synth()).toThrow();
      const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8'));
      const failures = report.pluginReports.flatMap(
        (plugin: { violations: { ruleName: string; violatingConstructs: { constructPath: string }[] }[] }) =>
          plugin.violations.flatMap((v) =>
            v.violatingConstructs.map((c) => `${v.ruleName} at ${c.constructPath}`),
          ),
      );
      expect(failures.sort()).toEqual([
        'AwsSolutions-S1 at WithFinding/CarelessBucket/Resource',
        'AwsSolutions-S10 at WithFinding/CarelessBucket/Resource',
      ]);
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });

  it('have every acknowledgement answer a real finding at or under its construct, with a one-sentence reason', () => {
    // Prepare
    const { app } = synthesize({ logGroupNames: ['/var/log/messages'], objectLock: true });
    // Act
    const raw = rawFindings(app);
    const acks = acknowledgements(app);
    // Assess
    expect(acks.length).toBeGreaterThan(0);
    for (const ack of acks) {
      const answered = raw.some(
        (finding) => finding.rule === ack.rule && finding.path.startsWith(`${ack.path}/`),
      );
      expect(answered, `${ack.rule} acknowledged at ${ack.path} answers no finding`).toBe(true);
      expect(ack.reason, `reason of ${ack.rule} at ${ack.path}`).toMatch(/^[A-Z][^\n]{20,200}[^.]\.$/);
      expect(ack.reason.slice(0, -1), `reason of ${ack.rule} at ${ack.path}`).not.toMatch(/\.\s/);
    }
  });
});
