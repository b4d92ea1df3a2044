/**
 * Keys of nodes that are not direct peers (ours). A node must know a far destination's keys to
 * seal to it, and a far originator's identity key to verify its inner signature. Our
 * CAPABILITY_ANNOUNCE carries, after the reference's fields, the origin's Ed25519 identity key
 * (`identity_public`) and its advertised X25519 key with the binding signature
 * (`x25519_public_b64`, `x25519_binding_signature_b64`, the HELLO's field names). The signed body
 * is unchanged, so reference peers verify and ignore the extra fields; the identity key is
 * self-certifying (node id = first 16 bytes of SHA-256(key)) and the X25519 key is bound by its
 * signature under that key, so a relay can neither substitute nor forge them. Our nodes announce
 * even an empty capability set, so every node's keys reach the whole mesh.
 */
import { fromB64, toB64 } from "../lib/crypto/sodium.ts";
import { verifyX25519Binding } from "../lib/identity/identity.ts";
import { nodeIdOf } from "../lib/identity/node_id.ts";
import { compactJson } from "../lib/json/canonical.ts";
import { parseJson } from "../lib/json/parse.ts";
import { PyFloat } from "../lib/json/py_float.ts";
import {
  CAPABILITY_ANNOUNCE_VERSION,
  capabilityAnnounceSignedMessage,
  MAX_CAPABILITY_ANNOUNCE_BYTES,
  normalizeCapabilities,
} from "../lib/routing/capabilities.ts";
import type { Ed25519Signer } from "../lib/wire/v09/frame.ts";

/** What is known of a node's keys. */
export interface NodeKeys {
  /** Ed25519 identity key (32 bytes). */
  ed25519: Uint8Array;
  /** Verified advertised X25519 key (its binding checked), or null: seal to the converted key. */
  x25519: Uint8Array | null;
  /** Where the identity key came from. */
  source: "link" | "pin" | "announce" | "sighting";
}

/** Keys found in a received announce (already checked against its origin). */
export interface CarriedKeys {
  origin: string;
  ed25519: Uint8Array;
  x25519: Uint8Array | null;
}

/** What `buildKeyedCapabilityAnnounce` needs. */
export interface KeyedAnnounceInput {
  signer: Ed25519Signer;
  origin: string;
  capabilities: Iterable<string>;
  /** Wall-clock seconds (a Python float on the wire). */
  announcedAt: number;
  /** Our master-seed X25519 key and its binding signature, when we have one. */
  x25519?: { publicKey: Uint8Array; bindingSignature: Uint8Array } | null;
}

/**
 * A signed CAPABILITY_ANNOUNCE (the reference's fields and signature, byte for byte as
 * `buildCapabilityAnnounce` writes them) followed by our key fields. An empty set is allowed.
 */
export function buildKeyedCapabilityAnnounce(input: KeyedAnnounceInput): Uint8Array {
  const caps = normalizeCapabilities(input.capabilities);
  const signature = input.signer.sign(
    capabilityAnnounceSignedMessage(input.origin, caps, input.announcedAt),
  );
  const body: Record<string, unknown> = {
    origin: input.origin,
    capabilities: caps,
    announced_at: new PyFloat(input.announcedAt),
    version: CAPABILITY_ANNOUNCE_VERSION,
    signature: toB64(signature),
    identity_public: toB64(input.signer.publicKey),
  };
  if (input.x25519) {
    body.x25519_public_b64 = toB64(input.x25519.publicKey);
    body.x25519_binding_signature_b64 = toB64(input.x25519.bindingSignature);
  }
  return new TextEncoder().encode(compactJson(body));
}

function b64Key(v: unknown, len: number): Uint8Array | null {
  if (typeof v !== "string" || v.length > 128) return null;
  try {
    const k = fromB64(v);
    return k.length === len ? k : null;
  } catch {
    return null;
  }
}

/**
 * The keys an announce carries, when its `identity_public` hashes to its `origin` (else null).
 * The X25519 key is kept only when its binding signature verifies under that identity key.
 * This does not verify the announce itself: use the key only once the registry accepted it.
 */
export function carriedKeys(payload: Uint8Array): CarriedKeys | null {
  if (payload.length > MAX_CAPABILITY_ANNOUNCE_BYTES) return null;
  let o: unknown;
  try {
    o = parseJson(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch {
    return null;
  }
  if (o === null || typeof o !== "object" || Array.isArray(o)) return null;
  const r = o as Record<string, unknown>;
  if (typeof r.origin !== "string") return null;
  const ed25519 = b64Key(r.identity_public, 32);
  if (!ed25519 || nodeIdOf(ed25519) !== r.origin) return null;
  let x25519: Uint8Array | null = b64Key(r.x25519_public_b64, 32);
  const binding = b64Key(r.x25519_binding_signature_b64, 64);
  if (x25519 && !(binding && verifyX25519Binding(x25519, binding, ed25519))) x25519 = null;
  return { origin: r.origin, ed25519, x25519 };
}

/** A base64 key from a record (trust pin, sighting) checked against the node id, or null. */
export function keyForNode(nodeId: string, b64: string | null | undefined): Uint8Array | null {
  const k = b64Key(b64, 32);
  return k && nodeIdOf(k) === nodeId ? k : null;
}
