import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runbookViolations } from '../../../functions/core/runbook/conventions.js';
import { composeScript, INCLUDE_TAG, scriptToRunCommand } from '../../../functions/core/runbook/document.js';
import { readScriptLibraries } from '../../../functions/core/runbook/libraries.js';
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

/** shellcheck's complaints about one script (empty when it is clean). */
function shellcheck(args: readonly string[], input?: string): string {
  try {
    execFileSync('shellcheck', ['--shell=bash', '--format=gcc', ...args], { encoding: 'utf8', input });
    return '';
  } catch (error) {
    return String((error as { stdout?: string }).stdout ?? error);
  }
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
  // `scripts/lib/` holds the shared libraries that scripts include; everything else is a document's script.
  const scriptFiles = filesIn(join(directory, 'scripts')).filter((file) => file !== 'lib');
  const libraries = readScriptLibraries(join(directory, 'scripts'));
  const names = documentFiles.filter((file) => file.endsWith('.yaml')).map((file) => file.slice(0, -5));

  it('holds only <name>.yaml documents, each with a <name>.sh script and no script without a document', () => {
    expect(documentFiles.filter((file) => !DOCUMENT_FILE.test(file))).toEqual([]);
    expect(filesIn(join(directory, 'scripts', 'lib')).filter((file) => !file.endsWith('.sh'))).toEqual([]);
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
      libraries,
      yamlSource: yamlPath,
      scriptSource: scriptPath,
    });
    expect(violations).toEqual([]);
  });

  it.each(names)('%s builds into the full document with its composed script as runCommand', async (name) => {
    const { document, scriptPath } = await loadRunbook(name, { directory });
    const runCommand = document.mainSteps[0].inputs.runCommand;
    expect(runCommand).toEqual(
      scriptToRunCommand(composeScript(readFileSync(scriptPath, 'utf8'), libraries, scriptPath)),
    );
    expect(runCommand.filter((line) => line.includes(INCLUDE_TAG))).toEqual([]);
  });

  // Both what SSM runs (the composed script) and the file as it runs from a checkout (-x follows
  // its lib/ includes), so neither side may hide a warning.
  it.skipIf(!hasShellcheck).each(names)('shellcheck passes on the composed %s', async (name) => {
    const { document } = await loadRunbook(name, { directory });
    expect(shellcheck(['-'], `${document.mainSteps[0].inputs.runCommand.join('\n')}\n`)).toBe('');
  });

  it.skipIf(!hasShellcheck).each(scriptFiles.filter((file) => file.endsWith('.sh')))(
    'shellcheck -x passes on the file %s',
    (file) => {
      expect(shellcheck(['-x', join(directory, 'scripts', file)])).toBe('');
    },
  );
});
