import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import type { Context } from 'aws-lambda';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { resolvePolicy } from '../../../functions/core/plan/index.js';
import { assessIncident } from '../../../functions/core/workflow/assess.js';
import { gateIncident } from '../../../functions/core/workflow/gate.js';
import { OUTCOMES } from '../../../functions/core/workflow/outcome.js';
import { handlerHarness } from '../../support/handler-harness.js';
import { ReportBuilder } from '../../support/report-builder.js';

/**
 * The lifecycle events the workflow's Lambda handlers put, EventBridge faked at the SDK client
 * boundary: each step's events on the default bus, and a PutEvents failure (an error, or
 * FailedEntryCount > 0) logged and counted, never failing the step
 * (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html).
 */

const EXECUTION = 'arn:aws:states:eu-west-1:123456789012:execution:Incident:i-0abc-full-20261121T1000Z';
const DIGEST = 'b'.repeat(64);
const context = {
  awsRequestId: 'req-1',
  functionName: 'workflow',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:workflow',
  getRemainingTimeInMillis: () => 30_000,
} as unknown as Context;

const report = (drops: number) =>
  ReportBuilder.healthy()
    .table({ max: 262_144, count: 262_144 })
    .sysctl('tcp_timeout_time_wait', 30)
    .states({ 'tcp TIME_WAIT': 200_000, 'tcp ESTABLISHED': 62_144 })
    .localPort('tcp', 8080, 210_000, 198_000)
    .listener('tcp', 8080, 'nginx')
    .drops(drops)
    .build();
const incident = {
  incidentId: 'i-0abc-full-20261121T1000Z',
  host: 'i-0abc12345678',
  instanceId: 'i-0abc12345678',
  kind: 'table-full',
  mode: 'auto',
  openedAt: '2026-11-21T10:00:00.000Z',
  trigger: { netns: null, dropLines: 3, suppressed: 20, events: [] },
};
const execution = { id: EXECUTION };
const before = {
  commandId: 'cmd-before',
  status: 'Success',
  stdout: JSON.stringify(report(2_500)),
  stderr: '',
};
const settings = { policy: resolvePolicy({}), soakSeconds: 60 };
const assessment = assessIncident({ incident, diagnostics: before }, settings);
const gate = gateIncident({ incident, assessment }, settings);

