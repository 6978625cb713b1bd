import type { Readable, Writable } from 'node:stream';
import { ResponderError } from '../core/errors.js';

/** The streams a command talks to; tests pass their own to run commands in-process. */
export interface CliIo {
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable;
}

/**
 * The process's own streams, each created on first use: Node builds a stream the first time
 * `process.stdin` (or stdout, stderr) is read, and `detect FILE` never needs standard input.
 */
export const processIo: CliIo = {
  get stdin() {
    return process.stdin;
  },
  get stdout() {
    return process.stdout;
  },
  get stderr() {
    return process.stderr;
  },
};

/** A command of the `conntrack-responder` CLI: returns the process exit code. */
export type Command = (args: string[], io: CliIo) => Promise<number>;

/** A user mistake (bad flag, unreadable file): printed without a stack trace, exit code 2. */
export class UsageError extends ResponderError {
  override readonly name = 'UsageError';
}
