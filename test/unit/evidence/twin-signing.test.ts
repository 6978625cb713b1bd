import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../../functions/cli/io.js';
import { main } from '../../../functions/cli/main.js';
import { respondFlags } from '../../../functions/cli/respond.js';
import { keyFingerprint } from '../../../functions/core/evidence/signature.js';
import { OUTCOMES } from '../../../functions/core/workflow/outcome.js';
import { localEvidenceWriter } from '../../../functions/local/twin/evidence.js';
import { captureIo } from '../support/capture-io.js';

/**
 * The local twin signs like the stack: `respond --signing-key FILE` (and `watch`) signs the bundle's
 * manifest with a local private key, the same signature format and encodings as KMS, so the bundle
 * is checked by `bundle verify --public-key` exactly as a KMS-signed one.
 */

const incident = {
  incidentId: 'twin-signed',
  host: 'ctr-test',
  instanceId: 'ctr-test',
  kind: 'table-full',
  mode: 'auto',
  openedAt: '2026-11-21T10:00:00.000Z',
  trigger: {
    logGroup: 'local',
    logStream: 'ctr-test',
    netns: '4026532177',
    dropLines: 1,
    suppressed: 0,
    events: [
      {
        id: '1',
        timestamp: Date.parse('2026-11-21T09:59:58Z'),
        message: 'nf_conntrack: table full, dropping packet',
      },
    ],
  },
};

async function verify(args: string[]) {
  const { io, stdout, stderr } = captureIo();
  const code = await main(['bundle', 'verify', ...args], io);
  return { code, stdout: stdout(), stderr: stderr() };
}

describe('the twin signs with --signing-key', () => {
  let work: string;
  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), 'ctr-twin-sign-'));
  });
  afterEach(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('signs the bundle with the key file; bundle verify --public-key accepts it and refuses another key', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyFile = join(work, 'evidence-signing.pem');
    await writeFile(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const flags = respondFlags({ netns: 'ctr-test', 'signing-key': keyFile });
    expect(flags.signer?.keyId).toBe(`local:${keyFingerprint(publicKey)}`);

    const written = await localEvidenceWriter(() => {}, flags.signer)({
      state: { incident, outcome: OUTCOMES.dryRun },
      history: [],
      commands: [],
      outDir: work,
      incidentId: incident.incidentId,
    });
    expect(written.signature).toEqual({
      keyId: `local:${keyFingerprint(publicKey)}`,
      algorithm: 'ECDSA_SHA_256',
    });
    const publicFile = join(work, 'public.pem');
    await writeFile(publicFile, publicKey.export({ format: 'pem', type: 'spki' }));
    const good = await verify([written.archive, '--public-key', publicFile]);
    expect(good.code, good.stdout + good.stderr).toBe(0);
    expect(good.stdout).toContain('signature: valid, ECDSA_SHA_256 by local:');

    const otherFile = join(work, 'other.pem');
    await writeFile(
      otherFile,
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }),
    );
    const wrong = await verify([written.archive, '--public-key', otherFile]);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toMatch(/^PROBLEM {5}signature\.json \[signature-invalid\] /m);
  });

  it('refuses a key file that is missing, not a key, a public key, or a curve KMS does not use, naming the file', async () => {
    const notKey = join(work, 'not-a-key.pem');
    await writeFile(notKey, 'hello');
    const publicOnly = join(work, 'public.pem');
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(publicOnly, pair.publicKey.export({ format: 'pem', type: 'spki' }));
    const p384 = join(work, 'p384.pem');
    await writeFile(
      p384,
      generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'pem', type: 'pkcs8' }),
    );
    for (const [file, reason] of [
      [join(work, 'absent.pem'), /\(ENOENT\)/],
      [notKey, /not a usable private key/],
      [publicOnly, /not a usable private key/],
      [p384, /not P-256/],
    ] as const) {
      const attempt = () => respondFlags({ netns: 'ctr-test', 'signing-key': file });
      expect(attempt).toThrow(UsageError);
      expect(attempt).toThrow(new RegExp(`^--signing-key ${file.replace(/[.]/g, '\\.')}: `));
      expect(attempt).toThrow(reason);
    }
  });
});
