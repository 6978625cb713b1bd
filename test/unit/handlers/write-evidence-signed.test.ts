import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { KMSClient, SignCommand, type SignCommandInput } from '@aws-sdk/client-kms';
import { PutObjectCommand, type PutObjectCommandInput, S3Client } from '@aws-sdk/client-s3';
import { GetExecutionHistoryCommand, SFNClient } from '@aws-sdk/client-sfn';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildEvidenceBundle } from '../../../functions/core/evidence/bundle.js';
import { evidenceFromWorkflow } from '../../../functions/core/evidence/from-workflow.js';
import { verifyBundleFiles } from '../../../functions/core/evidence/manifest.js';
import { OUTCOMES } from '../../../functions/core/workflow/outcome.js';
import { type LocalDynamo, startLocalDynamo } from '../../support/dynalite.js';
import { handlerHarness } from '../../support/handler-harness.js';

/**
 * The evidence writer with a signing key configured (what the construct's `evidenceSigning` sets):
 * KMS is faked at the SDK client boundary with a real P-256 key pair, S3 and Step Functions too,
 * DynamoDB is dynalite. The bundle in S3 carries signature.json and verifies with the public key;
 * the incident record names the key; a KMS failure still writes the bundle, unsigned, and says so.
 */

const KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const BUCKET = 'evidence-bucket';
const EXECUTION = 'arn:aws:states:eu-west-1:123456789012:execution:Incident:signed';
const context = {
  awsRequestId: 'req-1',
  functionName: 'writeEvidence',
  getRemainingTimeInMillis: () => 30_000,
} as unknown as Context;
const incident = {
  incidentId: 'i-0abc-full-20261121T1000Z',
  host: 'i-0abc12345678',
  instanceId: 'i-0abc12345678',
  kind: 'table-full',
  mode: 'auto',
  openedAt: '2026-11-21T10:00:00.000Z',
  trigger: {
    logGroup: '/conntrack-responder/kernel',
    logStream: 'i-0abc12345678',
    netns: '4026532177',
    dropLines: 3,
    suppressed: 20,
    events: [
      {
        id: '1',
        timestamp: Date.parse('2026-11-21T09:59:58Z'),
        message: 'nf_conntrack: table full, dropping packet',
      },
    ],
  },
};
const CLOSED_AT = '2026-11-21T10:30:00.000Z';
const state = { incident, execution: { id: EXECUTION }, outcome: OUTCOMES.dryRun };

describe('write-evidence with a KMS signing key', () => {
  let dynamo: LocalDynamo;
  const { mocks, load } = handlerHarness({ s3: S3Client, stepFunctions: SFNClient, kms: KMSClient });
  const { s3, stepFunctions, kms } = mocks;
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  let objects: Map<string, PutObjectCommandInput>;
  let handler: typeof import('../../../functions/handlers/workflow/write-evidence.js')['handler'];

  beforeAll(async () => {
    dynamo = await startLocalDynamo();
    const tableName = await dynamo.createIncidentTable('signed-incidents');
    ({ handler } = await load(
      {
        INCIDENT_TABLE_NAME: tableName,
        EVIDENCE_BUCKET_NAME: BUCKET,
        EVIDENCE_SIGNING_KEY_ID: KEY_ARN,
        EVIDENCE_SIGNING_ALGORITHM: 'ECDSA_SHA_256',
        AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      },
      () => import('../../../functions/handlers/workflow/write-evidence.js'),
    ));
    // Only Date is faked (dynalite's timers stay real): the handler's close time is CLOSED_AT.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date(CLOSED_AT));
  });
  afterAll(async () => {
    vi.useRealTimers();
    await dynamo.close();
  });
  beforeEach(() => {
    objects = new Map();
    s3.on(PutObjectCommand).callsFake((input: PutObjectCommandInput) => {
      objects.set(String(input.Key), input);
      return {};
    });
    stepFunctions.on(GetExecutionHistoryCommand).resolves({ events: [] });
  });

  const bundleFiles = (id: string) => {
    const root = `incidents/${id}/`;
    return new Map(
      [...objects.entries()]
        .filter(([key]) => key.startsWith(root))
        .map(([key, input]) => [key.slice(root.length), Buffer.from(input.Body as Uint8Array)]),
    );
  };

  it('signs the manifest digest with KMS: signature.json verifies with the public key, and the result names the key', async () => {
    // The bundle is deterministic for a close time: the fake KMS knows the manifest it will be asked
    // to sign, checks that the digest sent is that manifest's SHA-256, and signs as KMS does (the
    // signature of the manifest with SHA-256 is the signature of its digest; Node cannot sign a bare
    // digest). MessageType DIGEST: https://docs.aws.amazon.com/kms/latest/APIReference/API_Sign.html
    const manifest = Buffer.from(
      String(
        buildEvidenceBundle(evidenceFromWorkflow({ state, history: [], closedAt: CLOSED_AT })).files.get(
          'manifest.json',
        ),
      ),
    );
    const digest = createHash('sha256').update(manifest).digest();
    const sent: SignCommandInput[] = [];
    kms.on(SignCommand).callsFake((input: SignCommandInput) => {
      sent.push(input);
      if (!Buffer.from(input.Message ?? new Uint8Array()).equals(digest))
        throw new Error('not the manifest digest');
      const signature = sign('sha256', manifest, { key: privateKey, dsaEncoding: 'der' });
      return { KeyId: KEY_ARN, Signature: new Uint8Array(signature), SigningAlgorithm: 'ECDSA_SHA_256' };
    });
    const result = await handler(state, context);
    expect(sent).toMatchObject([
      { KeyId: KEY_ARN, MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256' },
    ]);
    expect(result).toMatchObject({
      manifestSha256: digest.toString('hex'),
      signature: { keyId: KEY_ARN, algorithm: 'ECDSA_SHA_256' },
      problems: [],
    });
    const files = bundleFiles(incident.incidentId);
    expect(files.has('signature.json')).toBe(true);
    expect(verifyBundleFiles(files, { publicKey })).toMatchObject({
      ok: true,
      signature: { status: 'valid', keyId: KEY_ARN },
    });
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    expect(verifyBundleFiles(files, { publicKey: other })).toMatchObject({
      ok: false,
      signature: { status: 'invalid', rule: 'signature-invalid' },
    });
  });

  it('still writes the bundle, unsigned, when KMS refuses, and reports why', async () => {
    kms.on(SignCommand).rejects(new Error('AccessDeniedException: not authorized to perform kms:Sign'));
    const result = await handler({ ...state, incident: { ...incident, incidentId: 'kms-down' } }, context);
    expect(result).toMatchObject({ signature: null });
    expect((result as { problems: string[] }).problems).toEqual([
      expect.stringMatching(
        new RegExp(
          `^the manifest could not be signed with ${KEY_ARN}: .*kms:Sign; the bundle is written unsigned$`,
        ),
      ),
    ]);
    const files = bundleFiles('kms-down');
    expect(files.has('signature.json')).toBe(false);
    expect(verifyBundleFiles(files, {})).toMatchObject({ ok: true, signature: { status: 'absent' } });
  });
});
