/**
 * Message-id dedup cache (PROTOCOL-0.9 §6.4 step 7, §18.1): each `(source, msg_id)` is
 * delivered once within a window (300 s). Bounded like the reference: at most 128 sources
 * (least recently used evicted) × 1024 ids each (oldest evicted). Time is passed in as
 * monotonic milliseconds; nothing here reads a clock. `RecentIds` is that bounded window;
 * the relay's transport-aware dedup (routing/dedup.ts) keeps the same one.
 */

/** Bounds of a dedup cache. */
export interface DedupOptions {
  /** How long an id is remembered, in milliseconds (default 300,000). */
  ttlMs?: number;
  /** Most sources tracked (default 128). */
  maxSources?: number;
  /** Most ids remembered per source (default 1024). */
  maxIdsPerSource?: number;
}

/** The first sighting of an id: when, and what was recorded with it. */
export interface Sighting<V> {
  atMs: number;
  value: V;
}

/**
 * Recently seen `(source, msg_id)` pairs, each with a value: at most `maxSources` sources
 * (least recently used evicted) × `maxIdsPerSource` ids each (oldest evicted), for `ttlMs`.
 */
export class RecentIds<V> {
  readonly ttlMs: number;
  readonly maxSources: number;
  readonly maxIdsPerSource: number;
  // source → (msg_id → first sighting); both maps iterate oldest first.
  readonly #sources = new Map<string, Map<string, Sighting<V>>>();

  constructor(opts: DedupOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 300_000;
    this.maxSources = opts.maxSources ?? 128;
    this.maxIdsPerSource = opts.maxIdsPerSource ?? 1024;
    if (!(this.ttlMs > 0 && this.maxSources > 0 && this.maxIdsPerSource > 0)) {
      throw new RangeError("dedup bounds must be positive");
    }
  }

  /**
   * Test and record atomically: the earlier sighting of `(source, msgId)` while it is
   * remembered (nothing is recorded), else null once this one is recorded with `value`.
   */
  protected sight(source: string, msgId: string, value: V, nowMs: number): Sighting<V> | null {
    let ids = this.#sources.get(source);
    if (ids) {
      this.#sources.delete(source); // move to most recently used
      this.#sources.set(source, ids);
      const seen = ids.get(msgId);
      if (seen !== undefined) {
        if (nowMs < seen.atMs + this.ttlMs) return seen;
        ids.delete(msgId);
      }
    } else {
      ids = new Map();
      this.#sources.set(source, ids);
      if (this.#sources.size > this.maxSources) {
        this.#sources.delete(this.#sources.keys().next().value!);
      }
    }
    this.#expire(ids, nowMs);
    ids.set(msgId, { atMs: nowMs, value });
    if (ids.size > this.maxIdsPerSource) ids.delete(ids.keys().next().value!);
    return null;
  }

  /** True when `(source, msgId)` is remembered and not expired (does not record anything). */
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

  #expire(ids: Map<string, Sighting<V>>, nowMs: number): void {
    // Entries are inserted in time order with one TTL, so expired ones are at the front.
    for (const [id, seen] of ids) {
      if (seen.atMs + this.ttlMs > nowMs) break;
      ids.delete(id);
    }
  }
}

/** Remembers recently delivered `(source, msg_id)` pairs. */
export class DedupCache extends RecentIds<undefined> {
  /** True when `(source, msgId)` was seen within the window; otherwise records it and returns false. */
  checkAndAdd(source: string, msgId: string, nowMs: number): boolean {
    return this.sight(source, msgId, undefined, nowMs) !== null;
  }
}
