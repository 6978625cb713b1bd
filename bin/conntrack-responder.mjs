#!/usr/bin/env node
// Runs the TypeScript CLI through tsx so a fresh clone needs no build step. `detect`, which large
// logs are piped into, runs from a cached esbuild bundle when it can (see bundle-cache.mjs).
import { fileURLToPath } from 'node:url';

// A reader that stops early (`| head`) closes the pipe: end at once, without a message or a stack
// trace, with the status a shell reports for a program killed by SIGPIPE (128 + 13).
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (error.code === 'EPIPE') process.exit(141);
    throw error;
  });
}

const args = process.argv.slice(2);
let bundled = null;
if (args[0] === 'detect') {
  // No TurboFan for detect: its optimising compiles (on background threads) cost more CPU than they
  // save on a log of a few hundred MB, where the time goes to the native searches and the lines
  // around them; Maglev's code is good enough for those. Measured on the bench's 1,000,000-line
  // files: about a tenth fewer instructions in all, and TurboFan's threads no longer compete with
  // the scan on a busy machine.
  process.getBuiltinModule('node:v8').setFlagsFromString('--no-turbofan');
  const { importBundled } = await import('./bundle-cache.mjs');
  const root = fileURLToPath(new URL('..', import.meta.url));
  bundled = await importBundled(root, 'functions/cli/detect-process.ts', 'detect');
}
if (bundled !== null) {
  process.exitCode = await bundled.runDetectProcess(args.slice(1));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  const { main } = await import('../functions/cli/main.ts');
  process.exitCode = await main(args);
}
