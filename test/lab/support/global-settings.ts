import { writeFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Global conntrack settings other than nf_conntrack_max that lab tests change (through the
 * raise-limits document), saved and restored the way `withConntrackMax` does it: the original
 * value is written to /run first, restored in `finally`, on process exit, and by the next run if
 * this one died before either.
 */
const BUCKETS_PATH = '/proc/sys/net/netfilter/nf_conntrack_buckets';
const SAVED_BUCKETS_PATH = '/run/conntrack-responder-lab/saved-nf_conntrack_buckets';

export async function readConntrackBuckets(): Promise<number> {
  return Number.parseInt((await readFile(BUCKETS_PATH, 'utf8')).trim(), 10);
}

/** Puts back nf_conntrack_buckets saved by a run that died before its `finally`. */
export async function restoreCrashedConntrackBuckets(): Promise<void> {
  const saved = await readFile(SAVED_BUCKETS_PATH, 'utf8').catch(() => null);
  if (saved === null) return;
  await writeFile(BUCKETS_PATH, saved.trim());
  await rm(SAVED_BUCKETS_PATH, { force: true });
}

/** Runs `body` and always puts the global hash size back to what it was before. */
export async function withConntrackBucketsRestored<T>(body: () => Promise<T>): Promise<T> {
  await restoreCrashedConntrackBuckets();
  const original = await readConntrackBuckets();
  await mkdir(dirname(SAVED_BUCKETS_PATH), { recursive: true });
  await writeFile(SAVED_BUCKETS_PATH, String(original));
  const restore = () => {
    try {
      writeFileSync(BUCKETS_PATH, String(original));
    } catch {}
  };
  process.once('exit', restore);
  try {
    return await body();
  } finally {
    if ((await readConntrackBuckets()) !== original) await writeFile(BUCKETS_PATH, String(original));
    await rm(SAVED_BUCKETS_PATH, { force: true });
    process.removeListener('exit', restore);
  }
}
