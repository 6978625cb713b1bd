import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';

const BIN = fileURLToPath(new URL('../../../bin/conntrack-responder.mjs', import.meta.url));
const MAX_RSS = pathToFileURL(fileURLToPath(new URL('./report-max-rss.mjs', import.meta.url))).href;

export interface CliProcessResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Peak resident set size of the process, in KiB. */
  readonly maxRssKiB: number;
}

/**
 * Runs `conntrack-responder ARGS…` as its own process (the real entry point, its cached bundle
 * included), with `stdin` piped in, and measures its peak memory.
 */
export function runCliProcess(
  args: string[],
  stdin?: Readable | string | Buffer,
  options: {
    closeStdoutEarly?: boolean;
    /** Node options before the script, e.g. a heap bound. */
    node?: string[];
  } = {},
): Promise<CliProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.node ?? []), '--import', MAX_RSS, BIN, ...args], {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const rss: Buffer[] = [];
    if (options.closeStdoutEarly) child.stdout.destroy();
    else child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    (child.stdio[3] as Readable).on('data', (chunk: Buffer) => rss.push(chunk));
    child.stdin.on('error', () => {}); // the child may exit before reading everything
    if (stdin === undefined) child.stdin.end();
    else if (typeof stdin === 'string' || Buffer.isBuffer(stdin)) child.stdin.end(stdin);
    else stdin.pipe(child.stdin);
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        maxRssKiB: Number(Buffer.concat(rss).toString('utf8')),
      }),
    );
  });
}
