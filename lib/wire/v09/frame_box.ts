/**
 * The frame's SecretBox (XSalsa20-Poly1305, libsodium's `crypto_secretbox_easy`) and msg_id hash,
 * called on libsodium's wasm heap directly: the envelope text is encoded straight into the heap,
 * the ciphertext copied once into the frame, and received plaintext decoded to a string straight
 * from the heap. Same libsodium functions as the wrappers (so the same bytes), without their
 * per-call malloc/free and the two extra copies of every message. One scratch region per wasm
 * instance (per thread) is reused; key and plaintext bytes in it are zeroed after each call.
 */
import { sodium } from "../../crypto/sodium.ts";

interface RawSodium {
  HEAPU8: Uint8Array;
  _malloc(size: number): number;
  _free(ptr: number): void;
  _crypto_secretbox_easy(
    c: number,
    m: number,
    lo: number,
    hi: number,
    n: number,
    k: number,
  ): number;
  _crypto_secretbox_open_easy(
    m: number,
    c: number,
    lo: number,
    hi: number,
    n: number,
    k: number,
  ): number;
  _crypto_hash_sha256(out: number, m: number, lo: number, hi: number): number;
}

const raw = (sodium as unknown as { libsodium: RawSodium }).libsodium;
if (typeof raw?._crypto_secretbox_easy !== "function" || typeof raw._malloc !== "function") {
  throw new Error("libsodium's wasm exports are not reachable (unexpected libsodium build)");
}

/** SecretBox nonce length. */
export const BOX_NONCE_BYTES = 24;
/** Poly1305 tag length (SecretBox overhead after the nonce). */
export const BOX_TAG_BYTES = 16;

const KEY = 0; // offsets inside the scratch region
const NONCE = 32;
const DATA = 64; // then: output (tag ‖ ct, or plaintext), then input
const encoder = new TextEncoder();
const strict = new TextDecoder("utf-8", { fatal: true });

let base = 0;
let capacity = 0;

/** The scratch region, at least `dataBytes` past DATA; returns its address. */
function scratch(dataBytes: number): number {
  const need = DATA + dataBytes;
  if (need > capacity) {
    if (base) raw._free(base);
    capacity = Math.max(need, 256 * 1024);
    base = raw._malloc(capacity);
    if (!base) {
      capacity = 0;
      throw new RangeError(`libsodium heap cannot hold ${need} bytes`);
    }
  }
  return base;
}

/**
 * SecretBox `text` (UTF-8; the envelope is ASCII, so one native copy onto the heap) under
 * `nonce`/`key`. `place(boxLength)` gets the length of `tag ‖ ct` (plaintext + 16), may refuse
 * by throwing, and returns where to write it; the frame is returned. The key and plaintext are
 * wiped from the heap whatever happens.
 */
export function sealText(
  text: string,
  nonce: Uint8Array,
  key: Uint8Array,
  place: (boxLength: number) => { out: Uint8Array; offset: number },
): Uint8Array {
  if (nonce.length !== BOX_NONCE_BYTES || key.length !== 32) {
    throw new RangeError("SecretBox needs a 24-byte nonce and a 32-byte key");
  }
  // Output (tag ‖ ct) then input, each sized for the text; ASCII text fits exactly.
  let p = scratch(2 * (text.length + BOX_TAG_BYTES));
  let len = text.length;
  let input = p + DATA + len + BOX_TAG_BYTES;
  const r = encoder.encodeInto(text, raw.HEAPU8.subarray(input, input + len));
  if (r.read !== text.length) { // non-ASCII: size exactly and encode again
    raw.HEAPU8.fill(0, input, input + r.written);
    const bytes = encoder.encode(text);
    len = bytes.length;
    p = scratch(2 * (len + BOX_TAG_BYTES));
    input = p + DATA + len + BOX_TAG_BYTES;
    raw.HEAPU8.set(bytes, input);
    bytes.fill(0);
  }
  const output = p + DATA;
  try {
    const { out, offset } = place(len + BOX_TAG_BYTES);
    const heap = raw.HEAPU8;
    heap.set(key, p + KEY);
    heap.set(nonce, p + NONCE);
    if (raw._crypto_secretbox_easy(output, input, len, 0, p + NONCE, p + KEY) !== 0) {
      throw new Error("crypto_secretbox_easy failed");
    }
    out.set(raw.HEAPU8.subarray(output, output + len + BOX_TAG_BYTES), offset);
    return out;
  } finally {
    const heap = raw.HEAPU8;
    heap.fill(0, p + KEY, p + DATA);
    heap.fill(0, input, input + len);
  }
}

/**
 * Open `nonce(24) ‖ tag(16) ‖ ct` with `key` and hand the plaintext, still on the heap, to
 * `use` (which must not keep the view); the plaintext is zeroed afterwards. Returns `use`'s
 * result, or null when the box does not authenticate.
 */
export function openBoxWith<T>(
  boxed: Uint8Array,
  key: Uint8Array,
  use: (plaintext: Uint8Array) => T,
): T | null {
  if (boxed.length < BOX_NONCE_BYTES + BOX_TAG_BYTES || key.length !== 32) return null;
  const clen = boxed.length - BOX_NONCE_BYTES, mlen = clen - BOX_TAG_BYTES;
  const p = scratch(mlen + clen);
  const output = p + DATA, input = output + mlen;
  let heap = raw.HEAPU8;
  heap.set(key, p + KEY);
  heap.set(boxed.subarray(0, BOX_NONCE_BYTES), p + NONCE);
  heap.set(boxed.subarray(BOX_NONCE_BYTES), input);
  const rc = raw._crypto_secretbox_open_easy(output, input, clen, 0, p + NONCE, p + KEY);
  heap = raw.HEAPU8;
  heap.fill(0, p + KEY, p + NONCE);
  try {
    return rc === 0 ? use(heap.subarray(output, output + mlen)) : null;
  } finally {
    raw.HEAPU8.fill(0, output, output + mlen);
  }
}

/** Open a box to a fresh byte array (null when it does not authenticate). */
export function openBox(boxed: Uint8Array, key: Uint8Array): Uint8Array | null {
  return openBoxWith(boxed, key, (m) => m.slice());
}

/** Open a box whose plaintext is UTF-8 text. null: does not authenticate; throws TypeError on bad UTF-8. */
export function openBoxText(boxed: Uint8Array, key: Uint8Array): string | null {
  return openBoxWith(boxed, key, (m) => strict.decode(m));
}

const HASH_REGION = 4096;
let hashBase = 0;

/** `SHA-256(UTF-8 s)[0..8]` into `out[offset..offset+8]` (its own small heap region). */
export function sha256Prefix8Into(s: string, out: Uint8Array, offset: number): void {
  if (3 * s.length > HASH_REGION - 32) {
    out.set(sodium.crypto_hash_sha256(encoder.encode(s)).subarray(0, 8), offset);
    return;
  }
  if (!hashBase) hashBase = raw._malloc(HASH_REGION);
  if (!hashBase) throw new RangeError("libsodium heap is full");
  const input = hashBase + 32;
  const { written } = encoder.encodeInto(s, raw.HEAPU8.subarray(input, hashBase + HASH_REGION));
  raw._crypto_hash_sha256(hashBase, input, written, 0);
  out.set(raw.HEAPU8.subarray(hashBase, hashBase + 8), offset);
}
