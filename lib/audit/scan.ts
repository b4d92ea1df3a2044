/**
 * Line-level reading of audit files shared by the verifier, the writer and
 * queries: splitting into lines the way the reference does (1-based, blank
 * lines skipped, `\r` also ends a line), recognizing torn lines, and a cheap
 * scan (no MAC) that finds each line's stored hmac.
 */
import { fromUtf8 } from "../crypto/sodium.ts";
import { isTailHmac, locateHmacField } from "./chain.ts";

const decoder = new TextDecoder();

/** Summary of one file: what checkpoints pin and compare. */
export interface FileScan {
  path: string;
  /** Non-blank lines (the reference's line count, torn lines included). */
  lines: number;
  /** hmac of the first line that carries one (null for an empty file). */
  firstHmac: string | null;
  /** hmac of the last line that carries one, and that line's 1-based number in this file. */
  lastHmac: string | null;
  lastHmacLine: number;
  /** Size in bytes. */
  bytes: number;
  /** Stored hmac at a requested line number (see `want`), null if that line has none. */
  wanted: Map<number, string | null>;
}

/** Python's `str.isspace()` characters. */
const PY_SPACE =
  "[\\t\\n\\v\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const STRIP = new RegExp(`^${PY_SPACE}+|${PY_SPACE}+$`, "g");

/** Python `str.strip()`: remove leading and trailing Python whitespace. */
export function stripLine(s: string): string {
  return s.replace(STRIP, "");
}

const TORN_TEMPLATE = '{"details":';

/**
 * A line that looks like an interrupted write: an unparsable line that is a prefix-shaped
 * fragment of an entry (starts like `{"details":`), possibly followed by NUL padding, or NULs only.
 */
export function looksTorn(stripped: string): boolean {
  const s = stripped.replace(/\0+$/, "");
  if (s.length === 0) return stripped.length > 0;
  const head = s.slice(0, TORN_TEMPLATE.length);
  return TORN_TEMPLATE.startsWith(head);
}

/**
 * Split a decoded physical line into the reference's logical lines (universal newlines:
 * a bare `\r` also ends a line), stripped, blanks dropped.
 */
export function logicalLines(text: string): string[] {
  const parts = text.includes("\r") ? text.split("\r") : [text];
  const out: string[] = [];
  for (const p of parts) {
    const s = stripLine(p);
    if (s.length > 0) out.push(s);
  }
  return out;
}

/** The stored hmac of a line (fast structural match, else JSON parse), or null. */
export function lineHmac(bytes: Uint8Array, start: number, end: number): string | null {
  const k = locateHmacField(bytes, start, end);
  if (k >= 0) return decoder.decode(bytes.subarray(k + 8, k + 72));
  let text: string;
  try {
    text = fromUtf8(bytes.subarray(start, end));
  } catch {
    return null;
  }
  try {
    const v = JSON.parse(stripLine(text));
    if (v !== null && typeof v === "object" && !Array.isArray(v) && isTailHmac(v.hmac)) {
      return v.hmac;
    }
  } catch { /* torn or malformed */ }
  return null;
}

/** A scan of `size` bytes with nothing counted yet. */
export function emptyScan(path: string, size: number): FileScan {
  return {
    path,
    lines: 0,
    firstHmac: null,
    lastHmac: null,
    lastHmacLine: 0,
    bytes: size,
    wanted: new Map(),
  };
}

/**
 * Scan a file's bytes without checking MACs: count lines, find the first/last stored hmacs and
 * the hmac at each line number in `want`. `want` may also be chosen once the first hmac is known.
 */
export function scanBytes(
  path: string,
  bytes: Uint8Array,
  want: (firstHmac: string) => number[] = () => [],
): FileScan {
  const scan = emptyScan(path, bytes.length);
  let wanted = new Set<number>();
  let pos = 0;
  const n = bytes.length;
  while (pos < n) {
    let nl = bytes.indexOf(10, pos);
    if (nl < 0) nl = n;
    const start = pos, end = nl;
    pos = nl + 1;
    if (start === end) continue;
    const fast = locateHmacField(bytes, start, end);
    let hmacs: (string | null)[];
    if (fast >= 0) {
      hmacs = [decoder.decode(bytes.subarray(fast + 8, fast + 72))];
    } else {
      let text: string;
      try {
        text = fromUtf8(bytes.subarray(start, end));
      } catch {
        text = "\ufffd";
      }
      hmacs = logicalLines(text).map((l) => {
        const b = new TextEncoder().encode(l);
        return lineHmac(b, 0, b.length);
      });
    }
    for (const h of hmacs) {
      scan.lines++;
      if (h !== null) {
        if (scan.firstHmac === null) {
          scan.firstHmac = h;
          wanted = new Set(want(h));
        }
        scan.lastHmac = h;
        scan.lastHmacLine = scan.lines;
      }
      if (wanted.has(scan.lines)) scan.wanted.set(scan.lines, h);
    }
  }
  return scan;
}
