/**
 * SSM Agent versions (`3.3.2746.0`): compared part by part as numbers, never as strings, because
 * `3.10.0.0` is newer than `3.9.0.0`.
 */

/** The numeric parts of a version, or null when it is not one (`local-executor`, ``, `3.x`). */
export function parseVersion(text: string): number[] | null {
  if (!/^[0-9]+(\.[0-9]+)*$/.test(text.trim())) return null;
  return text
    .trim()
    .split('.')
    .map((part) => Number(part));
}

/** Negative, zero or positive as `a` is older than, equal to or newer than `b`; missing parts count as 0. */
export function compareVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const difference = (a[i] ?? 0) - (b[i] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

/** True when `version` is at least `minimum`; false when it is older or not a version at all. */
export function isAtLeast(version: string, minimum: string): boolean {
  const parsed = parseVersion(version);
  const floor = parseVersion(minimum);
  if (floor === null) throw new Error(`'${minimum}' is not a version`);
  return parsed !== null && compareVersions(parsed, floor) >= 0;
}
