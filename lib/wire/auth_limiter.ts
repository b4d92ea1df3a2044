/**
 * Brute-force protection for the mesh passphrase (PROTOCOL-0.9 §5.1, §13,
 * §18.11): an address is blocked while it has ≥ 3 recorded auth failures in
 * the last 300 s, and a successful handshake clears its history. Also the
 * §5.1 connection admission checks (global and per-IP token buckets, then the
 * block), in the reference's order. Time comes from an injected Clock.
 */
import type { Clock } from "../clock.ts";
import { KeyedTokenBuckets, TokenBucket } from "./token_bucket.ts";

/** Options of `AuthFailureLimiter`. */
export interface AuthLimiterOptions {
  clock: Clock;
  /** Failures within the window that block an address (default 3). */
  maxFailures?: number;
  /** Sliding window in seconds (default 300). */
  windowSeconds?: number;
  /** Block lasts this long after the latest failure (default 300 s). */
  blockSeconds?: number;
  /** Cap on tracked addresses; the stalest are forgotten first (default 10 000). */
  maxAddresses?: number;
}

/** Per-address auth-failure tracker. */
export class AuthFailureLimiter {
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly blockMs: number;
  readonly #clock: Clock;
  readonly #maxAddresses: number;
  /** address → failure times (monotonic ms, ascending); Map order = least recently failed first. */
  readonly #failures = new Map<string, number[]>();

  /** A limiter with the reference's defaults (3 failures / 300 s, blocked 300 s). */
  constructor(opts: AuthLimiterOptions) {
    this.#clock = opts.clock;
    this.maxFailures = opts.maxFailures ?? 3;
    this.windowMs = (opts.windowSeconds ?? 300) * 1000;
    this.blockMs = (opts.blockSeconds ?? 300) * 1000;
    this.#maxAddresses = opts.maxAddresses ?? 10_000;
  }

  #recent(address: string, now: number): number[] {
    const list = (this.#failures.get(address) ?? []).filter((t) => now - t < this.windowMs);
    if (list.length === 0) this.#failures.delete(address);
    else this.#failures.set(address, list);
    return list;
  }

  /** True while `address` has ≥ maxFailures failures in the window and the latest is < blockMs old. */
  isBlocked(address: string): boolean {
    const now = this.#clock.monotonicMs();
    const recent = this.#recent(address, now);
    return recent.length >= this.maxFailures && now - recent[recent.length - 1] < this.blockMs;
  }

  /** Record one failure; returns the failures now counted in the window (for the audit log). */
  recordFailure(address: string): number {
    const now = this.#clock.monotonicMs();
    const recent = this.#recent(address, now);
    recent.push(now);
    this.#failures.delete(address);
    this.#failures.set(address, recent);
    while (this.#failures.size > this.#maxAddresses) {
      const stalest = this.#failures.keys().next().value;
      if (stalest === undefined) break;
      this.#failures.delete(stalest);
    }
    return recent.length;
  }

  /** Failures of `address` within the window. */
  failureCount(address: string): number {
    return this.#recent(address, this.#clock.monotonicMs()).length;
  }

  /** Forget `address`'s failures (after a successful handshake); true when there were any. */
  clear(address: string): boolean {
    return this.#failures.delete(address);
  }
}

/** Result of an admission check. */
export type AdmissionVerdict = "ok" | "global-rate" | "ip-rate" | "auth-blocked";

/** Options of `ConnectionAdmission` (defaults are the reference's). */
export interface AdmissionOptions {
  clock: Clock;
  /** Shared with the handshake so recorded failures block new connections. */
  authLimiter: AuthFailureLimiter;
  globalRate?: number;
  globalBurst?: number;
  perIpRate?: number;
  perIpBurst?: number;
}

/** The §5.1 admission checks for inbound connections, in order. */
export class ConnectionAdmission {
  readonly #global: TokenBucket;
  readonly #perIp: KeyedTokenBuckets;
  readonly #auth: AuthFailureLimiter;

  /** Global bucket 0.167/s burst 10, per-IP 0.5/s burst 5, then the auth block. */
  constructor(opts: AdmissionOptions) {
    this.#global = new TokenBucket(opts.globalRate ?? 0.167, opts.globalBurst ?? 10, opts.clock);
    this.#perIp = new KeyedTokenBuckets(opts.perIpRate ?? 0.5, opts.perIpBurst ?? 5, opts.clock);
    this.#auth = opts.authLimiter;
  }

  /** Check one new connection from `ip` (consumes bucket tokens like the reference). */
  check(ip: string): AdmissionVerdict {
    if (!this.#global.tryConsume()) return "global-rate";
    if (!this.#perIp.tryConsume(ip)) return "ip-rate";
    if (this.#auth.isBlocked(ip)) return "auth-blocked";
    return "ok";
  }
}
