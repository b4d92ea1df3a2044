/**
 * Relay dedup of `(source, msg_id)` with the transport each id was first seen on (PROTOCOL-0.9
 * §8.3, `mesh.py` `DedupCache.check_and_add_with_transport`): a second copy is dropped, and a copy
 * arriving over a different transport than the first is reported so the caller can audit
 * `MSG_REPLAY_CROSS_TRANSPORT`. Bounded like the reference: 128 sources (least recently used
 * evicted) × 1024 ids each (oldest evicted), 300 s. Time is passed in as monotonic milliseconds.
 */

/** Bounds of the cache. */
export interface TransportDedupOptions {
  /** How long an id is remembered (default 300,000 ms). */
  ttlMs?: number;
  /** Most sources tracked (default 128). */
  maxSources?: number;
  /** Most ids per source (default 1024). */
  maxIdsPerSource?: number;
}

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

interface Seen {
  atMs: number;
  transport: string;
}

/** Remembers relayed `(source, msg_id)` pairs and the transport they came over. */
export class TransportDedup {
  readonly ttlMs: number;
  readonly maxSources: number;
  readonly maxIdsPerSource: number;
  readonly #sources = new Map<string, Map<string, Seen>>();

  constructor(opts: TransportDedupOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 300_000;
    this.maxSources = opts.maxSources ?? 128;
    this.maxIdsPerSource = opts.maxIdsPerSource ?? 1024;
    if (!(this.ttlMs > 0 && this.maxSources > 0 && this.maxIdsPerSource > 0)) {
      throw new RangeError("dedup bounds must be positive");
    }
  }

  /** Test and record atomically: a fresh id is remembered, a repeated one is described. */
  checkAndAdd(
    source: string,
    msgId: string,
    transport: string,
    nowMs: number,
  ): DedupFresh | DedupDuplicate {
    let ids = this.#sources.get(source);
    if (ids) {
      this.#sources.delete(source); // most recently used last
      this.#sources.set(source, ids);
      const seen = ids.get(msgId);
      if (seen !== undefined) {
        if (nowMs < seen.atMs + this.ttlMs) {
          return {
            duplicate: true,
            originalTransport: seen.transport,
            thisTransport: transport,
            crossTransport: seen.transport !== transport,
            timeDeltaMs: Math.max(0, nowMs - seen.atMs),
          };
        }
        ids.delete(msgId);
      }
    } else {
      ids = new Map();
      this.#sources.set(source, ids);
      if (this.#sources.size > this.maxSources) {
        this.#sources.delete(this.#sources.keys().next().value!);
      }
    }
    for (const [id, seen] of ids) { // inserted in time order: expired ones are first
      if (seen.atMs + this.ttlMs > nowMs) break;
      ids.delete(id);
    }
    ids.set(msgId, { atMs: nowMs, transport });
    if (ids.size > this.maxIdsPerSource) ids.delete(ids.keys().next().value!);
    return { duplicate: false };
  }

  /** Whether `(source, msgId)` is remembered and not expired (records nothing). */
  has(source: string, msgId: string, nowMs: number): boolean {
    const seen = this.#sources.get(source)?.get(msgId);
    return seen !== undefined && nowMs < seen.atMs + this.ttlMs;
  }

  /** Number of sources tracked. */
  get sourceCount(): number {
    return this.#sources.size;
  }

  /** Forget everything. */
  clear(): void {
    this.#sources.clear();
  }
}
