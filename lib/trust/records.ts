/**
 * Trust-store record types (PROTOCOL-0.9 §10.1, §11.3): trust states, the typed
 * view of a peer record, audit event descriptors, and key-encoding helpers.
 * Records are kept in their raw JSON shape inside the store (so Python float-ness
 * and unknown fields survive a load → save round trip); these are the typed views.
 */
import { fromB64, toB64 } from "../crypto/sodium.ts";
import { ExitCode, IronMeshError } from "../errors.ts";
import { nodeIdOf } from "../identity/node_id.ts";
import { PyFloat } from "../json/py_float.ts";

/** The four trust states of a pinned peer. */
export type TrustState = "trusted" | "pending" | "blocked" | "pending-cap-change";

/** Every valid trust state, in the reference's order. */
export const TRUST_STATES: readonly TrustState[] = [
  "pending",
  "trusted",
  "blocked",
  "pending-cap-change",
];

/** True when `s` names one of the four trust states. */
export function isTrustState(s: unknown): s is TrustState {
  return typeof s === "string" && (TRUST_STATES as readonly string[]).includes(s);
}

/** Throw TRUST_BAD_STATE unless `s` is a trust state. */
export function requireTrustState(s: unknown): TrustState {
  if (!isTrustState(s)) {
    throw new IronMeshError(
      "TRUST_BAD_STATE",
      `invalid trust state ${JSON.stringify(s)}`,
      `use one of: ${TRUST_STATES.join(", ")}`,
      ExitCode.USAGE,
    );
  }
  return s;
}

/**
 * The state a stored `trust_state` value reads as: missing → trusted (pre-0.8.5
 * stores); an unrecognised string → pending (ours: fail closed, never trusted).
 */
export function recordState(raw: unknown): TrustState {
  if (raw === undefined || raw === null) return "trusted";
  return isTrustState(raw) ? raw : "pending";
}

/** A raw peer record exactly as stored (snake_case keys, PyFloat for Python floats). */
export type RawRecord = Record<string, unknown>;

/** A typed, read-only copy of one pinned peer. */
export interface PeerRecord {
  nodeId: string;
  /** The pinned key as stored (canonical b64 for pins we wrote). */
  pubkey: string;
  fingerprint: string;
  firstSeen?: number;
  lastSeen?: number;
  /** Effective state (missing → trusted, unrecognised → pending). */
  trustState: TrustState;
  /** `"invite"` (reference), `"operator"`, `"allow_list"` (ours), or absent for TOFU. */
  pinnedVia?: string;
  capabilityHash?: string;
  capabilitySet?: string[];
  capFirstObserved?: number;
  capabilityHashPending?: string;
  capabilitySetPending?: string[];
  capAcceptedAt?: number;
  capRejectedAt?: number;
  /** Names this node owns (§18.2 name binding). */
  names: string[];
}

/** A typed copy of one revocation. */
export interface RevocationRecord {
  nodeId: string;
  revoker: string;
  timestamp: number;
  reason: string;
}

/** One audit event the caller should log: name from §11.5 and its details. */
export interface TrustEvent {
  event: string;
  details: Record<string, unknown>;
}

/** What a store operation changed; `changed: false` means nothing was written. */
export interface TrustChange {
  changed: boolean;
  events: TrustEvent[];
}

/** A number from a raw field (PyFloat, number or bigint), else undefined. */
export function numberField(v: unknown): number | undefined {
  if (v instanceof PyFloat) return v.value;
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  return undefined;
}

function stringField(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function stringList(v: unknown): string[] | undefined {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : undefined;
}

/** The typed view of a raw record. */
export function toPeerRecord(nodeId: string, raw: RawRecord, names: string[]): PeerRecord {
  const rec: PeerRecord = {
    nodeId,
    pubkey: stringField(raw.pubkey) ?? "",
    fingerprint: stringField(raw.fingerprint) ?? "",
    trustState: recordState(raw.trust_state),
    names,
  };
  const opt = {
    firstSeen: numberField(raw.first_seen),
    lastSeen: numberField(raw.last_seen),
    pinnedVia: stringField(raw.pinned_via),
    capabilityHash: stringField(raw.capability_hash),
    capabilitySet: stringList(raw.capability_set),
    capFirstObserved: numberField(raw.cap_first_observed),
    capabilityHashPending: stringField(raw.capability_hash_pending),
    capabilitySetPending: stringList(raw.capability_set_pending),
    capAcceptedAt: numberField(raw.cap_accepted_at),
    capRejectedAt: numberField(raw.cap_rejected_at),
  };
  for (const [k, v] of Object.entries(opt)) {
    if (v !== undefined) (rec as unknown as Record<string, unknown>)[k] = v;
  }
  return rec;
}

const B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/**
 * Decode a b64 key *stored in our own MACed file* the way Python's
 * `base64.b64decode` does: characters outside the alphabet are skipped and unused
 * trailing bits ignored. Returns null when nothing sensible decodes. Never use
 * this for peer-supplied input (use `decodePresentedKey`).
 */
export function decodeStoredKey(s: unknown): Uint8Array | null {
  if (typeof s !== "string") return null;
  const clean = [...s].filter((c) => B64_ALPHABET.includes(c));
  if (clean.length % 4 === 1) return null;
  const out: number[] = [];
  let acc = 0, bits = 0;
  for (const c of clean) {
    acc = ((acc << 6) | B64_ALPHABET.indexOf(c)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
  }
  return new Uint8Array(out);
}

/** Strictly decode a peer-presented Ed25519 public key (padded standard b64, 32 bytes), or null. */
export function decodePresentedKey(s: unknown): Uint8Array | null {
  if (typeof s !== "string") return null;
  try {
    const b = fromB64(s);
    return b.length === 32 ? b : null;
  } catch {
    return null;
  }
}

/** Canonical b64 of a 32-byte key — the only form we write (§18.2). */
export function canonicalKeyB64(key: Uint8Array): string {
  return toB64(key);
}

/**
 * Strictly decode `pubkeyB64` and check it hashes to `nodeId`; returns the key
 * bytes or throws TRUST_BAD_KEY with an actionable hint.
 */
export function requireKeyForNode(nodeId: string, pubkeyB64: string): Uint8Array {
  const key = decodePresentedKey(pubkeyB64);
  if (!key) {
    throw new IronMeshError(
      "TRUST_BAD_KEY",
      "public key is not 32 bytes of standard padded base64",
      "pass the peer's identity_public exactly as `ironmesh keys info` prints it",
      ExitCode.BAD_INPUT,
    );
  }
  const derived = nodeIdOf(key);
  if (derived !== nodeId) {
    throw new IronMeshError(
      "TRUST_BAD_KEY",
      `public key belongs to node ${derived}, not ${nodeId}`,
      "a node id is the first 32 hex characters of SHA-256(public key); check both values",
      ExitCode.BAD_INPUT,
    );
  }
  return key;
}
