import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The shared shell libraries of a scripts folder, keyed by include path (`lib/common.sh`), for
 * `buildDocument`. One reader for the CDK construct and the local runbook loader, so the documents
 * deployed and the documents the twin and the lab run are built from the same files. Synchronous
 * because synth is.
 */
export function readScriptLibraries(scriptsDirectory: string): Record<string, string> {
  const libraryDirectory = join(scriptsDirectory, 'lib');
  if (!existsSync(libraryDirectory)) return {};
  const libraries: Record<string, string> = {};
  for (const file of readdirSync(libraryDirectory).sort()) {
    if (file.endsWith('.sh')) libraries[`lib/${file}`] = readFileSync(join(libraryDirectory, file), 'utf8');
  }
  return libraries;
}
