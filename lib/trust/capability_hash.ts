/**
 * The capability hash of PROTOCOL-0.9 §9.2 (`trust.canonical_capability_hash`):
 * each entry through Python `str()`, Python `strip()`, drop empties and duplicates,
 * sort by code point, join with `\n`, prefix `ironmesh-cap-hash-v1:`, SHA-256, hex.
 * No Unicode normalisation, no case folding.
 */
import { concatBytes, sha256, toHex, utf8 } from "../crypto/sodium.ts";
import { codePointCompare } from "../json/canonical.ts";
import { PyFloat, pyFloatRepr } from "../json/py_float.ts";

/** Domain prefix of the capability hash preimage. */
export const CAP_HASH_PREFIX = "ironmesh-cap-hash-v1:";

/** Python's `str.isspace()` set (what `str.strip()` removes); differs from JS `trim()`. */
const PY_SPACE =
  "[\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const PY_STRIP = new RegExp(`^${PY_SPACE}+|${PY_SPACE}+$`, "g");

/** Python `s.strip()` with no argument (Python's whitespace set, not JavaScript's). */
export function pyStrip(s: string): string {
  return s.replace(PY_STRIP, "");
}

/** Python `str(x)` for the scalar JSON values a capability list can hold. */
export function pyStr(x: unknown): string {
  if (typeof x === "string") return x;
  if (x instanceof PyFloat) return pyFloatRepr(x.value);
  if (typeof x === "number") {
    // An integral JS number came from a JSON int (floats arrive as PyFloat when preserved).
    return Number.isInteger(x) ? BigInt(x).toString() : pyFloatRepr(x);
  }
  if (typeof x === "bigint") return x.toString();
  if (typeof x === "boolean") return x ? "True" : "False";
  if (x === null || x === undefined) return "None";
  throw new TypeError("capability entries must be strings or scalars");
}

/** The canonical (stripped, deduplicated, code-point-sorted) form the hash covers. */
export function canonicalCapabilitySet(caps: Iterable<unknown> | null | undefined): string[] {
  const seen = new Set<string>();
  for (const cap of caps ?? []) {
    if (cap === null || cap === undefined) continue;
    const s = pyStrip(pyStr(cap));
    if (s) seen.add(s);
  }
  return [...seen].sort(codePointCompare);
}

/** The exact bytes hashed: prefix ‖ UTF-8(sorted entries joined with "\n"). */
export function capabilityHashPreimage(caps: Iterable<unknown> | null | undefined): Uint8Array {
  return concatBytes(utf8(CAP_HASH_PREFIX), utf8(canonicalCapabilitySet(caps).join("\n")));
}

/** `canonical_capability_hash`: lowercase hex SHA-256 of the preimage. */
export function capabilityHash(caps: Iterable<unknown> | null | undefined): string {
  return toHex(sha256(capabilityHashPreimage(caps)));
}

/**
 * The set `observe_capabilities` records: like the canonical set, but Python's
 * `if c` also drops falsy entries (0, 0.0, False) before `str()`.
 */
export function observedCapabilitySet(caps: Iterable<unknown> | null | undefined): string[] {
  const kept: unknown[] = [];
  for (const c of caps ?? []) {
    if (c === null || c === undefined || c === false || c === "" || c === 0 || c === 0n) continue;
    if (c instanceof PyFloat && c.value === 0) continue;
    kept.push(c);
  }
  return canonicalCapabilitySet(kept);
}
