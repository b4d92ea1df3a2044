/**
 * JSON exactly as the Python reference writes it (PROTOCOL-0.9 §2): `ensure_ascii`
 * escaping with lowercase `\uXXXX`, Python float repr, and the CANON (sorted keys,
 * compact) and COMPACT (insertion order) profiles. Signed and MACed bytes come
 * only from here.
 */
import { PyFloat, pyFloatRepr } from "./py_float.ts";

const SAFE_STRING = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
const SURROGATE = /[\ud800-\udfff]/;

/** A JSON string literal with Python `ensure_ascii=True` escaping. */
export function pyString(s: string): string {
  if (SAFE_STRING.test(s)) return `"${s}"`;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += "\\\\";
    else if (c >= 0x20 && c <= 0x7e) out += s[i];
    else if (c === 0x0a) out += "\\n";
    else if (c === 0x0d) out += "\\r";
    else if (c === 0x09) out += "\\t";
    else if (c === 0x08) out += "\\b";
    else if (c === 0x0c) out += "\\f";
    else out += "\\u" + c.toString(16).padStart(4, "0");
  }
  return out + '"';
}

/** Compare strings by Unicode code point, as Python's `sorted` does. */
export function codePointCompare(a: string, b: string): number {
  if (!SURROGATE.test(a) && !SURROGATE.test(b)) return a < b ? -1 : a > b ? 1 : 0;
  const ia = a[Symbol.iterator](), ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next(), y = ib.next();
    if (x.done || y.done) return x.done ? (y.done ? 0 : -1) : 1;
    const cx = x.value.codePointAt(0)!, cy = y.value.codePointAt(0)!;
    if (cx !== cy) return cx < cy ? -1 : 1;
  }
}

/** Separators: compact (`,` `:`) or Python's default (`, ` `: `). */
interface Profile {
  sortKeys: boolean;
  item: string;
  key: string;
}

const CANON: Profile = { sortKeys: true, item: ",", key: ":" };
const COMPACT: Profile = { sortKeys: false, item: ",", key: ":" };
const DEFAULT: Profile = { sortKeys: false, item: ", ", key: ": " };

function encodeNumber(n: number): string {
  if (!Number.isFinite(n)) throw new RangeError(`cannot serialize non-finite number ${n}`);
  // An integral JS number is written as a Python int; a fractional one can only be a float.
  return Number.isInteger(n) ? (Object.is(n, -0) ? "0" : n.toFixed(0)) : pyFloatRepr(n);
}

function encode(v: unknown, p: Profile): string {
  if (v === null || v === undefined) return "null";
  switch (typeof v) {
    case "string":
      return pyString(v);
    case "number":
      return encodeNumber(v);
    case "bigint":
      return v.toString();
    case "boolean":
      return v ? "true" : "false";
  }
  if (v instanceof PyFloat) return pyFloatRepr(v.value);
  if (Array.isArray(v)) return "[" + v.map((x) => encode(x, p)).join(p.item) + "]";
  if (v instanceof Uint8Array) throw new TypeError("bytes must be encoded (hex/b64) before JSON");
  const obj = v as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined);
  if (p.sortKeys) keys.sort(codePointCompare);
  return "{" + keys.map((k) => pyString(k) + p.key + encode(obj[k], p)).join(p.item) + "}";
}

/** CANON: `sort_keys=True, separators=(",", ":"), ensure_ascii=True`. */
export function canonicalJson(v: unknown): string {
  return encode(v, CANON);
}

/** COMPACT: `separators=(",", ":")`, insertion order, `ensure_ascii=True`. */
export function compactJson(v: unknown): string {
  return encode(v, COMPACT);
}

/** DEFAULT: `json.dumps(obj)` — separators `", "` and `": "`, insertion order. */
export function defaultJson(v: unknown): string {
  return encode(v, DEFAULT);
}

/** INDENT2: `json.dumps(obj, indent=2)` (insertion order, `ensure_ascii=True`). */
export function indent2Json(v: unknown, level = 0): string {
  const pad = "  ".repeat(level + 1), end = "  ".repeat(level);
  if (v instanceof PyFloat || v === null || v === undefined || typeof v !== "object") {
    return encode(v, COMPACT);
  }
  if (Array.isArray(v)) {
    if (v.length === 0) return "[]";
    return "[\n" + v.map((x) => pad + indent2Json(x, level + 1)).join(",\n") + "\n" + end + "]";
  }
  const obj = v as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined);
  if (keys.length === 0) return "{}";
  return "{\n" + keys.map((k) => pad + pyString(k) + ": " + indent2Json(obj[k], level + 1))
    .join(",\n") +
    "\n" + end + "}";
}
