import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { loadRunbook } from './runbooks.js';

/**
 * The host sampler of the local twin: the host-sampler document's script, composed exactly as SSM
 * runs it (and as its installer copies it onto a host), started with `run` inside a network
 * namespace (`ip netns exec`), which is how "the namespaces it is told about" are sampled: the
 * namespace's own /proc/sys/net and /proc/net are the ones its process sees. Each line it prints
 * goes to `onLine` as it comes, with the time it was received.
 */

export interface HostSamplerOptions {
  readonly netns: string;
  /** Seconds between samples (fractions allowed). @default 1 */
  readonly intervalSeconds?: number;
  readonly onLine: (line: string, receivedAtMs: number) => void;
  /** Called if the sampler ends by itself (it never should), with its exit code and stderr. */
  readonly onExit?: (code: number | null, stderr: string) => void;
}

export interface RunningHostSampler {
  readonly pid: number;
  /** Stops the sampler (SIGTERM, then SIGKILL after 2 s) and removes its script copy. */
  stop(): Promise<void>;
}

export async function startHostSampler(options: HostSamplerOptions): Promise<RunningHostSampler> {
  const interval = options.intervalSeconds ?? 1;
  if (!(interval > 0 && interval <= 3600)) {
    throw new Error(`invalid sampling interval ${String(interval)}: expected seconds from 0.001 to 3600`);
  }
  const { document } = await loadRunbook('host-sampler');
  const directory = await mkdtemp(join(tmpdir(), 'conntrack-responder-sampler-'));
  const script = join(directory, 'host-sampler');
  await writeFile(script, `${document.mainSteps[0].inputs.runCommand.join('\n')}\n`, { mode: 0o700 });
  let child: ChildProcess;
  try {
    child = spawn('ip', ['netns', 'exec', options.netns, 'bash', script, 'run'], {
      env: {
        PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
        CONNTRACK_SAMPLER_INTERVAL: String(interval),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
  let stderr = '';
  let stopping = false;
  child.stderr?.on('data', (chunk: Buffer) => {
    if (stderr.length < 8192) stderr += chunk.toString('utf8');
  });
  const lines = createInterface({ input: child.stdout as NonNullable<typeof child.stdout> });
  lines.on('line', (line) => options.onLine(line, Date.now()));
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code) => {
      if (!stopping) options.onExit?.(code, stderr);
      resolve();
    });
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', (error) => reject(new Error(`cannot start the host sampler: ${error.message}`)));
  }).catch(async (error: unknown) => {
    await rm(directory, { recursive: true, force: true });
    throw error;
  });
  return {
    pid: child.pid ?? -1,
    stop: async () => {
      stopping = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(timer);
      }
      lines.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
