import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { DropAggregator } from '../../core/detect/aggregate.js';
import { classifyKernelMessage } from '../../core/detect/messages.js';
import { parseTextLine } from '../../core/detect/text-line.js';
import type { ForecastRecord } from '../../core/forecast/index.js';
import { namespaceInode } from '../netns.js';

/**
 * Follows the kernel log (`dmesg --follow`, wall-clock ISO times) and reports the drop lines of
 * one network namespace, which current kernels name by inode ("table full in netns N"). Every kernel
 * line goes, parsed once, into the detect core's `DropAggregator`, the code the Lambda runs on
 * CloudWatch events, which counts the drop lines and attributes the `net_ratelimit: N callbacks
 * suppressed` lines; this module only spots the namespace's first drop line (to time the report)
 * and keeps its lines.
 */

/**
 * What triggered a response: what `watch` hands to `respond`. The kernel's drop lines
 * (`table-full`, the default), or the host sampler's lines and the forecast made from them
 * (`near-full`, forecast-watch.ts).
 */
export interface LocalTrigger {
  readonly kind?: 'table-full' | 'near-full';
  /** For near-full: the forecast, as the detect function puts it on the incident. */
  readonly forecast?: ForecastRecord;
  readonly firstSeen: string | null;
  readonly lastSeen: string | null;
  readonly dropLines: number;
  readonly suppressed: number;
  readonly events: ReadonlyArray<{ readonly timestamp: number; readonly message: string }>;
}

export interface KernelLogFollower {
  /** Resolves with the first burst of drops of the namespace (lines seen within `gatherMs` of the first). */
  readonly drops: Promise<LocalTrigger & { readonly detectedAt: string }>;
  stop(): void;
}

export interface FollowOptions {
  readonly netns: string;
  /** After the first drop line, keep gathering for this long before reporting. @default 300 */
  readonly gatherMs?: number;
  /** The namespace's inode, when already known (default: read from /run/netns). */
  readonly inode?: string;
  /**
   * The program that prints the kernel log, the ring buffer first, then each new line (tests pass
   * their own). @default dmesg --follow
   */
  readonly command?: readonly [string, ...string[]];
  /** Where the start marker is written. @default /dev/kmsg */
  readonly kmsg?: string;
}

const DMESG: readonly [string, ...string[]] = ['dmesg', '--follow', '--time-format', 'iso'];

export async function followKernelLog(options: FollowOptions): Promise<KernelLogFollower> {
  const inode = options.inode ?? (await namespaceInode(options.netns));
  const [program, ...args] = options.command ?? DMESG;
  const child: ChildProcess = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const gatherMs = options.gatherMs ?? 300;
  const events: Array<{ timestamp: number; message: string }> = [];
  const aggregator = new DropAggregator();
  let detectedAt: string | null = null;
  let settle: (value: LocalTrigger & { detectedAt: string }) => void = () => {};
  let fail: (error: Error) => void = () => {};
  const drops = new Promise<LocalTrigger & { detectedAt: string }>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  // Failing before anyone awaits (during the start-up pause) must not count as unhandled.
  drops.catch(() => {});
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    const ours = aggregator.finish().groups.find((group) => group.netns === inode);
    settle({
      firstSeen: ours?.firstSeen ?? null,
      lastSeen: ours?.lastSeen ?? null,
      dropLines: ours?.dropLines ?? 0,
      suppressed: ours?.suppressed ?? 0,
      events,
      detectedAt: detectedAt ?? new Date().toISOString(),
    });
  };

  // The ring buffer holds lines of earlier runs, the same inode among them (the kernel reuses a
  // freed namespace's inode): only lines after a marker this follower writes to the kernel log
  // count. dmesg prints the buffer before following it, so the marker is seen whenever dmesg
  // starts; a fixed pause after `dmesg --follow-new` instead lost the first drops whenever dmesg
  // started late on a loaded machine.
  const marker = `conntrack-responder watch: following from here (${randomUUID()})`;
  let following = false;
  let markerSeen: () => void = () => {};
  const started = new Promise<void>((resolve) => {
    markerSeen = resolve;
  });
  const lines = createInterface({ input: child.stdout as NonNullable<typeof child.stdout> });
  lines.on('line', (line) => {
    if (done) return;
    if (!following) {
      if (line.includes(marker)) {
        following = true;
        markerSeen();
      }
      return;
    }
    const parsed = parseTextLine(line, { referenceTimeMs: Date.now() });
    if (parsed === null || !parsed.kernel) return;
    const message = classifyKernelMessage(parsed.message);
    aggregator.kernelLine(parsed.host ?? 'localhost', message, parsed.timeMs);
    if (message?.type !== 'drop' || message.netns !== inode) return;
    if (events.length < 20) events.push({ timestamp: parsed.timeMs ?? Date.now(), message: parsed.message });
    if (detectedAt === null) {
      detectedAt = new Date().toISOString();
      setTimeout(finish, gatherMs).unref();
    }
  });
  child.on('error', (error) =>
    fail(new Error(`cannot follow the kernel log with ${program}: ${error.message}`)),
  );
  child.on('exit', (code) => {
    if (!done)
      fail(new Error(`${program} ${args.join(' ')} ended (exit ${code}) before any drop: ${stderr.trim()}`));
  });
  const stopChild = () => {
    done = true;
    lines.close();
    child.kill('SIGTERM');
  };
  try {
    await writeFile(options.kmsg ?? '/dev/kmsg', `${marker}\n`);
    const timer = setTimeout(
      () => fail(new Error(`${program} did not print the start marker within 10 s`)),
      10_000,
    );
    await Promise.race([started, drops]);
    clearTimeout(timer);
  } catch (error) {
    stopChild();
    throw error;
  }
  return {
    drops,
    stop: stopChild,
  };
}
