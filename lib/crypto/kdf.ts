/** Key derivations of the reference (PROTOCOL-0.9 §3.3): every state-file key comes from the seed. */
import { HKDF_INFO_IDENTITY_X25519 } from "./contexts.ts";
import { concatBytes, hkdfSha256, sha256, utf8 } from "./sodium.ts";

/** SHA-256(seed32 ‖ label) — the reference's label-suffix derivation (no NUL terminator). */
export function seedLabelKey(seed: Uint8Array, label: string): Uint8Array {
  return sha256(concatBytes(seed, utf8(label)));
}

/** Audit-log HMAC chain key. */
export const auditKey = (seed: Uint8Array) => seedLabelKey(seed, "ironmesh-audit-v1");
/** known_peers.json MAC key. */
export const trustMacKey = (seed: Uint8Array) => seedLabelKey(seed, "ironmesh-trust-store-v1");
/** known_peers.json v2 SecretBox key. */
export const trustBoxKey = (seed: Uint8Array) =>
  seedLabelKey(seed, "ironmesh-trust-store-encryption-v1");
/** routes.json HMAC key. */
export const routesKey = (seed: Uint8Array) => seedLabelKey(seed, "ironmesh-routes-v1");
/** capabilities.json HMAC key. */
export const capabilitiesKey = (seed: Uint8Array) => seedLabelKey(seed, "ironmesh-capabilities-v1");

/** Legacy trust MAC key: SHA-256("ironmesh-trust-store-v1:" ‖ home directory). Read/migrate only. */
export function legacyTrustMacKey(homeDir: string): Uint8Array {
  return sha256(utf8("ironmesh-trust-store-v1:" + homeDir));
}

/** The identity X25519 subkey seed of keys.json v3: HKDF-SHA256(seed, hkdf_salt, info, 32). */
export function identityX25519Seed(seed: Uint8Array, hkdfSalt: Uint8Array): Uint8Array {
  return hkdfSha256(seed, hkdfSalt, HKDF_INFO_IDENTITY_X25519, 32);
}
