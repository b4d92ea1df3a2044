/**
 * Per-next-hop circuit breaker (PROTOCOL-0.9 §8.1, `mesh.py` `CircuitBreaker`): after
 * `failureThreshold` consecutive send failures within `windowMs` (3 within 60 s) the hop is
 * skipped for `cooldownMs` (60 s). Ours: after the cooldown the breaker is half-open — traffic
 * flows again, one success closes it, one failure opens it again at once (the reference closes
 * fully and needs three new failures). Time is monotonic milliseconds passed in.
 */
import { type MeshEvent, meshEvent } from "./events.ts";

/** Breaker states. */
export type BreakerState = "closed" | "open" | "half-open";

/** Tunables. */
export interface CircuitBreakerOptions {
  /** Consecutive failures that trip the breaker (default 3). */
  failureThreshold?: number;
  /** Failures older than this no longer count (default 60,000 ms). */
  windowMs?: number;
  /** How long a tripped breaker stays open (default 60,000 ms). */
  cooldownMs?: number;
  /** Most hops tracked (default 4096; the oldest entry is forgotten). */
  maxPeers?: number;
}

interface Entry {
  failures: number[];
  openedAt: number | null;
  halfOpen: boolean;
}

/** Circuit breakers for all next hops of one node. */
export class CircuitBreaker {
  readonly failureThreshold: number;
  readonly windowMs: number;
  readonly cooldownMs: number;
  readonly #maxPeers: number;
  readonly #peers = new Map<string, Entry>();

  constructor(opts: CircuitBreakerOptions = {}) {
    this.failureThreshold = opts.failureThreshold ?? 3;
    this.windowMs = opts.windowMs ?? 60_000;
    this.cooldownMs = opts.cooldownMs ?? 60_000;
    this.#maxPeers = opts.maxPeers ?? 4096;
    if (!(this.failureThreshold >= 1 && this.windowMs > 0 && this.cooldownMs >= 0)) {
      throw new RangeError("invalid circuit breaker bounds");
    }
  }

  /** The state of `peer`'s breaker at `nowMs` (an expired cooldown turns open into half-open). */
  state(peer: string, nowMs: number): BreakerState {
    const e = this.#peers.get(peer);
    if (!e) return "closed";
    if (e.openedAt !== null) {
      if (nowMs - e.openedAt < this.cooldownMs) return "open";
      e.openedAt = null;
      e.failures = [];
      e.halfOpen = true;
    }
    return e.halfOpen ? "half-open" : "closed";
  }

  /** Whether traffic may be sent to `peer` (closed or half-open). */
  allows(peer: string, nowMs: number): boolean {
    return this.state(peer, nowMs) !== "open";
  }

  /** A send to `peer` succeeded: the breaker closes and the failure count resets. */
  recordSuccess(peer: string): void {
    this.#peers.delete(peer);
  }

  /** A send to `peer` failed; returns `CIRCUIT_BREAKER_TRIPPED {peer}` when this opens it. */
  recordFailure(peer: string, nowMs: number): MeshEvent[] {
    const state = this.state(peer, nowMs);
    if (state === "open") return [];
    let e = this.#peers.get(peer);
    if (!e) {
      e = { failures: [], openedAt: null, halfOpen: false };
      this.#peers.set(peer, e);
      if (this.#peers.size > this.#maxPeers) this.#peers.delete(this.#peers.keys().next().value!);
    }
    e.failures = e.failures.filter((t) => nowMs - t <= this.windowMs);
    e.failures.push(nowMs);
    if (state === "half-open" || e.failures.length >= this.failureThreshold) {
      e.openedAt = nowMs;
      e.halfOpen = false;
      e.failures = [];
      return [meshEvent("CIRCUIT_BREAKER_TRIPPED", { peer })];
    }
    return [];
  }

  /** Forget `peer` (e.g. when its link goes away for good). */
  forget(peer: string): void {
    this.#peers.delete(peer);
  }

  /** Hops with any breaker state recorded. */
  peers(): string[] {
    return [...this.#peers.keys()];
  }
}
