/** Domain-separation labels the reference prepends before Ed25519 signing (PROTOCOL-0.9 §3.2). */
import { utf8 } from "./sodium.ts";

const label = (s: string) => utf8(s + "\0");

/** HELLO signatures (peer ≥ 0.9). */
export const SIG_CTX_HELLO = label("ironmesh-sig-v1/hello");
/** CAPABILITY_ANNOUNCE signatures. */
export const SIG_CTX_CAPABILITY_ANNOUNCE = label("ironmesh-sig-v1/capability-announce");
/** Binding of the identity X25519 subkey to the Ed25519 identity. */
export const SIG_CTX_X25519_BINDING = label("ironmesh-sig-v1/x25519-identity-binding");
/** Invite tokens. */
export const SIG_CTX_INVITE = label("ironmesh-sig-v1/invite");
/** Trust pin exports. */
export const SIG_CTX_TRUST_PIN_EXPORT = label("ironmesh-sig-v1/trust-pin-export");
/** Inner v2 source signatures (value inferred, PROTOCOL-0.9 §19 U1). */
export const SIG_CTX_FRAME_INNER_SOURCE = label("ironmesh-sig-v1/frame-inner-source");
/** Ours: audit checkpoints (tail-truncation detection); not part of the reference. */
export const SIG_CTX_AUDIT_CHECKPOINT = label("ironmesh-ext-sig-v1/audit-checkpoint");

/** HKDF info for the identity X25519 subkey. */
export const HKDF_INFO_IDENTITY_X25519 = label("ironmesh-identity-x25519-v1");
/** HKDF info for the data.db storage key. */
export const HKDF_INFO_STORAGE_V2 = label("ironmesh-storage-key-v2");
