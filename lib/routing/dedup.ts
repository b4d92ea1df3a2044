/**
 * Relay dedup of `(source, msg_id)` with the transport each id was first seen on (PROTOCOL-0.9
 * §8.3, `mesh.py` `DedupCache.check_and_add_with_transport`): a second copy is dropped, and a copy
 * arriving over a different transport than the first is reported so the caller can audit
 * `MSG_REPLAY_CROSS_TRANSPORT`. Bounded like the reference: 128 sources (least recently used
 * evicted) × 1024 ids each (oldest evicted), 300 s: the bounded window of wire/dedup.ts. Time is
 * passed in as monotonic milliseconds.
 */
import { type DedupOptions, RecentIds } from "../wire/dedup.ts";

/** Bounds of the cache (default 300,000 ms, 128 sources, 1024 ids each). */
export type TransportDedupOptions = DedupOptions;

/** A first sighting. */
export interface DedupFresh {
  duplicate: false;
}

/** A repeated `(source, msg_id)`. */
export interface DedupDuplicate {
  duplicate: true;
  /** Transport of the first copy. */
  originalTransport: string;
  /** Transport of this copy. */
  thisTransport: string;
  /** The two differ (audit `MSG_REPLAY_CROSS_TRANSPORT`). */
  crossTransport: boolean;
  /** Milliseconds since the first copy. */
  timeDeltaMs: number;
}

/** Remembers relayed `(source, msg_id)` pairs and the transport they came over. */
export class TransportDedup extends RecentIds<string> {
  /** Test and record atomically: a fresh id is remembered, a repeated one is described. */
  checkAndAdd(
    source: string,
    msgId: string,
    transport: string,
    nowMs: number,
  ): DedupFresh | DedupDuplicate {
    const seen = this.sight(source, msgId, transport, nowMs);
    if (seen === null) return { duplicate: false };
    return {
      duplicate: true,
      originalTransport: seen.value,
      thisTransport: transport,
      crossTransport: seen.value !== transport,
      timeDeltaMs: Math.max(0, nowMs - seen.atMs),
    };
  }
}
