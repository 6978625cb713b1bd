import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DiagnosticsReport, DiagnosticsReportSchema } from '../../functions/core/diagnostics/report.js';
import { buildEvidenceBundle } from '../../functions/core/evidence/bundle.js';
import type { CommandRecord } from '../../functions/core/evidence/incident.js';
import { toBuffer, verifyBundleFiles } from '../../functions/core/evidence/manifest.js';
import { planRemediation } from '../../functions/core/plan/plan.js';
import { resolvePolicy } from '../../functions/core/plan/policy.js';
import type { Plan } from '../../functions/core/plan/types.js';
import { type VerificationResult, verifyRemediation } from '../../functions/core/plan/verify.js';
import { OUTCOMES } from '../../functions/core/workflow/outcome.js';
import { namespaceInode, withConntrackMax } from '../../functions/local/netns.js';
import { runDocument } from '../../functions/local/ssm-executor.js';
import {
  type ChurnResult,
  churnConnections,
  probeConnections,
  reproduceTableFull,
} from '../../functions/local/traffic.js';
import { withConntrackBucketsRestored } from './support/global-settings.js';
import { createServedLabHosts, type ServedLabHosts } from './support/lab.js';
import { labUnavailable } from './support/prerequisites.js';
import {
  createRemediationDirs,
  type RemediationDirs,
  type RemediationRun,
  runRemediation,
} from './support/remediation.js';

/**
 * The decision engine on what the real kernel and the real collect-diagnostics document report:
 * a namespace's table filled by short connections (seed 003) under a lowered global max, planned,
 * the plan's own parameters applied with the real raise-limits document, and verified from a second
 * real report. This is the part of the incident workflow that depends on the planner reading real
 * reports right.
 */

const SERVICE_PORT = 8080;
const LOW_MAX = 2048;

