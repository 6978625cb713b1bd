import { PassThrough } from 'node:stream';
import type { CliIo } from '../../../functions/cli/io.js';

/** Streams for running a CLI command in-process: `stdin` holds the given input, output is collected. */
export function captureIo(stdinContent?: string | Buffer): {
  io: CliIo;
  stdout: () => string;
  stderr: () => string;
} {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (chunk: Buffer) => out.push(chunk));
  stderr.on('data', (chunk: Buffer) => err.push(chunk));
  stdin.end(stdinContent);
  return {
    io: { stdin, stdout, stderr },
    stdout: () => Buffer.concat(out).toString('utf8'),
    stderr: () => Buffer.concat(err).toString('utf8'),
  };
}
