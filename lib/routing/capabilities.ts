/**
 * Capabilities (PROTOCOL-0.9 §9.1, §13; `capabilities.py`, `routing.py`, `bridge.py`):
 * signed CAPABILITY_ANNOUNCE envelopes, their verification, the registry of local and remote
 * capability sets with `fnmatch` lookup, and the choice of a node for `send_to_capability`.
 *
 * Wire body (COMPACT, insertion order): `{"origin","capabilities","announced_at","version",
 * "signature"}`; `signature` = Ed25519 over the 36-byte `SIG_CTX_CAPABILITY_ANNOUNCE` ‖
 * CANON(`{announced_at (float), capabilities, origin, version}`), rebuilt on receipt from the
 * filtered capability list. Receiving follows the reference's order and audit reasons
 * (`missing-sig`, `unknown-origin`, `stale`, `bad-sig`); verified envelopes are cached verbatim
 * per origin and replayed to the other neighbours while younger than 300 s.
 *
 * Ours: a signed announce dated more than 30 s ahead is refused (`future`, §18.10); the
 * `origin|announced_at` dedup key is recorded only after the signature verified (the reference
 * records it first, so a forged copy could suppress the genuine one); an announce older than
 * the newest verified one of the same origin is ignored; a new verified envelope is flagged for
 * immediate relay (the reference waits for its next 60 s round).
 */
import type { Clock, Rng } from "../clock.ts";
import { SIG_CTX_CAPABILITY_ANNOUNCE } from "../crypto/contexts.ts";
import { fromB64, utf8 } from "../crypto/sodium.ts";
import { canonicalJson, codePointCompare, compactJson } from "../json/canonical.ts";
import { JsonError, parseJson } from "../json/parse.ts";
import { PyFloat } from "../json/py_float.ts";
import { pyStr, pyStrip } from "../trust/capability_hash.ts";
import { b64Encode } from "../wire/v09/envelope.ts";
import { type Ed25519Signer, nodeVerifier } from "../wire/v09/frame.ts";
import { type MeshEvent, meshEvent } from "./events.ts";
import { compileGlob } from "./glob.ts";

/** The only announce version. */
export const CAPABILITY_ANNOUNCE_VERSION = 1;
/** Capabilities kept from one announce. */
export const MAX_CAPABILITIES = 1024;
/** Largest accepted CAPABILITY_ANNOUNCE payload. */
export const MAX_CAPABILITY_ANNOUNCE_BYTES = 1_048_576;
/** Signed announces older than this are refused and no longer relayed (seconds). */
export const CAPABILITY_ANNOUNCE_MAX_AGE_S = 300;
/** Ours: signed announces dated further ahead than this are refused (seconds). */
export const CAPABILITY_ANNOUNCE_MAX_FUTURE_S = 30;
/** First announcement after start (seconds). */
export const CAPABILITY_ANNOUNCE_FIRST_DELAY_S = 10;
/** Default `--capability-announce-interval` (seconds). */
export const CAPABILITY_ANNOUNCE_INTERVAL_S = 60;
/** Entries of the `origin|announced_at` dedup LRU. */
export const ANNOUNCE_DEDUP_MAX = 4096;
/** Entries of the verified-envelope cache. */
export const SIGNED_ANNOUNCE_CACHE_MAX = 4096;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The exact signed body: CANON of `{announced_at: float, capabilities (as given), origin, version}`. */
export function capabilityAnnounceCanonical(
  origin: string,
  capabilities: readonly string[],
  announcedAt: number,
  version = CAPABILITY_ANNOUNCE_VERSION,
): Uint8Array {
  return utf8(canonicalJson({
    announced_at: new PyFloat(announcedAt),
    capabilities: [...capabilities],
    origin,
    version,
  }));
}

/** The exact bytes Ed25519 signs: the 36-byte context ‖ the canonical body. */
export function capabilityAnnounceSignedMessage(
  origin: string,
  capabilities: readonly string[],
  announcedAt: number,
  version = CAPABILITY_ANNOUNCE_VERSION,
): Uint8Array {
  const body = capabilityAnnounceCanonical(origin, capabilities, announcedAt, version);
  const out = new Uint8Array(SIG_CTX_CAPABILITY_ANNOUNCE.length + body.length);
  out.set(SIG_CTX_CAPABILITY_ANNOUNCE, 0);
  out.set(body, SIG_CTX_CAPABILITY_ANNOUNCE.length);
  return out;
}

