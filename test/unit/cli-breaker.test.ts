import { DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { breakerControl } from '../../functions/adapters/breaker-control.js';
import { GuardrailStore } from '../../functions/adapters/guardrail-store.js';
import { main } from '../../functions/cli/main.js';
import { DEFAULT_GUARDRAILS } from '../../functions/core/guardrails/settings.js';
import { LOCAL_CREDENTIALS, LOCAL_REGION, type LocalDynamo, startLocalDynamo } from '../support/dynalite.js';
import { captureIo } from './support/capture-io.js';

/** `conntrack-responder breaker …` against a real DynamoDB-compatible server on loopback. */

describe('breaker command', () => {
  let dynamo: LocalDynamo;
  let documents: DynamoDBDocumentClient;
  let table: string;
  let store: GuardrailStore;

  beforeAll(async () => {
    dynamo = await startLocalDynamo();
    documents = DynamoDBDocumentClient.from(dynamo.client);
    Object.assign(process.env, {
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    });
  });
  afterAll(() => dynamo.close());
  beforeEach(async () => {
    table = await dynamo.createIncidentTable();
    store = new GuardrailStore(documents, table, {
      ...DEFAULT_GUARDRAILS,
      breaker: { maxInstances: 2, windowMinutes: 10 },
    });
  });

  const run = async (...args: string[]) => {
    const captured = captureIo();
    const code = await main(
      ['breaker', ...args, '--table', table, '--region', LOCAL_REGION, '--endpoint', dynamo.endpoint],
      captured.io,
    );
    return { code, stdout: captured.stdout(), stderr: captured.stderr() };
  };

  /** Three instances open incidents now: the third trips a breaker of 2. */
  async function trip() {
    const now = new Date();
    for (const n of [1, 2, 3]) {
      const id = `i-000${n}-full`;
      await documents.send(
        new PutCommand({ TableName: table, Item: { pk: `incident#${id}`, sk: 'incident' } }),
      );
      await store.admit({ incidentId: id, host: `i-000${n}`, account: '111122223333' }, undefined, now);
    }
  }

  it('shows a closed breaker and the free slots', async () => {
    const result = await run('status');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Fleet breaker: CLOSED');
    expect(result.stdout).toContain('Remediation slots: 0 of 5 in use');
  });

  it('shows an open breaker with its fleet view, in the window it tripped in', async () => {
    await trip();
    const result = await run('status');
    expect(result.stdout).toMatch(/Fleet breaker: OPEN \(episode 1\)/);
    expect(result.stdout).toContain('3 instances opened incidents within 10 min, more than 2');
    expect(result.stdout).toContain('Instances (3): i-0001, i-0002, i-0003');
    expect(result.stdout).toContain('Accounts (1): 111122223333');
    expect(result.stdout).toContain(`breaker reset --table ${table} --region ${LOCAL_REGION}`);
    const json = JSON.parse((await run('status', '--json')).stdout);
    expect(json).toMatchObject({
      action: 'status',
      breaker: { status: 'open', heldCount: 1 },
      view: { instances: { count: 3 } },
    });
  });

  it('resets an open breaker, records who and why, and says when there was nothing to reset', async () => {
    await trip();
    const reset = await run('reset', '--by', 'alice', '--reason', 'upstream retry storm fixed');
    expect(reset.code).toBe(0);
    expect(reset.stdout).toContain('Reset by alice: automatic changes may run again.');
    expect(reset.stdout).toContain('Fleet breaker: CLOSED');
    expect(reset.stdout).toContain('last reset at');
    const audit = await documents.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :reset)',
        ExpressionAttributeValues: { ':pk': 'guardrail#breaker', ':reset': 'reset#' },
      }),
    );
    expect(audit.Items).toEqual([
      expect.objectContaining({
        episode: 1,
        heldCount: 1,
        resetBy: 'alice',
        resetReason: 'upstream retry storm fixed',
      }),
    ]);
    const again = await run('reset', '--by', 'bob', '--reason', 'twice');
    expect(again.code).toBe(1);
    expect(again.stdout).toContain('The breaker was not open: nothing to reset.');
  });

  it('opens the breaker by hand', async () => {
    const opened = await run('open', '--by', 'carol', '--reason', 'change freeze for the migration');
    expect(opened.code).toBe(0);
    expect(opened.stdout).toContain('Fleet breaker: OPEN');
    expect((await store.getBreaker()).reason).toBe('opened by hand: change freeze for the migration');
    expect((await run('open', '--by', 'carol', '--reason', 'again')).code).toBe(1);
  });

  it.each([
    [[], /say what to do: status, reset or open/],
    [['flip'], /unknown action 'flip'/],
    [['reset'], /reset needs --by and --reason: by must not be empty/],
    [['reset', '--by', 'alice'], /reason must not be empty/],
    [['status', '--window-minutes', '0'], /--window-minutes must be a whole number from 1 to 1440/],
  ])('refuses %j with a usage error', async (args, message) => {
    const result = await run(...(args as string[]));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('says which table it could not read', async () => {
    const captured = captureIo();
    const code = await main(
      [
        'breaker',
        'status',
        '--table',
        'no-such-table',
        '--region',
        LOCAL_REGION,
        '--endpoint',
        dynamo.endpoint,
      ],
      captured.io,
    );
    expect(code).toBe(1);
    expect(captured.stderr()).toMatch(/breaker: no-such-table: ResourceNotFoundException/);
  });

  it('is the hook the Slack handler calls: resets with the Slack identity as who', async () => {
    await trip();
    const control = breakerControl(documents, table);
    const { changed, report } = await control.reset({
      by: 'slack:U0123ABC (dana)',
      reason: 'approved in #ops',
    });
    expect(changed).toBe(true);
    expect(report.breaker).toMatchObject({ status: 'closed', resetBy: 'slack:U0123ABC (dana)' });
    await expect(control.reset({ by: 'x', reason: 'line\nbreak' })).rejects.toThrow(
      'reason must be one line of printable text',
    );
  });
});
