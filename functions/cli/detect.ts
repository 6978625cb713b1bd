import type { Command } from './io.js';

// Placeholder until the detection core lands (issue #2); replaced by the real command.
export const detectCommand: Command = async (_args, io) => {
  io.stderr.write('detect: not built yet\n');
  return 1;
};
