/**
 * data.db payload encryption at rest (PROTOCOL-0.9 §3.3, §11.6): the storage key v2
 * (Argon2id + HKDF over a per-database salt), the legacy SHA-256 key (read/migrate only)
 * and the `"IMSTOREv2\0" ‖ nonce ‖ tag ‖ ct` blob format. Empty payloads stay unencrypted.
 */
import type { Rng } from "../clock.ts";
import { HKDF_INFO_STORAGE_V2 } from "../crypto/contexts.ts";
import {
  ARGON2_MODERATE,
  argon2id,
  concatBytes,
  hkdfSha256,
  secretBoxOpen,
  secretBoxSeal,
  sha256,
  utf8,
  wipe,
} from "../crypto/sodium.ts";
import { ExitCode, IronMeshError } from "../errors.ts";

/** The 10-byte prefix of every payload written under the storage key v2. */
export const STORAGE_V2_MAGIC: Uint8Array = utf8("IMSTOREv2\0");
/** Suffix hashed after the passphrase for the legacy (pre-0.9.5) storage key. */
export const LEGACY_STORAGE_KEY_SUFFIX = "ironmesh-storage-v1";
/** Length of the per-database storage salt kept in `_meta.storage_salt`. */
export const STORAGE_SALT_BYTES = 16;

/** The keys a store reads and writes payloads with. */
export interface StorageKeys {
  /** Key v2: every new payload is sealed with it (32 bytes). */
  storageKey: Uint8Array;
  /** Legacy key: tried on unprefixed payloads and used to migrate them; null = none. */
  legacyKey: Uint8Array | null;
}

/** How a stored payload was read back. */
export type PayloadStatus =
  /** Empty or NULL column: stored unencrypted by design. */
  | "empty"
  /** `IMSTOREv2\0` prefix, opened with the storage key v2. */
  | "v2"
  /** No prefix, opened with the legacy key (not yet migrated). */
  | "legacy"
  /** No prefix and not legacy ciphertext: a plaintext-era row, returned as stored. */
  | "plain"
  /** Prefixed but failed authentication (tampered or another key); raw bytes returned. */
  | "undecryptable";

/** A payload read back from a row, with how it was read. */
export interface OpenedPayload {
  payload: Uint8Array;
  status: PayloadStatus;
}

function badSalt(what: string): IronMeshError {
  return new IronMeshError(
    "STORE_BAD_SALT",
    `data.db storage salt is invalid: ${what}`,
    "data.db _meta.storage_salt is damaged; restore data.db from a backup or move it aside",
    ExitCode.TAMPERED,
  );
}

function requireSalt(salt: Uint8Array): void {
  if (!(salt instanceof Uint8Array) || salt.length !== STORAGE_SALT_BYTES) {
    throw badSalt(`expected ${STORAGE_SALT_BYTES} bytes, got ${salt?.length ?? "none"}`);
  }
}

/** HKDF step of the storage key v2: HKDF-SHA256(ikm, salt, "ironmesh-storage-key-v2\0", 32). */
export function storageKeyFromIkm(ikm: Uint8Array, salt: Uint8Array): Uint8Array {
  requireSalt(salt);
  return hkdfSha256(ikm, salt, HKDF_INFO_STORAGE_V2, 32);
}

/** Storage key v2 from the mesh passphrase and salt (Argon2id t=3, 256 MiB; ~1 s). */
export function deriveStorageKey(passphrase: string, salt: Uint8Array): Uint8Array {
  requireSalt(salt);
  const pw = utf8(passphrase);
  const ikm = argon2id(pw, salt, ARGON2_MODERATE, 32);
  try {
    return storageKeyFromIkm(ikm, salt);
  } finally {
    wipe(ikm, pw);
  }
}

/** Legacy storage key: SHA-256(UTF-8(passphrase ‖ "ironmesh-storage-v1")). Read/migrate only. */
export function deriveLegacyStorageKey(passphrase: string): Uint8Array {
  const input = utf8(passphrase + LEGACY_STORAGE_KEY_SUFFIX);
  try {
    return sha256(input);
  } finally {
    wipe(input);
  }
}