describe.skipIf(labUnavailable)('the decision engine on a real full table', () => {
  let hosts: ServedLabHosts;
  let dirs: RemediationDirs;
  let inode: string;
  let before: DiagnosticsReport;
  let after: DiagnosticsReport;
  let plan: Plan;
  const applied: RemediationRun[] = [];
  const commands: CommandRecord[] = [];
  let probe: ChurnResult;
  let verification: VerificationResult;

  const collect = async (step: 'collect-before' | 'collect-after') => {
    const startedAt = new Date().toISOString();
    const parameters = { SampleSeconds: '2', TopN: '10' };
    const run = await runDocument({
      name: 'collect-diagnostics',
      parameters,
      netns: hosts.instance,
      env: dirs.env,
    });
    expect(run.status, run.stderr).toBe('Success');
    commands.push({
      step,
      document: 'collect-diagnostics',
      actionId: null,
      parameters,
      commandId: null,
      startedAt,
      finishedAt: new Date().toISOString(),
      status: run.status,
      exitCode: run.exitCode,
      stdout: run.stdout,
      stderr: run.stderr,
    });
    return DiagnosticsReportSchema.parse(JSON.parse(run.stdout));
  };

  beforeAll(async () => {
    hosts = await createServedLabHosts({
      role: 'plan',
      backend: 'iptables-nft',
      servicePorts: [SERVICE_PORT],
    });
    dirs = await createRemediationDirs();
    inode = await namespaceInode(hosts.instance);
    await withConntrackBucketsRestored(() =>
      withConntrackMax(LOW_MAX, async () => {
        await reproduceTableFull({ hosts, port: SERVICE_PORT });
        // Clients keep failing while the report samples the counters.
        const clients = churnConnections(hosts.clients, hosts.instanceAddress, SERVICE_PORT, {
          count: 400,
          concurrency: 64,
          timeoutMs: 1500,
        });
        await new Promise((resolve) => setTimeout(resolve, 300));
        before = await collect('collect-before');
        await clients;

        plan = planRemediation({
          before,
          alert: { kind: 'table-full', netns: inode, dropLines: 1, suppressed: 0 },
          policy: resolvePolicy(),
          changeIdPrefix: 'lab-plan',
        });
        for (const action of plan.actions) {
          const startedAt = new Date().toISOString();
          const run = await runRemediation(action.document, { ...action.parameters }, hosts.instance, dirs);
          applied.push(run);
          commands.push({
            step: 'apply',
            document: action.document,
            actionId: action.id,
            parameters: action.parameters,
            commandId: null,
            startedAt,
            finishedAt: new Date().toISOString(),
            status: run.status,
            exitCode: run.exitCode,
            stdout: run.stdout,
            stderr: run.stderr,
          });
        }
        probe = await probeConnections(hosts.clients, hosts.instanceAddress, SERVICE_PORT, { count: 20 });
        after = await collect('collect-after');
        verification = verifyRemediation(before, after, plan.policy);
      }),
    );
  }, 240_000);

  afterAll(async () => {
    await hosts?.destroy();
    await dirs?.remove();
  });

  it('confirms the table full from the real counters of the namespace the kernel named', () => {
    expect(before.host.netnsInode).toBe(inode);
    expect(plan.classification).toBe('table-full');
    expect(plan.confirmed).toBe(true);
    expect(plan.signals.tableFullDrops).toBeGreaterThan(0);
  });

  it('raises the limit by at most the policy factor, and shortens TIME_WAIT, which dominates the table', () => {
    const limits = plan.actions.find((action) => action.kind === 'raise-limits');
    expect(limits?.parameters.MaxEntries).toBe(String(LOW_MAX * plan.policy.maxRaiseFactor));
    expect(plan.sizing?.limitedBy).toBe('raise-factor');
    const timeouts = plan.actions.find((action) => action.kind === 'shorten-timeouts');
    expect(timeouts?.parameters.Timeouts).toBe('tcp_timeout_time_wait=30');
    expect(timeouts?.requires).toEqual([limits?.id]);
  });

  it('sees the churn on the served port, and prefers the timeouts over NOTRACK for it', () => {
    const port = before.table.byLocalServicePort.find((row) => row.port === SERVICE_PORT);
    expect(port?.shortLived ?? 0).toBeGreaterThan(LOW_MAX / 2);
    expect(plan.actions.map((action) => action.kind)).not.toContain('notrack-ports');
    const refusal = plan.refusals.find((r) => r.considered === `NOTRACK tcp/${SERVICE_PORT} (served here)`);
    expect(refusal?.reason).toMatch(/^not needed/);
  });

  it('has every action accepted and applied by the real document', () => {
    expect(applied.map((run) => [run.exitCode, run.result.status])).toEqual(
      plan.actions.map(() => [0, 'applied']),
    );
  });

  it('lets new connections through again, and verification passes on the real after report', () => {
    expect(probe.succeeded).toBe(20);
    expect(after.conntrack.max).toBe(LOW_MAX * plan.policy.maxRaiseFactor);
    expect(verification.reasons.join('\n')).not.toMatch(/still dropped/);
    expect(verification.passed).toBe(true);
  });

  it('makes a bundle that verifies from this real incident', () => {
    const closedAt = new Date().toISOString();
    const bundle = buildEvidenceBundle({
      incidentId: 'lab-plan',
      instanceId: hosts.instance,
      alert: plan.alert,
      detectedAt: before.collectedAt,
      closedAt,
      outcome: OUTCOMES.remediated,
      logEvents: [],
      before,
      after,
      plan,
      approvals: [],
      commands,
      verification,
      executionHistory: [],
    });
    const files = new Map([...bundle.files].map(([path, content]) => [path, toBuffer(content)]));
    expect(verifyBundleFiles(files).ok).toBe(true);
    const impact = JSON.parse(String(bundle.files.get('impact.json')));
    expect(impact.measured.drops).toBeGreaterThan(0);
  });
});
