/**
 * mDNS TXT records of `_ironmesh._tcp` (PROTOCOL-0.9 §12), sans I/O: what we
 * announce, and how an announcement we receive is parsed and validated. The
 * input checks follow the reference's `discovery.py`: TXT total (Σ key + value
 * lengths) ≤ 1024, `agent` strict UTF-8 of 1–256 letters/digits/`-_.`, `port` an
 * ASCII integer 1–65535 taken from the TXT record, `idhash` kept only when it is
 * at most 64 hex characters.
 */

/** The `proto` value the reference announces (fixed; not the protocol version spoken). */
export const MDNS_PROTO = "ironmesh/0.6";
/** Largest accepted TXT total, Σ (key length + value length) in bytes. */
export const MAX_TXT_TOTAL = 1024;
/** Largest accepted `agent` length, in Unicode code points (Python `len`). */
export const MAX_AGENT_CHARS = 256;
/** Largest accepted `idhash` length, in hex characters. */
export const MAX_IDHASH_CHARS = 64;

/** A TXT record's strings as a decoder hands them over (dns-packet: an array of Buffers). */
export type TxtData = unknown;

/** Properties of a TXT record: raw key (bytes as a latin-1 string) → raw value (null for a bare key). */
export interface TxtProperties {
  props: Map<string, Uint8Array | null>;
  /** Σ (key length + value length) over `props`, as the reference computes it. */
  total: number;
}

/** The fields of a valid announcement. */
export interface AnnouncementFields {
  agent: string;
  port: number;
  /** Lowercase hex, or null when absent or not ≤ 64 hex characters. */
  idhash: string | null;
}

/** Why an announcement's TXT record is refused. */
export type TxtRejectReason = "txt_too_large" | "bad_agent" | "bad_port";

/** Outcome of `validateAnnouncementTxt`. */
export type TxtValidation =
  | { ok: true; fields: AnnouncementFields }
  | { ok: false; reason: TxtRejectReason; detail: string };

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The TXT strings we announce, in the reference's order: agent, port, proto, idhash. */
export function announcementTxt(name: string, port: number, idhash: string): string[] {
  return [`agent=${name}`, `port=${port}`, `proto=${MDNS_PROTO}`, `idhash=${idhash}`];
}

/** The strings of a TXT record as bytes; anything that is not a string or byte array is skipped. */
export function txtStrings(data: TxtData): Uint8Array[] {
  const items = Array.isArray(data) ? data : [data];
  const out: Uint8Array[] = [];
  for (const item of items) {
    if (typeof item === "string") out.push(utf8.encode(item));
    else if (item instanceof Uint8Array) out.push(item);
  }
  return out;
}

function latin1(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

/**
 * Parse TXT strings as python-zeroconf does: split at the first `=`, a string
 * without `=` is a key with no value, empty keys are skipped, the first
 * occurrence of a key wins. Keys are compared byte for byte (case-sensitive).
 */
export function parseTxt(data: TxtData): TxtProperties {
  const props = new Map<string, Uint8Array | null>();
  for (const s of txtStrings(data)) {
    const eq = s.indexOf(0x3d);
    const key = latin1(eq < 0 ? s : s.subarray(0, eq));
    if (key.length === 0 || props.has(key)) continue;
    props.set(key, eq < 0 ? null : s.subarray(eq + 1));
  }
  let total = 0;
  for (const [k, v] of props) total += k.length + (v ? v.length : 0);
  return { props, total };
}

const AGENT_CHAR = /^[\p{L}\p{N}._-]$/u;

/**
 * An agent name the reference accepts: 1–256 code points, each a Unicode letter
 * or digit (Python `str.isalnum`) or one of `-`, `_`, `.`.
 */
export function isValidAgentName(name: string): boolean {
  const chars = Array.from(name);
  if (chars.length < 1 || chars.length > MAX_AGENT_CHARS) return false;
  return chars.every((c) => AGENT_CHAR.test(c));
}

/** A port from the TXT record: ASCII digits only, 1–65535 (null otherwise). */
export function parseTxtPort(value: Uint8Array | null | undefined): number | null {
  if (!value || value.length < 1 || value.length > 5) return null;
  for (const b of value) if (b < 0x30 || b > 0x39) return null;
  const port = Number(latin1(value));
  return port >= 1 && port <= 65535 ? port : null;
}

/** An idhash from the TXT record: 1–64 ASCII hex characters, lowercased (null otherwise). */
export function parseTxtIdhash(value: Uint8Array | null | undefined): string | null {
  if (!value || value.length < 1 || value.length > MAX_IDHASH_CHARS) return null;
  const s = latin1(value);
  return /^[0-9a-fA-F]+$/.test(s) ? s.toLowerCase() : null;
}

/** Validate a received TXT record in the reference's order: size, agent, port, idhash. */
export function validateAnnouncementTxt(data: TxtData): TxtValidation {
  const { props, total } = parseTxt(data);
  if (total > MAX_TXT_TOTAL) {
    return { ok: false, reason: "txt_too_large", detail: `TXT total ${total} > ${MAX_TXT_TOTAL}` };
  }
  const agentRaw = props.get("agent");
  let agent: string;
  try {
    agent = agentRaw ? strictUtf8.decode(agentRaw) : "";
  } catch {
    return { ok: false, reason: "bad_agent", detail: "agent is not valid UTF-8" };
  }
  if (!isValidAgentName(agent)) {
    const shown = JSON.stringify(Array.from(agent).slice(0, 64).join(""));
    return { ok: false, reason: "bad_agent", detail: `invalid agent name ${shown}` };
  }
  const port = parseTxtPort(props.get("port"));
  if (port === null) return { ok: false, reason: "bad_port", detail: `invalid port from ${agent}` };
  return { ok: true, fields: { agent, port, idhash: parseTxtIdhash(props.get("idhash")) } };
}
