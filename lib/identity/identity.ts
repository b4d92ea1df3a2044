/**
 * A node identity: the Ed25519 seed and everything derived from it — the
 * public key, node_id, and the v3 "master-seed-v1" X25519 subkey with its
 * binding signature (PROTOCOL-0.9 §3.1).
 */
import { SIG_CTX_X25519_BINDING } from "../crypto/contexts.ts";
import { identityX25519Seed } from "../crypto/kdf.ts";
import {
  ed25519PkToCurve25519,
  ed25519SkToCurve25519,
  signDetached,
  signKeyPairFromSeed,
  verifyDetached,
  wipe,
  x25519Base,
} from "../crypto/sodium.ts";
import { nodeIdOf } from "./node_id.ts";

/** The X25519 key used to open end-to-end sealed payloads addressed to us. */
export interface E2eKeys {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
  /** "master-seed-v1" (HKDF subkey) or "legacy" (Ed25519 → X25519 conversion). */
  kind: "master-seed-v1" | "legacy";
  /** Binding signature, present for master-seed keys. */
  bindingSignature?: Uint8Array;
}

/** A loaded node identity. Holds secrets: call `wipe()` when done. */
export class Identity {
  /** 32-byte Ed25519 seed (the reference's `ed25519_secret`). */
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
  /** 64-byte libsodium secret key (seed ‖ public). */
  readonly secretKey: Uint8Array;
  readonly nodeId: string;
  readonly name: string;
  /** v3 hkdf_salt (null for a v2 identity). */
  readonly hkdfSalt: Uint8Array | null;
  readonly e2e: E2eKeys;

  constructor(seed: Uint8Array, name: string, hkdfSalt: Uint8Array | null) {
    const kp = signKeyPairFromSeed(seed);
    this.seed = seed.slice();
    this.publicKey = kp.publicKey;
    this.secretKey = kp.secretKey;
    this.nodeId = nodeIdOf(kp.publicKey);
    this.name = name;
    this.hkdfSalt = hkdfSalt ? hkdfSalt.slice() : null;
    if (hkdfSalt) {
      const xSeed = identityX25519Seed(seed, hkdfSalt);
      const xPub = x25519Base(xSeed);
      this.e2e = {
        publicKey: xPub,
        secretKey: xSeed,
        kind: "master-seed-v1",
        bindingSignature: signDetached(xPub, kp.secretKey, SIG_CTX_X25519_BINDING),
      };
    } else {
      this.e2e = {
        publicKey: ed25519PkToCurve25519(kp.publicKey),
        secretKey: ed25519SkToCurve25519(kp.secretKey),
        kind: "legacy",
      };
    }
  }

  /** Sign `context ‖ message` with the identity key. */
  sign(message: Uint8Array, context?: Uint8Array): Uint8Array {
    return signDetached(message, this.secretKey, context);
  }

  /** Overwrite the secret material. */
  wipe(): void {
    wipe(this.seed, this.secretKey, this.e2e.secretKey);
  }
}

/** Verify an advertised X25519 key's binding signature under an Ed25519 identity key. */
export function verifyX25519Binding(
  x25519Public: Uint8Array,
  bindingSignature: Uint8Array,
  ed25519Public: Uint8Array,
): boolean {
  return x25519Public.length === 32 &&
    verifyDetached(bindingSignature, x25519Public, ed25519Public, SIG_CTX_X25519_BINDING);
}
