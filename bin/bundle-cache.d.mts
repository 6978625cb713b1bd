/** Imports the cached esbuild bundle of `entry` (relative to `root`), building it when stale; null when it cannot. */
export function importBundled(
  root: string,
  entry: string,
  name: string,
): Promise<Record<string, unknown> | null>;
