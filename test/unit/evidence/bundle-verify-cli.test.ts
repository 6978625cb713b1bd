import { appendFile, mkdtemp, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../../functions/cli/main.js';
import { packEvidenceBundle } from '../../../functions/core/evidence/archive.js';
import { buildEvidenceBundle } from '../../../functions/core/evidence/bundle.js';
import { decodeTar, encodeTar } from '../../../functions/core/evidence/tar.js';
import { writeEvidenceBundle } from '../../../functions/local/evidence-writer.js';
import { execFile } from '../../../functions/local/exec.js';
import { remediatedIncident } from '../../support/evidence-builder.js';
import { captureIo } from '../support/capture-io.js';

async function run(args: string[]) {
  const { io, stdout, stderr } = captureIo();
  const code = await main(args, io);
  return { code, stdout: stdout(), stderr: stderr() };
}

describe('conntrack-responder bundle verify', () => {
  let parent: string;
  let directory: string;
  let archive: string;
  beforeEach(async () => {
    parent = await mkdtemp(join(tmpdir(), 'ctr-bundle-'));
    ({ directory, archive } = await writeEvidenceBundle(parent, buildEvidenceBundle(remediatedIncident())));
  });
  afterEach(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  it('accepts the folder and the .tar.gz as written, and prints the manifest digest', async () => {
    const fileCount = buildEvidenceBundle(remediatedIncident()).files.size - 1;
    for (const path of [directory, archive]) {
      const result = await run(['bundle', 'verify', path]);
      expect(result.code, result.stdout + result.stderr).toBe(0);
      expect(result.stdout).toMatch(
        new RegExp(
          `^OK: .*incident inc-42, all ${fileCount} files match the manifest\\.\nmanifest\\.json sha256 [0-9a-f]{64}\n$`,
        ),
      );
    }
  });

  it('writes a .tar.gz the system tar reads, with every file under the incident folder', async () => {
    const listing = await execFile('tar', ['-tzf', archive]);
    expect(listing.stdout).toContain('inc-42/manifest.json');
    expect(listing.stdout).toContain('inc-42/commands/02-apply-raise-limits-limits/stdout.txt');
    expect(
      packEvidenceBundle(buildEvidenceBundle(remediatedIncident())).equals(await readFile(archive)),
    ).toBe(true);
  });

  it('names the file where one byte changed', async () => {
    const path = join(directory, 'diagnostics', 'before.json');
    const content = await readFile(path);
    content[10] = (content[10] ?? 0) ^ 0x20;
    await writeFile(path, content);
    const result = await run(['bundle', 'verify', directory]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /^ALTERED {5}diagnostics\/before\.json {2}\(manifest sha256 [0-9a-f]{64}, file has [0-9a-f]{64}\)$/m,
    );
    expect(result.stdout).toContain('FAILED:');
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
    expect(result.stdout).toMatch(/^ALTERED {5}plan\.json /m);
  });

  it('reports files outside the incident folder of an archive as unexpected', async () => {
    const entries = decodeTar(gunzipSync(await readFile(archive)));
    const path = join(parent, 'extra.tar.gz');
    await writeFile(
      path,
      gzipSync(encodeTar([...entries, { path: 'README.txt', content: Buffer.from('hi') }], new Date())),
    );
    const result = await run(['bundle', 'verify', path]);
    expect(result.stdout).toContain('UNEXPECTED  ../README.txt');
  });

  it('fails clearly on a damaged archive and on a symbolic link in a folder', async () => {
    await appendFile(archive, 'garbage');
    const truncated = join(parent, 'truncated.tar.gz');
    await writeFile(truncated, (await readFile(archive)).subarray(0, 200));
    const damaged = await run(['bundle', 'verify', truncated]);
    expect(damaged.code).toBe(1);
    expect(damaged.stderr).toMatch(/not a readable gzip file/);

    await symlink('/etc/hostname', join(directory, 'link.txt'));
    const linked = await run(['bundle', 'verify', directory]);
    expect(linked.code).toBe(1);
    expect(linked.stderr).toMatch(/link\.txt is a symbolic link/);
  });

  it('prints the whole result as JSON with --json', async () => {
    await unlink(join(directory, 'impact.json'));
    const result = await run(['bundle', 'verify', '--json', directory]);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({
      ok: false,
      incidentId: 'inc-42',
      missing: ['impact.json'],
    });
  });

  it('refuses to overwrite an existing bundle', async () => {
    await expect(writeEvidenceBundle(parent, buildEvidenceBundle(remediatedIncident()))).rejects.toThrow(
      /already exists/,
    );
  });

  it.each([
    [['bundle']],
    [['bundle', 'check', 'x']],
    [['bundle', 'verify']],
    [['bundle', 'verify', 'a', 'b']],
    [['bundle', 'verify', '--fast', 'a']],
  ])('exits 2 on a usage error: %j', async (args) => {
    expect((await run(args)).code).toBe(2);
  });

  it('says which path does not exist', async () => {
    const result = await run(['bundle', 'verify', join(parent, 'nope')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('no such file or folder');
  });
});
