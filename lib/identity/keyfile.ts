/**
 * keys.json exactly as the Python reference writes and reads it (PROTOCOL-0.9 §11.2):
 * v3 "master-seed-v1" (default) and legacy v1/v2, encrypted (Argon2id + SecretBox)
 * or plaintext. INDENT2 JSON, keys in the reference's insertion order.
 */
import { type Rng, systemRng } from "../clock.ts";
import {
  ARGON2_MODERATE,
  argon2id,
  type Argon2Params,
  constantTimeEqual,
  fromB64,
  secretBoxOpen,
  secretBoxSeal,
  toB64,
  utf8,
  wipe,
} from "../crypto/sodium.ts";
import { ExitCode, IronMeshError } from "../errors.ts";
import { indent2Json } from "../json/canonical.ts";
import { Identity, verifyX25519Binding } from "./identity.ts";
import { nodeIdOf } from "./node_id.ts";

/** The format string of v3 key files. */
export const MASTER_SEED_FORMAT = "master-seed-v1";

/** What can be read from a key file without its passphrase. */
export interface KeyFileSummary {
  version: number;
  format: string;
  name: string;
  encrypted: boolean;
  ed25519PublicB64: string;
  nodeId: string;
  x25519PublicB64: string | null;
}

/** A parsed (not yet decrypted) key file. */
export interface KeyFile {
  raw: Record<string, unknown>;
  summary: KeyFileSummary;
}

function malformed(path: string, what: string): IronMeshError {
  return new IronMeshError(
    "KEYS_MALFORMED",
    `key file ${path} is damaged: ${what}`,
    "restore keys.json from a backup ('ironmesh restore'), or move it aside and run 'ironmesh keys generate'",
    ExitCode.BAD_KEYFILE,
  );
}

function b64Field(
  raw: Record<string, unknown>,
  key: string,
  len: number | null,
  path: string,
): Uint8Array {
  const v = raw[key];
  if (typeof v !== "string" || v.length > 200) {
    throw malformed(path, `field "${key}" is missing or not base64`);
  }
  let bytes: Uint8Array;
  try {
    bytes = fromB64(v);
  } catch {
    throw malformed(path, `field "${key}" is not valid base64`);
  }
  if (len !== null && bytes.length !== len) {
    throw malformed(path, `field "${key}" has ${bytes.length} bytes, expected ${len}`);
  }
  return bytes;
}

/** Parse key-file text; validates the shape and the public key, decrypts nothing. */
export function parseKeyFile(text: string, path = "keys.json"): KeyFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw malformed(
      path,
      text.trim() === "" ? "the file is empty" : "not valid JSON (truncated or corrupted)",
    );
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw malformed(path, "the top level is not a JSON object");
  }
  const obj = raw as Record<string, unknown>;
  const version = obj.version === undefined ? 1 : obj.version;
  if (typeof version !== "number" || !Number.isInteger(version)) {
    throw malformed(path, `"version" is not an integer`);
  }
  if (version < 1 || version > 3) {
    throw new IronMeshError(
      "KEYS_UNSUPPORTED_VERSION",
      `key file ${path} has format version ${version}; this ironmesh reads versions 1 to 3`,
      "upgrade ironmesh, or restore a key file written by IronMesh 0.9",
      ExitCode.UNSUPPORTED,
    );
  }
  const format = typeof obj.format === "string" ? obj.format : "";
  if (version === 3 && format !== MASTER_SEED_FORMAT) {
    throw new IronMeshError(
      "KEYS_UNSUPPORTED_VERSION",
      `key file ${path} has unknown format "${format}"`,
      `this ironmesh reads "${MASTER_SEED_FORMAT}" v3 files and v1/v2 files`,
      ExitCode.UNSUPPORTED,
    );
  }
  const pub = b64Field(obj, "ed25519_public", 32, path);
  const encrypted = obj.encrypted === true;
  if (encrypted) {
    b64Field(obj, "salt", 16, path);
    b64Field(obj, "ed25519_secret_encrypted", 72, path);
  } else b64Field(obj, "ed25519_secret", 32, path);
  return {
    raw: obj,
    summary: {
      version,
      format: version === 3 ? MASTER_SEED_FORMAT : `legacy-v${version}`,
      name: typeof obj.agent_name === "string" ? obj.agent_name : "",
      encrypted,
      ed25519PublicB64: obj.ed25519_public as string,
      nodeId: nodeIdOf(pub),
      x25519PublicB64: typeof obj.x25519_public === "string" ? obj.x25519_public : null,
    },
  };
}

/** The error for a passphrase that does not open the key file. */
export function wrongPassphrase(path: string): IronMeshError {
  return new IronMeshError(
    "KEYS_WRONG_PASSPHRASE",
    `Wrong passphrase or corrupted key file (${path})`,
    "use the passphrase the key was created with (--passphrase-file, IRONMESH_PASSPHRASE_FILE or IRONMESH_PASSPHRASE)",
    ExitCode.WRONG_PASSPHRASE,
  );
}

/** Hooks for key derivation (progress display) and test parameters. */
export interface KdfOptions {
  argon2?: Argon2Params;
  /** Called around the Argon2id derivation (about a second at the default parameters). */
  onDerive?: (phase: "start" | "end") => void;
}

