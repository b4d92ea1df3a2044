/**
 * The frame's inner JSON envelope (PROTOCOL-0.9 §6.2): the SecretBox plaintext, written as
 * COMPACT JSON in the reference's insertion order, and parsed with the depth guard and the
 * reference's `Frame.from_dict` checks (same error texts), plus ours: the timestamp and msg_id
 * fields are required, every field is type-checked, base64 is decoded strictly and strings
 * that cannot be encoded as UTF-8 (lone surrogates) are refused.
 */
import { compactJson, pyString } from "../../json/canonical.ts";
import { JsonError, MAX_JSON_DEPTH, parseJson } from "../../json/parse.ts";
import { PyFloat, pyFloatRepr } from "../../json/py_float.ts";
import { FrameError, FrameErrorCode } from "./errors.ts";

/** Message priorities (re-exported from the profile-neutral interface). */
export type { Priority } from "../session.ts";

/** The decoded inner envelope of one frame. */
export interface Envelope {
  type: string;
  /** Payload bytes (base64 on the wire, `""` when empty). */
  payload: Uint8Array;
  msgId: string;
  source: string;
  sourceDisplay: string;
  destination: string;
  /** Originator's wall clock, seconds (a Python float on the wire). */
  timestamp: number;
  /** `LOW`/`NORMAL`/`HIGH`/`CRITICAL` on every reference frame; not validated by the reference. */
  priority: string;
  sequence: number;
  retries: number;
  routing: Record<string, unknown>;
  ttl: number;
  hops: string[];
  sourceSignature?: Uint8Array;
  /** `v2`, `v1`, or absent (untagged legacy). */
  sourceSigScheme?: string;
  e2ePayload?: Uint8Array;
}

/** Options for `parseEnvelope`. */
export interface ParseEnvelopeOptions {
  /** Ours: refuse an envelope without `timestamp` (default true). */
  requireTimestamp?: boolean;
  /** Used as the timestamp when it is absent and not required (the reference uses `time.time()`). */
  now?: number;
}

/** Strict standard padded base64 (native, no wasm copy); throws TypeError on anything else. */
export function b64DecodeStrict(s: string): Uint8Array {
  if (s.length % 4 !== 0) throw new TypeError("invalid base64 string");
  let out: Uint8Array;
  try {
    out = Uint8Array.fromBase64(s, { lastChunkHandling: "strict" });
  } catch {
    throw new TypeError("invalid base64 string");
  }
  // fromBase64 skips ASCII whitespace; with none, every 4 characters give 3 bytes less the
  // padding. Any skipped character makes the output at least 3 bytes shorter than that, so
  // this length check refuses whitespace without scanning the text a second time.
  const pad = s.endsWith("==") ? 2 : s.endsWith("=") ? 1 : 0;
  if (out.length !== (s.length / 4) * 3 - pad) throw new TypeError("invalid base64 string");
  return out;
}

/** Standard padded base64 (native). */
export function b64Encode(b: Uint8Array): string {
  return b.toBase64();
}

function isEmptyObject(o: Record<string, unknown>): boolean {
  for (const _ in o) return false;
  return true;
}

/** The exact COMPACT JSON text the reference's `Frame.to_dict` would produce. */
export function envelopeJson(env: Envelope): string {
  let s = '{"type":' + pyString(env.type) +
    ',"payload":"' + (env.payload.length ? b64Encode(env.payload) : "") +
    '","msg_id":' + pyString(env.msgId) +
    ',"source":' + pyString(env.source) +
    ',"source_display":' + pyString(env.sourceDisplay) +
    ',"destination":' + pyString(env.destination) +
    ',"timestamp":' + pyFloatRepr(env.timestamp) +
    ',"priority":' + pyString(env.priority) +
    ',"sequence":' + env.sequence +
    ',"retries":' + env.retries +
    ',"routing":' + (isEmptyObject(env.routing) ? "{}" : compactJson(env.routing)) +
    ',"ttl":' + env.ttl +
    ',"hops":[';
  for (let i = 0; i < env.hops.length; i++) s += (i ? "," : "") + pyString(env.hops[i]);
  s += "]";
  if (env.sourceSignature !== undefined) {
    s += ',"source_signature":"' + b64Encode(env.sourceSignature) +
      '","source_sig_scheme":' + pyString(env.sourceSigScheme ?? "v1");
  }
  if (env.e2ePayload !== undefined) s += ',"e2e_payload":"' + b64Encode(env.e2ePayload) + '"';
  return s + "}";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The envelope as SecretBox plaintext bytes (ASCII, thanks to `ensure_ascii`). */
export function encodeEnvelope(env: Envelope): Uint8Array {
  return encoder.encode(envelopeJson(env));
}

// ---------------------------------------------------------------------------------------------
// Parsing

function malformed(message: string): FrameError {
  return new FrameError(FrameErrorCode.MALFORMED, message);
}

/** Python `type(v).__name__` of a parsed JSON value. */
function pyTypeName(v: unknown): string {
  if (v === null) return "NoneType";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "string") return "str";
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "float";
  if (typeof v === "bigint") return "int";
  if (v instanceof PyFloat) return "float";
  return Array.isArray(v) ? "list" : "dict";
}