/** `set_local`'s normalisation: `str()`, Python `strip()`, drop empties and duplicates, sort by code point. */
export function normalizeCapabilities(caps: Iterable<unknown>): string[] {
  const out = new Set<string>();
  for (const c of caps) {
    if (c === null || c === undefined || c === false || c === "" || c === 0) continue;
    const s = pyStrip(pyStr(c));
    if (s) out.add(s);
  }
  return [...out].sort(codePointCompare);
}

/** What `buildCapabilityAnnounce` needs. */
export interface CapabilityAnnounceInput {
  /** The origin's identity key. */
  signer: Ed25519Signer;
  /** The origin's node id. */
  origin: string;
  /** Its capabilities (normalised and sorted here, as the reference announces `sorted(local)`). */
  capabilities: Iterable<string>;
  /** Wall-clock seconds (written as a Python float). */
  announcedAt: number;
}

/** A freshly signed CAPABILITY_ANNOUNCE payload (COMPACT, the reference's key order). */
export function buildCapabilityAnnounce(input: CapabilityAnnounceInput): Uint8Array {
  const caps = normalizeCapabilities(input.capabilities);
  const signature = input.signer.sign(
    capabilityAnnounceSignedMessage(input.origin, caps, input.announcedAt),
  );
  return encoder.encode(compactJson({
    origin: input.origin,
    capabilities: caps,
    announced_at: new PyFloat(input.announcedAt),
    version: CAPABILITY_ANNOUNCE_VERSION,
    signature: b64Encode(signature),
  }));
}

/** The legacy unsigned form `{"origin","capabilities"}` (direct neighbours only). */
export function buildLegacyCapabilityAnnounce(
  origin: string,
  capabilities: Iterable<string>,
): Uint8Array {
  return encoder.encode(compactJson({ origin, capabilities: normalizeCapabilities(capabilities) }));
}

/** A parsed announce, filtered like the reference. */
export interface ParsedCapabilityAnnounce {
  /** `origin`, defaulting to the sending peer. */
  origin: string;
  /** Non-empty strings only, at most 1024, in the sent order. */
  capabilities: string[];
  /** The `signature` string when present and non-empty. */
  signature?: string;
  /** `announced_at` when numeric. */
  announcedAt?: number;
  /** `version` when an integer. */
  version?: number;
  /** Entries dropped by the filter or the 1024 cap. */
  dropped: number;
}

/** A CAPABILITY_ANNOUNCE that cannot be used. */
export class CapabilityAnnounceError extends Error {
  constructor(readonly reason: "too-large" | "malformed", message: string) {
    super(message);
    this.name = "CapabilityAnnounceError";
  }
}

/** Parse a received payload (`fromPeer` is the default origin). Throws CapabilityAnnounceError. */
export function parseCapabilityAnnounce(
  payload: Uint8Array,
  fromPeer: string,
): ParsedCapabilityAnnounce {
  if (payload.length > MAX_CAPABILITY_ANNOUNCE_BYTES) {
    throw new CapabilityAnnounceError(
      "too-large",
      `CAPABILITY_ANNOUNCE of ${payload.length} bytes`,
    );
  }
  let data: unknown;
  try {
    data = parseJson(decoder.decode(payload), { preserveNumbers: true });
  } catch (e) {
    const why = e instanceof JsonError ? e.message : "not UTF-8";
    throw new CapabilityAnnounceError("malformed", `CAPABILITY_ANNOUNCE: ${why}`);
  }
  if (data === null || typeof data !== "object" || Array.isArray(data) || data instanceof PyFloat) {
    throw new CapabilityAnnounceError("malformed", "CAPABILITY_ANNOUNCE is not a JSON object");
  }
  const o = data as Record<string, unknown>;
  const origin = o.origin ?? fromPeer;
  if (typeof origin !== "string" || origin === "") {
    throw new CapabilityAnnounceError("malformed", "origin is not a non-empty string");
  }
  const raw = o.capabilities ?? [];
  if (!Array.isArray(raw)) {
    throw new CapabilityAnnounceError("malformed", "capabilities is not a list");
  }
  const kept = raw.filter((c): c is string => typeof c === "string" && c !== "");
  const capabilities = kept.slice(0, MAX_CAPABILITIES);
  const out: ParsedCapabilityAnnounce = {
    origin,
    capabilities,
    dropped: raw.length - capabilities.length,
  };
  if (typeof o.signature === "string" && o.signature !== "") out.signature = o.signature;
  const at = o.announced_at instanceof PyFloat ? o.announced_at.value : o.announced_at;
  if (typeof at === "number" && Number.isFinite(at)) out.announcedAt = at;
  if (typeof o.version === "number" && Number.isSafeInteger(o.version)) out.version = o.version;
  return out;
}

