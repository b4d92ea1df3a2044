/**
 * The one place libsodium is initialised. Every primitive ironmesh uses lives
 * here or in a sibling module, so the crypto surface is small and auditable.
 */
import sodiumModule from "libsodium-wrappers-sumo";
import { createHmac, hkdfSync } from "node:crypto";
import { InvalidKeyError } from "../errors.ts";

await sodiumModule.ready;
/** The initialised libsodium instance (top-level await above guarantees readiness). */
export const sodium = sodiumModule;

const B64 = sodium.base64_variants.ORIGINAL;

/** Ed25519 key pair: 32-byte public key, 64-byte libsodium secret key (seed ‖ public). */
export interface SignKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** X25519 key pair. */
export interface BoxKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

function requireLength(name: string, value: Uint8Array, length: number): void {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new InvalidKeyError(`${name} must be ${length} bytes, got ${value?.length ?? "none"}`);
  }
}

/**
 * Cryptographically secure random bytes from the OS CSPRNG (WebCrypto: ~30× faster per
 * call than libsodium's wasm randombytes_buf, which matters twice per frame).
 */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let o = 0; o < n; o += 65536) {
    crypto.getRandomValues(out.subarray(o, Math.min(n, o + 65536)));
  }
  return out;
}

/** Ed25519 key pair from a 32-byte seed. */
export function signKeyPairFromSeed(seed: Uint8Array): SignKeyPair {
  requireLength("Ed25519 seed", seed, 32);
  const kp = sodium.crypto_sign_seed_keypair(seed);
  return { publicKey: kp.publicKey, secretKey: kp.privateKey };
}

/** Detached Ed25519 signature over `context ‖ message` (context may be empty). */
export function signDetached(
  message: Uint8Array,
  secretKey: Uint8Array,
  context: Uint8Array = EMPTY,
): Uint8Array {
  requireLength("Ed25519 secret key", secretKey, 64);
  return sodium.crypto_sign_detached(concatBytes(context, message), secretKey);
}

/** Verify a detached Ed25519 signature over `context ‖ message`. Never throws on bad input. */
export function verifyDetached(
  signature: Uint8Array,
  message: Uint8Array,
  publicKey: Uint8Array,
  context: Uint8Array = EMPTY,
): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  try {
    return sodium.crypto_sign_verify_detached(signature, concatBytes(context, message), publicKey);
  } catch {
    return false;
  }
}

/** Attached (legacy) Ed25519 signature: `sig(64) ‖ message`. */
export function signAttached(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  requireLength("Ed25519 secret key", secretKey, 64);
  return sodium.crypto_sign(message, secretKey);
}

/** Open an attached signature; returns the message or null when the signature is bad. */
export function openAttached(signed: Uint8Array, publicKey: Uint8Array): Uint8Array | null {
  if (signed.length < 64 || publicKey.length !== 32) return null;
  try {
    return sodium.crypto_sign_open(signed, publicKey);
  } catch {
    return null;
  }
}

/** X25519 key pair from a 32-byte secret (libsodium clamps it). */
export function boxKeyPairFromSecret(secret: Uint8Array): BoxKeyPair {
  requireLength("X25519 secret", secret, 32);
  return { publicKey: sodium.crypto_scalarmult_base(secret), secretKey: secret.slice() };
}

/** A fresh random X25519 key pair. */
export function boxKeyPair(): BoxKeyPair {
  const kp = sodium.crypto_box_keypair();
  return { publicKey: kp.publicKey, secretKey: kp.privateKey };
}

/** X25519 public key of a secret scalar. */
export function x25519Base(secret: Uint8Array): Uint8Array {
  requireLength("X25519 secret", secret, 32);
  return sodium.crypto_scalarmult_base(secret);
}

/** `crypto_box_beforenm`: HSalsa20 over the X25519 shared point. Throws InvalidKeyError on small-order keys. */
export function boxBeforeNm(peerPublic: Uint8Array, mySecret: Uint8Array): Uint8Array {
  requireLength("X25519 public key", peerPublic, 32);
  requireLength("X25519 secret key", mySecret, 32);
  try {
    return sodium.crypto_box_beforenm(peerPublic, mySecret);
  } catch {
    throw new InvalidKeyError("X25519 key agreement failed (small-order or invalid public key)");
  }
}

/** Raw X25519 scalar multiplication. Throws InvalidKeyError on small-order keys. */
export function scalarMult(mySecret: Uint8Array, peerPublic: Uint8Array): Uint8Array {
  requireLength("X25519 public key", peerPublic, 32);
  requireLength("X25519 secret key", mySecret, 32);
  try {
    return sodium.crypto_scalarmult(mySecret, peerPublic);
  } catch {
    throw new InvalidKeyError(
      "X25519 scalar multiplication failed (small-order or invalid public key)",
    );
  }
}

/** Ed25519 public key → X25519 public key (legacy conversion). */
export function ed25519PkToCurve25519(publicKey: Uint8Array): Uint8Array {
  requireLength("Ed25519 public key", publicKey, 32);
  try {
    return sodium.crypto_sign_ed25519_pk_to_curve25519(publicKey);
  } catch {
    throw new InvalidKeyError("Ed25519 public key cannot be converted to X25519");
  }
}

/** Ed25519 secret key (64 bytes) → X25519 secret key (legacy conversion). */
export function ed25519SkToCurve25519(secretKey: Uint8Array): Uint8Array {
  requireLength("Ed25519 secret key", secretKey, 64);
  return sodium.crypto_sign_ed25519_sk_to_curve25519(secretKey);
}

