import { randomUUID } from 'node:crypto';
import { SendTaskSuccessCommand, SFNClient, SFNServiceException, TaskTimedOut } from '@aws-sdk/client-sfn';
import { PublishCommand, type PublishCommandInput, SNSClient } from '@aws-sdk/client-sns';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sendDecision } from '../../../functions/adapters/approval-url-client.js';
import { printable } from '../../../functions/cli/approve.js';
import type { IamDecisionRequest } from '../../../functions/core/chatops/iam-approval.js';
import { approvalTaskPayload } from '../../support/approval-task.js';
import { LOCAL_REGION, type LocalDynamo, startLocalDynamo } from '../../support/dynalite.js';
import { handlerHarness } from '../../support/handler-harness.js';
import {
  type IamFunctionUrl,
  type IamIdentity,
  serveIamFunctionUrl,
} from '../../support/iam-function-url.js';
import { captureIo } from '../support/capture-io.js';

const ACCOUNT = '111122223333';
/** What the stack gives the approval request (the real URL; the requests below go to the loopback stand-in). */
const APPROVAL_URL = 'https://abcdefghij0123456789abcdefghij01.lambda-url.eu-west-1.on.aws/';
const TOPIC = `arn:aws:sns:eu-west-1:${ACCOUNT}:conntrack-responder`;
const context = {
  awsRequestId: 'req-1',
  functionName: 'approval',
  invokedFunctionArn: `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:approval`,
  getRemainingTimeInMillis: () => 30_000,
} as unknown as Context;

const identity = (name: string, arn: string, accountId = ACCOUNT): IamIdentity => ({
  accessKeyId: `ASIA${name.toUpperCase()}`,
  secretAccessKey: `secret-of-${name}`,
  arn,
  accountId,
  userId: `AROA${name.toUpperCase()}:${name}`,
});
const ONCALL = ['alice', 'bob', 'carol', 'dave', 'erin'].map((name) =>
  identity(name, `arn:aws:sts::${ACCOUNT}:assumed-role/OnCall/${name}`),
);
const ADMIN = identity('admin', `arn:aws:sts::${ACCOUNT}:assumed-role/Admin/root-like`);
const [ALICE, BOB] = ONCALL as [IamIdentity, IamIdentity];

/**
 * The approval URL end to end: the product's signing client sends SigV4-signed requests over real
 * HTTP on loopback to a stand-in of Lambda's AWS_IAM front (which checks the signature with its
 * own implementation of the specification and fills in the caller as Lambda does), the production
 * handler decides on a real DynamoDB-compatible server (dynalite), and only Step Functions and SNS
 * are faked at the SDK boundary. The approval is opened by the production request-approval handler.
 */
