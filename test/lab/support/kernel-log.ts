import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { execFile } from '../../../functions/local/exec.js';

/**
 * Markers in the kernel log, so a test reads exactly what was logged between two of its own
 * points. Times cannot do this: the ring buffer still holds lines of earlier tests (naming the same
 * netns inode, which the kernel reuses once a namespace is freed), dmesg's wall-clock times are
 * derived from the boot time and drift from Date.now(), and journald stamps everything it finds at
 * its start with its start time.
 */

/** Writes a unique line of the test's own to the kernel log and returns it. */
export async function markKernelLog(label: string): Promise<string> {
  const marker = `conntrack-responder ${label}: mark ${randomUUID()}`;
  await writeFile('/dev/kmsg', `${marker}\n`);
  return marker;
}

/**
 * The dmesg lines logged after `from` (and before `to`, when given), in dmesg's own format with
 * `args`. Fails when a marker is no longer in the ring buffer rather than reading too much.
 */
export async function kernelLinesBetween(
  from: string,
  to?: string,
  args: readonly string[] = [],
): Promise<string[]> {
  const { stdout } = await execFile('dmesg', [...args]);
  const lines = stdout.split('\n');
  const start = lines.findIndex((line) => line.includes(from));
  if (start === -1) throw new Error(`the marker "${from}" is no longer in the kernel ring buffer`);
  const end = to === undefined ? lines.length : lines.findIndex((line) => line.includes(to));
  if (end === -1) throw new Error(`the marker "${to}" is not in the kernel ring buffer`);
  return lines.slice(start + 1, end);
}
