/**
 * Replay guard (PROTOCOL-0.9 §6.6), matching the reference `ReplayGuard` decision for decision
 * and reason text for reason (vectors: replay.json):
 *
 * 1. timestamp first: `age = now − timestamp`; reject `age > maxAge` ("Frame too old") and
 *    `age < −maxFuture` ("Frame from future"); both bounds inclusive-accept; NaN passes;
 * 2. sequence: reject `seq ≤ 0`, `seq > 2^48` and `seq ≤ last accepted`; on accept the
 *    high-water mark moves to `seq`.
 *
 * The reference also keeps the last 1024 accepted sequences, but that window can never reject
 * anything the monotonic rule has not already rejected, so it is not stored here.
 * Time is passed in (seconds, float); nothing here reads a clock.
 */
import { pyFloatRepr } from "../json/py_float.ts";

/** `MAX_SEQUENCE = 1 << 48`: larger sequences are rejected. */
export const MAX_SEQUENCE = 2 ** 48;
/** The reference's freshness window: 30 s back. */
export const DEFAULT_MAX_AGE = 30.0;
/** The reference's tolerance for a peer clock running ahead: 5 s. */
export const DEFAULT_MAX_FUTURE = 5.0;
/** Ours: the widest clock-skew tolerance an operator may configure (§18.10). */
export const MAX_SKEW_TOLERANCE = 300.0;

/** Freshness bounds, in seconds. */
export interface ReplayOptions {
  /** Oldest accepted frame age (default 30; at most 300). */
  maxAge?: number;
  /** How far in the future a timestamp may be (default 5; at most 300). */
  maxFuture?: number;
}

/** Why a frame was refused: `clock-skew` (timestamp) or `replay` (sequence). */
export interface ReplayRejection {
  kind: "clock-skew" | "replay";
  /** The reference's exact reason text. */
  reason: string;
  /** For clock-skew: estimated peer clock offset in seconds (positive = peer ahead). */
  skewSeconds?: number;
}

/** Saved state of one epoch (used to keep checking old-key frames during a rekey). */
export interface ReplaySnapshot {
  readonly lastSeq: number;
}

/** Python `'%.1f' % x`: round half to even on the exact binary value; `inf`, `nan`. */
export function formatFixed1(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (Object.is(x, -0)) return "-0.0";
  const neg = x < 0;
  const a = Math.abs(x);
  let out: string;
  if (a >= 1e21) {
    out = BigInt(a).toString() + ".0"; // every double this large is an integer
  } else {
    out = a.toFixed(1); // exact except that ties go away from zero
    const exact = a.toFixed(100); // enough digits to see an exact tie at the 2nd decimal
    const dot = exact.indexOf(".");
    const tail = exact.slice(dot + 2);
    if (/^50*$/.test(tail)) {
      const digit = Number(exact[dot + 1]);
      if (digit % 2 === 0) out = exact.slice(0, dot + 2); // round half to even: truncate
    }
  }
  // Python keeps the sign of a value that rounds to zero ("-0.0").
  return neg ? "-" + out : out;
}

function checkBound(name: string, v: number): number {
  if (!(v >= 0 && v <= MAX_SKEW_TOLERANCE)) {
    throw new RangeError(`${name} must be between 0 and ${MAX_SKEW_TOLERANCE} seconds, got ${v}`);
  }
  return v;
}

/** Replay state of one peer for one key epoch. */
export class ReplayWindow {
  readonly maxAge: number;
  readonly maxFuture: number;
  #lastSeq: number;

  constructor(opts: ReplayOptions = {}, snapshot?: ReplaySnapshot) {
    this.maxAge = checkBound("maxAge", opts.maxAge ?? DEFAULT_MAX_AGE);
    this.maxFuture = checkBound("maxFuture", opts.maxFuture ?? DEFAULT_MAX_FUTURE);
    this.#lastSeq = snapshot?.lastSeq ?? 0;
  }

  /** The highest accepted sequence (0 before the first frame). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Decide on one frame; null = accepted (and recorded). `now` is wall-clock seconds. */
  check(sequence: number, timestamp: number, now: number): ReplayRejection | null {
    const age = now - timestamp;
    if (age > this.maxAge) {
      return {
        kind: "clock-skew",
        reason: `Frame too old: ${formatFixed1(age)}s (max ${pyFloatRepr(this.maxAge)}s)`,
        skewSeconds: -age,
      };
    }
    if (age < -this.maxFuture) {
      return {
        kind: "clock-skew",
        reason: `Frame from future: ${formatFixed1(-age)}s ahead`,
        skewSeconds: -age,
      };
    }
    if (sequence <= 0) {
      return {
        kind: "replay",
        reason: `Invalid sequence ${sequence} — post-handshake messages require seq > 0`,
      };
    }
    if (sequence > MAX_SEQUENCE) {
      return {
        kind: "replay",
        reason: `Sequence ${sequence} exceeds MAX_SEQUENCE ${MAX_SEQUENCE}`,
      };
    }
    if (sequence <= this.#lastSeq) {
      return { kind: "replay", reason: `Sequence ${sequence} <= last seen ${this.#lastSeq}` };
    }
    this.#lastSeq = sequence;
    return null;
  }

  /** Freeze the current state (for the previous epoch during a rekey). */
  snapshot(): ReplaySnapshot {
    return { lastSeq: this.#lastSeq };
  }

  /** A window that continues from a snapshot, with the same bounds as this one. */
  restore(snapshot: ReplaySnapshot): ReplayWindow {
    return new ReplayWindow({ maxAge: this.maxAge, maxFuture: this.maxFuture }, snapshot);
  }
}

/** Per-peer replay guard keyed by peer id, like the reference's `ReplayGuard`. */
export class ReplayGuard {
  readonly #opts: ReplayOptions;
  readonly #peers = new Map<string, ReplayWindow>();

  constructor(opts: ReplayOptions = {}) {
    this.#opts = opts;
    new ReplayWindow(opts); // validate the bounds now
  }

  #window(peer: string): ReplayWindow {
    let w = this.#peers.get(peer);
    if (!w) {
      w = new ReplayWindow(this.#opts);
      this.#peers.set(peer, w);
    }
    return w;
  }

  /** Decide on one frame from `peer`; null = accepted. */
  check(peer: string, sequence: number, timestamp: number, now: number): ReplayRejection | null {
    return this.#window(peer).check(sequence, timestamp, now);
  }

  /** Forget a peer (new session or rekey). */
  resetPeer(peer: string): void {
    this.#peers.delete(peer);
  }

  /** Copy a peer's state under another key (e.g. `peer#rekey1` for the retiring epoch). */
  snapshotPeer(peer: string, epochKey: string): void {
    const w = this.#window(peer);
    this.#peers.set(epochKey, w.restore(w.snapshot()));
  }
}