describe('deciding an approval from the command line (the approval URL)', () => {
  let dynamo: LocalDynamo;
  let front: IamFunctionUrl;
  let documents: DynamoDBDocumentClient;
  let published: PublishCommandInput[];
  const { mocks, load } = handlerHarness({ stepFunctions: SFNClient, sns: SNSClient, sts: STSClient });
  const { stepFunctions, sns, sts } = mocks;
  let requestApproval: typeof import('../../../functions/handlers/workflow/request-approval.js');
  let main: typeof import('../../../functions/cli/main.js')['main'];

  beforeAll(async () => {
    dynamo = await startLocalDynamo();
    const table = await dynamo.createIncidentTable('incidents');
    documents = DynamoDBDocumentClient.from(dynamo.client);
    let approval: typeof import('../../../functions/handlers/iam-approval.js');
    ({ requestApproval, approval, main } = await load(
      {
        AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
        INCIDENT_TABLE_NAME: table,
        NOTIFICATION_TOPIC_ARN: TOPIC,
        // Only the named role: the admin, whom IAM lets through below, must still be refused.
        APPROVER_ROLE_ARNS: `arn:aws:iam::${ACCOUNT}:role/teams/sre/OnCall`,
        APPROVER_POLICY_HOLDERS: 'false',
        APPROVAL_URL: APPROVAL_URL,
      },
      async () => ({
        requestApproval: await import('../../../functions/handlers/workflow/request-approval.js'),
        approval: await import('../../../functions/handlers/iam-approval.js'),
        // From the same module registry as the handlers: the command loads its modules lazily, and
        // its usage errors must be the classes main checks for.
        main: (await import('../../../functions/cli/main.js')).main,
      }),
    ));
    front = await serveIamFunctionUrl((event) => approval.handler(event, context), {
      region: LOCAL_REGION,
      identities: [...ONCALL, ADMIN],
    });
  });

  afterAll(async () => {
    await front.close();
    await dynamo.close();
  });

  beforeEach(() => {
    stepFunctions.on(SendTaskSuccessCommand).resolves({});
    published = [];
    sns.on(PublishCommand).callsFake((input: PublishCommandInput) => {
      published.push(input);
      return { MessageId: randomUUID() };
    });
  });

  /** The workflow's "Wait for approval" step for a new incident (with its incident item, as detect leaves it). */
  async function openApproval(options: { timeoutSeconds?: number; taskToken?: string } = {}) {
    const incidentId = `inc-${randomUUID().slice(0, 8)}`;
    await documents.send(
      new PutCommand({
        TableName: process.env.INCIDENT_TABLE_NAME,
        Item: { pk: `incident#${incidentId}`, sk: 'incident', incidentId, status: 'open' },
      }),
    );
    const taskToken = options.taskToken ?? `AQCEAAAAKgAAAAMAAAAAAAAAA-${randomUUID()}`;
    const opened = (await requestApproval.lambdaHandler(
      approvalTaskPayload({ incidentId, taskToken, timeoutSeconds: options.timeoutSeconds }),
      context,
    )) as { approvalId: string };
    return { incidentId, approvalId: opened.approvalId, taskToken };
  }

  const send = (who: IamIdentity, request: IamDecisionRequest) =>
    sendDecision({
      url: new URL(front.url),
      region: LOCAL_REGION,
      credentials: { accessKeyId: who.accessKeyId, secretAccessKey: who.secretAccessKey },
      request,
    });

  it('decides exactly once when five approvers approve and reject at the same time, and records who', async () => {
    const { incidentId, approvalId, taskToken } = await openApproval();
    const decisions = ['approve', 'reject', 'approve', 'reject', 'approve'] as const;
    const answers = await Promise.all(
      ONCALL.map((who, index) => send(who, { incidentId, decision: decisions[index] ?? 'approve' })),
    );
    const winners = answers.filter((sent) => sent.status === 200);
    expect(winners).toHaveLength(1);
    expect(answers.filter((sent) => sent.status === 409)).toHaveLength(4);
    const winner = winners[0]?.answer;
    expect(winner).toMatchObject({ result: 'decided', incidentId, approvalId });
    // The losers are told who won and what they decided.
    for (const lost of answers.filter((sent) => sent.status === 409)) {
      expect(lost.answer).toMatchObject({
        result: 'already-decided',
        decision: winner?.decision,
        approver: winner?.approver,
      });
    }

    const calls = stepFunctions.commandCalls(SendTaskSuccessCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args[0].input.taskToken).toBe(taskToken);
    const output = JSON.parse(calls[0]?.args[0].input.output ?? '{}');
    const winnerArn = winner?.approver?.id ?? '';
    expect(winnerArn).toMatch(new RegExp(`^arn:aws:sts::${ACCOUNT}:assumed-role/OnCall/`));
    expect(output).toMatchObject({
      decision: winner?.decision,
      approvalId,
      approver: { id: winnerArn, name: winnerArn.split('assumed-role/')[1], via: 'iam', basis: 'iam-role' },
    });
    // Recorded on the incident item like a Slack approver.
    const incident = await documents.send(
      new GetCommand({
        TableName: process.env.INCIDENT_TABLE_NAME,
        Key: { pk: `incident#${incidentId}`, sk: 'incident' },
      }),
    );
    expect(incident.Item?.approval).toMatchObject({
      approvalId,
      decision: winner?.decision,
      approver: { id: winnerArn, via: 'iam', basis: 'iam-role', teamId: null },
    });
    // No answer ever carries the task token.
    for (const sent of answers) expect(JSON.stringify(sent)).not.toContain(taskToken);
  });

  it('announces the request on SNS with the exact commands that decide it', async () => {
    const { incidentId, approvalId } = await openApproval();
    expect(published).toHaveLength(1);
    const message = published[0]?.Message ?? '';
    expect(message).toContain(
      `  approve:  npx conntrack-responder approve ${incidentId} --url ${APPROVAL_URL}`,
    );
    expect(message).toContain(
      `  reject:   npx conntrack-responder reject ${incidentId} --url ${APPROVAL_URL}`,
    );
    // The churn plan offers "Raise limits only".
    expect(message).toContain(
      `  raise limits only:  npx conntrack-responder approve ${incidentId} --alternative --url ${APPROVAL_URL}`,
    );
    const summary = JSON.parse(message.split('--- JSON summary ---\n')[1] ?? '{}');
    expect(summary).toMatchObject({
      approvalId,
      commands: {
        approve: `npx conntrack-responder approve ${incidentId} --url ${APPROVAL_URL}`,
        reject: `npx conntrack-responder reject ${incidentId} --url ${APPROVAL_URL}`,
      },
    });
  });

  it('refuses a caller IAM let through whom the stack does not name, and changes nothing', async () => {
    const { incidentId, approvalId } = await openApproval();
    const sent = await send(ADMIN, { incidentId, decision: 'approve' });
    expect(sent.status).toBe(403);
    expect(sent.answer).toMatchObject({ result: 'not-allowed' });
    expect(sent.answer?.detail).toContain(ADMIN.arn);
    expect(stepFunctions.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
    // Still pending: a named approver can decide.
    const later = await send(ALICE, { incidentId, decision: 'reject' });
    expect(later.answer).toMatchObject({ result: 'decided', decision: 'rejected', approvalId });
  });

  it('never runs the function for a request signed with the wrong secret', async () => {
    const { incidentId } = await openApproval();
    const before = front.refused().length;
    const sent = await sendDecision({
      url: new URL(front.url),
      region: LOCAL_REGION,
      credentials: { accessKeyId: ALICE.accessKeyId, secretAccessKey: 'guessed' },
      request: { incidentId, decision: 'approve' },
    });
    expect(sent.status).toBe(403);
    expect(sent.answer).toBeNull();
    expect(front.refused().slice(before)).toEqual(['signature does not match']);
    expect(stepFunctions.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
  });

  it('approves only the safer alternative when asked, and says which actions', async () => {
    const { incidentId } = await openApproval();
    const sent = await send(BOB, { incidentId, decision: 'alternative' });
    expect(sent.answer).toMatchObject({ result: 'decided', decision: 'approved' });
    const output = JSON.parse(
      stepFunctions.commandCalls(SendTaskSuccessCommand)[0]?.args[0].input.output ?? '{}',
    );
    expect(output.choice).toBe('alternative');
    expect(output.actionIds.length).toBeGreaterThan(0);
    expect(sent.answer?.actionIds).toEqual(output.actionIds);
    expect(sent.answer?.actions?.length).toBeGreaterThan(output.actionIds.length);
  });

  it('answers 404 for an incident without an approval and 410 once the approval expired', async () => {
    const missing = await send(ALICE, { incidentId: 'inc-never-asked', decision: 'approve' });
    expect(missing).toMatchObject({ status: 404, answer: { result: 'no-approval' } });

    const { incidentId } = await openApproval({ timeoutSeconds: 1 });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const late = await send(ALICE, { incidentId, decision: 'approve' });
    expect(late).toMatchObject({ status: 410, answer: { result: 'expired' } });
    expect(stepFunctions.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
  });

  it('undoes the decision when Step Functions is unavailable, so that the approver can try again', async () => {
    const { incidentId } = await openApproval();
    stepFunctions
      .on(SendTaskSuccessCommand)
      .rejectsOnce(new SFNServiceException({ name: 'ServiceUnavailable', $fault: 'server', $metadata: {} }))
      .resolves({});
    const first = await send(ALICE, { incidentId, decision: 'approve' });
    expect(first).toMatchObject({ status: 503, answer: { result: 'unavailable' } });
    expect(first.answer?.detail).toContain('undone');
    const second = await send(ALICE, { incidentId, decision: 'approve' });
    expect(second).toMatchObject({ status: 200, answer: { result: 'decided' } });
  });

  it('closes the approval as expired when the workflow no longer waits', async () => {
    const { incidentId } = await openApproval();
    stepFunctions
      .on(SendTaskSuccessCommand)
      .rejects(new TaskTimedOut({ message: 'Task Timed Out', $metadata: {} }));
    const sent = await send(ALICE, { incidentId, decision: 'approve' });
    expect(sent).toMatchObject({ status: 410, answer: { result: 'expired' } });
    const again = await send(BOB, { incidentId, decision: 'reject' });
    expect(again).toMatchObject({ status: 410 });
  });

  it('refuses a body that is not exactly an incident and a decision', async () => {
    const { incidentId } = await openApproval();
    for (const request of [
      { incidentId, decision: 'approve', approver: 'someone-else' },
      { incidentId: '../inc', decision: 'approve' },
      { incidentId, decision: 'approve-all' },
    ]) {
      const sent = await send(ALICE, request as unknown as IamDecisionRequest);
      expect(sent).toMatchObject({ status: 400, answer: { result: 'bad-request' } });
    }
    expect(stepFunctions.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
  });

  describe('conntrack-responder approve|reject', () => {
    /** Runs the command with these credentials in the environment, as a shell would have them. */
    async function run(who: IamIdentity | null, args: string[]) {
      const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
      sts.reset();
      if (who === null) {
        sts.on(GetCallerIdentityCommand).rejects(
          Object.assign(new Error('The security token included in the request is invalid.'), {
            name: 'InvalidClientTokenId',
          }),
        );
      } else {
        sts
          .on(GetCallerIdentityCommand)
          .resolves({ Arn: who.arn, Account: who.accountId, UserId: who.userId });
        process.env.AWS_ACCESS_KEY_ID = who.accessKeyId;
        process.env.AWS_SECRET_ACCESS_KEY = who.secretAccessKey;
      }
      const captured = captureIo();
      try {
        const code = await main(args, captured.io);
        return { code, stdout: captured.stdout(), stderr: captured.stderr() };
      } finally {
        process.env.AWS_ACCESS_KEY_ID = saved.id;
        process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
      }
    }
    const where = () => ['--url', front.url, '--region', LOCAL_REGION];

    it('approves as the caller, says what will run, and tells a second approver who decided first', async () => {
      const { incidentId, approvalId } = await openApproval();
      const approved = await run(ALICE, ['approve', incidentId, ...where()]);
      expect(approved.stderr).toBe('');
      expect(approved.code).toBe(0);
      expect(approved.stdout).toContain(`Deciding as ${ALICE.arn} (account ${ACCOUNT})`);
      expect(approved.stdout).toContain(
        `Approved incident ${incidentId} (approval ${approvalId}) as OnCall/alice (iam, ${ALICE.arn}): every action of the request:`,
      );
      expect(approved.stdout).toMatch(/\n {2}- [^:]+: .+\n/);
      expect(stepFunctions.commandCalls(SendTaskSuccessCommand)).toHaveLength(1);

      const late = await run(BOB, ['reject', incidentId, ...where()]);
      expect(late.code).toBe(1);
      expect(late.stderr).toContain(`was already approved by OnCall/alice (iam, ${ALICE.arn})`);
      expect(stepFunctions.commandCalls(SendTaskSuccessCommand)).toHaveLength(1);
    });

    it('prints the answer as JSON with --json', async () => {
      const { incidentId } = await openApproval();
      const rejected = await run(BOB, ['reject', incidentId, ...where(), '--json']);
      expect(rejected.code).toBe(0);
      expect(JSON.parse(rejected.stdout)).toMatchObject({
        status: 200,
        caller: BOB.arn,
        result: 'decided',
        decision: 'rejected',
      });
    });

    it('explains a refusal by the stack, by IAM, and missing credentials, with exit code 1', async () => {
      const { incidentId } = await openApproval();
      const admin = await run(ADMIN, ['approve', incidentId, ...where()]);
      expect(admin.code).toBe(1);
      expect(admin.stderr).toContain('you may not decide conntrack-responder approvals');

      const stranger = identity('mallory', `arn:aws:sts::${ACCOUNT}:assumed-role/OnCall/mallory`);
      const unsigned = await run(stranger, ['approve', incidentId, ...where()]);
      expect(unsigned.code).toBe(1);
      expect(unsigned.stderr).toContain('AWS refused the request (HTTP 403)');
      expect(unsigned.stderr).toContain('ApproverPolicyArn');

      const nobody = await run(null, ['approve', incidentId, ...where()]);
      expect(nobody.code).toBe(1);
      expect(nobody.stderr).toContain('no usable AWS credentials (InvalidClientTokenId');
      expect(stepFunctions.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
    });

    it('refuses bad usage before any credential is used', async () => {
      const cases: Array<[string[], RegExp]> = [
        [['approve'], /name the incident/],
        [['approve', 'inc/../x', ...where()], /is not an incident id/],
        [['reject', 'inc-1', '--alternative', ...where()], /--alternative only goes with approve/],
        [['approve', 'inc-1', '--url', 'https://example.com/'], /is not a Lambda function URL/],
        [
          ['approve', 'inc-1', '--url', 'http://abc.lambda-url.eu-west-1.on.aws/'],
          /is not a Lambda function URL/,
        ],
        [['approve', 'inc-1', '--url', 'http://127.0.0.1:9/'], /--region is required/],
      ];
      const region = process.env.AWS_REGION;
      delete process.env.AWS_REGION;
      try {
        for (const [args, message] of cases) {
          const result = await run(ALICE, args);
          expect(result.code, args.join(' ')).toBe(2);
          expect(result.stderr).toMatch(message);
          expect(sts.commandCalls(GetCallerIdentityCommand)).toHaveLength(0);
        }
      } finally {
        process.env.AWS_REGION = region;
      }
    });

    it('shows text from the server with its control characters escaped', () => {
      expect(printable('OnCall/\u001b[2Jalice\r\nroot\u0085\u2028')).toBe(
        'OnCall/\\u001b[2Jalice\\u000d\\u000aroot\\u0085\\u2028',
      );
    });
  });
});
