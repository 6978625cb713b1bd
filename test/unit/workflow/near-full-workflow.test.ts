import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Template } from 'aws-cdk-lib/assertions';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildEvidenceBundle } from '../../../functions/core/evidence/bundle.js';
import { evidenceFromWorkflow } from '../../../functions/core/evidence/from-workflow.js';
import type { IncidentEvidence } from '../../../functions/core/evidence/incident.js';
import { toBuffer, verifyBundleFiles } from '../../../functions/core/evidence/manifest.js';
import { buildTimeline } from '../../../functions/core/evidence/timeline.js';
import {
  DEFAULT_FORECAST_SETTINGS,
  forecastRecord,
  forecastTable,
  type WindowSample,
} from '../../../functions/core/forecast/index.js';
import { resolvePolicy } from '../../../functions/core/plan/index.js';
import type { RunDocumentRequest, RunDocumentResult } from '../../../functions/local/ssm-executor.js';
import type { AslMachine } from '../../../functions/local/twin/asl.js';
import { localFunctions } from '../../../functions/local/twin/local-functions.js';
import { localSsm } from '../../../functions/local/twin/local-ssm.js';
import { type LocalRun, runWorkflowLocally } from '../../../functions/local/twin/runner.js';
import { onlyStateMachine } from '../../../functions/local/twin/template.js';
import { workflowTestStack } from '../../infra/support/workflow-stack.js';
import { ReportBuilder } from '../../support/report-builder.js';

/**
 * A `near-full` incident through the synthesized workflow under the local interpreter, with the
 * real planner, gate, verification and evidence code and a scripted host (issue 13): confirmed by
 * rising usage on the host, fixed before any drop, and told as a story ahead of the outage.
 */

const definition = onlyStateMachine(Template.fromStack(workflowTestStack().stack).toJSON())
  .definition as unknown as AslMachine;
const MAX = 262_144;

/** Ten samples a minute apart, rising 100 entries/s, the last one 30 s ago. */
function forecast() {
  const last = Date.now() - 30_000;
  const window: WindowSample[] = Array.from({ length: 10 }, (_, index) => ({
    t: last - (9 - index) * 60_000,
    count: 146_000 + 6_000 * index,
    max: MAX,
    drop: 0,
    boot: '1f0e2d3c',
  }));
  const made = forecastTable(window, DEFAULT_FORECAST_SETTINGS);
  if (made?.trigger !== 'horizon') throw new Error('the test window must trigger on the horizon');
  return forecastRecord(made, window, DEFAULT_FORECAST_SETTINGS);
}

function success(json: unknown): RunDocumentResult {
  const stdout = JSON.stringify(json);
  return {
    status: 'Success',
    statusDetails: 'Success',
    exitCode: 0,
    stdout,
    stderr: '',
    stdoutTruncated: false,
    stderrTruncated: false,
    fullStdout: stdout,
    fullStderr: '',
    parameters: {},
    durationMs: 1,
  };
}

/** A host whose table rises by `rise` entries over each report's 3 s until the limit is raised. */
function fillingHost(rise: number) {
  let raised: number | null = null;
  const commands: string[] = [];
  const run = async (request: RunDocumentRequest): Promise<RunDocumentResult> => {
    commands.push(request.name);
    if (request.name === 'collect-diagnostics') {
      const max = raised ?? MAX;
      return success(
        ReportBuilder.healthy()
          .table({ max, count: 200_000 })
          // Already a day, as kube-proxy sets it: nothing for a person to approve, the raise runs alone.
          .sysctl('tcp_timeout_established', 86_400)
          .stat('entries', 200_000 - rise, 200_000)
          .states({ 'tcp ESTABLISHED': 200_000 })
          .drops(0)
          .build(),
      );
    }
    if (request.name === 'raise-limits') raised = Number(request.parameters.MaxEntries);
    return success({
      document: request.name,
      changeId: request.parameters.ChangeId,
      status: 'applied',
      reasons: [],
    });
  };
  return { run, commands };
}

let outDir: string;
beforeEach(async () => {
  outDir = await mkdtemp(join(tmpdir(), 'near-full-workflow-'));
});
afterEach(async () => {
  await rm(outDir, { recursive: true, force: true });
});

