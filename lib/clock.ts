/** Injected time and randomness (ARCHITECTURE.md idea 5): real ones for the daemon, fakes for tests. */
import { randomBytes } from "./crypto/sodium.ts";

/** Wall-clock seconds (float, like Python's time.time()) and a monotonic millisecond clock. */
export interface Clock {
  /** Seconds since the Unix epoch, with fractions. */
  now(): number;
  /** Monotonic milliseconds (for timeouts, rate limits, grace windows). */
  monotonicMs(): number;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now() / 1000,
  monotonicMs: () => performance.now(),
};

/** A clock tests move by hand. */
export class FakeClock implements Clock {
  #now: number;
  #mono = 0;
  constructor(startSeconds = 1736812800) {
    this.#now = startSeconds;
  }
  now(): number {
    return this.#now;
  }
  monotonicMs(): number {
    return this.#mono;
  }
  /** Move both clocks forward by `seconds`. */
  advance(seconds: number): void {
    this.#now += seconds;
    this.#mono += seconds * 1000;
  }
  /** Set the wall clock (the monotonic clock is unaffected). */
  set(seconds: number): void {
    this.#now = seconds;
  }
}

/** Source of random bytes. */
export interface Rng {
  bytes(n: number): Uint8Array;
}

/** libsodium's CSPRNG. */
export const systemRng: Rng = { bytes: randomBytes };

/** Replays recorded byte strings in order (golden-vector tests); throws when exhausted or mis-sized. */
export class ScriptedRng implements Rng {
  #queue: Uint8Array[];
  constructor(draws: Uint8Array[]) {
    this.#queue = [...draws];
  }
  bytes(n: number): Uint8Array {
    const next = this.#queue.shift();
    if (!next) throw new Error(`ScriptedRng exhausted (wanted ${n} bytes)`);
    if (next.length !== n) {
      throw new Error(`ScriptedRng: next draw has ${next.length} bytes, wanted ${n}`);
    }
    return next;
  }
  get remaining(): number {
    return this.#queue.length;
  }
}
