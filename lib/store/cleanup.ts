/**
 * Hourly store cleanup (PROTOCOL-0.9 §11.6): queue entries older than 24 h (undelivered by
 * created_at, delivered by delivered_at) and history older than 30 days are deleted.
 */
import type { StoreContext } from "./context.ts";

/** Age after which queue entries are removed (seconds). */
export const PENDING_MAX_AGE_S = 86_400;
/** Age after which history is pruned (seconds). */
export const HISTORY_MAX_AGE_S = 30 * 86_400;
/** How often the daemon should call `runCleanup` (seconds). */
export const CLEANUP_INTERVAL_S = 3_600;

/** Ages used by a cleanup run (defaults above). */
export interface CleanupOptions {
  pendingMaxAgeS?: number;
  historyMaxAgeS?: number;
}

/** What a cleanup run removed. */
export interface CleanupReport {
  /** Undelivered queue entries that expired (never delivered: count them as dropped). */
  expiredUndelivered: number;
  /** Delivered queue entries whose tombstones aged out. */
  removedDelivered: number;
  /** History rows pruned. */
  prunedHistory: number;
}

/** Delete expired rows in one transaction, relative to `now` (seconds; default the store clock). */
export function runCleanup(
  ctx: StoreContext,
  now: number = ctx.clock.now(),
  opts: CleanupOptions = {},
): CleanupReport {
  const pendingCutoff = now - (opts.pendingMaxAgeS ?? PENDING_MAX_AGE_S);
  const historyCutoff = now - (opts.historyMaxAgeS ?? HISTORY_MAX_AGE_S);
  return ctx.tx(() => ({
    expiredUndelivered: ctx.run(
      "DELETE FROM pending_messages WHERE created_at < ? AND delivered = 0",
      pendingCutoff,
    ),
    removedDelivered: ctx.run(
      "DELETE FROM pending_messages WHERE delivered = 1 AND delivered_at < ?",
      pendingCutoff,
    ),
    prunedHistory: ctx.run("DELETE FROM messages WHERE timestamp < ?", historyCutoff),
  }));
}
