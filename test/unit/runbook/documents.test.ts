import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runbookViolations } from '../../../functions/core/runbook/conventions.js';
import { scriptToRunCommand } from '../../../functions/core/runbook/document.js';
import { loadRunbook, RUNBOOKS_DIR } from '../../../functions/local/runbooks.js';

/**
 * The parametrized test over every SSM document: the repository's `runbooks/` (whatever exists)
 * and the executor's fixture, so that the rules run even before the first real document lands.
 */
const DIRECTORIES = [
  { label: 'runbooks', directory: RUNBOOKS_DIR },
  { label: 'test fixtures', directory: fileURLToPath(new URL('../../fixtures/runbooks/', import.meta.url)) },
];

const DOCUMENT_FILE = /^[a-z0-9][a-z0-9-]{0,63}\.yaml$/;

function filesIn(directory: string): string[] {
  return existsSync(directory) ? readdirSync(directory).sort() : [];
}

function shellcheckAvailable(): boolean {
  try {
    execFileSync('shellcheck', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const hasShellcheck = shellcheckAvailable();
if (!hasShellcheck && process.env.CI === 'true') {
  throw new Error('shellcheck is missing under CI=true: install it (apt-get install shellcheck)');
}

describe.each(DIRECTORIES)('SSM documents in $label', ({ directory }) => {
  const documentFiles = filesIn(join(directory, 'ssm'));
  const scriptFiles = filesIn(join(directory, 'scripts'));
  const names = documentFiles.filter((file) => file.endsWith('.yaml')).map((file) => file.slice(0, -5));

  it('holds only <name>.yaml documents, each with a <name>.sh script and no script without a document', () => {
    expect(documentFiles.filter((file) => !DOCUMENT_FILE.test(file))).toEqual([]);
    expect(scriptFiles.filter((file) => !file.endsWith('.sh') || !names.includes(file.slice(0, -3)))).toEqual(
      [],
    );
  });

  it.each(names)('%s follows every document rule', (name) => {
    const yamlPath = join(directory, 'ssm', `${name}.yaml`);
    const scriptPath = join(directory, 'scripts', `${name}.sh`);
    const violations = runbookViolations({
      name,
      yamlText: readFileSync(yamlPath, 'utf8'),
      scriptText: existsSync(scriptPath) ? readFileSync(scriptPath, 'utf8') : undefined,
      yamlSource: yamlPath,
      scriptSource: scriptPath,
    });
    expect(violations).toEqual([]);
  });

  it.each(names)('%s builds into the full document with its script as runCommand', async (name) => {
    const { document, scriptPath } = await loadRunbook(name, { directory });
    expect(document.mainSteps[0].inputs.runCommand).toEqual(
      scriptToRunCommand(readFileSync(scriptPath, 'utf8')),
    );
  });

  it.skipIf(!hasShellcheck).each(scriptFiles.filter((file) => file.endsWith('.sh')))(
    'shellcheck passes on %s',
    (file) => {
      let output = '';
      try {
        execFileSync('shellcheck', ['--shell=bash', '--format=gcc', join(directory, 'scripts', file)], {
          encoding: 'utf8',
        });
      } catch (error) {
        output = String((error as { stdout?: string }).stdout ?? error);
      }
      expect(output).toBe('');
    },
  );
});
