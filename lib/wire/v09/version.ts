/**
 * Protocol version strings of the reference (PROTOCOL-0.9 §5.4, §5.6):
 * `"<anything>/X.Y[.rest]"` → `(X, Y)`; anything unparsable → `(0, 0)`.
 * Comparison is numeric, so `ironmesh/0.10` > `ironmesh/0.9`.
 */

/** A parsed `(major, minor)` pair. */
export type VersionTuple = readonly [number, number];

/** Peers at or above this version sign HELLOs with the context-v1 scheme. */
export const HELLO_CTX_MIN_VERSION = "ironmesh/0.9";
/** Our default `--min-protocol-version` (Ours: the reference defaults to 0.3). */
export const DEFAULT_MIN_PROTOCOL_VERSION = "ironmesh/0.9";
/** The version the reference assumes when a HELLO carries no `protocol_version`. */
export const ABSENT_PEER_VERSION = "ironmesh/0.3";
/** Mesh relaying and route announces need at least this version. */
export const MIN_MESH_VERSION = "ironmesh/0.4";
/** In-session rekey needs at least this version. */
export const MIN_REKEY_VERSION = "ironmesh/0.5";

// Python's str.strip() whitespace (str.isspace), which differs slightly from JS trim().
const PY_SPACE = "[\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029" +
  "\\u202f\\u205f\\u3000]*";
// Python int(): optional surrounding whitespace, a sign, ASCII digits with single underscores.
const PY_INT = new RegExp(`^${PY_SPACE}([+-]?)([0-9](?:_?[0-9])*)${PY_SPACE}$`);

/** Python `int(s)` for the ASCII forms the reference can meet; null when Python would raise. */
function pyInt(s: string): number | null {
  const m = PY_INT.exec(s);
  if (!m) return null;
  const n = Number(m[2].replaceAll("_", ""));
  return m[1] === "-" ? -n : n;
}

/** Parse a protocol version exactly as the reference's `_parse_protocol_version` does. */
export function parseProtocolVersion(v: unknown): VersionTuple {
  if (typeof v !== "string" || v === "") return [0, 0];
  const slash = v.indexOf("/");
  if (slash < 0) return [0, 0];
  const ver = v.slice(slash + 1);
  const dot = ver.indexOf(".");
  if (dot < 0) return [0, 0];
  const major = pyInt(ver.slice(0, dot));
  const minor = pyInt(ver.slice(dot + 1).split(".")[0]);
  if (major === null || minor === null) return [0, 0];
  return [major, minor];
}

/** Compare two versions numerically: negative, zero or positive like a sort comparator. */
export function compareProtocolVersions(a: unknown, b: unknown): number {
  const [a0, a1] = parseProtocolVersion(a);
  const [b0, b1] = parseProtocolVersion(b);
  return a0 !== b0 ? (a0 < b0 ? -1 : 1) : a1 !== b1 ? (a1 < b1 ? -1 : 1) : 0;
}

/** True when `version` is at least `floor`. */
export function versionAtLeast(version: unknown, floor: string): boolean {
  return compareProtocolVersions(version, floor) >= 0;
}

/** True when a peer advertising `version` uses the context-v1 HELLO signature. */
export function supportsHelloContext(version: unknown): boolean {
  return versionAtLeast(version, HELLO_CTX_MIN_VERSION);
}

/** True when a peer advertising `version` can relay (≥ 0.4). */
export function supportsMesh(version: unknown): boolean {
  return versionAtLeast(version, MIN_MESH_VERSION);
}

/** True when a peer advertising `version` supports in-session rekey (≥ 0.5). */
export function supportsRekey(version: unknown): boolean {
  return versionAtLeast(version, MIN_REKEY_VERSION);
}