/** Verify a parsed signed announce with the origin's Ed25519 key (no freshness check). */
export function verifyCapabilityAnnounce(
  a: ParsedCapabilityAnnounce,
  originPublicKey: Uint8Array,
): boolean {
  if (a.signature === undefined || a.announcedAt === undefined || a.version === undefined) {
    return false;
  }
  let sig: Uint8Array;
  try {
    sig = fromB64(a.signature);
  } catch {
    return false;
  }
  let verifier;
  try {
    verifier = nodeVerifier(originPublicKey);
  } catch {
    return false;
  }
  return verifier.verify(
    sig,
    capabilityAnnounceSignedMessage(a.origin, a.capabilities, a.announcedAt, a.version),
  );
}

/** Why an announce was not applied. */
export type CapabilityAnnounceRejection =
  | "too-large"
  | "malformed"
  | "own-origin"
  | "missing-sig"
  | "unsigned-refused"
  | "unknown-origin"
  | "stale"
  | "future"
  | "duplicate"
  | "superseded"
  | "bad-sig";

/** Result of `CapabilityRegistry.onAnnounce`. */
export interface CapabilityAnnounceResult {
  accepted: boolean;
  reason?: CapabilityAnnounceRejection;
  /** The announced origin (when it could be read). */
  origin?: string;
  /** The announced, filtered capability list (feed it to the trust store's capability binding). */
  capabilities?: string[];
  /** The origin's remote set changed (save capabilities.json). */
  changed: boolean;
  /** A verified signed envelope seen for the first time: forward it (see `relayTargets`). */
  relay: boolean;
  /** Audit events to record. */
  auditEvents: MeshEvent[];
}

/** A cached verified envelope. */
export interface CachedEnvelope {
  origin: string;
  /** The payload exactly as received (replayed byte for byte). */
  payload: Uint8Array;
  announcedAt: number;
}

/** One `find` hit. */
export interface CapabilityMatch {
  nodeId: string;
  capability: string;
}

/** `send_to_capability` strategies. */
export type CapabilityStrategy = "first" | "random" | "all";

/** Inputs of `select`. */
export interface SelectOptions {
  /** Randomness for `random` (required for it). */
  rng?: Rng;
  /** Only these nodes are candidates (e.g. reachable now). Default: all. */
  isCandidate?: (nodeId: string) => boolean;
  /** Lower is better (e.g. RTT in ms); unranked nodes come last. Orders `first` and `all`. */
  rank?: (nodeId: string) => number | undefined;
}

/** Options of the registry. */
export interface CapabilityRegistryOptions {
  selfId: string;
  clock: Clock;
  /** Identity key of a node (live peers, then the trust store); null when unknown. */
  keyLookup: (nodeId: string) => Uint8Array | null;
  /** Default 300 s. */
  maxAgeS?: number;
  /** Default 30 s. */
  maxFutureS?: number;
  /** Refuse unsigned announces even from the origin itself (default false, as the reference). */
  requireSigned?: boolean;
}

function lruTouch<K, V>(m: Map<K, V>, k: K, v: V, max: number): void {
  m.delete(k);
  m.set(k, v);
  while (m.size > max) m.delete(m.keys().next().value!);
}

/** Local and remote capability sets of one node. */
export class CapabilityRegistry {
  readonly selfId: string;
  readonly maxAgeS: number;
  readonly maxFutureS: number;
  readonly #clock: Clock;
  readonly #keyLookup: (nodeId: string) => Uint8Array | null;
  readonly #requireSigned: boolean;
  #local = new Set<string>();
  readonly #remote = new Map<string, Set<string>>();
  readonly #dedup = new Map<string, number>();
  readonly #cache = new Map<string, CachedEnvelope>();
  readonly #newest = new Map<string, number>();

  constructor(opts: CapabilityRegistryOptions) {
    this.selfId = opts.selfId;
    this.#clock = opts.clock;
    this.#keyLookup = opts.keyLookup;
    this.maxAgeS = opts.maxAgeS ?? CAPABILITY_ANNOUNCE_MAX_AGE_S;
    this.maxFutureS = opts.maxFutureS ?? CAPABILITY_ANNOUNCE_MAX_FUTURE_S;
    this.#requireSigned = opts.requireSigned ?? false;
  }

  // ----- local -----

