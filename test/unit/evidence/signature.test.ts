import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildEvidenceBundle, signEvidenceBundle } from '../../../functions/core/evidence/bundle.js';
import { MANIFEST_PATH, toBuffer, verifyBundleFiles } from '../../../functions/core/evidence/manifest.js';
import {
  algorithmFor,
  keyFingerprint,
  type ManifestSigner,
  parsePublicKey,
  privateKeySigner,
  SIGNATURE_PATH,
  type SigningAlgorithm,
} from '../../../functions/core/evidence/signature.js';
import { execFile } from '../../../functions/local/exec.js';
import { remediatedIncident } from '../../support/evidence-builder.js';
import { rehashed } from '../../support/hostile-tar.js';

/**
 * Offline verification against Node's crypto with real key pairs. KMS itself cannot run here; what
 * it returns is documented (AWS KMS API Reference, Sign: ECDSA signatures DER-encoded per RFC 3279
 * 2.2.3; with MessageType DIGEST the given digest is signed without hashing it again; AWS KMS
 * Developer Guide, asymmetric key specs: RSASSA_PSS_SHA_256 uses SHA-256 for MGF1 and a 256-bit
 * salt). The openssl cases below sign the digest alone with `openssl pkeyutl`, which is what
 * MessageType DIGEST asks of KMS, by an implementation independent of ours.
 */

const opensslAvailable = await execFile('openssl', ['version']).then(
  () => true,
  () => false,
);
if (!opensslAvailable && process.env.CI === 'true') {
  throw new Error('openssl is not installed: the DIGEST-signing cases need it (.ci/run installs it)');
}

const files = (bundle: { files: ReadonlyMap<string, string | Buffer> }) =>
  new Map([...bundle.files].map(([path, content]) => [path, toBuffer(content)]));

const keys: Record<SigningAlgorithm, { privateKey: KeyObject; publicKey: KeyObject }> = {
  ECDSA_SHA_256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  RSASSA_PSS_SHA_256: generateKeyPairSync('rsa', { modulusLength: 3072 }),
};

/** A signer that returns a fixed signature for whatever it is asked, to plant bad signatures. */
function fixedSigner(algorithm: SigningAlgorithm, signature: Buffer): ManifestSigner {
  return { keyId: 'arn:aws:kms:eu-west-1:111122223333:key/test', algorithm, sign: async () => signature };
}

