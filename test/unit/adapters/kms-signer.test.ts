import { constants, createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KMSClient, SignCommand, type SignCommandInput } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { evidenceSigningFrom, kmsManifestSigner } from '../../../functions/adapters/kms-signer.js';
import { main } from '../../../functions/cli/main.js';
import { buildEvidenceBundle, signEvidenceBundle } from '../../../functions/core/evidence/bundle.js';
import type { SigningAlgorithm } from '../../../functions/core/evidence/signature.js';
import { writeEvidenceBundle } from '../../../functions/local/evidence-writer.js';
import { remediatedIncident } from '../../support/evidence-builder.js';
import { captureIo } from '../support/capture-io.js';

/**
 * KMS signing at the SDK client boundary: the mocked Sign answers what KMS would, a signature made
 * with a real private key over the digest it was sent (MessageType DIGEST: the digest is signed as
 * is, https://docs.aws.amazon.com/kms/latest/APIReference/API_Sign.html; ECDSA signatures DER
 * encoded, RSASSA-PSS with a 32-byte salt,
 * https://docs.aws.amazon.com/kms/latest/developerguide/asymmetric-key-specs.html). The bundle it
 * signs must then verify offline with `bundle verify --public-key`, and fail with another key.
 */

const KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

/**
 * A fake KMS key: answers Sign as KMS does. KMS signs the 32-byte digest it is sent as a SHA-256
 * digest; Node's crypto has no sign-a-digest call, so the fake looks up which manifest has that
 * digest and signs the manifest with SHA-256, which gives exactly the signature KMS would (the
 * signature of a message is the signature of its digest). An unknown digest is an error: the
 * adapter sent something else than the manifest's SHA-256.
 */
function fakeKmsKey(algorithm: SigningAlgorithm) {
  const pair =
    algorithm === 'ECDSA_SHA_256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const manifests = new Map<string, Buffer>();
  const calls: SignCommandInput[] = [];
  const kms = mockClient(KMSClient);
  kms.on(SignCommand).callsFake((input: SignCommandInput) => {
    calls.push(input);
    const digest = Buffer.from(input.Message ?? new Uint8Array()).toString('hex');
    const manifest = manifests.get(digest);
    if (manifest === undefined) throw new Error(`no manifest has the digest ${digest}`);
    const signature =
      input.SigningAlgorithm === 'ECDSA_SHA_256'
        ? sign('sha256', manifest, { key: pair.privateKey, dsaEncoding: 'der' })
        : sign('sha256', manifest, {
            key: pair.privateKey,
            padding: constants.RSA_PKCS1_PSS_PADDING,
            saltLength: 32,
          });
    return { KeyId: KEY_ARN, Signature: new Uint8Array(signature), SigningAlgorithm: input.SigningAlgorithm };
  });
  return {
    kms,
    calls,
    publicKeyPem: pair.publicKey.export({ format: 'pem', type: 'spki' }),
    knows(manifest: Buffer) {
      manifests.set(createHash('sha256').update(manifest).digest('hex'), manifest);
    },
  };
}

async function verify(args: string[]) {
  const { io, stdout, stderr } = captureIo();
  const code = await main(['bundle', 'verify', ...args], io);
  return { code, stdout: stdout(), stderr: stderr() };
}

