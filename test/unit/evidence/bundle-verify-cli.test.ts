import { generateKeyPairSync } from 'node:crypto';
import { appendFile, mkdtemp, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../../functions/cli/main.js';
import { packEvidenceBundle } from '../../../functions/core/evidence/archive.js';
import { buildEvidenceBundle, signEvidenceBundle } from '../../../functions/core/evidence/bundle.js';
import { keyFingerprint, privateKeySigner } from '../../../functions/core/evidence/signature.js';
import { decodeTar, encodeTar } from '../../../functions/core/evidence/tar.js';
import { writeEvidenceBundle } from '../../../functions/local/evidence-writer.js';
import { execFile } from '../../../functions/local/exec.js';
import { remediatedIncident } from '../../support/evidence-builder.js';
import { BLOCK, file } from '../../support/hostile-tar.js';
import { captureIo } from '../support/capture-io.js';

async function run(args: string[], stdin?: Buffer) {
  const { io, stdout, stderr } = captureIo(stdin);
  const code = await main(args, io);
  return { code, stdout: stdout(), stderr: stderr() };
}

const INTEGRITY_ONLY = /^NOTE: only integrity was checked/m;

describe('conntrack-responder bundle verify', () => {
  let parent: string;
  let directory: string;
  let archive: string;
  const bundle = buildEvidenceBundle(remediatedIncident());
  beforeEach(async () => {
    parent = await mkdtemp(join(tmpdir(), 'ctr-bundle-'));
    ({ directory, archive } = await writeEvidenceBundle(parent, bundle));
  });
  afterEach(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  it('accepts the folder and the .tar.gz as written, prints the manifest digest, and says only integrity was checked', async () => {
    const fileCount = bundle.files.size - 1;
    for (const path of [directory, archive]) {
      const result = await run(['bundle', 'verify', path]);
      expect(result.code, result.stdout + result.stderr).toBe(0);
      expect(result.stdout).toMatch(
        new RegExp(
          `^OK: .*incident inc-42, all ${fileCount} files match the manifest\\.\nmanifest\\.json sha256 ${bundle.manifestSha256}\n`,
        ),
      );
      expect(result.stdout).toMatch(INTEGRITY_ONLY);
    }
  });

  it('reads an archive from standard input with -', async () => {
    const result = await run(['bundle', 'verify', '-'], await readFile(archive));
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('OK: -: incident inc-42');
  });

  it('writes a .tar.gz the system tar reads, byte-identical to the in-memory archive', async () => {
    const listing = await execFile('tar', ['-tzf', archive]);
    expect(listing.stdout).toContain('inc-42/manifest.json');
    expect(listing.stdout).toContain('inc-42/commands/02-apply-raise-limits-limits/stdout.txt');
    expect(packEvidenceBundle(bundle).equals(await readFile(archive))).toBe(true);
  });

  describe('--digest', () => {
    it('exits 0 when the manifest is the recorded one, and no longer says integrity only', async () => {
      const result = await run([
        'bundle',
        'verify',
        archive,
        '--digest',
        bundle.manifestSha256.toUpperCase(),
      ]);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('digest: manifest.json is the one recorded for the incident');
      expect(result.stdout).not.toMatch(INTEGRITY_ONLY);
    });

    it('exits 1 on a postmortem changed and re-hashed into the manifest', async () => {
      const postmortem = join(directory, 'postmortem.md');
      await writeFile(
        postmortem,
        (await readFile(postmortem, 'utf8')).replace('remediated', 'nothing to see'),
      );
      const manifestPath = join(directory, 'manifest.json');
      const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
      const { createHash } = await import('node:crypto');
      const content = await readFile(postmortem);
      for (const entry of manifest.files) {
        if (entry.path === 'postmortem.md') {
          entry.sha256 = createHash('sha256').update(content).digest('hex');
          entry.bytes = content.length;
        }
      }
      await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
      expect((await run(['bundle', 'verify', directory])).code).toBe(0);
      const anchored = await run(['bundle', 'verify', directory, '--digest', bundle.manifestSha256]);
      expect(anchored.code).toBe(1);
      expect(anchored.stdout).toMatch(
        /^PROBLEM {5}manifest\.json \[digest-mismatch\] sha256 [0-9a-f]{64} is not the recorded/m,
      );
      expect(anchored.stdout).toContain(`digest: DIFFERS from the recorded ${bundle.manifestSha256}`);
    });
  });

  describe('--public-key', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    let signed: string;
    let keyFile: string;
    beforeEach(async () => {
      const signedBundle = await signEvidenceBundle(
        buildEvidenceBundle({ ...remediatedIncident(), incidentId: 'inc-signed' }),
        privateKeySigner(privateKey),
      );
      signed = (await writeEvidenceBundle(parent, signedBundle)).archive;
      keyFile = join(parent, 'key.pem');
      await writeFile(keyFile, publicKey.export({ format: 'pem', type: 'spki' }));
    });

    it('exits 0 when the signature verifies, naming algorithm and key', async () => {
      const result = await run(['bundle', 'verify', signed, '--public-key', keyFile]);
      expect(result.code, result.stdout).toBe(0);
      expect(result.stdout).toContain(
        `signature: valid, ECDSA_SHA_256 by local:${keyFingerprint(publicKey)} (public key sha256 ${keyFingerprint(publicKey)})`,
      );
      expect(result.stdout).not.toMatch(INTEGRITY_ONLY);
    });

    it('without a key, verifies integrity and says the signature was not checked', async () => {
      const result = await run(['bundle', 'verify', signed]);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('signature: present (key local:');
      expect(result.stdout).toMatch(INTEGRITY_ONLY);
    });

    it('exits 1 with another key, and with a key for an unsigned bundle', async () => {
      const other = join(parent, 'other.pem');
      await writeFile(
        other,
        generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }),
      );
      const wrong = await run(['bundle', 'verify', signed, '--public-key', other]);
      expect(wrong.code).toBe(1);
      expect(wrong.stdout).toMatch(/^PROBLEM {5}signature\.json \[signature-invalid\]/m);
      const unsigned = await run(['bundle', 'verify', archive, '--public-key', keyFile]);
      expect(unsigned.code).toBe(1);
      expect(unsigned.stdout).toContain('[signature-missing]');
    });

    it('exits 1 on a malformed signature.json, naming the file and the rule, and says so without a key too', async () => {
      const folder = join(parent, 'inc-signed');
      for (const [content, detail] of [
        ['{not json', /is not valid JSON/],
        [
          JSON.stringify({ format: 'conntrack-responder-evidence-signature', formatVersion: 1 }),
          /manifestSha256: /,
        ],
      ] as const) {
        await writeFile(join(folder, 'signature.json'), content);
        const result = await run(['bundle', 'verify', folder, '--public-key', keyFile]);
        expect(result.code).toBe(1);
        expect(result.stdout).toMatch(/^PROBLEM {5}signature\.json \[signature-format\] /m);
        expect(result.stdout).toMatch(detail);
        const keyless = await run(['bundle', 'verify', folder]);
        expect(keyless.stdout).toContain('signature: present (key unreadable), not checked');
        expect(keyless.stdout).toMatch(INTEGRITY_ONLY);
      }
    });

    it('exits 2 on a key file that is missing, not a key, or a kind of key KMS signatures never use', async () => {
      const notKey = join(parent, 'not-a-key.pem');
      await writeFile(notKey, 'hello');
      const p384 = join(parent, 'p384.pem');
      await writeFile(
        p384,
        generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'pem', type: 'spki' }),
      );
      for (const [key, message] of [
        [join(parent, 'absent.pem'), /cannot be read \(ENOENT\)/],
        [notKey, /not a public key in PEM, DER or base64 DER/],
        [p384, /the key is an EC key on secp384r1, not P-256/],
      ] as const) {
        const result = await run(['bundle', 'verify', signed, '--public-key', key]);
        expect(result.code).toBe(2);
        expect(result.stderr).toMatch(message);
      }
    });
  });

  it('names the file where one byte changed', async () => {
    const path = join(directory, 'diagnostics', 'before.json');
    const content = await readFile(path);
    content[10] = (content[10] ?? 0) ^ 0x20;
    await writeFile(path, content);
    const result = await run(['bundle', 'verify', directory]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /^ALTERED {5}diagnostics\/before\.json {2}\(manifest sha256 [0-9a-f]{64}, file has [0-9a-f]{64}; \d+ bytes as listed\)$/m,
    );
    expect(result.stdout).toContain('1 altered');
  });

  it('names a deleted file and an added one', async () => {
    await unlink(join(directory, 'postmortem.md'));
    await writeFile(join(directory, 'commands', 'notes.txt'), 'added later');
    const result = await run(['bundle', 'verify', directory]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('MISSING     postmortem.md');
    expect(result.stdout).toContain('UNEXPECTED  commands/notes.txt  (not in the manifest)');
  });

  it('names the altered file inside a .tar.gz', async () => {
    const entries = decodeTar(gunzipSync(await readFile(archive)));
    const tampered = entries.map((entry) =>
      entry.path === 'inc-42/plan.json'
        ? { ...entry, content: Buffer.concat([entry.content, Buffer.from(' ')]) }
        : entry,
    );
    const path = join(parent, 'tampered.tar.gz');
    await writeFile(path, gzipSync(encodeTar(tampered, new Date())));
    const result = await run(['bundle', 'verify', path]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^ALTERED {5}plan\.json .*manifest \d+ bytes, file has \d+\)$/m);
  });

  it('refuses a manifest listing ../outside.txt, with outside.txt beside the bundle folder', async () => {
    const entries = decodeTar(gunzipSync(await readFile(archive)));
    const outside = Buffer.from('planted beside the bundle\n');
    const { createHash } = await import('node:crypto');
    const patched = entries.map((entry) => {
      if (entry.path !== 'inc-42/manifest.json') return entry;
      const manifest = JSON.parse(entry.content.toString());
      manifest.files.push({
        path: '../outside.txt',
        sha256: createHash('sha256').update(outside).digest('hex'),
        bytes: outside.length,
      });
      return { ...entry, content: Buffer.from(JSON.stringify(manifest)) };
    });
    const path = join(parent, 'outside.tar.gz');
    await writeFile(
      path,
      gzipSync(encodeTar([...patched, { path: 'outside.txt', content: outside }], new Date(0))),
    );
    const result = await run(['bundle', 'verify', path]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /^PROBLEM {5}manifest\.json files\[\d+\] \[path-unsafe\] path "\.\.\/outside\.txt" has a "\.\." segment/m,
    );
    expect(result.stdout).toContain('UNEXPECTED  ../outside.txt');
  });

  it('refuses a .tar.gz with an entry hidden after a single zero block', async () => {
    const tar = gunzipSync(await readFile(archive));
    // The end marker starts where the last entry's data ends; put one zero block, then more.
    let end = tar.length - BLOCK;
    while (end > 0 && tar.subarray(end - BLOCK, end).every((byte) => byte === 0)) end -= BLOCK;
    const hidden = Buffer.concat([
      tar.subarray(0, end),
      Buffer.alloc(BLOCK),
      file('inc-42/hidden.md', 'x'),
      Buffer.alloc(2 * BLOCK),
    ]);
    const path = join(parent, 'hidden.tar.gz');
    await writeFile(path, gzipSync(hidden));
    const result = await run(['bundle', 'verify', path]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^bundle verify: .*hidden\.tar\.gz: data after the end of the archive: .* \[data-after-end\]\n$/,
    );
  });

  it('fails clearly on a damaged archive, on /dev/zero and on a file that is not an archive', async () => {
    const truncated = join(parent, 'truncated.tar.gz');
    await writeFile(truncated, (await readFile(archive)).subarray(0, 200));
    const damaged = await run(['bundle', 'verify', truncated]);
    expect(damaged.code).toBe(1);
    expect(damaged.stderr).toBe(`bundle verify: ${truncated}: the gzip stream is truncated [truncated]\n`);
    await appendFile(archive, 'garbage');
    expect((await run(['bundle', 'verify', archive])).code).toBe(1);
    const zero = await run(['bundle', 'verify', '/dev/zero']);
    expect(zero.code).toBe(1);
    expect(zero.stderr).toMatch(/\/dev\/zero: not a tar archive/);
    const text = await run(['bundle', 'verify', join(directory, 'postmortem.md')]);
    expect(text.stderr).toMatch(
      /postmortem\.md: not a tar archive: no ustar or GNU tar magic in the header \[not-a-tar-archive\]/,
    );
  });

  it('refuses a symbolic link and a FIFO in a folder, naming the rule', async () => {
    await symlink('/etc/hostname', join(directory, 'link.txt'));
    const linked = await run(['bundle', 'verify', directory]);
    expect(linked.code).toBe(1);
    expect(linked.stderr).toMatch(
      /"link\.txt" is a symbolic link; a bundle holds only regular files and folders \[entry-type\]/,
    );
    await unlink(join(directory, 'link.txt'));
    await execFile('mkfifo', [join(directory, 'fifo')]);
    expect((await run(['bundle', 'verify', directory])).stderr).toMatch(/"fifo" is a FIFO; .*\[entry-type\]/);
  });

  it('escapes control characters from the bundle before they reach the terminal', async () => {
    await writeFile(join(directory, 'x\u001b[2Jy'), 'planted');
    const result = await run(['bundle', 'verify', directory]);
    expect(result.code).toBe(1);
    expect(result.stderr).not.toContain('\u001b');
    expect(result.stderr).toContain('\\u001b[2Jy');
  });

  it('exits 3 when a reading limit is reached, naming the limit and the flag that raises it', async () => {
    const result = await run(['bundle', 'verify', archive, '--max-members', '5']);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(
      /more than 5 entries \(limit maxMembers\) \[maxMembers\]; if the bundle is genuine, raise it with --max-members\n$/,
    );
    const member = await run(['bundle', 'verify', directory, '--max-member-mib', '0.001']);
    expect(member.code).toBe(3);
    expect(member.stderr).toContain('[maxMemberBytes]');
    const total = await run(['bundle', 'verify', archive, '--max-total-mib', '0.01']);
    expect(total.code).toBe(3);
    expect(total.stderr).toContain('raise it with --max-total-mib');
  });

  it('prints the whole result as JSON with --json', async () => {
    await unlink(join(directory, 'impact.json'));
    const result = await run(['bundle', 'verify', '--json', directory]);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({
      ok: false,
      origin: 'not-checked',
      incidentId: 'inc-42',
      missing: ['impact.json'],
      manifestSha256: bundle.manifestSha256,
      digest: { status: 'not-given' },
      signature: { status: 'absent' },
    });
  });

  it('documents its exit codes in --help', async () => {
    const help = await run(['bundle', 'verify', '--help']);
    expect(help.code).toBe(0);
    for (const line of [
      /^ {2}0 {2}verified/m,
      /^ {2}1 {2}not verified/m,
      /^ {2}2 {2}usage error/m,
      /^ {2}3 {2}a reading limit/m,
    ]) {
      expect(help.stdout).toMatch(line);
    }
  });

  it('refuses to overwrite an existing bundle', async () => {
    await expect(writeEvidenceBundle(parent, bundle)).rejects.toThrow(/already exists/);
  });

  it.each([
    [['bundle']],
    [['bundle', 'check', 'x']],
    [['bundle', 'verify']],
    [['bundle', 'verify', 'a', 'b']],
    [['bundle', 'verify', '--fast', 'a']],
    [['bundle', 'verify', 'a', '--digest']],
    [['bundle', 'verify', 'a', '--digest', 'abc']],
    [['bundle', 'verify', 'a', '--max-ratio', '0']],
    [['bundle', 'verify', 'a', '--max-members', '1.5']],
  ])('exits 2 on a usage error: %j', async (args) => {
    expect((await run(args)).code).toBe(2);
  });

  it('says which path does not exist', async () => {
    const result = await run(['bundle', 'verify', join(parent, 'nope')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('no such file or folder');
  });
});
