import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * One reader per function: a handler reads its environment once, at init, through its own
 * `…Settings(process.env)` of functions/core/function-settings.ts, and nowhere else.
 */
const HANDLERS = join(import.meta.dirname, '../../../functions/handlers');

function sourcesUnder(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourcesUnder(join(directory, entry.name))
      : entry.name.endsWith('.ts')
        ? [join(directory, entry.name)]
        : [],
  );
}

/** Every mention of the environment in a source: process.env, or an `env` object indexed or dotted. */
function environmentReads(source: string): string[] {
  return [...source.matchAll(/[^\n]*(?:process\.env|\benv\s*(?:\[|\?\.|\.(?!ts\b)\w))[^\n]*/g)].map((m) =>
    m[0].trim(),
  );
}

const ONE_READER =
  /^(?:const|\}) .*= [a-z][A-Za-z]*Settings\(process\.env\)|^[a-z][A-Za-z]*Settings\(process\.env\)/;

describe('the handlers read their environment through one reader each', () => {
  const sources = sourcesUnder(HANDLERS);

  it('finds the handlers', () => {
    expect(sources.length).toBeGreaterThan(10);
  });

  it.each(sources.map((path) => [relative(HANDLERS, path), path]))('%s', (_name, path) => {
    const reads = environmentReads(readFileSync(path, 'utf8'));
    expect(reads.length).toBeLessThanOrEqual(1);
    for (const read of reads) expect(read).toMatch(ONE_READER);
  });

  it('catches a raw read (the scan can fail)', () => {
    const raw = environmentReads("const x = Number(process.env.X ?? '90');\nconst y = env[NAME];\n");
    expect(raw).toHaveLength(2);
    expect(raw[0]).not.toMatch(ONE_READER);
  });
});
