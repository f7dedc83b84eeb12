/** Bounded exponential backoff for attestation attempts. */
export interface RetryPolicy {
  /** Delay after the first failure, ms. */
  readonly baseMs: number;
  /** Longest delay between attempts, ms. */
  readonly maxMs: number;
  /** After this many failed attempts the output is marked failed for good. */
  readonly maxAttempts: number;
}

export const DEFAULT_RETRY: RetryPolicy = { baseMs: 2_000, maxMs: 600_000, maxAttempts: 12 };

/**
 * When to try again after the `attempts`-th failure (counting this one):
 * baseMs * 2^(attempts-1), capped at maxMs; terminal when the error is permanent
 * or the attempts are used up.
 */
export function nextAttempt(
  attempts: number,
  now: number,
  policy: RetryPolicy,
  permanent = false,
): { terminal: boolean; nextAttemptAt: number } {
  const terminal = permanent || attempts >= policy.maxAttempts;
  const delay = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempts - 1));
  return { terminal, nextAttemptAt: terminal ? now : now + delay };
}
