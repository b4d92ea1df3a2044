/**
 * Binary frame v4 codec (PROTOCOL-0.9 §6.1):
 *
 * ```
 * 0   2  magic E7 F6          12  8  timestamp ms, u64be = trunc(inner timestamp × 1000)
 * 2   1  version (4)          20  8  SHA-256(UTF-8 msg_id)[0..8]
 * 3   1  flags 0x0C/0x0D/0x0E 28  4  N = ciphertext length, u32be
 * 4   8  sequence, u64be      32  N  SecretBox nonce(24) ‖ tag(16) ‖ ct, then a 64-byte Ed25519
 *                                    signature over those N bytes (no context)
 * ```
 *
 * Decoding checks in the reference's order with its messages (§17), then ours (§18.1, §18.5):
 * SIGNED required, exact length, version 4 (3 behind an option), known flag bits, and the
 * header bound to the encrypted envelope (sequence, timestamp, msg_id hash, priority bits).
 * Also here: the Ed25519 signer/verifier abstraction (libsodium reference path and the faster
 * node:crypto path; Ed25519 is deterministic, so both produce identical signatures).
 */
import {
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  sign as nodeSign,
  verify as nodeVerify,
} from "node:crypto";
import { InvalidKeyError } from "../../errors.ts";
import { signDetached, sodium, toB64Url, verifyDetached } from "../../crypto/sodium.ts";
import { type Envelope, envelopeJson, parseEnvelopeText } from "./envelope.ts";
import { openBox, openBoxText, sealText, sha256Prefix8Into } from "./frame_box.ts";
import { FrameError, FrameErrorCode } from "./errors.ts";
import { verifyInnerSourceSignature } from "./inner_source.ts";

/** Frame magic bytes. */
export const FRAME_MAGIC = new Uint8Array([0xe7, 0xf6]);
/** Header length. */
export const HEADER_SIZE = 32;
/** Outer signature length. */
export const SIGNATURE_SIZE = 64;
/** The version we send. */
export const FRAME_VERSION = 4;
/** The legacy version the reference still accepts. */
export const LEGACY_FRAME_VERSION = 3;
/** Flag: HIGH priority. */
export const FLAG_HIGH = 0x01;
/** Flag: CRITICAL priority. */
export const FLAG_CRITICAL = 0x02;
/** Flag: payload is SecretBox ciphertext (mandatory). */
export const FLAG_ENCRYPTED = 0x04;
/** Flag: a 64-byte signature follows the ciphertext. */
export const FLAG_SIGNED = 0x08;
/** Ciphertext ceiling of the reference (`MAX_FRAME_BYTES`), checked before anything is sliced. */
export const MAX_FRAME_BYTES = 1_048_576;
/** Largest WebSocket message the reference accepts. */
export const MAX_WS_MESSAGE_BYTES = 1_048_576;
/** Largest ciphertext of a signed frame that still fits one WebSocket message (1,048,480). */
export const MAX_SIGNED_CIPHERTEXT = MAX_WS_MESSAGE_BYTES - HEADER_SIZE - SIGNATURE_SIZE;

const NONCE_SIZE = 24;
const TAG_SIZE = 16;
const TWO_32 = 4294967296;

// ---------------------------------------------------------------------------------------------
// Ed25519 signers and verifiers

