import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDocument, type CommandDocument } from '../core/runbook/document.js';
import { readScriptLibraries } from '../core/runbook/libraries.js';

/** The repository's `runbooks/` folder (documents in `ssm/`, scripts in `scripts/`). */
export const RUNBOOKS_DIR = fileURLToPath(new URL('../../runbooks/', import.meta.url));

/** Document names are file base names: lower-case words joined by dashes (no path tricks). */
const DOCUMENT_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;

export interface LoadedRunbook {
  readonly name: string;
  readonly document: CommandDocument;
  readonly yamlPath: string;
  readonly scriptPath: string;
}

export interface RunbookLocation {
  /** A folder laid out like `runbooks/` (default: the repository's). */
  readonly directory?: string;
}

/**
 * Reads `<dir>/ssm/<name>.yaml`, `<dir>/scripts/<name>.sh` and the libraries it includes from
 * `<dir>/scripts/lib/`, and builds the full document.
 */
export async function loadRunbook(name: string, location: RunbookLocation = {}): Promise<LoadedRunbook> {
  if (!DOCUMENT_NAME.test(name)) {
    throw new Error(
      `invalid document name ${JSON.stringify(name)}: expected lower-case letters, digits, dashes`,
    );
  }
  const directory = location.directory ?? RUNBOOKS_DIR;
  const yamlPath = join(directory, 'ssm', `${name}.yaml`);
  const scriptPath = join(directory, 'scripts', `${name}.sh`);
  const [yamlText, scriptText] = await Promise.all([
    readFile(yamlPath, 'utf8').catch((error: Error) => {
      throw new Error(`document '${name}' not found: ${error.message}`);
    }),
    readFile(scriptPath, 'utf8').catch((error: Error) => {
      throw new Error(`script of document '${name}' not found: ${error.message}`);
    }),
  ]);
  const libraries = readScriptLibraries(join(directory, 'scripts'));
  const document = buildDocument(yamlText, scriptText, yamlPath, { libraries, scriptSource: scriptPath });
  return { name, document, yamlPath, scriptPath };
}

/** Names of the documents in `<dir>/ssm/` (sorted). */
export async function listRunbooks(location: RunbookLocation = {}): Promise<string[]> {
  const directory = join(location.directory ?? RUNBOOKS_DIR, 'ssm');
  const files = await readdir(directory).catch(() => []);
  return files
    .filter((file) => file.endsWith('.yaml'))
    .map((file) => file.slice(0, -'.yaml'.length))
    .sort();
}
