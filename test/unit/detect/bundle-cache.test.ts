import { mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importBundled } from '../../../bin/bundle-cache.mjs';
import { execFile } from '../../../functions/local/exec.js';
import { SEED_001_MESSAGES } from './real-lines.js';

const BIN = fileURLToPath(new URL('../../../bin/conntrack-responder.mjs', import.meta.url));

describe('the cached bundle behind `conntrack-responder detect`', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'bundle-cache-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function bundlePath(): Promise<string> {
    const { readdir } = await import('node:fs/promises');
    const base = join(root, 'node_modules', '.cache', 'conntrack-responder');
    const [key] = await readdir(base);
    return join(base, key as string, 'entry.cjs');
  }

  it('builds once, reuses the bundle while sources are unchanged, and rebuilds when one changes', async () => {
    await writeFile(join(root, 'answer.ts'), 'export const answer: number = 41;\n');
    await writeFile(
      join(root, 'entry.ts'),
      "import { answer } from './answer.js';\nexport const value = answer + 1;\n",
    );
    const first = await importBundled(root, 'entry.ts', 'entry');
    expect(first?.value).toBe(42);
    const builtAt = (await stat(await bundlePath())).mtimeMs;

    await importBundled(root, 'entry.ts', 'entry');
    expect((await stat(await bundlePath())).mtimeMs).toBe(builtAt);

    await writeFile(join(root, 'answer.ts'), 'export const answer: number = 99;\n');
    // Same size, later mtime, even on a coarse clock.
    await utimes(join(root, 'answer.ts'), new Date(), new Date(Date.now() + 5000));
    await importBundled(root, 'entry.ts', 'entry');
    const { stdout } = await execFile(process.execPath, [
      '--input-type=module',
      '-e',
      `const m = await import(${JSON.stringify(`file://${await bundlePath()}`)}); console.log(m.value);`,
    ]);
    expect(stdout.trim()).toBe('100');
  });

  it('returns null when the entry does not build, so the caller falls back to tsx', async () => {
    await writeFile(join(root, 'broken.ts'), 'export const = ;\n');
    expect(await importBundled(root, 'broken.ts', 'broken')).toBeNull();
  });

  it('gives the same output through the bundle and through tsx', async () => {
    const input = `${SEED_001_MESSAGES.join('\n')}\n`;
    const args = [BIN, 'detect', '--json', '--now', '2026-11-21T00:00:00Z', '-'];
    const bundled = await execFile(process.execPath, args, { input });
    const viaTsx = await execFile(process.execPath, args, {
      input,
      env: { CONNTRACK_RESPONDER_NO_BUNDLE: '1' },
    });
    expect(JSON.parse(bundled.stdout).groups[0]).toMatchObject({
      host: 'fashion',
      dropLines: 4,
      suppressed: 419,
    });
    expect(bundled.stdout).toBe(viaTsx.stdout);
    const usage = await execFile(process.execPath, [BIN, 'detect', '--bogus'], { allowFailure: true });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("conntrack-responder detect: Unknown option '--bogus'");
  });
});