/** Produces detached Ed25519 signatures with one identity key. */
export interface Ed25519Signer {
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

/** Verifies detached Ed25519 signatures against one public key; never throws. */
export interface Ed25519Verifier {
  readonly publicKey: Uint8Array;
  verify(signature: Uint8Array, message: Uint8Array): boolean;
}

function checkSecretKey(secretKey: Uint8Array): void {
  if (secretKey.length !== 64) throw new InvalidKeyError("Ed25519 secret key must be 64 bytes");
  const pub = sodium.crypto_sign_seed_keypair(secretKey.subarray(0, 32)).publicKey;
  let diff = 0;
  for (let i = 0; i < 32; i++) diff |= pub[i] ^ secretKey[32 + i];
  if (diff !== 0) throw new InvalidKeyError("Ed25519 secret key: public half does not match seed");
}

/** Reject public keys libsodium would refuse (non-canonical, off-curve, small order). */
export function checkEd25519PublicKey(publicKey: Uint8Array): void {
  if (publicKey.length !== 32 || !sodium.crypto_core_ed25519_is_valid_point(publicKey)) {
    throw new InvalidKeyError(
      "invalid Ed25519 public key (wrong size, non-canonical or small order)",
    );
  }
}

/** libsodium signer (the reference path). `secretKey` = seed ‖ public (64 bytes). */
export function sodiumSigner(secretKey: Uint8Array): Ed25519Signer {
  checkSecretKey(secretKey);
  const sk = secretKey.slice();
  return { publicKey: sk.slice(32), sign: (m) => signDetached(m, sk) };
}

/** libsodium verifier (the reference path). */
export function sodiumVerifier(publicKey: Uint8Array): Ed25519Verifier {
  checkEd25519PublicKey(publicKey);
  const pk = publicKey.slice();
  return { publicKey: pk, verify: (s, m) => verifyDetached(s, m, pk) };
}

/** node:crypto signer (about 3× faster than libsodium wasm); the KeyObject is built once. */
export function nodeSigner(secretKey: Uint8Array): Ed25519Signer {
  checkSecretKey(secretKey);
  const key: KeyObject = createPrivateKey({
    key: {
      kty: "OKP",
      crv: "Ed25519",
      d: toB64Url(secretKey.subarray(0, 32)),
      x: toB64Url(secretKey.subarray(32)),
    },
    format: "jwk",
  });
  return {
    publicKey: secretKey.slice(32),
    sign(m) {
      const b = nodeSign(null, m, key);
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    },
  };
}

/** node:crypto verifier; the key is validated with libsodium's rules first. */
export function nodeVerifier(publicKey: Uint8Array): Ed25519Verifier {
  checkEd25519PublicKey(publicKey);
  const key = createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: toB64Url(publicKey) },
    format: "jwk",
  });
  return {
    publicKey: publicKey.slice(),
    verify(s, m) {
      if (s.length !== SIGNATURE_SIZE) return false;
      try {
        return nodeVerify(null, m, key, s);
      } catch {
        return false;
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Header helpers

/** Priority bits of the flags byte: HIGH → 0x01, CRITICAL → 0x02, anything else → 0. */
export function priorityFlags(priority: string): number {
  return priority === "HIGH" ? FLAG_HIGH : priority === "CRITICAL" ? FLAG_CRITICAL : 0;
}

/** `SHA-256(UTF-8 msg_id)[0..8]`. */
export function msgIdHash(msgId: string): Uint8Array {
  const out = new Uint8Array(8);
  sha256Prefix8Into(msgId, out, 0);
  return out;
}

/** Header timestamp: Python `int(timestamp * 1000)` (truncation). */
export function headerTimestampMs(timestamp: number): number {
  return Math.trunc(timestamp * 1000);
}

/** The parsed 32-byte header. */
export interface FrameHeader {
  version: number;
  flags: number;
  sequence: number;
  timestampMs: number;
  /** 8 bytes (a view into the frame). */
  msgIdHash: Uint8Array;
  /** Declared ciphertext length N. */
  length: number;
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** Inputs of `encodeFrame` besides the envelope. */
export interface EncodeFrameOptions {
  /** 32-byte session key. */
  key: Uint8Array;
  /** 24-byte SecretBox nonce (fresh random per frame). */
  nonce: Uint8Array;
  /** Outer signer (the sending hop's identity); null writes an unsigned frame (tests only). */
  signer: Ed25519Signer | null;
  /** Header version byte (default 4). */
  version?: number;
}

function writeU64(view: DataView, offset: number, v: number): void {
  view.setUint32(offset, Math.floor(v / TWO_32), false);
  view.setUint32(offset + 4, v >>> 0, false);
}

/**
 * Encrypt, frame and sign an envelope (`Frame.encrypt_and_serialize`). The header sequence is
 * `env.sequence`. Throws FrameError(FR_TOO_LARGE) past 1,048,480 ciphertext bytes (signed) so
 * the whole message fits one 1 MiB WebSocket message.
 */
export function encodeFrame(env: Envelope, opts: EncodeFrameOptions): Uint8Array {
  if (opts.key.length !== 32) throw new InvalidKeyError("session key must be 32 bytes");
  if (opts.nonce.length !== NONCE_SIZE) throw new InvalidKeyError("nonce must be 24 bytes");
  if (!Number.isSafeInteger(env.sequence) || env.sequence < 0) {
    throw new RangeError(`sequence must be a non-negative integer, got ${env.sequence}`);
  }
  const tsMs = headerTimestampMs(env.timestamp);
  if (!Number.isSafeInteger(tsMs) || tsMs < 0) {
    throw new RangeError(`timestamp ${env.timestamp} cannot be written in the header`);
  }
  const signed = opts.signer !== null;
  const limit = signed ? MAX_SIGNED_CIPHERTEXT : MAX_FRAME_BYTES;
  const tooLarge = (n: number) =>
    new FrameError(
      FrameErrorCode.TOO_LARGE,
      `Encrypted frame payload ${n} bytes exceeds the ${limit}-byte limit`,
    );
  const text = envelopeJson(env);
  // UTF-8 never has fewer bytes than UTF-16 units (and the envelope is ASCII): refuse before the
  // text takes room on libsodium's heap, which never shrinks.
  if (NONCE_SIZE + TAG_SIZE + text.length > limit) {
    throw tooLarge(NONCE_SIZE + TAG_SIZE + text.length);
  }
  // The envelope text goes straight onto libsodium's heap; `place` sizes the frame from it.
  const out = sealText(text, opts.nonce, opts.key, (boxLength) => {
    const n = NONCE_SIZE + boxLength;
    if (n > limit) throw tooLarge(n);
    const frame = new Uint8Array(HEADER_SIZE + n + (signed ? SIGNATURE_SIZE : 0));
    const view = new DataView(frame.buffer);
    frame[0] = 0xe7;
    frame[1] = 0xf6;
    frame[2] = opts.version ?? FRAME_VERSION;
    frame[3] = priorityFlags(env.priority) | FLAG_ENCRYPTED | (signed ? FLAG_SIGNED : 0);
    writeU64(view, 4, env.sequence);
    writeU64(view, 12, tsMs);
    sha256Prefix8Into(env.msgId, frame, 20);
    view.setUint32(28, n, false);
    frame.set(opts.nonce, HEADER_SIZE);
    return { out: frame, offset: HEADER_SIZE + NONCE_SIZE };
  });
  if (opts.signer) {
    const end = out.length - SIGNATURE_SIZE;
    out.set(opts.signer.sign(out.subarray(HEADER_SIZE, end)), end);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** A structurally valid frame, not yet verified or decrypted. Views into the input bytes. */
export interface RawFrame {
  header: FrameHeader;
  /** `nonce ‖ tag ‖ ct` (N bytes). */
  ciphertext: Uint8Array;
  /** The 64-byte outer signature, or null for an unsigned frame. */
  signature: Uint8Array | null;
}

/** Structural options of `parseFrame`. */
export interface ParseFrameOptions {
  /** Accept header version 3 (the reference does; ours refuses by default). */
  acceptVersion3?: boolean;
  /** Ours: refuse frames without the SIGNED flag (default true). */
  requireSigned?: boolean;
  /** Ours: refuse trailing bytes after the signature and unknown flag bits (default true). */
  strictLayout?: boolean;
}

function fail(code: typeof FrameErrorCode[keyof typeof FrameErrorCode], message: string): never {
  throw new FrameError(code, message);
}

/** Parse and check the header and lengths, in the reference's order. Throws FrameError. */
export function parseFrame(data: Uint8Array, opts: ParseFrameOptions = {}): RawFrame {
  const M = FrameErrorCode.MALFORMED;
  if (data.length < HEADER_SIZE) {
    fail(M, `Frame too short: ${data.length} bytes (need ${HEADER_SIZE})`);
  }
  if (data[0] !== 0xe7 || data[1] !== 0xf6) {
    fail(
      M,
      `Invalid magic: ${data[0].toString(16).padStart(2, "0")}${
        data[1].toString(16).padStart(2, "0")
      }`,
    );
  }
  const version = data[2];
  const v3 = opts.acceptVersion3 ?? false;
  if (version !== FRAME_VERSION && !(v3 && version === LEGACY_FRAME_VERSION)) {
    fail(M, `Unsupported version: ${version} (expected ${v3 ? "3 or 4" : "4"})`);
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const flags = data[3];
  const seqHi = view.getUint32(4, false);
  const sequence = seqHi * TWO_32 + view.getUint32(8, false);
  const timestampMs = view.getUint32(12, false) * TWO_32 + view.getUint32(16, false);
  const length = view.getUint32(28, false);
  if (length > MAX_FRAME_BYTES) {
    fail(
      FrameErrorCode.TOO_LARGE,
      `Declared frame length ${length} bytes exceeds MAX_FRAME_BYTES ceiling ${MAX_FRAME_BYTES}`,
    );
  }
  const available = data.length - HEADER_SIZE;
  if (available < length) fail(M, `Truncated frame: expected ${length} bytes, got ${available}`);
  if (!(flags & FLAG_ENCRYPTED)) {
    fail(M, "Received unencrypted binary frame — encryption is mandatory");
  }
  const signed = (flags & FLAG_SIGNED) !== 0;
  const end = HEADER_SIZE + length;
  if (signed && data.length < end + SIGNATURE_SIZE) {
    fail(FrameErrorCode.SIGNATURE, "Frame has FLAG_SIGNED but signature is missing/truncated");
  }
  if (!signed && (opts.requireSigned ?? true)) {
    fail(FrameErrorCode.UNSIGNED, "Received unsigned binary frame — a signature is mandatory");
  }
  if (opts.strictLayout ?? true) {
    const expected = end + (signed ? SIGNATURE_SIZE : 0);
    if (data.length !== expected) {
      fail(M, `Frame length ${data.length} bytes does not match its declared length ${expected}`);
    }
    if ((flags & 0xf0) !== 0 || (flags & 0x03) === 0x03) {
      fail(M, `Invalid frame flags 0x${flags.toString(16).padStart(2, "0")}`);
    }
  }
  if (seqHi > 0x1fffff) {
    const big = (BigInt(seqHi) << 32n) | BigInt(view.getUint32(8, false));
    fail(FrameErrorCode.REPLAY, `Sequence ${big} exceeds MAX_SEQUENCE 281474976710656`);
  }
  return {
    header: {
      version,
      flags,
      sequence,
      timestampMs,
      msgIdHash: data.subarray(20, 28),
      length,
    },
    ciphertext: data.subarray(HEADER_SIZE, end),
    signature: signed ? data.subarray(end, end + SIGNATURE_SIZE) : null,
  };
}

/** Check the outer signature of a signed frame. Throws FrameError(FR_SIGNATURE). */
export function verifyFrameSignature(raw: RawFrame, verifier: Ed25519Verifier | null): void {
  if (raw.signature === null) return;
  if (verifier === null) {
    fail(FrameErrorCode.SIGNATURE, "Frame is signed but no verify_key provided");
  }
  if (!verifier.verify(raw.signature, raw.ciphertext)) {
    fail(
      FrameErrorCode.SIGNATURE,
      "Signature verification failed: Signature was forged or corrupt",
    );
  }
}

/** Open the SecretBox with one key; null when it does not authenticate. */
export function decryptFrame(raw: RawFrame, key: Uint8Array): Uint8Array | null {
  const c = raw.ciphertext;
  if (c.length < NONCE_SIZE + TAG_SIZE || key.length !== 32) return null;
  return openBox(c, key);
}

/** The envelope text inside a frame: the SecretBox opened and decoded as strict UTF-8. */
export type DecryptedText =
  | { ok: true; text: string }
  /** `decrypt`: the box does not authenticate with this key; `utf8`: it does, but is not UTF-8. */
  | { ok: false; reason: "decrypt" | "utf8" };

/** Open the SecretBox with one key straight to the envelope text (no intermediate copy). */
export function decryptFrameText(raw: RawFrame, key: Uint8Array): DecryptedText {
  const c = raw.ciphertext;
  if (c.length < NONCE_SIZE + TAG_SIZE || key.length !== 32) {
    return { ok: false, reason: "decrypt" };
  }
  try {
    const text = openBoxText(c, key);
    return text === null ? { ok: false, reason: "decrypt" } : { ok: true, text };
  } catch {
    return { ok: false, reason: "utf8" };
  }
}

/** The reference's decryption failure text. */
export const DECRYPT_FAILED_MESSAGE =
  "Decryption failed: Decryption failed. Ciphertext failed verification";

/** Ours (§18.1): the unauthenticated header must agree with the envelope. Throws FrameError. */
export function checkHeaderBinding(header: FrameHeader, env: Envelope): void {
  const H = FrameErrorCode.HEADER_MISMATCH;
  if (env.sequence !== header.sequence) {
    fail(H, `Header sequence ${header.sequence} does not match inner sequence ${env.sequence}`);
  }
  const ms = headerTimestampMs(env.timestamp);
  if (ms !== header.timestampMs) {
    fail(H, `Header timestamp ${header.timestampMs} ms does not match inner timestamp (${ms} ms)`);
  }
  const h = msgIdHash(env.msgId);
  let diff = 0;
  for (let i = 0; i < 8; i++) diff |= h[i] ^ header.msgIdHash[i];
  if (diff !== 0) fail(H, "Header msg_id hash does not match the inner msg_id");
  if ((header.flags & 0x03) !== priorityFlags(env.priority)) {
    fail(
      H,
      `Header priority flags 0x${header.flags.toString(16).padStart(2, "0")} do not match ` +
        `inner priority ${env.priority}`,
    );
  }
}

/** Options of `decodeFrame`. */
export interface DecodeFrameOptions extends ParseFrameOptions {
  /** 32-byte session key. */
  key: Uint8Array;
  /** The sending hop's identity; null only to reproduce the reference's error. */
  verifier: Ed25519Verifier | null;
  /** Ours: bind the header to the envelope (default true). */
  bindHeader?: boolean;
  /** Ours: require the inner timestamp (default true). */
  requireTimestamp?: boolean;
  /** Timestamp used when it is absent and not required. */
  now?: number;
  /**
   * Like the reference's `verify_source_key`: when given and the envelope carries a source
   * signature, a known source's signature must verify (FR_INNER_SIGNATURE otherwise).
   */
  sourceVerifier?: (source: string) => Ed25519Verifier | null;
  /** Accept v1 inner signatures in that check (default true, as the reference's codec). */
  allowInnerV1?: boolean;
}

/** A decoded frame: its header and envelope (the envelope's `sequence` is the header's). */
export interface DecodedFrame {
  header: FrameHeader;
  envelope: Envelope;
}

/** Parse → verify → decrypt → envelope → header binding, with one key. Throws FrameError. */
export function decodeFrame(data: Uint8Array, opts: DecodeFrameOptions): DecodedFrame {
  const raw = parseFrame(data, opts);
  verifyFrameSignature(raw, opts.verifier);
  const plaintext = decryptFrame(raw, opts.key);
  if (plaintext === null) fail(FrameErrorCode.DECRYPT, DECRYPT_FAILED_MESSAGE);
  return finishDecode(raw, plaintext, opts);
}

/** Envelope parsing and the checks after decryption (shared with the session). */
export function finishDecode(
  raw: RawFrame,
  plaintext: Uint8Array | string,
  opts: Omit<DecodeFrameOptions, "key" | "verifier">,
): DecodedFrame {
  const envelope = parseEnvelopeText(plaintext, {
    requireTimestamp: opts.requireTimestamp,
    now: opts.now,
  });
  if (opts.bindHeader ?? true) checkHeaderBinding(raw.header, envelope);
  envelope.sequence = raw.header.sequence; // the reference's `obj.sequence = sequence`
  if (opts.sourceVerifier && envelope.sourceSignature !== undefined) {
    const v = opts.sourceVerifier(envelope.source);
    if (
      v !== null &&
      !verifyInnerSourceSignature(
        { ...envelope, signature: envelope.sourceSignature, scheme: envelope.sourceSigScheme },
        v,
        opts.allowInnerV1 ?? true,
      )
    ) {
      fail(FrameErrorCode.INNER_SIGNATURE, "Inner source signature verification failed");
    }
  }
  return { header: raw.header, envelope };
}
