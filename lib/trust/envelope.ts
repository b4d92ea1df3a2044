/**
 * The known_peers.json envelope (PROTOCOL-0.9 §11.3), sans I/O.
 * v2: INDENT2 `{"version": 2, "ciphertext": b64(nonce‖tag‖ct), "_mac": hex}`, no
 * trailing newline; `_mac` = HMAC(trust MAC key, "v=2|c=" ‖ ciphertext); the
 * plaintext is CANON `{"peers", "revoked"}` under the trust box key.
 * v1 (read only): plaintext with `_mac` over CANON of the object without `_mac`
 * (or under the legacy home-directory key), or no `_mac` at all.
 */
import { legacyTrustMacKey, trustBoxKey, trustMacKey } from "../crypto/kdf.ts";
import {
  constantTimeEqualString,
  fromB64,
  fromUtf8,
  hmacSha256,
  secretBoxOpen,
  secretBoxSeal,
  toB64,
  toHex,
  utf8,
} from "../crypto/sodium.ts";
import { canonicalJson, indent2Json } from "../json/canonical.ts";
import { parseJson } from "../json/parse.ts";
import { numberField, type RawRecord } from "./records.ts";

/** The current envelope version we write. */
export const TRUST_ENVELOPE_VERSION = 2;

/** The two keys derived from the identity seed (§3.3). */
export interface TrustKeys {
  mac: Uint8Array;
  box: Uint8Array;
}

/** Derive the trust MAC and box keys from the 32-byte identity seed. */
export function trustKeys(seed: Uint8Array): TrustKeys {
  return { mac: trustMacKey(seed), box: trustBoxKey(seed) };
}

/** How a file loaded: v2, v1 under the seed key, v1 under the legacy home-dir key, or MAC-less. */
export type EnvelopeFormat = "v2" | "v1" | "v1-legacy-key" | "v1-unauthenticated";

/** Why a file could not be loaded (each latches the store read-only). */
export type EnvelopeFailure = "mac" | "decrypt" | "json" | "structure" | "version";

/** The decoded plaintext: peers, revocations and any other top-level keys (kept verbatim). */
export interface TrustPlain {
  peers: Record<string, RawRecord>;
  revoked: Record<string, RawRecord>;
  extras: Record<string, unknown>;
}

/** Result of `decodeEnvelope`. */
export type DecodeResult =
  | { ok: true; format: EnvelopeFormat; plain: TrustPlain }
  | { ok: false; failure: EnvelopeFailure; reason: string };

/** The string the v2 MAC covers. */
export function v2MacInput(ciphertextB64: string): string {
  return `v=${TRUST_ENVELOPE_VERSION}|c=${ciphertextB64}`;
}

/** Lowercase hex HMAC-SHA256 of a UTF-8 string. */
export function macHex(key: Uint8Array, text: string): string {
  return toHex(hmacSha256(key, utf8(text)));
}

/** CANON plaintext of the inner object (`peers`, `revoked`, then extras). */
export function encodeInner(plain: TrustPlain): string {
  return canonicalJson({ ...plain.extras, peers: plain.peers, revoked: plain.revoked });
}

/** Build the v2 file text for an inner CANON string with the given 24-byte nonce. */
export function encodeEnvelope(innerText: string, keys: TrustKeys, nonce: Uint8Array): string {
  const ciphertext = toB64(secretBoxSeal(utf8(innerText), keys.box, nonce));
  return indent2Json({
    version: TRUST_ENVELOPE_VERSION,
    ciphertext,
    _mac: macHex(keys.mac, v2MacInput(ciphertext)),
  });
}

const MSG = {
  mac:
    "known_peers.json failed its MAC check — it was tampered with or written by another identity",
  decrypt: "known_peers.json passed its MAC check but does not decrypt under this identity",
  json: "known_peers.json is not valid JSON",
  structure: "known_peers.json does not have the structure of a trust store",
} as const;

function fail(failure: EnvelopeFailure, reason?: string): DecodeResult {
  return { ok: false, failure, reason: reason ?? MSG[failure as keyof typeof MSG] };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Check peers/revoked are objects of objects and split off the extra keys. */
function toPlain(
  peers: unknown,
  revoked: unknown,
  extras: Record<string, unknown>,
): TrustPlain | null {
  if (!isObject(peers) || !isObject(revoked)) return null;
  if (!Object.values(peers).every(isObject) || !Object.values(revoked).every(isObject)) {
    return null;
  }
  return {
    peers: peers as Record<string, RawRecord>,
    revoked: revoked as Record<string, RawRecord>,
    extras,
  };
}

function splitInner(inner: Record<string, unknown>): TrustPlain | null {
  const { peers = {}, revoked = {}, ...extras } = inner;
  return toPlain(peers, revoked, extras);
}

/** Options for `decodeEnvelope`. */
export interface DecodeOptions {
  /** Legacy v1 MAC key (`legacyTrustMacKey(home)`); accepted once, then the file is rewritten. */
  legacyMacKey?: Uint8Array;
}

/** The legacy v1 MAC key for a home directory (re-exported for callers of this module). */
export const legacyMacKeyFor = legacyTrustMacKey;

/** Decode a known_peers.json text; never throws. */
export function decodeEnvelope(
  text: string,
  keys: TrustKeys,
  opts: DecodeOptions = {},
): DecodeResult {
  let raw: unknown;
  try {
    raw = parseJson(text, { preserveNumbers: true });
  } catch {
    return fail("json");
  }
  if (!isObject(raw)) return fail("structure");

  if ("version" in raw) {
    if (numberField(raw.version) !== TRUST_ENVELOPE_VERSION) {
      return fail("version", `known_peers.json has unsupported envelope version ${raw.version}`);
    }
    const ct = raw.ciphertext, mac = raw._mac;
    if (typeof ct !== "string" || typeof mac !== "string") return fail("structure");
    if (!constantTimeEqualString(mac, macHex(keys.mac, v2MacInput(ct)))) return fail("mac");
    let boxed: Uint8Array;
    try {
      boxed = fromB64(ct);
    } catch {
      return fail("decrypt");
    }
    const pt = secretBoxOpen(boxed, keys.box);
    if (!pt) return fail("decrypt");
    let inner: unknown;
    try {
      inner = parseJson(fromUtf8(pt), { preserveNumbers: true });
    } catch {
      return fail("json", "known_peers.json decrypted to invalid JSON");
    }
    if (!isObject(inner)) return fail("structure");
    const plain = splitInner(inner);
    return plain ? { ok: true, format: "v2", plain } : fail("structure");
  }

  if ("_mac" in raw) {
    const { _mac: mac, ...body } = raw;
    if (typeof mac !== "string") return fail("structure");
    const canon = canonicalJson(body);
    let format: EnvelopeFormat | null = null;
    if (constantTimeEqualString(mac, macHex(keys.mac, canon))) format = "v1";
    else if (opts.legacyMacKey && constantTimeEqualString(mac, macHex(opts.legacyMacKey, canon))) {
      format = "v1-legacy-key";
    }
    if (!format) return fail("mac");
    const plain = "peers" in body ? splitInner(body) : toPlain(body, {}, {}); // very old form: the object is the peers map
    return plain ? { ok: true, format, plain } : fail("structure");
  }

  const plain = "peers" in raw ? splitInner(raw) : toPlain(raw, {}, {});
  return plain ? { ok: true, format: "v1-unauthenticated", plain } : fail("structure");
}
