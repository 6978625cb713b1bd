/**
 * Remediation slots, purely: at most `max` incidents change hosts at once, fleet-wide. The slots
 * live in one item (`holders`: incident id → lease end, epoch seconds, plus a `version`); the
 * adapter reads it, asks `decideAcquire`, and writes the answer back with a condition on the
 * version it read, so two incidents can never both take the last slot. A lease ends a slot that a
 * dead workflow never gave back.
 */

export type Holders = Readonly<Record<string, number>>;

export type AcquireDecision =
  /** This incident already holds a slot (a retried step): nothing to write. */
  | { readonly action: 'held'; readonly leaseEndsAt: number }
  /** Take a slot, dropping the expired leases on the way. */
  | { readonly action: 'acquire'; readonly expired: readonly string[]; readonly leaseEndsAt: number }
  /** Every slot is held by a live lease. */
  | { readonly action: 'busy'; readonly holders: readonly string[] };

export function liveHolders(holders: Holders, nowSeconds: number): string[] {
  return Object.entries(holders)
    .filter(([, leaseEndsAt]) => leaseEndsAt > nowSeconds)
    .map(([id]) => id)
    .sort();
}

export function decideAcquire(
  holders: Holders,
  holder: string,
  nowSeconds: number,
  max: number,
  leaseSeconds: number,
): AcquireDecision {
  const own = holders[holder];
  if (own !== undefined && own > nowSeconds) return { action: 'held', leaseEndsAt: own };
  const live = liveHolders(holders, nowSeconds).filter((id) => id !== holder);
  if (live.length >= max) return { action: 'busy', holders: live };
  const expired = Object.entries(holders)
    .filter(([id, leaseEndsAt]) => leaseEndsAt <= nowSeconds && id !== holder)
    .map(([id]) => id)
    .sort();
  return { action: 'acquire', expired, leaseEndsAt: nowSeconds + leaseSeconds };
}
