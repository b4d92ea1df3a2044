/**
 * Reconnect backoff as the reference (PROTOCOL-0.9 §12): after n failed attempts wait
 * min(base·2^n, cap) seconds plus U(0, jitter) seconds so restarted meshes do not dial in lockstep.
 */

/** Backoff parameters in seconds. */
export interface BackoffOptions {
  baseS?: number;
  capS?: number;
  jitterS?: number;
}

/** Seconds to wait before attempt `failures + 1` (`random` in [0, 1)). */
export function backoffSeconds(failures: number, random: number, o: BackoffOptions = {}): number {
  const base = o.baseS ?? 5, cap = o.capS ?? 300, jitter = o.jitterS ?? 2;
  const exp = Math.min(cap, base * 2 ** Math.min(failures, 30));
  return exp + random * jitter;
}
