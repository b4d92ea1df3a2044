/**
 * The audit HMAC chain (PROTOCOL-0.9 §11.5): entry encoding, the chain MAC and
 * the byte layout of a stored line.
 *
 *   entry_data = CANON {"details", "event", "timestamp" (Python float)}
 *   hmac       = hex HMAC-SHA256(audit key, prev_hmac_hex ‖ entry_data), genesis prev = 64 × "0"
 *   line       = CANON of the same object plus "hmac" (keys: details, event, hmac, timestamp)
 *
 * A line is therefore entry_data with `"hmac":"<64 hex>",` inserted before
 * `"timestamp":`, and deleting that substring gives entry_data back exactly.
 */
import { canonicalJson } from "../json/canonical.ts";
import { PyFloat } from "../json/py_float.ts";
import { jsonDepth, JsonError, parseJson } from "../json/parse.ts";
import { toHex, utf8 } from "../crypto/sodium.ts";
import { IronMeshError } from "../errors.ts";
import { ChainMac } from "./hmac.ts";

/** The `prev_hmac` of the first entry of every file. */
export const GENESIS_HMAC = "0".repeat(64);

/** Deepest nesting accepted when re-parsing a line (Python's own limit is near 1000). */
export const AUDIT_MAX_DEPTH = 512;

/** Event details: any JSON object (use `PyFloat` for values that must stay Python floats). */
export type AuditDetails = Record<string, unknown>;

/** One chained entry. */
export interface AuditEntry {
  event: string;
  details: AuditDetails;
  /** Seconds since the epoch (always written as a Python float). */
  timestamp: number;
  /** Lowercase hex HMAC of this entry. */
  hmac: string;
}

/** An entry as encoded for the file. */
export interface EncodedEntry extends AuditEntry {
  prevHmac: string;
  /** The exact MAC input after `prev_hmac`. */
  entryData: string;
  /** The stored line, without the trailing newline. */
  line: string;
}

const HMAC_KEY_BYTES = utf8('"hmac":"');
const TIMESTAMP_KEY_BYTES = utf8('"timestamp":');
/** Length of the `"hmac":"<64 hex>",` substring. */
export const HMAC_FIELD_LEN = 8 + 64 + 2;

function badDetails(message: string): IronMeshError {
  return new IronMeshError(
    "AUDIT_BAD_DETAILS",
    message,
    "audit details must be a JSON object of strings, finite numbers, booleans, null, arrays and objects",
  );
}

/** CANON entry_data for an event. */
export function entryDataText(event: string, details: AuditDetails, timestamp: number): string {
  if (typeof event !== "string" || event.length === 0) {
    throw badDetails("audit event name must be a non-empty string");
  }
  if (details === null || typeof details !== "object" || Array.isArray(details)) {
    throw badDetails("audit details must be a JSON object");
  }
  if (!Number.isFinite(timestamp)) throw badDetails("audit timestamp must be a finite number");
  let text: string;
  try {
    text = canonicalJson({ details, event, timestamp: new PyFloat(timestamp) });
  } catch (e) {
    throw badDetails(`audit details cannot be serialized: ${(e as Error).message}`);
  }
  return text;
}

/** The stored line for `entryData` and its `hmac` (same bytes as CANON of the full object). */
export function lineOf(entryData: string, hmac: string): string {
  const at = entryData.lastIndexOf(',"timestamp":');
  if (at < 0) throw new Error("entry_data has no top-level timestamp");
  return `${entryData.slice(0, at + 1)}"hmac":"${hmac}",${entryData.slice(at + 1)}`;
}

/** Hex chain HMAC of `prevHmac ‖ entryData`. */
export function chainHmac(mac: ChainMac, prevHmac: string, entryData: string): string {
  return toHex(mac.mac(utf8(prevHmac), utf8(entryData)));
}

