/** Node ids and mDNS idhashes: hex prefixes of SHA-256(Ed25519 public key) (PROTOCOL-0.9 §3.1). */
import { sha256, toHex } from "../crypto/sodium.ts";

/** node_id = first 32 hex characters (16 bytes) of SHA-256(public key). */
export function nodeIdOf(ed25519Public: Uint8Array): string {
  return toHex(sha256(ed25519Public).subarray(0, 16));
}

/** mDNS idhash = first 16 hex characters of the same hash. */
export function idHashOf(ed25519Public: Uint8Array): string {
  return toHex(sha256(ed25519Public).subarray(0, 8));
}

/** A well-formed node id: 32 lowercase hex characters. */
export function isNodeId(s: string): boolean {
  return /^[0-9a-f]{32}$/.test(s);
}

/** A short, human-checkable fingerprint: the node id in groups of four. */
export function formatFingerprint(nodeId: string): string {
  return nodeId.match(/.{1,4}/g)!.join(":");
}