  /** Replace the local set (`--capability` values; `set_local`). Returns whether it changed. */
  setLocal(capabilities: Iterable<unknown>): boolean {
    const next = new Set(normalizeCapabilities(capabilities));
    const changed = next.size !== this.#local.size || [...next].some((c) => !this.#local.has(c));
    this.#local = next;
    return changed;
  }

  /** The local set, sorted by code point. */
  localCapabilities(): string[] {
    return [...this.#local].sort(codePointCompare);
  }

  /** A freshly signed announce of the local set, or null when it is empty (nothing is sent). */
  buildLocalAnnounce(
    signer: Ed25519Signer,
    announcedAt: number = this.#clock.now(),
  ): Uint8Array | null {
    if (this.#local.size === 0) return null;
    return buildCapabilityAnnounce({
      signer,
      origin: this.selfId,
      capabilities: this.#local,
      announcedAt,
    });
  }

  // ----- remote -----

  /** Handle a CAPABILITY_ANNOUNCE payload received from the direct neighbour `fromPeer`. */
  onAnnounce(fromPeer: string, payload: Uint8Array): CapabilityAnnounceResult {
    const res: CapabilityAnnounceResult = {
      accepted: false,
      changed: false,
      relay: false,
      auditEvents: [],
    };
    let a: ParsedCapabilityAnnounce;
    try {
      a = parseCapabilityAnnounce(payload, fromPeer);
    } catch (e) {
      res.reason = (e as CapabilityAnnounceError).reason ?? "malformed";
      return res;
    }
    res.origin = a.origin;
    res.capabilities = a.capabilities;
    if (a.origin === this.selfId) {
      res.reason = "own-origin"; // our own announce echoed back: nothing to learn or relay
      return res;
    }
    const bad = (reason: CapabilityAnnounceRejection, extra: Record<string, unknown> = {}) => {
      res.reason = reason;
      res.auditEvents.push(meshEvent("CAPABILITY_ANNOUNCE_BAD_SIG", {
        peer_id: fromPeer,
        origin: a.origin,
        reason,
        ...extra,
      }));
      return res;
    };
    if (a.signature === undefined) {
      if (a.origin !== fromPeer) return bad("missing-sig");
      if (this.#requireSigned) return bad("unsigned-refused");
    } else {
      const key = this.#keyLookup(a.origin);
      if (key === null) return bad("unknown-origin");
      if (a.announcedAt === undefined || a.version === undefined) {
        res.reason = "malformed";
        return res;
      }
      const now = this.#clock.now();
      const age = now - a.announcedAt;
      if (age > this.maxAgeS) return bad("stale", { age });
      if (-age > this.maxFutureS) return bad("future", { age });
      const dedupKey = `${a.origin}|${a.announcedAt.toFixed(6)}`;
      if (this.#dedup.has(dedupKey)) {
        lruTouch(this.#dedup, dedupKey, now, ANNOUNCE_DEDUP_MAX);
        res.reason = "duplicate";
        return res;
      }
      const newest = this.#newest.get(a.origin);
      if (newest !== undefined && a.announcedAt < newest) {
        res.reason = "superseded";
        return res;
      }
      if (!verifyCapabilityAnnounce(a, key)) return bad("bad-sig");
      lruTouch(this.#dedup, dedupKey, now, ANNOUNCE_DEDUP_MAX);
      lruTouch(this.#newest, a.origin, a.announcedAt, SIGNED_ANNOUNCE_CACHE_MAX);
      lruTouch(this.#cache, a.origin, {
        origin: a.origin,
        payload: payload.slice(),
        announcedAt: a.announcedAt,
      }, SIGNED_ANNOUNCE_CACHE_MAX);
      res.relay = true;
    }
    res.accepted = true;
    res.changed = this.#learnRemote(a.origin, a.capabilities);
    if (res.changed) {
      res.auditEvents.push(meshEvent("CAPABILITY_LEARNED", {
        origin: a.origin,
        capabilities: [...a.capabilities],
      }));
    }
    return res;
  }

  /** `learn_remote`: replace the set; true when it differs from the previous one. */
  #learnRemote(nodeId: string, capabilities: string[]): boolean {
    const next = new Set(capabilities.filter((c) => typeof c === "string" && c !== ""));
    const old = this.#remote.get(nodeId) ?? new Set<string>();
    const changed = next.size !== old.size || [...next].some((c) => !old.has(c)) ||
      !this.#remote.has(nodeId);
    this.#remote.set(nodeId, next);
    return changed;
  }

  /** Verified envelopes still younger than the freshness window, to replay byte for byte. */
  cachedEnvelopes(now: number = this.#clock.now()): CachedEnvelope[] {
    const out: CachedEnvelope[] = [];
    for (const [origin, e] of this.#cache) {
      if (now - e.announcedAt > this.maxAgeS) this.#cache.delete(origin);
      else out.push(e);
    }
    return out;
  }

  /** Who an envelope of `origin` goes to: every neighbour except the origin and the sender. */
  relayTargets(origin: string, neighbors: Iterable<string>, fromPeer?: string): string[] {
    return [...neighbors].filter((n) => n !== origin && n !== fromPeer && n !== this.selfId);
  }

  /** The remote set of `nodeId`, sorted (empty when unknown). */
  remoteCapabilities(nodeId: string): string[] {
    return [...(this.#remote.get(nodeId) ?? [])].sort(codePointCompare);
  }

  /** Node ids with a remote set. */
  remoteNodes(): string[] {
    return [...this.#remote.keys()];
  }

  /** Drop what is known about `nodeId`. */
  forgetRemote(nodeId: string): void {
    this.#remote.delete(nodeId);
    this.#cache.delete(nodeId);
  }

  /** Every node's set, this node first (`all()`). */
  all(): Record<string, string[]> {
    const out: Record<string, string[]> = { [this.selfId]: this.localCapabilities() };
    for (const id of this.#remote.keys()) out[id] = this.remoteCapabilities(id);
    return out;
  }

  // ----- query -----

  /** `find(pattern)`: `(node, capability)` pairs matching the glob, local first. */
  find(pattern: string): CapabilityMatch[] {
    const match = compileGlob(pattern);
    const out: CapabilityMatch[] = [];
    for (const c of this.localCapabilities()) {
      if (match(c)) out.push({ nodeId: this.selfId, capability: c });
    }
    for (const id of this.#remote.keys()) {
      for (const c of this.remoteCapabilities(id)) {
        if (match(c)) out.push({ nodeId: id, capability: c });
      }
    }
    return out;
  }

  /**
   * The nodes `send_to_capability(pattern, strategy)` sends to (never this node): `first` → the
   * best-ranked candidate, `random` → one uniformly at random, `all` → every candidate.
   */
  select(pattern: string, strategy: CapabilityStrategy, opts: SelectOptions = {}): string[] {
    let ids = [...new Set(this.find(pattern).map((m) => m.nodeId))]
      .filter((id) => id !== this.selfId && (opts.isCandidate?.(id) ?? true));
    if (opts.rank) {
      const rank = opts.rank;
      const key = (id: string) => rank(id) ?? Infinity;
      ids = ids.map((id, i) => ({ id, i, r: key(id) }))
        .sort((x, y) => x.r - y.r || x.i - y.i || 0)
        .map((x) => x.id);
    }
    if (ids.length === 0) return [];
    switch (strategy) {
      case "first":
        return [ids[0]];
      case "all":
        return ids;
      case "random": {
        if (!opts.rng) throw new RangeError("strategy random needs an rng");
        return [ids[randomIndex(opts.rng, ids.length)]];
      }
      default:
        throw new RangeError(`unknown strategy ${strategy}`);
    }
  }

  // ----- persistence (see persist.ts) -----

  /** The state capabilities.json stores. */
  snapshot(): { local: string[]; remote: Record<string, string[]> } {
    const remote: Record<string, string[]> = {};
    for (const id of this.#remote.keys()) remote[id] = this.remoteCapabilities(id);
    return { local: this.localCapabilities(), remote };
  }

  /** Restore a loaded state: the local set and the remote sets (replacing what is held). */
  restore(state: { local?: Iterable<string>; remote?: Record<string, Iterable<string>> }): void {
    if (state.local) this.#local = new Set([...state.local].filter((c) => typeof c === "string"));
    for (const [id, caps] of Object.entries(state.remote ?? {})) {
      if (id === this.selfId || id === "") continue;
      this.#remote.set(id, new Set([...caps].filter((c) => typeof c === "string" && c !== "")));
    }
  }
}

/** A uniform index in `[0, n)` from 32-bit draws (rejection sampling, no modulo bias). */
export function randomIndex(rng: Rng, n: number): number {
  if (!Number.isSafeInteger(n) || n <= 0 || n > 2 ** 32) throw new RangeError("bad range");
  const limit = Math.floor(2 ** 32 / n) * n;
  for (;;) {
    const b = rng.bytes(4);
    const v = ((b[0] << 24) >>> 0) + (b[1] << 16) + (b[2] << 8) + b[3];
    if (v < limit) return v % n;
  }
}