async function respond(host: ReturnType<typeof fillingHost>) {
  const record = forecast();
  const ssm = localSsm({ netns: 'ctr-nf-i', pollMs: 5, run: host.run, online: async () => true });
  let evidence: IncidentEvidence | undefined;
  let execution: LocalRun | undefined;
  execution = runWorkflowLocally({
    definition,
    input: {
      incidentId: 'inc-near-1',
      instanceId: 'ctr-nf-i',
      kind: 'near-full',
      mode: 'auto',
      trigger: {
        netns: '4026532177',
        dropLines: 0,
        suppressed: 0,
        events: [
          {
            timestamp: Date.parse(record.sampledAt),
            message: `conntrack-responder-sample v=1 seq=10 t=${Date.parse(record.sampledAt) / 1000} boot=1f0e2d3c ns=4026532177 count=200000 max=${MAX} drop=0`,
          },
        ],
        forecast: record,
      },
    },
    ssm,
    lambdas: localFunctions({
      outDir,
      settings: { policy: resolvePolicy({}), soakSeconds: 0 },
      approval: 'reject',
      stdin: new PassThrough(),
      stdout: new PassThrough(),
      writeEvidence: async (state) => {
        evidence = evidenceFromWorkflow({
          state,
          history: execution?.history() ?? [],
          closedAt: new Date().toISOString(),
        });
        return { location: 'memory' };
      },
    }),
    soakMs: 0,
    retryIntervalMs: 0,
  });
  const ended = await execution.result;
  if ('error' in ended) throw ended.error;
  if (!evidence) throw new Error('the workflow never wrote its evidence');
  return { evidence, record };
}

describe('the workflow on a near-full incident', () => {
  it('confirms rising usage on the host, raises the limit before any drop, and tells the story ahead of the outage', async () => {
    const host = fillingHost(900);
    const { evidence, record } = await respond(host);
    expect(evidence.plan?.classification).toBe('near-full');
    expect(evidence.outcome.status).toBe('remediated');
    expect(host.commands).toContain('raise-limits');
    expect(host.commands).not.toContain('notrack-ports');
    expect(evidence.verification?.passed).toBe(true);

    expect(evidence.forecast?.predictedFullAt).toBe(record.predictedFullAt);
    expect(evidence.forecast?.samples).toHaveLength(10);
    // The sample lines are with the forecast, not shown as drop lines.
    expect(evidence.logEvents).toEqual([]);
    const timeline = buildTimeline(evidence);
    expect(timeline.events[0]?.key).toBe('forecast');
    expect(timeline.events.map((event) => event.key)).not.toContain('first-drop');

    const bundle = buildEvidenceBundle(evidence);
    expect(
      verifyBundleFiles(new Map([...bundle.files].map(([path, content]) => [path, toBuffer(content)]))).ok,
    ).toBe(true);
    expect(JSON.parse(String(bundle.files.get('forecast.json'))).samples).toHaveLength(10);
    const chart = String(bundle.files.get('chart.svg'));
    expect(chart).toMatch(/data-series="forecast"[^>]*data-full-at="[^"]+"/);
    const postmortem = String(bundle.files.get('postmortem.md'));
    expect(postmortem).toContain('## Ahead of the outage');
    expect(postmortem).toContain(`Predicted full at **${record.predictedFullAt}**`);
    expect(postmortem).toMatch(/before\*\* the table would have been full \(lead time gained\)/);
    expect(postmortem).toMatch(/only opened the incident/);
  });

  it('changes nothing when the host’s own counters do not show the table filling', async () => {
    const host = fillingHost(0);
    const { evidence } = await respond(host);
    expect(evidence.plan?.classification).toBe('not-confirmed');
    expect(host.commands.filter((name) => name !== 'collect-diagnostics')).toEqual([]);
    const postmortem = String(buildEvidenceBundle(evidence).files.get('postmortem.md'));
    expect(postmortem).toContain('## Ahead of the outage');
    expect(postmortem).toContain('No fix was applied');
  });
});
