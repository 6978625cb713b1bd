/**
 * The Theil–Sen estimator: the slope of a line through points is the median of the slopes of every
 * pair of points, its intercept the median of y − slope·x. Pure.
 *
 * Why this fit for a conntrack table: the count is a sawtooth (the kernel's garbage collector
 * removes expired entries in batches), bursts come and go, and a sample can be forged; a least-
 * squares line follows every one of those, while the median of pairwise slopes ignores up to about
 * 29 % of wild points (its breakdown point) and needs no assumption about the noise. It is exact
 * and deterministic (no iteration, no tuning), and at most 64 samples make 2,016 pairs: nothing.
 */

export interface Point {
  readonly x: number;
  readonly y: number;
}

export interface TheilSenFit {
  /** y per unit of x. */
  readonly slope: number;
  readonly intercept: number;
  /** Share of pairs (with distinct x) whose slope is positive: 1 for a strictly rising series. */
  readonly risingShare: number;
  readonly pairs: number;
}

function median(values: number[]): number {
  values.sort((a, b) => a - b);
  const middle = values.length >> 1;
  return values.length % 2 === 1
    ? (values[middle] as number)
    : ((values[middle - 1] as number) + (values[middle] as number)) / 2;
}

/** null when fewer than two points have distinct x. */
export function theilSen(points: readonly Point[]): TheilSenFit | null {
  const slopes: number[] = [];
  let rising = 0;
  for (let i = 0; i < points.length; i++) {
    const a = points[i] as Point;
    for (let j = i + 1; j < points.length; j++) {
      const b = points[j] as Point;
      if (b.x === a.x) continue;
      const slope = (b.y - a.y) / (b.x - a.x);
      slopes.push(slope);
      if (slope > 0) rising++;
    }
  }
  if (slopes.length === 0) return null;
  const pairs = slopes.length;
  const slope = median(slopes);
  const intercept = median(points.map((point) => point.y - slope * point.x));
  return { slope, intercept, risingShare: rising / pairs, pairs };
}
