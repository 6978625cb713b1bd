import { DescribeTagsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GetCalendarStateCommand, ListTagsForResourceCommand, SSMClient } from '@aws-sdk/client-ssm';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  ScanCommand,
} from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { GuardrailState } from '../../../functions/core/guardrails/steps.js';
import { type LocalDynamo, startLocalDynamo } from '../../support/dynalite.js';
import { handlerHarness } from '../../support/handler-harness.js';
import { ReportBuilder } from '../../support/report-builder.js';
import { lambdaContext } from '../../support/subscription-events.js';

/**
 * The `guardrails` function as the workflow calls it: EC2 and SSM faked at the SDK boundary, the
 * guardrail records in a real DynamoDB-compatible server.
 */

const INSTANCE = 'i-0123456789abcdef0';
const TAG_KEY = 'conntrack-responder:mode';
const CALENDAR = 'prod-change-freeze';
const ONLINE = {
  InstanceId: INSTANCE,
  PingStatus: 'Online',
  AgentVersion: '3.3.2746.0',
  PlatformType: 'Linux',
};

function incident(id = `${INSTANCE}-full-20260313T2000Z`, instanceId: string | null = INSTANCE) {
  return { incidentId: id, instanceId, host: instanceId ?? 'web-01', kind: 'table-full', mode: 'approve' };
}

