/**
 * A reusable HMAC-SHA256 with one fixed 32-byte key, for the audit chain.
 * It runs libsodium's `crypto_auth_hmacsha256` on the raw wasm module: the
 * keyed state (ipad/opad blocks) is computed once and copied per message, and
 * the message is hashed straight from the wasm heap, so one MAC costs three wasm
 * calls and no allocation. Results are identical to `hmacSha256(key, msg)`.
 */
import { sodium } from "../crypto/sodium.ts";
import { IronMeshError } from "../errors.ts";

/** The emscripten exports of libsodium this module uses. */
interface RawSodium {
  HEAPU8: Uint8Array;
  _malloc(n: number): number;
  _free(p: number): void;
  _crypto_auth_hmacsha256_statebytes(): number;
  _crypto_auth_hmacsha256_init(state: number, key: number, keyLen: number): number;
  _crypto_auth_hmacsha256_update(state: number, inp: number, lenLo: number, lenHi: number): number;
  _crypto_auth_hmacsha256_final(state: number, out: number): number;
}

const raw = (sodium as unknown as { libsodium: RawSodium }).libsodium;

const HEX = new TextEncoder().encode("0123456789abcdef");

/** HMAC-SHA256 under one fixed 32-byte key, optimized for many short messages. Call `dispose()` when done. */
export class ChainMac {
  #keyed: number;
  #work: number;
  #out: number;
  #buf: number;
  #cap: number;
  #stateBytes: number;
  #prevSlot: number;
  #stageBuf = 0;
  #stageCap = 0;
  #disposed = false;

  constructor(key: Uint8Array) {
    if (!(key instanceof Uint8Array) || key.length !== 32) {
      throw new IronMeshError(
        "AUDIT_BAD_KEY",
        "the audit HMAC key must be 32 bytes",
        "derive it with auditKey(seed) from the node's identity seed",
      );
    }
    this.#stateBytes = raw._crypto_auth_hmacsha256_statebytes();
    this.#keyed = raw._malloc(this.#stateBytes);
    this.#work = raw._malloc(this.#stateBytes);
    this.#out = raw._malloc(32);
    this.#prevSlot = raw._malloc(64);
    this.#cap = 4096;
    this.#buf = raw._malloc(this.#cap);
    raw.HEAPU8.set(key, this.#buf);
    raw._crypto_auth_hmacsha256_init(this.#keyed, this.#buf, 32);
    raw.HEAPU8.fill(0, this.#buf, this.#buf + 32);
  }

  /** Make sure the message buffer holds `n` bytes; returns its heap offset. */
  #reserve(n: number): number {
    if (this.#disposed) throw new Error("ChainMac used after dispose()");
    if (n > this.#cap) {
      raw._free(this.#buf);
      this.#cap = Math.max(n, this.#cap * 2);
      this.#buf = raw._malloc(this.#cap);
    }
    return this.#buf;
  }

  /** MAC of the bytes already placed at heap[buf, buf+n); leaves the 32-byte tag at heap[#out]. */
  #run(n: number): void {
    const heap = raw.HEAPU8;
    heap.copyWithin(this.#work, this.#keyed, this.#keyed + this.#stateBytes);
    raw._crypto_auth_hmacsha256_update(this.#work, this.#buf, n, 0);
    raw._crypto_auth_hmacsha256_final(this.#work, this.#out);
  }

  /** HMAC-SHA256 of the concatenation of `parts` (raw 32-byte tag). */
  mac(...parts: Uint8Array[]): Uint8Array {
    let n = 0;
    for (const p of parts) n += p.length;
    const buf = this.#reserve(n);
    let o = buf;
    for (const p of parts) {
      raw.HEAPU8.set(p, o);
      o += p.length;
    }
    this.#run(n);
    return raw.HEAPU8.slice(this.#out, this.#out + 32);
  }

  /**
   * Copy `bytes` into the wasm heap for `verifyStaged`; returns the heap offset of `bytes[0]`.
   * The area stays valid until the next `stage` (other methods use their own buffer).
   */
  stage(bytes: Uint8Array): number {
    if (this.#disposed) throw new Error("ChainMac used after dispose()");
    if (bytes.length > this.#stageCap) {
      if (this.#stageBuf) raw._free(this.#stageBuf);
      this.#stageCap = Math.max(bytes.length, 65536);
      this.#stageBuf = raw._malloc(this.#stageCap);
    }
    raw.HEAPU8.set(bytes, this.#stageBuf);
    return this.#stageBuf;
  }

  /** A fixed 64-byte heap slot for a previous hmac that must survive re-staging. */
  get prevSlot(): number {
    return this.#prevSlot;
  }

  /** Copy 64 bytes (a hex hmac) into the prev slot: from the heap at `from`, or from `bytes`. */
  setPrev(from: number | Uint8Array): number {
    const heap = raw.HEAPU8;
    if (typeof from === "number") heap.copyWithin(this.#prevSlot, from, from + 64);
    else heap.set(from.subarray(0, 64), this.#prevSlot);
    return this.#prevSlot;
  }

  /**
   * Check a chain link entirely inside the heap: MAC(heap[prev,+64) ‖ heap[a,+aLen) ‖
   * heap[b,+bLen)) against the 64 lowercase hex characters at heap[tag,+64).
   */
  verifyStaged(
    prev: number,
    a: number,
    aLen: number,
    b: number,
    bLen: number,
    tag: number,
  ): boolean {
    const heap = raw.HEAPU8;
    const work = this.#work;
    heap.copyWithin(work, this.#keyed, this.#keyed + this.#stateBytes);
    raw._crypto_auth_hmacsha256_update(work, prev, 64, 0);
    raw._crypto_auth_hmacsha256_update(work, a, aLen, 0);
    raw._crypto_auth_hmacsha256_update(work, b, bLen, 0);
    raw._crypto_auth_hmacsha256_final(work, this.#out);
    const out = this.#out;
    let diff = 0;
    for (let i = 0; i < 32; i++) {
      const v = heap[out + i];
      diff |= (HEX[v >> 4] ^ heap[tag + 2 * i]) | (HEX[v & 15] ^ heap[tag + 2 * i + 1]);
    }
    return diff === 0;
  }

  /** Wipe the keyed state and free the wasm memory. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const heap = raw.HEAPU8;
    heap.fill(0, this.#keyed, this.#keyed + this.#stateBytes);
    heap.fill(0, this.#work, this.#work + this.#stateBytes);
    for (const p of [this.#keyed, this.#work, this.#out, this.#buf, this.#prevSlot]) raw._free(p);
    if (this.#stageBuf) raw._free(this.#stageBuf);
  }
}