describe('kmsManifestSigner', () => {
  let parent: string;
  beforeEach(async () => {
    parent = await mkdtemp(join(tmpdir(), 'ctr-kms-'));
  });
  afterEach(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  for (const algorithm of ['ECDSA_SHA_256', 'RSASSA_PSS_SHA_256'] as const) {
    it(`${algorithm}: sends the manifest digest as a DIGEST message; the bundle verifies offline with the public key, and not with another`, async () => {
      const key = fakeKmsKey(algorithm);
      const unsigned = buildEvidenceBundle(remediatedIncident());
      key.knows(Buffer.from(String(unsigned.files.get('manifest.json'))));
      const alias = 'alias/conntrack-responder-evidence';
      const bundle = await signEvidenceBundle(
        unsigned,
        kmsManifestSigner(new KMSClient({}), alias, algorithm),
      );
      key.kms.restore();

      expect(key.calls).toEqual([
        {
          KeyId: alias,
          Message: Buffer.from(unsigned.manifestSha256, 'hex'),
          MessageType: 'DIGEST',
          SigningAlgorithm: algorithm,
        },
      ]);
      // The key KMS names (its ARN) is recorded, not the alias it was asked for.
      expect(bundle.signature).toMatchObject({
        keyId: KEY_ARN,
        algorithm,
        manifestSha256: unsigned.manifestSha256,
      });
      expect(bundle.manifestSha256).toBe(unsigned.manifestSha256);

      const { archive } = await writeEvidenceBundle(parent, bundle);
      const keyFile = join(parent, 'kms-public-key.pem');
      await writeFile(keyFile, key.publicKeyPem);
      const good = await verify([archive, '--public-key', keyFile]);
      expect(good.code, good.stdout + good.stderr).toBe(0);
      expect(good.stdout).toContain(`signature: valid, ${algorithm} by ${KEY_ARN}`);

      const otherFile = join(parent, 'other.pem');
      await writeFile(otherFile, fakeKmsKey(algorithm).publicKeyPem);
      const wrong = await verify([archive, '--public-key', otherFile]);
      expect(wrong.code).toBe(1);
      expect(wrong.stdout).toMatch(/^PROBLEM {5}signature\.json \[signature-invalid\] /m);
    });
  }

  it('fails, naming the key, when KMS returns no signature or signs with another algorithm', async () => {
    const kms = mockClient(KMSClient);
    const bundle = buildEvidenceBundle(remediatedIncident());
    kms.on(SignCommand).resolves({ KeyId: KEY_ARN });
    await expect(
      signEvidenceBundle(bundle, kmsManifestSigner(new KMSClient({}), KEY_ARN, 'ECDSA_SHA_256')),
    ).rejects.toThrow(`KMS returned no signature for key ${KEY_ARN}`);
    kms
      .on(SignCommand)
      .resolves({ KeyId: KEY_ARN, Signature: new Uint8Array([1]), SigningAlgorithm: 'RSASSA_PSS_SHA_256' });
    await expect(
      signEvidenceBundle(bundle, kmsManifestSigner(new KMSClient({}), KEY_ARN, 'ECDSA_SHA_256')),
    ).rejects.toThrow('KMS signed with RSASSA_PSS_SHA_256, not ECDSA_SHA_256');
    kms.restore();
  });
});

describe('evidenceSigningFrom', () => {
  it('is off without a key, defaults to ECDSA_SHA_256, and refuses an unknown algorithm naming the variable', () => {
    expect(evidenceSigningFrom({})).toBeNull();
    expect(evidenceSigningFrom({ EVIDENCE_SIGNING_KEY_ID: ' ' })).toBeNull();
    expect(evidenceSigningFrom({ EVIDENCE_SIGNING_KEY_ID: KEY_ARN })).toEqual({
      keyId: KEY_ARN,
      algorithm: 'ECDSA_SHA_256',
    });
    expect(
      evidenceSigningFrom({
        EVIDENCE_SIGNING_KEY_ID: KEY_ARN,
        EVIDENCE_SIGNING_ALGORITHM: 'RSASSA_PSS_SHA_256',
      }),
    ).toEqual({ keyId: KEY_ARN, algorithm: 'RSASSA_PSS_SHA_256' });
    expect(() =>
      evidenceSigningFrom({
        EVIDENCE_SIGNING_KEY_ID: KEY_ARN,
        EVIDENCE_SIGNING_ALGORITHM: 'RSASSA_PKCS1_V1_5_SHA_256',
      }),
    ).toThrow(
      /^environment variable EVIDENCE_SIGNING_ALGORITHM must be one of ECDSA_SHA_256, RSASSA_PSS_SHA_256, got 'RSASSA_PKCS1_V1_5_SHA_256'/,
    );
  });
});