/** Encode one entry chained after `prevHmac`. Throws AUDIT_BAD_DETAILS for unserializable details. */
export function encodeEntry(
  mac: ChainMac,
  prevHmac: string,
  event: string,
  details: AuditDetails,
  timestamp: number,
): EncodedEntry {
  const entryData = entryDataText(event, details, timestamp);
  // A line must be a fixed point of parse → CANON, or Python's verifier would reject it.
  if (jsonDepth(entryData) > AUDIT_MAX_DEPTH) {
    throw badDetails(`audit details nest deeper than ${AUDIT_MAX_DEPTH} levels`);
  }
  const hmac = chainHmac(mac, prevHmac, entryData);
  return { event, details, timestamp, hmac, prevHmac, entryData, line: lineOf(entryData, hmac) };
}

function isNumberByte(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || b === 0x2e || b === 0x65 || b === 0x45 || b === 0x2b ||
    b === 0x2d;
}

function isLowerHex(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66);
}

/**
 * Fast structural match of a CANON line in `bytes[start, end)`: returns the offset of its
 * top-level `"hmac":"` key (the 64 hex digits follow at +8), or -1 when the line does not end
 * in `,"hmac":"<64 lowercase hex>","timestamp":<number>}`. Deleting `[k, k + HMAC_FIELD_LEN)`
 * leaves the candidate entry_data; only its MAC proves it genuine.
 */
export function locateHmacField(bytes: Uint8Array, start: number, end: number): number {
  if (end - start < HMAC_FIELD_LEN + 16 || bytes[start] !== 0x7b || bytes[end - 1] !== 0x7d) {
    return -1;
  }
  let q = end - 1;
  while (q > start && isNumberByte(bytes[q - 1])) q--;
  if (q === end - 1) return -1;
  const ts = q - TIMESTAMP_KEY_BYTES.length;
  const k = ts - HMAC_FIELD_LEN;
  if (k <= start || bytes[k - 1] !== 0x2c) return -1;
  for (let i = 0; i < TIMESTAMP_KEY_BYTES.length; i++) {
    if (bytes[ts + i] !== TIMESTAMP_KEY_BYTES[i]) return -1;
  }
  for (let i = 0; i < HMAC_KEY_BYTES.length; i++) {
    if (bytes[k + i] !== HMAC_KEY_BYTES[i]) return -1;
  }
  if (bytes[k + 72] !== 0x22 || bytes[k + 73] !== 0x2c) return -1;
  for (let i = k + 8; i < k + 72; i++) if (!isLowerHex(bytes[i])) return -1;
  return k;
}

/** A line parsed the way the reference's verifier sees it. */
export interface ParsedLine {
  /** The whole parsed object (numbers kept Python-exact). */
  object: Record<string, unknown>;
  /** `hmac` as stored (any type; the reference pops it with default ""). */
  storedHmac: unknown;
  /** CANON of the object without `hmac` — what the reference MACs. */
  entryData: string;
}

/**
 * Parse one (stripped, non-blank) line like the reference: JSON object, pop "hmac",
 * re-serialize the rest with CANON. Throws JsonError when the reference would raise.
 */
export function parseLineForVerify(text: string): ParsedLine {
  const v = parseJson(text, { preserveNumbers: true, maxDepth: AUDIT_MAX_DEPTH });
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new JsonError("audit line is not a JSON object");
  }
  const object = v as Record<string, unknown>;
  const rest: Record<string, unknown> = { ...object };
  const storedHmac = Object.hasOwn(rest, "hmac") ? rest.hmac : "";
  delete rest.hmac;
  let entryData: string;
  try {
    entryData = canonicalJson(rest);
  } catch (e) {
    throw new JsonError(`audit line cannot be re-serialized: ${(e as Error).message}`);
  }
  return { object, storedHmac, entryData };
}

/** True for a stored hmac the chain can use: a string of 64 characters (the reference's tail rule). */
export function isTailHmac(v: unknown): v is string {
  return typeof v === "string" && v.length === 64;
}

/** Read an entry from a parsed line object (numbers as plain JS numbers unless kept as PyFloat). */
export function entryFromObject(o: Record<string, unknown>): AuditEntry {
  const details = o.details;
  return {
    event: typeof o.event === "string" ? o.event : String(o.event),
    details: details !== null && typeof details === "object" && !Array.isArray(details)
      ? details as AuditDetails
      : {},
    timestamp: Number(o.timestamp),
    hmac: typeof o.hmac === "string" ? o.hmac : "",
  };
}
