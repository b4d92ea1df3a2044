/**
 * Token buckets on an injected clock (PROTOCOL-0.9 §5.1, §13): a bucket starts
 * full with `burst` tokens and refills at `rate` tokens per second, never above
 * `burst`. Used for connection admission and per-peer message limits.
 */
import type { Clock } from "../clock.ts";

/** One token bucket. */
export class TokenBucket {
  readonly rate: number;
  readonly burst: number;
  readonly #clock: Clock;
  #tokens: number;
  #last: number;

  /** A full bucket of `burst` tokens refilling at `rate` per second. */
  constructor(rate: number, burst: number, clock: Clock) {
    if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError("rate must be > 0");
    if (!(burst >= 1) || !Number.isFinite(burst)) throw new RangeError("burst must be ≥ 1");
    this.rate = rate;
    this.burst = burst;
    this.#clock = clock;
    this.#tokens = burst;
    this.#last = clock.monotonicMs();
  }

  #refill(): void {
    const now = this.#clock.monotonicMs();
    const elapsed = Math.max(0, now - this.#last) / 1000;
    this.#last = now;
    this.#tokens = Math.min(this.burst, this.#tokens + elapsed * this.rate);
  }

  /** Tokens available now. */
  get tokens(): number {
    this.#refill();
    return this.#tokens;
  }

  /** Take `cost` tokens if available; returns whether it did. */
  tryConsume(cost = 1): boolean {
    this.#refill();
    if (this.#tokens < cost) return false;
    this.#tokens -= cost;
    return true;
  }

  /** Milliseconds until `cost` tokens are available (0 when they are now). */
  waitMs(cost = 1): number {
    this.#refill();
    return this.#tokens >= cost ? 0 : ((cost - this.#tokens) / this.rate) * 1000;
  }

  /** True when the bucket is full again (an idle key can be forgotten). */
  isFull(): boolean {
    return this.tokens >= this.burst;
  }
}

/** One bucket per key (e.g. per IP), created full on first use, with a cap on tracked keys. */
export class KeyedTokenBuckets {
  readonly rate: number;
  readonly burst: number;
  readonly #clock: Clock;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, TokenBucket>();

  /** Buckets of `burst` refilling at `rate`/s; at most `maxKeys` keys are tracked. */
  constructor(rate: number, burst: number, clock: Clock, maxKeys = 10_000) {
    new TokenBucket(rate, burst, clock); // validates the parameters
    this.rate = rate;
    this.burst = burst;
    this.#clock = clock;
    this.#maxKeys = maxKeys;
  }

  /** Take `cost` tokens from `key`'s bucket if available. */
  tryConsume(key: string, cost = 1): boolean {
    let b = this.#buckets.get(key);
    if (!b) {
      if (this.#buckets.size >= this.#maxKeys) this.#evict();
      b = new TokenBucket(this.rate, this.burst, this.#clock);
      this.#buckets.set(key, b);
    }
    return b.tryConsume(cost);
  }

  /** Number of keys tracked. */
  get size(): number {
    return this.#buckets.size;
  }

  /** Forget full buckets (they behave like new ones); if none is full, drop the oldest key. */
  #evict(): void {
    for (const [k, b] of this.#buckets) if (b.isFull()) this.#buckets.delete(k);
    if (this.#buckets.size >= this.#maxKeys) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest !== undefined) this.#buckets.delete(oldest);
    }
  }
}