describe('guardrails function', () => {
  let dynamo: LocalDynamo;
  let documents: DynamoDBDocumentClient;
  let tableName: string;
  let guardrails: typeof import('../../../functions/handlers/guardrails.js');
  const { mocks, load } = handlerHarness({ ec2: EC2Client, ssm: SSMClient });
  const { ec2, ssm } = mocks;

  const invoke = (event: unknown) =>
    guardrails.handler(event as never, lambdaContext) as Promise<GuardrailState & { released?: boolean }>;
  const check = (state: Record<string, unknown>) => invoke({ operation: 'check', state });

  beforeAll(async () => {
    dynamo = await startLocalDynamo();
    documents = DynamoDBDocumentClient.from(dynamo.client);
    tableName = await dynamo.createIncidentTable('incidents');
    guardrails = await load(
      {
        INCIDENT_TABLE_NAME: tableName,
        INCIDENT_RETENTION_DAYS: '90',
        MAX_CONCURRENT_REMEDIATIONS: '2',
        CHANGE_CALENDAR: CALENDAR,
        REMEDIATION_COOLDOWN_MINUTES: '240',
        AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      },
      () => import('../../../functions/handlers/guardrails.js'),
    );
  });
  afterAll(() => dynamo.close());

  beforeEach(async () => {
    ec2.on(DescribeTagsCommand).resolves({ Tags: [] });
    ssm.on(GetCalendarStateCommand).resolves({ State: 'OPEN' });
    for (const item of (await documents.send(new ScanCommand({ TableName: tableName }))).Items ?? []) {
      await documents.send(new DeleteCommand({ TableName: tableName, Key: { pk: item.pk, sk: item.sk } }));
    }
  });

  describe('Check the guardrails', () => {
    it('reads the mode tag through EC2 and lets the tag set the mode', async () => {
      ec2.on(DescribeTagsCommand).resolves({
        Tags: [{ Key: TAG_KEY, Value: 'auto', ResourceId: INSTANCE, ResourceType: 'instance' }],
      });
      const verdict = await check({ incident: incident(), instance: { information: [ONLINE] } });
      expect(verdict).toMatchObject({ next: 'collect', mode: 'auto', escalation: null });
      expect(ec2.commandCalls(DescribeTagsCommand)[0]?.args[0].input).toEqual({
        Filters: [
          { Name: 'resource-id', Values: [INSTANCE] },
          { Name: 'key', Values: [TAG_KEY] },
        ],
      });
      expect(ssm.commandCalls(GetCalendarStateCommand)[0]?.args[0].input).toEqual({
        CalendarNames: [CALENDAR],
      });
    });

    it('reads a hybrid managed node’s tag through SSM', async () => {
      const node = 'mi-0123456789abcdef0';
      ssm.on(ListTagsForResourceCommand).resolves({ TagList: [{ Key: TAG_KEY, Value: 'off' }] });
      const verdict = await check({
        incident: incident(`${node}-full-20260313T2000Z`, node),
        instance: { information: [{ ...ONLINE, InstanceId: node }] },
      });
      expect(verdict.next).toBe('opted-out');
      expect(ssm.commandCalls(ListTagsForResourceCommand)[0]?.args[0].input).toEqual({
        ResourceType: 'ManagedInstance',
        ResourceId: node,
      });
      expect(ec2.commandCalls(DescribeTagsCommand)).toHaveLength(0);
    });

    it('caps to approve while the change calendar is CLOSED', async () => {
      ec2.on(DescribeTagsCommand).resolves({ Tags: [{ Key: TAG_KEY, Value: 'auto', ResourceId: INSTANCE }] });
      ssm.on(GetCalendarStateCommand).resolves({ State: 'CLOSED' });
      const verdict = await check({ incident: incident(), instance: { information: [ONLINE] } });
      expect(verdict.mode).toBe('approve');
      expect(verdict.decisions.find((d) => d.guardrail === 'change-calendar')).toMatchObject({
        effect: 'cap-mode',
        detail: `change calendar ${CALENDAR} is CLOSED: automatic changes are blocked`,
      });
    });

    it('escalates with the manual runbook when the agent is too old for ENV_VAR parameters', async () => {
      const verdict = await check({
        incident: incident(),
        instance: { information: [{ ...ONLINE, AgentVersion: '3.2.1297.0' }] },
      });
      expect(verdict).toMatchObject({
        next: 'escalate',
        escalation: { runbook: 'runbooks/conntrack-table-full.md' },
      });
    });

    it('caps to approve within the cooldown after a change on the instance', async () => {
      ec2.on(DescribeTagsCommand).resolves({ Tags: [{ Key: TAG_KEY, Value: 'auto', ResourceId: INSTANCE }] });
      await invoke({
        operation: 'release',
        state: { incident: incident('earlier'), outcome: { status: 'remediated', hostChanged: true } },
      });
      const verdict = await check({ incident: incident(), instance: { information: [ONLINE] } });
      expect(verdict.mode).toBe('approve');
      expect(verdict.decisions.find((d) => d.guardrail === 'remediation-cooldown')?.detail).toMatch(
        /incident earlier changed this instance 0 min ago \(remediated\)/,
      );
    });

    it('fails with a clear error on a state without an incident', async () => {
      await expect(check({ instance: {} })).rejects.toThrow(
        /guardrail step input is invalid: state\.incident/,
      );
    });
  });

  describe('Take a remediation slot', () => {
    const checked: GuardrailState = { next: 'collect', mode: 'auto', decisions: [], escalation: null };

    it('takes slots up to the limit, then answers RemediationSlotsBusy so the state retries', async () => {
      const take = (id: string) =>
        invoke({ operation: 'take-slot', state: { incident: incident(id), guardrails: checked } });
      expect((await take('a')).slot).toMatchObject({ granted: true });
      expect((await take('b')).slot).toMatchObject({ granted: true });
      const busy = take('c');
      await expect(busy).rejects.toThrow('all 2 remediation slots are taken (a, b); waiting for one');
      await expect(busy).rejects.toMatchObject({ name: 'RemediationSlotsBusy' });
      await invoke({ operation: 'release', state: { incident: incident('a'), guardrails: checked } });
      expect((await take('c')).slot).toMatchObject({ granted: true });
    });

    it('sends an automatic change back to the policy gate when the breaker tripped meanwhile', async () => {
      await documents.send(
        new PutCommand({
          TableName: tableName,
          Item: { pk: 'guardrail#breaker', sk: 'state', status: 'open', trippedAt: '2026-03-13T20:30:00Z' },
        }),
      );
      const state = await invoke({
        operation: 'take-slot',
        state: { incident: incident(), guardrails: checked },
      });
      expect(state).toMatchObject({ mode: 'approve', slot: { granted: false, recheck: true } });
      expect(state.decisions.at(-1)).toMatchObject({ guardrail: 'fleet-breaker', effect: 'cap-mode' });
      // Once a person approved it, the same change may go ahead.
      const approved = await invoke({
        operation: 'take-slot',
        state: { incident: incident(), guardrails: state, approval: { decision: 'approved' } },
      });
      expect(approved.slot).toMatchObject({ granted: true });
    });
  });

  describe('Release the remediation slot', () => {
    it('gives the slot back, records the change, and keeps the top ports for the fleet view', async () => {
      const id = `${INSTANCE}-full-20260313T2000Z`;
      await documents.send(
        new PutCommand({ TableName: tableName, Item: { pk: `incident#${id}`, sk: 'incident' } }),
      );
      await invoke({
        operation: 'take-slot',
        state: {
          incident: incident(id),
          guardrails: { next: 'collect', mode: 'auto', decisions: [], escalation: null },
        },
      });
      const report = ReportBuilder.healthy().localPort('tcp', 11211, 90_000, 89_000).build();
      const released = await invoke({
        operation: 'release',
        state: {
          incident: incident(id),
          outcome: { status: 'rolled-back', hostChanged: true },
          before: { stdout: JSON.stringify(report) },
        },
      });
      expect(released.released).toBe(true);
      expect(released.decisions.map((d) => [d.guardrail, d.effect])).toEqual([
        ['concurrency', 'release'],
        ['remediation-cooldown', 'pass'],
      ]);
      const item = await documents.send(
        new GetCommand({ TableName: tableName, Key: { pk: `incident#${id}`, sk: 'incident' } }),
      );
      expect(item.Item?.topPorts).toEqual([
        { protocol: 'tcp', port: 11211, direction: 'inbound', entries: 90_000 },
      ]);
      const change = await documents.send(
        new GetCommand({
          TableName: tableName,
          Key: { pk: `guardrail#instance#${INSTANCE}`, sk: 'last-change' },
        }),
      );
      expect(change.Item).toMatchObject({ incidentId: id, outcome: 'rolled-back' });
      // Released twice (a retried state): nothing more happens.
      const again = await invoke({ operation: 'release', state: { incident: incident(id) } });
      expect(again.released).toBe(false);
    });

    it('gives back the slot of an execution that ended outside the workflow (EventBridge)', async () => {
      const checked = { next: 'collect', mode: 'auto', decisions: [], escalation: null };
      await invoke({
        operation: 'take-slot',
        state: { incident: incident('aborted-one'), guardrails: checked },
      });
      const result = await invoke({
        source: 'aws.states',
        'detail-type': 'Step Functions Execution Status Change',
        detail: {
          name: 'aborted-one',
          status: 'ABORTED',
          executionArn: 'arn:aws:states:::execution:x:aborted-one',
        },
      });
      expect(result).toEqual({ released: true });
      const slots = await documents.send(
        new GetCommand({ TableName: tableName, Key: { pk: 'guardrail#remediations', sk: 'slots' } }),
      );
      expect(slots.Item?.holders).toEqual({});
    });
  });
});
