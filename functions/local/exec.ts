import { spawn } from 'node:child_process';
import { ResponderError } from '../core/errors.js';

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ExecOptions {
  /** Written to the child's stdin, then closed. */
  readonly input?: string;
  /** Extra environment variables; the child inherits PATH and the rest of this process's environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** Resolve with a non-zero code instead of rejecting. */
  readonly allowFailure?: boolean;
  readonly timeoutMs?: number;
}

/** A command that exited non-zero; its output is kept for the error report. */
export class CommandFailedError extends ResponderError {
  override readonly name = 'CommandFailedError';
  constructor(
    readonly argv: readonly string[],
    readonly result: ExecResult,
    options?: ErrorOptions,
  ) {
    super(
      `${argv.join(' ')} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`,
      options,
    );
  }
}

/**
 * Runs a program with an argument vector (never through a shell: nothing is ever interpolated
 * into shell text) and collects its output.
 */
export function execFile(
  file: string,
  args: readonly string[],
  options: ExecOptions = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs,
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const result = {
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8') + (signal ? `\n(killed by ${signal})` : ''),
      };
      if (result.code !== 0 && !options.allowFailure) reject(new CommandFailedError([file, ...args], result));
      else resolve(result);
    });
    child.stdin.on('error', () => {}); // a child that exits without reading its input is not an error here
    child.stdin.end(options.input ?? '');
  });
}
