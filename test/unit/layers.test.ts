import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Every relative import of each .ts file below `dir`, resolved to a path from the repository root. */
function importsBelow(dir: string): { file: string; target: string }[] {
  const found: { file: string; target: string }[] = [];
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const path = join(entry.parentPath, entry.name);
    const file = relative(ROOT, path);
    for (const match of readFileSync(path, 'utf8').matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
      found.push({ file, target: relative(ROOT, resolve(dirname(path), match[1] ?? '')) });
    }
  }
  return found;
}

describe('layers', () => {
  it('the core imports nothing from the adapters, the handlers, the twin or the command line', () => {
    const imports = importsBelow('functions/core');
    expect(imports.length).toBeGreaterThan(100);
    const leaks = imports.filter(({ target }) => /^functions\/(adapters|handlers|local|cli)\//.test(target));
    expect(leaks).toEqual([]);
  });

  it("the functions deployed to Lambda import nothing from the CDK app: the workflow's vocabulary is the core's", () => {
    const imports = ['functions/core', 'functions/adapters', 'functions/handlers'].flatMap(importsBelow);
    expect(imports.some(({ target }) => target === 'functions/core/workflow/state-names.js')).toBe(true);
    expect(imports.filter(({ target }) => target.startsWith('infra/'))).toEqual([]);
  });

  it('nothing under functions/ imports the CDK app, except the twin synthesizing the real stack', () => {
    const imports = importsBelow('functions');
    const fromInfra = imports.filter(({ target }) => target.startsWith('infra/'));
    // The twin runs the state machine exactly as `cdk synth` builds it, so it synthesizes the stack.
    const synthesizes = ({ file }: { file: string }) => file === 'functions/local/twin/synth.ts';
    expect(fromInfra.some(synthesizes)).toBe(true);
    expect(fromInfra.filter((entry) => !synthesizes(entry))).toEqual([]);
  });

  it('the CDK app reads nothing from the local twin or the lab', () => {
    const imports = importsBelow('infra');
    expect(imports.some(({ target }) => target.startsWith('functions/core/'))).toBe(true);
    expect(imports.filter(({ target }) => target.startsWith('functions/local/'))).toEqual([]);
  });
});
