import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stepTimeoutSeconds, validateParameters } from '../core/runbook/document.js';
import { loadRunbook, type RunbookLocation } from './runbooks.js';

/**
 * The SSM adapter of the local twin: runs a document the way the SSM Agent does, inside a network
 * namespace that plays the instance. Parameters are validated first (a rejected value throws
 * `ParameterValidationError` and nothing is spawned, like SendCommand's InvalidParameters), then
 * reach the script only as `SSM_<Name>` environment variables.
 */

/** SSM's invocation status names, so callers treat the local and the AWS result alike. */
export type CommandStatus = 'Success' | 'Failed' | 'TimedOut';

/** GetCommandInvocation keeps the first 24,000 characters of stdout and 8,000 of stderr. */
export const STDOUT_LIMIT = 24_000;
export const STDERR_LIMIT = 8_000;
/** Output beyond this is dropped even from the full copy (a runaway script must not eat memory). */
const FULL_OUTPUT_LIMIT = 16 * 1024 * 1024;

/** PATH as the SSM Agent's environment has it on a typical instance (the script sees nothing else). */
const AGENT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface RunDocumentRequest {
  /** Document name (the file base name under `runbooks/ssm/`). */
  readonly name: string;
  readonly parameters: Readonly<Record<string, string>>;
  /** The network namespace that plays the instance. */
  readonly netns: string;
  /**
   * Extra environment that is not an SSM parameter, such as CONNTRACK_RESPONDER_STATE_DIR and
   * CONNTRACK_RESPONDER_ROOT (names starting with SSM_ are refused).
   */
  readonly env?: Readonly<Record<string, string>>;
  /** Overrides the step's `timeoutSeconds` (default: the document's, else 3600 s). */
  readonly timeoutMs?: number;
  /** Where the documents live (default: the repository's `runbooks/`). */
  readonly runbooks?: RunbookLocation;
}

export interface RunDocumentResult {
  readonly status: CommandStatus;
  /** Like SSM's StatusDetails. */
  readonly statusDetails: 'Success' | 'Failed' | 'ExecutionTimedOut';
  /** The script's exit code; -1 when it was killed at the timeout (SSM's ResponseCode). */
  readonly exitCode: number;
  /** First 24,000 characters, as GetCommandInvocation's StandardOutputContent. */
  readonly stdout: string;
  /** First 8,000 characters, as StandardErrorContent. */
  readonly stderr: string;
  readonly stdoutTruncated: boolean;
  readonly stderrTruncated: boolean;
  /** The whole output (what SSM would write to S3), for evidence bundles. */
  readonly fullStdout: string;
  readonly fullStderr: string;
  /** The (truncated) stdout parsed, when it is exactly one JSON object. */
  readonly json?: Record<string, unknown>;
  /** The validated parameters, defaults applied. */
  readonly parameters: Readonly<Record<string, string>>;
  readonly durationMs: number;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function scriptEnvironment(
  parameters: Readonly<Record<string, string>>,
  extra: Readonly<Record<string, string>>,
): Record<string, string> {
  for (const name of Object.keys(extra)) {
    if (!ENV_NAME.test(name)) throw new Error(`invalid environment variable name ${JSON.stringify(name)}`);
    if (name.startsWith('SSM_'))
      throw new Error(`environment variable ${name}: SSM_* names are for parameters`);
  }
  const env: Record<string, string> = { PATH: AGENT_PATH, HOME: '/root', LANG: 'C.UTF-8', ...extra };
  for (const [name, value] of Object.entries(parameters)) env[`SSM_${name}`] = value;
  return env;
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Collects a stream's text up to a limit. */
function collector() {
  const chunks: Buffer[] = [];
  let size = 0;
  return {
    push(chunk: Buffer) {
      if (size >= FULL_OUTPUT_LIMIT) return;
      chunks.push(chunk);
      size += chunk.length;
    },
    text: () => Buffer.concat(chunks).toString('utf8'),
  };
}

/**
 * Runs document `name` in `netns`: validate, write the spliced script to a temporary file, run
 * `ip netns exec <netns> bash <file>` with the parameters as `SSM_<Name>`, enforce the timeout
 * (the whole process group is killed), and report the result the way GetCommandInvocation does.
 */
export async function runDocument(request: RunDocumentRequest): Promise<RunDocumentResult> {
  const { document } = await loadRunbook(request.name, request.runbooks);
  const parameters = validateParameters(document, request.parameters);
  const env = scriptEnvironment(parameters, request.env ?? {});
  const timeoutMs = request.timeoutMs ?? stepTimeoutSeconds(document) * 1000;

  const workDir = await mkdtemp(join(tmpdir(), 'conntrack-responder-ssm-'));
  try {
    const scriptPath = join(workDir, '_script.sh');
    await writeFile(scriptPath, `${document.mainSteps[0].inputs.runCommand.join('\n')}\n`, { mode: 0o700 });
    const started = performance.now();
    const stdout = collector();
    const stderr = collector();
    let timedOut = false;
    const exitCode = await new Promise<number>((resolve, reject) => {
      // `ip netns exec` execs bash; detached makes bash lead a process group we can kill whole.
      const child = spawn('ip', ['netns', 'exec', request.netns, 'bash', scriptPath], {
        cwd: workDir,
        env,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {}
      }, timeoutMs);
      child.stdout.on('data', stdout.push);
      child.stderr.on('data', stderr.push);
      child.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve(code ?? (signal ? 128 : 1));
      });
    });
    const fullStdout = stdout.text();
    const fullStderr = stderr.text();
    const truncatedStdout = fullStdout.slice(0, STDOUT_LIMIT);
    const json = parseJsonObject(truncatedStdout);
    const status: CommandStatus = timedOut ? 'TimedOut' : exitCode === 0 ? 'Success' : 'Failed';
    return {
      status,
      statusDetails: timedOut ? 'ExecutionTimedOut' : status === 'Success' ? 'Success' : 'Failed',
      exitCode: timedOut ? -1 : exitCode,
      stdout: truncatedStdout,
      stderr: fullStderr.slice(0, STDERR_LIMIT),
      stdoutTruncated: fullStdout.length > STDOUT_LIMIT,
      stderrTruncated: fullStderr.length > STDERR_LIMIT,
      fullStdout,
      fullStderr,
      ...(json ? { json } : {}),
      parameters,
      durationMs: Math.round(performance.now() - started),
    };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}