/** Python `repr()` of a parsed JSON value (for error messages only). */
function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "number" || typeof v === "bigint") return String(v);
  if (v instanceof PyFloat) {
    return Number.isFinite(v.value) ? pyFloatRepr(v.value) : String(v.value);
  }
  if (typeof v === "string") {
    const q = v.includes("'") && !v.includes('"') ? '"' : "'";
    let out = q;
    for (const ch of v) {
      const c = ch.codePointAt(0)!;
      if (ch === "\\" || ch === q) out += "\\" + ch;
      else if (ch === "\n") out += "\\n";
      else if (ch === "\r") out += "\\r";
      else if (ch === "\t") out += "\\t";
      else if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).padStart(2, "0");
      else out += ch;
    }
    return out + q;
  }
  if (Array.isArray(v)) return "[" + v.map(pyRepr).join(", ") + "]";
  const o = v as Record<string, unknown>;
  return "{" + Object.keys(o).map((k) => pyRepr(k) + ": " + pyRepr(o[k])).join(", ") + "}";
}

function isInt(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v);
}

function optionalString(data: Record<string, unknown>, key: string, fallback: string): string {
  const v = data[key];
  if (v === undefined) return fallback;
  if (typeof v !== "string") throw malformed(`${key} must be a string, got ${pyTypeName(v)}`);
  return v;
}

function requireUtf8able(name: string, s: string): string {
  if (!s.isWellFormed()) throw malformed(`${name} contains a lone surrogate`);
  return s;
}

function decodeB64Field(name: string, v: unknown): Uint8Array | undefined {
  if (v === undefined || v === null || v === "") return undefined; // Python: `if data.get(name)`
  if (typeof v !== "string") throw malformed(`${name} must be a string, got ${pyTypeName(v)}`);
  try {
    return b64DecodeStrict(v);
  } catch {
    throw malformed(`${name} is not valid base64`);
  }
}

/** Check an already-parsed envelope object exactly as `Frame.from_dict` does (plus ours). */
export function envelopeFromObject(
  data: unknown,
  opts: ParseEnvelopeOptions = {},
): Envelope {
  if (data === null || typeof data !== "object" || Array.isArray(data) || data instanceof PyFloat) {
    throw malformed(`Frame.from_dict requires a dict, got ${pyTypeName(data)}`);
  }
  const d = data as Record<string, unknown>;
  const type = d.type;
  if (typeof type !== "string" || type === "") {
    throw malformed(`Invalid or missing 'type' field: ${pyRepr(type)}`);
  }
  const msgId = d.msg_id;
  if (msgId !== undefined && msgId !== null && typeof msgId !== "string") {
    throw malformed(`msg_id must be a string, got ${pyTypeName(msgId)}`);
  }
  // Ours: the reference invents a random msg_id; we require it (the header hash binds it).
  if (typeof msgId !== "string") throw malformed("Inner envelope has no msg_id");
  const source = optionalString(d, "source", "unknown");
  const destination = optionalString(d, "destination", "*");
  const sequence = d.sequence ?? 0;
  if (!isInt(sequence) || sequence < 0) {
    throw malformed(`sequence must be a non-negative integer, got ${pyRepr(sequence)}`);
  }
  const payload = decodeB64Field("payload", d.payload) ?? new Uint8Array(0);
  const priority = optionalString(d, "priority", "NORMAL");
  const sourceDisplay = optionalString(d, "source_display", source);

  let timestamp: number;
  const ts = d.timestamp;
  if (ts === undefined) {
    if (opts.requireTimestamp ?? true) throw malformed("Inner envelope has no timestamp");
    timestamp = opts.now ?? Date.now() / 1000;
  } else if (typeof ts === "number") {
    timestamp = ts;
  } else if (ts instanceof PyFloat) {
    timestamp = ts.value;
  } else {
    throw malformed(`timestamp must be a number, got ${pyTypeName(ts)}`);
  }
  if (!Number.isFinite(timestamp)) throw malformed(`Invalid timestamp: ${pyRepr(ts)}`);

  const routing = d.routing ?? {};
  if (
    routing === null || typeof routing !== "object" || Array.isArray(routing) ||
    routing instanceof PyFloat
  ) {
    throw malformed(`routing must be a dict, got ${pyTypeName(routing)}`);
  }
  const ttl = d.ttl ?? 3;
  if (!isInt(ttl) || ttl < 0 || ttl > 255) throw malformed(`Invalid TTL: ${pyRepr(ttl)}`);
  const hops = d.hops ?? [];
  if (!Array.isArray(hops) || !hops.every((h) => typeof h === "string")) {
    throw malformed(`Invalid hops: ${pyRepr(hops)}`);
  }
  const retries = d.retries ?? 0;
  if (!isInt(retries) || retries < 0) throw malformed(`Invalid retries: ${pyRepr(retries)}`);
  const sourceSignature = decodeB64Field("source_signature", d.source_signature);
  const scheme = d.source_sig_scheme;
  if (scheme !== undefined && scheme !== null && typeof scheme !== "string") {
    throw malformed(`source_sig_scheme must be a string, got ${pyTypeName(scheme)}`);
  }
  const e2ePayload = decodeB64Field("e2e_payload", d.e2e_payload);

  const env: Envelope = {
    type,
    payload,
    msgId: requireUtf8able("msg_id", msgId),
    source: requireUtf8able("source", source),
    sourceDisplay,
    destination: requireUtf8able("destination", destination),
    timestamp,
    priority,
    sequence,
    retries,
    routing: routing as Record<string, unknown>,
    ttl,
    hops: hops as string[],
  };
  if (sourceSignature !== undefined) env.sourceSignature = sourceSignature;
  if (typeof scheme === "string") env.sourceSigScheme = scheme;
  if (e2ePayload !== undefined) env.e2ePayload = e2ePayload;
  return env;
}