describe.each(Object.keys(keys) as SigningAlgorithm[])('%s signed bundles', (algorithm) => {
  const { privateKey, publicKey } = keys[algorithm];
  const genuine = buildEvidenceBundle(remediatedIncident());

  it('verify with the public key, and name the key that signed', async () => {
    const signed = await signEvidenceBundle(genuine, privateKeySigner(privateKey));
    expect(signed.manifestSha256).toBe(genuine.manifestSha256);
    expect(signed.files.get(MANIFEST_PATH)).toBe(genuine.files.get(MANIFEST_PATH));
    const result = verifyBundleFiles(files(signed), { publicKey });
    expect(result.ok).toBe(true);
    expect(result.signature).toEqual({
      status: 'valid',
      algorithm,
      keyId: `local:${keyFingerprint(publicKey)}`,
      key: keyFingerprint(publicKey),
    });
  });

  it('verify for integrity without a key, and say the signature was not checked', async () => {
    const signed = await signEvidenceBundle(genuine, privateKeySigner(privateKey));
    const result = verifyBundleFiles(files(signed));
    expect(result.ok).toBe(true);
    expect(result.unexpected).toEqual([]);
    expect(result.signature).toEqual({ status: 'not-checked', keyId: `local:${keyFingerprint(publicKey)}` });
  });

  it('fail when the manifest was changed and re-hashed after signing (the old signature kept)', async () => {
    const signed = await signEvidenceBundle(genuine, privateKeySigner(privateKey));
    const tampered = rehashed(signed, (all) => all.set('postmortem.md', Buffer.from('# nothing happened\n')));
    tampered.set(SIGNATURE_PATH, toBuffer(signed.files.get(SIGNATURE_PATH) ?? ''));
    const result = verifyBundleFiles(tampered, { publicKey });
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([
      expect.objectContaining({ file: SIGNATURE_PATH, rule: 'signature-digest' }),
    ]);
  });

  it('fail when the tamperer re-signs with a key of their own', async () => {
    const theirs =
      algorithm === 'ECDSA_SHA_256'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('rsa', { modulusLength: 2048 });
    const tampered = await signEvidenceBundle(
      buildEvidenceBundle({ ...remediatedIncident(), notes: ['planted'] }),
      privateKeySigner(theirs.privateKey),
    );
    const result = verifyBundleFiles(files(tampered), { publicKey });
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([
      {
        file: SIGNATURE_PATH,
        rule: 'signature-invalid',
        detail: `the ${algorithm} signature does not verify with the key ${keyFingerprint(publicKey)}: the manifest was not signed by this key`,
      },
    ]);
  });

  it.runIf(opensslAvailable)(
    'accept a signature made over the digest alone, as KMS does with MessageType DIGEST',
    async () => {
      const work = await mkdtemp(join(tmpdir(), 'ctr-sig-'));
      try {
        const manifest = toBuffer(genuine.files.get(MANIFEST_PATH) ?? '');
        await writeFile(join(work, 'digest.bin'), createHash('sha256').update(manifest).digest());
        await writeFile(join(work, 'key.pem'), privateKey.export({ format: 'pem', type: 'pkcs8' }));
        const options =
          algorithm === 'ECDSA_SHA_256'
            ? []
            : [
                '-pkeyopt',
                'rsa_padding_mode:pss',
                '-pkeyopt',
                'rsa_pss_saltlen:32',
                '-pkeyopt',
                'rsa_mgf1_md:sha256',
              ];
        await execFile('openssl', [
          'pkeyutl',
          '-sign',
          '-inkey',
          join(work, 'key.pem'),
          '-in',
          join(work, 'digest.bin'),
          '-out',
          join(work, 'sig.bin'),
          '-pkeyopt',
          'digest:sha256',
          ...options,
        ]);
        const signature = await readFile(join(work, 'sig.bin'));
        if (algorithm === 'ECDSA_SHA_256') expect(signature[0]).toBe(0x30); // a DER SEQUENCE, as KMS returns
        const signed = await signEvidenceBundle(genuine, fixedSigner(algorithm, signature));
        expect(verifyBundleFiles(files(signed), { publicKey })).toMatchObject({
          ok: true,
          signature: { status: 'valid' },
        });
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    },
  );
});

describe('signature checks', () => {
  const genuine = buildEvidenceBundle(remediatedIncident());
  const manifest = toBuffer(genuine.files.get(MANIFEST_PATH) ?? '');
  const ec = keys.ECDSA_SHA_256;

  it("refuse an ECDSA signature in the raw r||s form (WebCrypto's), since KMS returns DER", async () => {
    const raw = sign('sha256', manifest, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' });
    const signed = await signEvidenceBundle(genuine, fixedSigner('ECDSA_SHA_256', raw));
    expect(verifyBundleFiles(files(signed), { publicKey: ec.publicKey }).problems.map((p) => p.rule)).toEqual(
      ['signature-invalid'],
    );
  });

  it('refuse a key of the wrong kind for the signature', async () => {
    const signed = await signEvidenceBundle(genuine, privateKeySigner(ec.privateKey));
    const result = verifyBundleFiles(files(signed), { publicKey: keys.RSASSA_PSS_SHA_256.publicKey });
    expect(result.problems).toEqual([
      {
        file: SIGNATURE_PATH,
        rule: 'signature-key',
        detail: 'the bundle was signed with ECDSA_SHA_256, but the public key is for RSASSA_PSS_SHA_256',
      },
    ]);
  });

  it('say so when a key is given but the bundle is not signed', () => {
    const result = verifyBundleFiles(files(genuine), { publicKey: ec.publicKey });
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([
      {
        file: SIGNATURE_PATH,
        rule: 'signature-missing',
        detail: 'a public key was given but the bundle is not signed',
      },
    ]);
  });

  it.each([
    ['not JSON', '{'],
    ['of the wrong shape', '{"format":"x"}'],
    ['with extra fields', null],
  ])('refuse a signature.json %s', async (_name, text) => {
    const signed = await signEvidenceBundle(genuine, privateKeySigner(ec.privateKey));
    const all = files(signed);
    const extra = { ...JSON.parse(String(all.get(SIGNATURE_PATH))), note: 'x' };
    all.set(SIGNATURE_PATH, Buffer.from(text ?? JSON.stringify(extra)));
    expect(verifyBundleFiles(all, { publicKey: ec.publicKey }).problems.map((p) => p.rule)).toEqual([
      'signature-format',
    ]);
  });

  it('read public keys as PEM, DER and base64 DER (what aws kms get-public-key prints)', () => {
    const der = ec.publicKey.export({ format: 'der', type: 'spki' });
    const fingerprint = keyFingerprint(ec.publicKey);
    for (const form of [
      Buffer.from(ec.publicKey.export({ format: 'pem', type: 'spki' })),
      der,
      Buffer.from(`${der.toString('base64')}\n`),
    ]) {
      expect(keyFingerprint(parsePublicKey(form))).toBe(fingerprint);
    }
    expect(() => parsePublicKey(Buffer.from('hello'))).toThrow();
  });

  it('accept P-256 and RSA of 2048 bits or more, and nothing else', () => {
    expect(algorithmFor(ec.publicKey)).toBe('ECDSA_SHA_256');
    expect(algorithmFor(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey)).toEqual({
      problem: 'is an EC key on secp384r1, not P-256',
    });
    expect(algorithmFor(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey)).toEqual({
      problem: 'is a 1024-bit RSA key (at least 2048 bits)',
    });
    expect(algorithmFor(generateKeyPairSync('ed25519').publicKey)).toEqual({
      problem: 'is a ed25519 key (P-256 ECDSA or RSA-PSS only)',
    });
  });
});