function deriveBoxKey(passphrase: string, salt: Uint8Array, opts: KdfOptions): Uint8Array {
  opts.onDerive?.("start");
  try {
    return argon2id(utf8(passphrase), salt, opts.argon2 ?? ARGON2_MODERATE);
  } finally {
    opts.onDerive?.("end");
  }
}

/** Decrypt and fully check a key file (the reference's load checks). */
export function openKeyFile(
  kf: KeyFile,
  passphrase: string | null,
  path = "keys.json",
  opts: KdfOptions = {},
): Identity {
  const raw = kf.raw;
  let seed: Uint8Array;
  let xSeed: Uint8Array | null = null;
  if (kf.summary.encrypted) {
    if (passphrase === null) {
      throw new IronMeshError(
        "PASSPHRASE_REQUIRED",
        `key file ${path} is encrypted and no passphrase was given`,
        "pass --passphrase-file FILE or set IRONMESH_PASSPHRASE_FILE (or run on a terminal to be asked)",
        ExitCode.BAD_PASSPHRASE,
      );
    }
    const key = deriveBoxKey(passphrase, b64Field(raw, "salt", 16, path), opts);
    try {
      const opened = secretBoxOpen(b64Field(raw, "ed25519_secret_encrypted", 72, path), key);
      if (!opened || opened.length !== 32) throw wrongPassphrase(path);
      seed = opened;
      if (kf.summary.version === 3 && raw.x25519_seed_encrypted !== undefined) {
        xSeed = secretBoxOpen(b64Field(raw, "x25519_seed_encrypted", 72, path), key);
        if (!xSeed || xSeed.length !== 32) throw wrongPassphrase(path);
      }
    } finally {
      wipe(key);
    }
  } else {
    seed = b64Field(raw, "ed25519_secret", 32, path);
    if (kf.summary.version === 3 && raw.x25519_seed !== undefined) {
      xSeed = b64Field(raw, "x25519_seed", 32, path);
    }
  }
  const hkdfSalt = kf.summary.version === 3 ? b64Field(raw, "hkdf_salt", 16, path) : null;
  const id = new Identity(seed, kf.summary.name, hkdfSalt);
  wipe(seed);
  if (!constantTimeEqual(id.publicKey, fromB64(kf.summary.ed25519PublicB64))) {
    id.wipe();
    throw wrongPassphrase(path);
  }
  if (hkdfSalt) {
    const bad = (what: string) => {
      id.wipe();
      return malformed(path, what);
    };
    if (xSeed && !constantTimeEqual(xSeed, id.e2e.secretKey)) {
      throw bad("x25519_seed does not match its HKDF derivation");
    }
    if (typeof raw.x25519_public === "string" && raw.x25519_public !== toB64(id.e2e.publicKey)) {
      throw bad("x25519_public does not match x25519_seed");
    }
    if (typeof raw.x25519_binding_signature === "string") {
      const sig = b64Field(raw, "x25519_binding_signature", 64, path);
      if (!verifyX25519Binding(id.e2e.publicKey, sig, id.publicKey)) {
        throw bad("x25519_binding_signature is invalid");
      }
    }
  }
  wipe(xSeed);
  return id;
}

/** Options for writing a key file. */
export interface EncodeOptions extends KdfOptions {
  /** null writes a plaintext file (the reference's --plaintext-keys). */
  passphrase: string | null;
  rng?: Rng;
}

/** Serialize an identity as a v3 master-seed-v1 key file, byte-identical to the reference's save_keys. */
export function encodeKeyFile(id: Identity, opts: EncodeOptions): string {
  if (!id.hkdfSalt) {
    throw new Error("encodeKeyFile needs a master-seed identity (migrate v2 first)");
  }
  const rng = opts.rng ?? systemRng;
  const out: Record<string, unknown> = {
    version: 3,
    agent_name: id.name,
    ed25519_public: toB64(id.publicKey),
    format: MASTER_SEED_FORMAT,
    hkdf_salt: toB64(id.hkdfSalt),
    x25519_public: toB64(id.e2e.publicKey),
    x25519_binding_signature: toB64(id.e2e.bindingSignature!),
  };
  if (opts.passphrase === null) {
    out.ed25519_secret = toB64(id.seed);
    out.encrypted = false;
    out.x25519_seed = toB64(id.e2e.secretKey);
  } else {
    const salt = rng.bytes(16);
    const key = deriveBoxKey(opts.passphrase, salt, opts);
    try {
      out.ed25519_secret_encrypted = toB64(secretBoxSeal(id.seed, key, rng.bytes(24)));
      out.salt = toB64(salt);
      out.encrypted = true;
      out.x25519_seed_encrypted = toB64(secretBoxSeal(id.e2e.secretKey, key, rng.bytes(24)));
    } finally {
      wipe(key);
    }
  }
  return indent2Json(out);
}

/** A fresh master-seed identity from the rng (seed, then hkdf_salt — the reference's draw order). */
export function generateIdentity(name: string, rng: Rng = systemRng): Identity {
  const seed = rng.bytes(32);
  const salt = rng.bytes(16);
  const id = new Identity(seed, name, salt);
  wipe(seed);
  return id;
}

/** Migrate a v1/v2 identity to master-seed-v1: same seed (same node_id), new hkdf_salt. */
export function migrateToMasterSeed(id: Identity, rng: Rng = systemRng): Identity {
  if (id.hkdfSalt) return id;
  return new Identity(id.seed, id.name, rng.bytes(16));
}
