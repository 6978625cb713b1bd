import type { Readable, Writable } from 'node:stream';
import { ResponderError } from '../core/errors.js';

/** The streams a command talks to; tests pass their own to run commands in-process. */
export interface CliIo {
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable;
}

export const processIo: CliIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };

/** A command of the `conntrack-responder` CLI: returns the process exit code. */
export type Command = (args: string[], io: CliIo) => Promise<number>;

/** A user mistake (bad flag, unreadable file): printed without a stack trace, exit code 2. */
export class UsageError extends ResponderError {
  override readonly name = 'UsageError';
}
