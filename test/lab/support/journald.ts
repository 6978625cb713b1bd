import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFile } from '../../../functions/local/exec.js';

/**
 * A journald of the test's own: systemd-journald in a private mount namespace (its /run a fresh
 * tmpfs, its configuration bind-mounted over the host's inside that namespace only), reading the
 * real kernel log from /dev/kmsg. Nothing is forwarded anywhere (console, wall, syslog, kmsg) and
 * the journal lives in memory; stopping the process removes the namespace with it.
 */

const JOURNALD = '/lib/systemd/systemd-journald';
const TOOLS = ['journalctl', 'unshare', 'nsenter', 'logger'];

export function journaldMissing(): string[] {
  const missing: string[] = [];
  try {
    execFileSync('test', ['-x', JOURNALD]);
  } catch {
    missing.push(`${JOURNALD} (Debian package systemd)`);
  }
  for (const tool of TOOLS) {
    try {
      execFileSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { stdio: 'ignore' });
    } catch {
      missing.push(tool);
    }
  }
  return missing;
}

const CONFIG = `[Journal]
Storage=volatile
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
RateLimitIntervalSec=0
`;

// Runs as root in the new mount namespace: exec keeps journald's pid the namespace's anchor.
const START = `set -eu
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/systemd/journal
mount --bind "$1" /etc/systemd/journald.conf
exec ${JOURNALD}`;

export interface LabJournal {
  /** Runs a program inside journald's mount namespace (journalctl, logger). */
  run(program: string, args: readonly string[]): Promise<string>;
  /**
   * Waits until journald has stored an entry whose message contains `text` (from the source
   * `transport`, when given) and returns its cursor. journald reads /dev/kmsg and its sockets
   * asynchronously: a test that reads the journal at a fixed delay after logging races it.
   */
  cursorOf(text: string, options?: { transport?: string; timeoutMs?: number }): Promise<string>;
  stop(): Promise<void>;
}

/** The newest entries searched for an awaited message: far more than a test logs after its marker. */
const AWAITED_ENTRY_WINDOW = 5000;

export async function startLabJournal(): Promise<LabJournal> {
  const dir = await mkdtemp(join(tmpdir(), 'lab-journald-'));
  const config = join(dir, 'journald.conf');
  await writeFile(config, CONFIG);
  const child: ChildProcess = spawn(
    'unshare',
    ['-m', '--propagation', 'private', 'sh', '-c', START, 'sh', config],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('close', resolve));
    }
    await rm(dir, { recursive: true, force: true });
  };
  const run = async (program: string, args: readonly string[]) => {
    const pid = String(child.pid);
    return (await execFile('nsenter', ['--target', pid, '--mount', '--', program, ...args])).stdout;
  };
  // Ready once journalctl inside the namespace can read the journal.
  for (let attempt = 0; ; attempt++) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`systemd-journald ended (exit ${child.exitCode}): ${stderr.trim()}`);
    }
    try {
      await run('journalctl', ['-n', '1', '--no-pager']);
      break;
    } catch (error) {
      if (attempt > 50) {
        await stop();
        throw error;
      }
      await sleep(100);
    }
  }
  const cursorOf: LabJournal['cursorOf'] = async (text, options = {}) => {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const output = await run('journalctl', [
        '--no-pager',
        '-o',
        'json',
        '-n',
        String(AWAITED_ENTRY_WINDOW),
      ]);
      for (const line of output.split('\n')) {
        if (!line.includes(text)) continue;
        const entry = JSON.parse(line) as { MESSAGE?: unknown; _TRANSPORT?: unknown; __CURSOR?: unknown };
        if (typeof entry.MESSAGE !== 'string' || !entry.MESSAGE.includes(text)) continue;
        if (options.transport !== undefined && entry._TRANSPORT !== options.transport) continue;
        if (typeof entry.__CURSOR === 'string') return entry.__CURSOR;
      }
      if (Date.now() > deadline) throw new Error(`journald did not store "${text}" within ${timeoutMs} ms`);
      await sleep(200);
    }
  };
  return { run, cursorOf, stop };
}