describe('lifecycle events from the workflow handlers', () => {
  const { mocks, load } = handlerHarness({ eventBridge: EventBridgeClient, sns: SNSClient });
  const { eventBridge, sns } = mocks;
  let entries: PutEventsRequestEntry[];
  let handlers: {
    assess: typeof import('../../../functions/handlers/workflow/assess.js');
    policyGate: typeof import('../../../functions/handlers/workflow/policy-gate.js');
    announce: typeof import('../../../functions/handlers/workflow/announce.js');
    verify: typeof import('../../../functions/handlers/workflow/verify.js');
    notify: typeof import('../../../functions/handlers/workflow/notify.js');
  };
  let powertools: typeof import('../../../functions/handlers/powertools.js');

  beforeAll(async () => {
    ({ handlers, powertools } = await load(
      {
        NOTIFICATION_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:conntrack-responder',
        RESPONDER_POLICY: '{}',
        SOAK_SECONDS: '60',
      },
      async () => ({
        handlers: {
          assess: await import('../../../functions/handlers/workflow/assess.js'),
          policyGate: await import('../../../functions/handlers/workflow/policy-gate.js'),
          announce: await import('../../../functions/handlers/workflow/announce.js'),
          verify: await import('../../../functions/handlers/workflow/verify.js'),
          notify: await import('../../../functions/handlers/workflow/notify.js'),
        },
        powertools: await import('../../../functions/handlers/powertools.js'),
      }),
    ));
  });
  beforeEach(() => {
    vi.restoreAllMocks();
    entries = [];
    sns.on(PublishCommand).resolves({ MessageId: 'msg-1' });
    eventBridge.on(PutEventsCommand).callsFake((input: { Entries: PutEventsRequestEntry[] }) => {
      entries.push(...input.Entries);
      return { FailedEntryCount: 0, Entries: input.Entries.map((_, n) => ({ EventId: `e-${n}` })) };
    });
  });

  const put = () =>
    entries.map((entry) => ({
      detailType: entry.DetailType,
      source: entry.Source,
      bus: entry.EventBusName,
      detail: JSON.parse(String(entry.Detail)),
    }));

  it('assess: diagnosed and planned, with the execution', async () => {
    await handlers.assess.handler({ incident, execution, diagnostics: before }, context);
    expect(put().map((event) => event.detailType)).toEqual(['Incident Diagnosed', 'Incident Planned']);
    expect(put().every((event) => event.source === 'conntrack-responder' && event.bus === undefined)).toBe(
      true,
    );
    expect(put()[0]?.detail).toMatchObject({ incidentId: incident.incidentId, executionId: EXECUTION });
  });

  it('policy gate: decided for a final decision, nothing while a person is asked', async () => {
    const asked = await handlers.policyGate.handler(
      { incident, execution, assessment, guardrails: { mode: 'approve' } },
      context,
    );
    expect(asked.decision).toBe('approve');
    expect(put()).toEqual([]);
    await handlers.policyGate.handler(
      { incident, execution, assessment, guardrails: { mode: 'dry-run' } },
      context,
    );
    expect(put()).toEqual([
      expect.objectContaining({
        detailType: 'Incident Decided',
        detail: expect.objectContaining({ facts: expect.objectContaining({ decision: 'dry-run' }) }),
      }),
    ]);
  });

  it('announce: the change applied', async () => {
    const result = await handlers.announce.handler(
      { incident, execution, gate, applied: [{ command: { commandId: 'cmd-1' } }] },
      context,
    );
    expect(result).toEqual({ sent: 1, failed: 0 });
    expect(put()[0]).toMatchObject({
      detailType: 'Incident Change Applied',
      detail: { facts: { commands: ['cmd-1'] } },
    });
  });

  it('verify: verified, with whether the fix held', async () => {
    const after = { ...before, commandId: 'cmd-after', stdout: JSON.stringify(report(2_500)) };
    const verification = await handlers.verify.handler(
      { incident, execution, assessment, gate, applied: [], before, after },
      context,
    );
    expect(put()[0]).toMatchObject({
      detailType: 'Incident Verified',
      detail: { facts: { held: verification.held } },
    });
  });

  it('notify: escalated and closed, with the outcome and the evidence digest', async () => {
    const result = await handlers.notify.handler(
      {
        incident,
        execution,
        outcome: OUTCOMES.approvalTimedOut,
        evidence: { location: 's3://bucket/incidents/x/', archive: null, manifestSha256: DIGEST },
      },
      context,
    );
    expect(result).toMatchObject({ messageId: 'msg-1', events: { sent: 2, failed: 0 } });
    expect(put().map((event) => event.detailType)).toEqual(['Incident Escalated', 'Incident Closed']);
    expect(put()[1]?.detail).toMatchObject({
      outcome: { status: 'escalated' },
      evidence: { location: 's3://bucket/incidents/x/', manifestSha256: DIGEST },
    });
  });

  it('never fails a step when EventBridge refuses or fails: logged and counted', async () => {
    const addMetric = vi.spyOn(powertools.metrics, 'addMetric');
    const error = vi.spyOn(powertools.logger, 'error');
    eventBridge.reset();
    eventBridge.on(PutEventsCommand).resolves({
      FailedEntryCount: 1,
      Entries: [{ EventId: 'e-1' }, { ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded' }],
    });
    const assessed = await handlers.assess.handler({ incident, execution, diagnostics: before }, context);
    expect(assessed.confirmed).toBe(true);
    expect(addMetric).toHaveBeenCalledWith('LifecycleEventsSent', 'Count', 1);
    expect(addMetric).toHaveBeenCalledWith('LifecycleEventsFailed', 'Count', 1);
    expect(error).toHaveBeenCalledWith('Lifecycle events not put on the event bus', {
      failed: [
        expect.objectContaining({
          detailType: 'Incident Planned',
          error: 'ThrottlingException: Rate exceeded',
        }),
      ],
    });

    eventBridge.reset();
    eventBridge.on(PutEventsCommand).rejects(new Error('connect ETIMEDOUT'));
    const notified = await handlers.notify.handler(
      { incident, execution, outcome: OUTCOMES.dryRun },
      context,
    );
    expect(notified).toMatchObject({ messageId: 'msg-1', events: { sent: 0, failed: 1 } });
  });
});
