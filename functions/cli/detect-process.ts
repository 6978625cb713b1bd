import { detectCommand } from './detect.js';
import { processIo } from './io.js';
import { runCommand } from './run-command.js';

/**
 * The `detect` command as a whole process, without the command registry: the entry point of the
 * cached bundle that `bin/conntrack-responder.mjs` runs for `detect` (see bin/bundle-cache.mjs).
 */
export function runDetectProcess(args: string[]): Promise<number> {
  return runCommand('detect', detectCommand, args, processIo);
}
