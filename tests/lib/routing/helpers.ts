/** Shared helpers of the lib/routing tests: deterministic identities and node ids. */
import { sha256, toB64, toHex, utf8 } from "../../../lib/crypto/sodium.ts";
import { Identity } from "../../../lib/identity/identity.ts";

/** A well-formed node id derived from a label (32 lowercase hex). */
export function nid(label: string): string {
  return toHex(sha256(utf8(`routing-test/${label}`))).slice(0, 32);
}

/** A v3 (master-seed) identity derived from a label. */
export function identity(label: string): Identity {
  const seed = sha256(utf8(`routing-test/seed/${label}`));
  const salt = sha256(utf8(`routing-test/salt/${label}`)).slice(0, 16);
  return new Identity(seed, label, salt);
}

/** A v2 (legacy, converted X25519) identity derived from a label. */
export function legacyIdentity(label: string): Identity {
  return new Identity(sha256(utf8(`routing-test/seed/${label}`)), label, null);
}

/** The standard-base64 public key of an identity (as the trust store pins it). */
export function pubB64(id: Identity): string {
  return toB64(id.publicKey);
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** UTF-8 bytes. */
export const bytes = (s: string): Uint8Array => enc.encode(s);
/** UTF-8 text. */
export const text = (b: Uint8Array): string => dec.decode(b);
/** Parse a JSON payload. */
export const json = (b: Uint8Array): Record<string, unknown> => JSON.parse(dec.decode(b));