/** SecretBox (XSalsa20-Poly1305) with a fresh random nonce: `nonce(24) ‖ tag(16) ‖ ct`. */
export function secretBoxSeal(
  plaintext: Uint8Array,
  key: Uint8Array,
  nonce?: Uint8Array,
): Uint8Array {
  requireLength("SecretBox key", key, 32);
  const n = nonce ?? randomBytes(24);
  requireLength("SecretBox nonce", n, 24);
  return concatBytes(n, sodium.crypto_secretbox_easy(plaintext, n, key));
}

/** Open `nonce(24) ‖ tag(16) ‖ ct`; returns null when authentication fails. */
export function secretBoxOpen(boxed: Uint8Array, key: Uint8Array): Uint8Array | null {
  if (key.length !== 32 || boxed.length < 40) return null;
  try {
    return sodium.crypto_secretbox_open_easy(boxed.subarray(24), boxed.subarray(0, 24), key);
  } catch {
    return null;
  }
}

/** SealedBox (anonymous sender) to an X25519 public key. */
export function sealedBoxSeal(plaintext: Uint8Array, recipientPublic: Uint8Array): Uint8Array {
  requireLength("X25519 public key", recipientPublic, 32);
  try {
    return sodium.crypto_box_seal(plaintext, recipientPublic);
  } catch {
    throw new InvalidKeyError("cannot seal to this X25519 public key");
  }
}

/** Open a SealedBox; returns null when it does not open. */
export function sealedBoxOpen(
  sealed: Uint8Array,
  recipientPublic: Uint8Array,
  recipientSecret: Uint8Array,
): Uint8Array | null {
  if (sealed.length < 48) return null;
  try {
    return sodium.crypto_box_seal_open(sealed, recipientPublic, recipientSecret);
  } catch {
    return null;
  }
}

/** SHA-256. */
export function sha256(data: Uint8Array): Uint8Array {
  return sodium.crypto_hash_sha256(data);
}

/** HMAC-SHA256 with a key of any length (libsodium's streaming API accepts any key size). */
export function hmacSha256(key: Uint8Array, message: Uint8Array): Uint8Array {
  if (key.length === 32) return sodium.crypto_auth_hmacsha256(message, key);
  const state = sodium.crypto_auth_hmacsha256_init(key);
  sodium.crypto_auth_hmacsha256_update(state, message);
  return sodium.crypto_auth_hmacsha256_final(state);
}

/** HMAC-SHA256 through node:crypto, used where the key is a string or for streaming. */
export function hmacSha256Node(key: Uint8Array, message: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac("sha256", key).update(message).digest());
}

/** HKDF-SHA256 (RFC 5869) via node:crypto. */
export function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Uint8Array {
  return new Uint8Array(hkdfSync("sha256", ikm, salt, info, length));
}

/** Argon2id v1.3 parameters. */
export interface Argon2Params {
  opsLimit: number;
  memLimit: number;
}

/** The reference's MODERATE parameters (opslimit 3, 256 MiB). */
export const ARGON2_MODERATE: Argon2Params = { opsLimit: 3, memLimit: 268_435_456 };

/** Computes Argon2id elsewhere (see argon2_isolated.ts); null = in this thread. */
export type Argon2Provider = (
  password: Uint8Array,
  salt: Uint8Array,
  params: Argon2Params,
  length: number,
) => Uint8Array;

let argon2Provider: Argon2Provider | null = null;

/** True while `argon2id` is routed elsewhere. */
export function hasArgon2Provider(): boolean {
  return argon2Provider !== null;
}

/** Route `argon2id` through `p` (null restores in-thread libsodium). */
export function setArgon2Provider(p: Argon2Provider | null): void {
  argon2Provider = p;
}

/** Argon2id (libsodium `crypto_pwhash`, ALG_ARGON2ID13) → `length` bytes. */
export function argon2id(
  password: Uint8Array,
  salt: Uint8Array,
  params: Argon2Params = ARGON2_MODERATE,
  length = 32,
): Uint8Array {
  requireLength("Argon2id salt", salt, 16);
  if (argon2Provider) return argon2Provider(password, salt, params, length);
  return sodium.crypto_pwhash(
    length,
    password,
    salt,
    params.opsLimit,
    params.memLimit,
    sodium.crypto_pwhash_ALG_ARGON2ID13,
  );
}

/** Constant-time equality of two byte strings (lengths compared first; length is not secret). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** Constant-time equality of two strings, compared as UTF-8 bytes. */
export function constantTimeEqualString(a: string, b: string): boolean {
  return constantTimeEqual(utf8(a), utf8(b));
}

/** Overwrite secret bytes with zeros. */
export function wipe(...buffers: (Uint8Array | undefined | null)[]): void {
  for (const b of buffers) if (b) sodium.memzero(b);
}

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** UTF-8 bytes of a string. */
export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Strict UTF-8 decode (throws on invalid bytes). */
export function fromUtf8(b: Uint8Array): string {
  return decoder.decode(b);
}

/** Concatenate byte arrays. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Lowercase hex. */
export function toHex(b: Uint8Array): string {
  return sodium.to_hex(b);
}

/** Parse hex (either case); throws on odd length or non-hex characters. */
export function fromHex(s: string): Uint8Array {
  if (typeof s !== "string" || s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) {
    throw new TypeError("invalid hex string");
  }
  return sodium.from_hex(s.toLowerCase());
}

/** Standard padded base64. */
export function toB64(b: Uint8Array): string {
  return sodium.to_base64(b, B64);
}

/** Strict standard padded base64 decode; throws on anything else. */
export function fromB64(s: string): Uint8Array {
  if (typeof s !== "string" || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) {
    throw new TypeError("invalid base64 string");
  }
  return sodium.from_base64(s, B64);
}

/** URL-safe unpadded base64. */
export function toB64Url(b: Uint8Array): string {
  return sodium.to_base64(b, sodium.base64_variants.URLSAFE_NO_PADDING);
}