/** Both keys a passphrase-mode store uses (v2 for writing, legacy for reading old rows). */
export function deriveStorageKeys(passphrase: string, salt: Uint8Array): StorageKeys {
  return {
    storageKey: deriveStorageKey(passphrase, salt),
    legacyKey: deriveLegacyStorageKey(passphrase),
  };
}

/** True when `blob` starts with `IMSTOREv2\0`. */
export function hasV2Magic(blob: Uint8Array): boolean {
  if (blob.length < STORAGE_V2_MAGIC.length) return false;
  for (let i = 0; i < STORAGE_V2_MAGIC.length; i++) {
    if (blob[i] !== STORAGE_V2_MAGIC[i]) return false;
  }
  return true;
}

/** A payload column value as bytes (TEXT written by other tools becomes its UTF-8). */
export function columnBytes(value: unknown): Uint8Array {
  if (value === null || value === undefined) return new Uint8Array(0);
  if (value instanceof Uint8Array) return value;
  if (typeof value === "string") return utf8(value);
  throw new IronMeshError(
    "STORE_BAD_ROW",
    `data.db payload column has unexpected type ${typeof value}`,
    "data.db was modified by another tool; restore it from a backup or move it aside",
    ExitCode.TAMPERED,
  );
}

/** Seals and opens payload blobs with a store's keys; nonces come from the injected Rng. */
export class PayloadCipher {
  #storageKey: Uint8Array;
  #legacyKey: Uint8Array | null;
  #rng: Rng;

  /** Copies the keys (the caller may wipe its own copies). */
  constructor(keys: StorageKeys, rng: Rng) {
    if (!(keys.storageKey instanceof Uint8Array) || keys.storageKey.length !== 32) {
      throw new IronMeshError(
        "STORE_BAD_KEY",
        "data.db storage key must be 32 bytes",
        "pass the key returned by deriveStorageKeys(), or the mesh passphrase",
        ExitCode.USAGE,
      );
    }
    if (keys.legacyKey !== null && keys.legacyKey.length !== 32) {
      throw new IronMeshError(
        "STORE_BAD_KEY",
        "data.db legacy storage key must be 32 bytes or null",
        "pass the key returned by deriveLegacyStorageKey(), or null",
        ExitCode.USAGE,
      );
    }
    this.#storageKey = keys.storageKey.slice();
    this.#legacyKey = keys.legacyKey ? keys.legacyKey.slice() : null;
    this.#rng = rng;
  }

  /** Whether a legacy key is configured. */
  get hasLegacyKey(): boolean {
    return this.#legacyKey !== null;
  }

  /** `IMSTOREv2\0 ‖ SecretBox(payload)`; an empty payload is returned as-is (unencrypted). */
  seal(payload: Uint8Array): Uint8Array {
    if (payload.length === 0) return new Uint8Array(0);
    const nonce = this.#rng.bytes(24);
    return concatBytes(STORAGE_V2_MAGIC, secretBoxSeal(payload, this.#storageKey, nonce));
  }

  /** Read a stored payload: prefixed → key v2; unprefixed → legacy key, else raw bytes. */
  open(value: unknown): OpenedPayload {
    const blob = columnBytes(value);
    if (blob.length === 0) return { payload: blob, status: "empty" };
    if (hasV2Magic(blob)) {
      const pt = secretBoxOpen(blob.subarray(STORAGE_V2_MAGIC.length), this.#storageKey);
      return pt ? { payload: pt, status: "v2" } : { payload: blob, status: "undecryptable" };
    }
    const legacy = this.openLegacy(blob);
    return legacy ? { payload: legacy, status: "legacy" } : { payload: blob, status: "plain" };
  }

  /** Open an unprefixed blob with the legacy key; null when there is none or it fails. */
  openLegacy(blob: Uint8Array): Uint8Array | null {
    if (!this.#legacyKey || hasV2Magic(blob)) return null;
    return secretBoxOpen(blob, this.#legacyKey);
  }

  /** Overwrite the keys (the cipher is unusable afterwards). */
  wipe(): void {
    wipe(this.#storageKey, this.#legacyKey);
  }
}
