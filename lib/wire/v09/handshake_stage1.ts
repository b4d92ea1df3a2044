/**
 * Handshake texts and stage-1 helpers (PROTOCOL-0.9 §5.1–§5.2, §5.7): the
 * passphrase proofs, every message the reference sends before the session
 * (DEFAULT JSON profile, fields in the reference's order), and the strict
 * parser every received handshake message goes through.
 */
import { constantTimeEqualString, hmacSha256, toHex, utf8 } from "../../crypto/sodium.ts";
import { defaultJson } from "../../json/canonical.ts";
import { parseJson } from "../../json/parse.ts";
import { PyFloat, pyFloatRepr } from "../../json/py_float.ts";

/** Size of the server nonce in bytes. */
export const SERVER_NONCE_BYTES = 32;
/** Largest handshake message we parse (the reference's WebSocket message limit). */
export const MAX_HANDSHAKE_MESSAGE_CHARS = 1_048_576;

/** Client proof: hex HMAC-SHA256(key = UTF-8 passphrase, msg = nonce). */
export function passphraseProof(passphrase: string, nonce: Uint8Array): string {
  return toHex(hmacSha256(utf8(passphrase), nonce));
}

/** Server proof: the same HMAC over the nonce bytes reversed. */
export function serverPassphraseProof(passphrase: string, nonce: Uint8Array): string {
  return passphraseProof(passphrase, nonce.slice().reverse());
}

/** Constant-time comparison of a received proof with the expected lowercase hex (non-strings fail). */
export function proofMatches(received: unknown, expected: string): boolean {
  return typeof received === "string" && received !== "" &&
    constantTimeEqualString(received, expected);
}

/** S→C message 1: `PASSPHRASE_CHALLENGE` with the nonce and our advertised version. */
export function challengeText(nodeId: string, nonceHex: string, version: string): string {
  return defaultJson({
    type: "PASSPHRASE_CHALLENGE",
    from: nodeId,
    nonce: nonceHex,
    protocol_version: version,
  });
}

/** C→S message 2: the proof, under type `PASSPHRASE_CHALLENGE` like the reference. */
export function proofText(nodeId: string, proof: string): string {
  return defaultJson({ type: "PASSPHRASE_CHALLENGE", from: nodeId, proof });
}

/** S→C message 3a: `PASSPHRASE_VERIFIED` with the server proof. */
export function verifiedText(nodeId: string, serverProof: string): string {
  return defaultJson({
    type: "PASSPHRASE_VERIFIED",
    from: nodeId,
    status: "verified",
    server_proof: serverProof,
  });
}

/** S→C message 3b: `PASSPHRASE_REJECTED` from a node (stage-1 refusals). */
export function rejectedText(nodeId: string, error: string): string {
  return defaultJson({ type: "PASSPHRASE_REJECTED", from: nodeId, error });
}

/** `ERROR` as the server sends it during HELLO (no `from`). */
export function errorText(error: string, code: "INVALID_FRAME" | "AUTH_FAILED"): string {
  return defaultJson({ type: "ERROR", error, code });
}

/** Admission refusal: the global connection bucket is empty. */
export function globalRateLimitedText(): string {
  return defaultJson({ type: "RATE_LIMITED", error: "Too many connections" });
}

/** Admission refusal: the per-IP connection bucket is empty. */
export function ipRateLimitedText(): string {
  return defaultJson({ type: "RATE_LIMITED", error: "Too many connections from your IP" });
}

/** The error text of the auth-blocked refusal. */
export const AUTH_BLOCKED_ERROR = "Too many authentication failures. Try again later.";

/** Admission refusal: the address is blocked after repeated auth failures. */
export function authBlockedText(): string {
  return defaultJson({ type: "PASSPHRASE_REJECTED", error: AUTH_BLOCKED_ERROR });
}

/** The stage-1 refusal for a first client message of the wrong type (`None` when absent). */
export function unexpectedTypeError(type: unknown): string {
  return `Expected PASSPHRASE_CHALLENGE, got ${pyStr(type)}`;
}

/**
 * Parse one received handshake message: a text JSON object within the size and
 * depth limits. Returns null for binary, oversized, non-JSON or non-object input.
 */
export function parseHandshakeMessage(raw: unknown): Record<string, unknown> | null {
  if (typeof raw !== "string" || raw.length > MAX_HANDSHAKE_MESSAGE_CHARS) return null;
  let v: unknown;
  try {
    v = parseJson(raw, { preserveNumbers: true });
  } catch {
    return null;
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) return null;
  return v as Record<string, unknown>;
}

/** A peer-supplied value made safe to quote in a reason or log line: escaped, at most 200 chars. */
export function quoteForLog(v: unknown): string {
  const s = pyStr(v);
  return JSON.stringify(s.length > 200 ? s.slice(0, 200) + "…" : s);
}

/** Python `str(v)` of a parsed JSON value, as an f-string shows it. */
export function pyStr(v: unknown): string {
  return typeof v === "string" ? v : pyRepr(v);
}

function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return "None";
  if (v === true) return "True";
  if (v === false) return "False";
  if (typeof v === "number") return Number.isInteger(v) ? v.toFixed(0) : pyFloatStr(v);
  if (typeof v === "bigint") return v.toString();
  if (v instanceof PyFloat) return pyFloatStr(v.value);
  if (typeof v === "string") return pyStringRepr(v);
  if (Array.isArray(v)) return "[" + v.map(pyRepr).join(", ") + "]";
  const obj = v as Record<string, unknown>;
  return "{" + Object.keys(obj).map((k) => `${pyStringRepr(k)}: ${pyRepr(obj[k])}`).join(", ") +
    "}";
}

/** Python `str(float)`, including the non-finite values `json.loads` can produce. */
function pyFloatStr(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  return pyFloatRepr(x);
}

/** Python `repr(str)` for the common cases (quotes, backslash, control characters). */
function pyStringRepr(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = q;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === q || ch === "\\") out += "\\" + ch;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || (c >= 0x7f && c < 0xa0)) out += "\\x" + c.toString(16).padStart(2, "0");
    else out += ch;
  }
  return out + q;
}
