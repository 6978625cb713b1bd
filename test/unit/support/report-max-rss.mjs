// Preloaded (node --import) into a child process under test: on exit it writes the process's
// peak resident set size (KiB, getrusage) to file descriptor 3, so a test can bound memory use
// without a timing assertion and without GNU time.
import { writeSync } from 'node:fs';

process.on('exit', () => {
  try {
    writeSync(3, String(process.resourceUsage().maxRSS));
  } catch {
    // no fd 3: not run by a test that asked for it
  }
});