/** The error for a plaintext that is not UTF-8. */
export function notUtf8(): FrameError {
  return malformed("Inner envelope is not valid UTF-8");
}

/** Parse SecretBox plaintext into an envelope; throws FrameError(FR_MALFORMED). */
export function parseEnvelope(plaintext: Uint8Array, opts: ParseEnvelopeOptions = {}): Envelope {
  return parseEnvelopeText(plaintext, opts);
}

/** Like `parseEnvelope`, also taking the plaintext already decoded (strict UTF-8) as a string. */
export function parseEnvelopeText(
  plaintext: Uint8Array | string,
  opts: ParseEnvelopeOptions = {},
): Envelope {
  let text: string;
  if (typeof plaintext === "string") text = plaintext;
  else {
    try {
      text = decoder.decode(plaintext);
    } catch {
      throw notUtf8();
    }
  }
  let data: unknown;
  try {
    // Fast path: a plain parse. Python's int/float distinction only matters for the integer
    // fields, so the slower number-preserving parse runs only when one of them is written as
    // a float (to refuse it with the reference's message). Floats nested in `routing` are not
    // preserved (nobody signs or checks them).
    // With at most 64 brackets in the whole text the depth cannot exceed 64, so the
    // character-by-character depth scan is only needed for unusual texts.
    data = fewContainers(text, MAX_JSON_DEPTH) ? JSON.parse(text) : parseJson(text);
    if (hasFloatIntField(text)) data = parseJson(text, { preserveNumbers: true });
  } catch (e) {
    throw malformed(e instanceof JsonError ? e.message : `malformed JSON: ${(e as Error).message}`);
  }
  return envelopeFromObject(data, opts);
}

/** True when `text` holds at most `limit` `{` and `[` characters in total (native scans). */
function fewContainers(text: string, limit: number): boolean {
  let n = 0;
  for (let i = text.indexOf("{"); i !== -1; i = text.indexOf("{", i + 1)) {
    if (++n > limit) return false;
  }
  for (let i = text.indexOf("["); i !== -1; i = text.indexOf("[", i + 1)) {
    if (++n > limit) return false;
  }
  return true;
}

/** The integer fields of the envelope, as quoted keys. */
const INT_KEYS = ['"sequence"', '"ttl"', '"retries"'];
/** What follows such a key when its value is written with a fraction or an exponent. */
const FLOAT_VALUE = /\s*:\s*-?\d+[.eE]/y;

/** An integer field of the envelope written with a fraction or an exponent. */
const FLOAT_INT_FIELD = /"(?:sequence|ttl|retries)"\s*:\s*-?\d+[.eE]/;

/**
 * Whether `FLOAT_INT_FIELD` matches `text`. Long texts look the keys up with native `indexOf`
 * instead (the regex scan over a 64 KiB payload's base64 costs ~20 µs, indexOf ~4 µs); short
 * ones use the regex, which is faster there.
 */
export function hasFloatIntField(text: string): boolean {
  if (text.length < 8192) return FLOAT_INT_FIELD.test(text);
  for (const key of INT_KEYS) {
    for (let i = text.indexOf(key); i !== -1; i = text.indexOf(key, i + 1)) {
      FLOAT_VALUE.lastIndex = i + key.length;
      if (FLOAT_VALUE.test(text)) return true;
    }
  }
  return false;
}
