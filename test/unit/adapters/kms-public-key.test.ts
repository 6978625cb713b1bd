import { generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetPublicKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { keyFingerprint, parsePublicKey } from '../../../functions/core/evidence/signature.js';
import { handlerHarness } from '../../support/handler-harness.js';

/**
 * The custom resource behind the EvidenceSigningPublicKey output: KMS faked at the SDK client
 * boundary, CloudFormation's pre-signed response URL a real HTTP server on loopback. The answer is
 * a PUT of JSON with an empty content type (AWS CloudFormation User Guide, custom resource
 * responses, https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-responses.html).
 */

const KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

describe('the evidence public key custom resource', () => {
  const { mocks, load } = handlerHarness({ kms: KMSClient });
  const { kms } = mocks;
  let server: Server;
  let url: string;
  let answers: { method?: string; headers: IncomingHttpHeaders; body: Record<string, unknown> }[];
  let handler: typeof import('../../../functions/handlers/evidence-public-key.js')['handler'];
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const der = publicKey.export({ format: 'der', type: 'spki' });

  beforeAll(async () => {
    server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        answers.push({
          method: request.method,
          headers: request.headers,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
        });
        response.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/response?X-Amz-Signature=x`;
    ({ handler } = await load({}, () => import('../../../functions/handlers/evidence-public-key.js')));
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });
  beforeEach(() => {
    answers = [];
  });

  const request = (type: 'Create' | 'Update' | 'Delete', properties: Record<string, unknown>) => ({
    RequestType: type,
    ResponseURL: url,
    StackId: 'arn:aws:cloudformation:eu-west-1:123456789012:stack/Test/1',
    RequestId: 'req-1',
    LogicalResourceId: 'EvidenceSigningPublicKey',
    ...(type === 'Create' ? {} : { PhysicalResourceId: KEY_ARN }),
    ResourceProperties: properties,
  });

  it('answers Create with the public key as base64 DER, which bundle verify reads as the same key', async () => {
    kms.on(GetPublicKeyCommand, { KeyId: KEY_ARN }).resolves({
      KeyId: KEY_ARN,
      KeyUsage: 'SIGN_VERIFY',
      KeySpec: 'ECC_NIST_P256',
      SigningAlgorithms: ['ECDSA_SHA_256'],
      PublicKey: new Uint8Array(der),
    });
    await handler(request('Create', { KeyId: KEY_ARN, SigningAlgorithm: 'ECDSA_SHA_256' }));
    expect(answers).toHaveLength(1);
    const [answer] = answers;
    expect(answer?.method).toBe('PUT');
    expect(answer?.headers['content-type'] ?? '').toBe('');
    expect(answer?.body).toMatchObject({
      Status: 'SUCCESS',
      PhysicalResourceId: KEY_ARN,
      RequestId: 'req-1',
      LogicalResourceId: 'EvidenceSigningPublicKey',
      Data: { PublicKey: der.toString('base64'), KeyArn: KEY_ARN },
    });
    const output = String((answer?.body.Data as { PublicKey?: string } | undefined)?.PublicKey);
    expect(keyFingerprint(parsePublicKey(Buffer.from(output)))).toBe(keyFingerprint(publicKey));
  });

  it('fails the deployment, naming the key, when it is not a signing key of the configured algorithm', async () => {
    kms.on(GetPublicKeyCommand).resolves({
      KeyId: KEY_ARN,
      KeyUsage: 'SIGN_VERIFY',
      KeySpec: 'RSA_2048',
      SigningAlgorithms: ['RSASSA_PKCS1_V1_5_SHA_256', 'RSASSA_PSS_SHA_256'],
      PublicKey: new Uint8Array([1]),
    });
    await handler(request('Update', { KeyId: KEY_ARN, SigningAlgorithm: 'ECDSA_SHA_256' }));
    expect(answers[0]?.body).toMatchObject({
      Status: 'FAILED',
      Reason: `KMS key ${KEY_ARN} (RSA_2048) cannot sign with ECDSA_SHA_256; it signs with RSASSA_PKCS1_V1_5_SHA_256, RSASSA_PSS_SHA_256`,
    });
    kms.on(GetPublicKeyCommand).resolves({ KeyId: KEY_ARN, KeyUsage: 'ENCRYPT_DECRYPT' });
    await handler(request('Create', { KeyId: KEY_ARN, SigningAlgorithm: 'ECDSA_SHA_256' }));
    expect(answers[1]?.body).toMatchObject({
      Status: 'FAILED',
      Reason: `KMS key ${KEY_ARN} is an ENCRYPT_DECRYPT key, not SIGN_VERIFY`,
    });
  });

  it('answers Delete without calling KMS', async () => {
    kms.on(GetPublicKeyCommand).rejects(new Error('must not be called'));
    await handler(request('Delete', { KeyId: KEY_ARN, SigningAlgorithm: 'ECDSA_SHA_256' }));
    expect(answers[0]?.body).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: KEY_ARN });
    expect(kms.commandCalls(GetPublicKeyCommand)).toHaveLength(0);
  });
});
