import { type CliIo, type Command, UsageError } from './io.js';

/** Runs one command; a usage error becomes a one-line message and exit code 2. */
export async function runCommand(name: string, command: Command, args: string[], io: CliIo): Promise<number> {
  try {
    return await command(args, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`conntrack-responder ${name}: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}
