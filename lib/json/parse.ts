/**
 * Parsing peer- and file-supplied JSON safely: a depth guard (the reference's
 * MAX_JSON_DEPTH = 64), and optionally keeping the Python int/float distinction
 * so a parsed value re-serializes to the same bytes.
 */
import { PyFloat } from "./py_float.ts";

/** The reference's maximum nesting depth: the top-level value is depth 0. */
export const MAX_JSON_DEPTH = 64;

/** Raised for JSON that is malformed or nested too deeply. */
export class JsonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "JsonError";
  }
}

/** Deepest container nesting of a JSON text (strings are skipped). */
export function jsonDepth(text: string): number {
  let depth = 0, max = 0, inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) max = depth;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/** Options for `parseJson`. */
export interface ParseOptions {
  /** Maximum depth (default 64). A scalar inside 64 arrays passes; 65 fail. */
  maxDepth?: number;
  /** Keep floats as `PyFloat` and unsafe integers as `bigint` (for byte-exact re-serialization). */
  preserveNumbers?: boolean;
}

/** Parse JSON with a depth guard; NaN/Infinity are refused (standard JSON). */
export function parseJson(text: string, opts: ParseOptions = {}): unknown {
  const maxDepth = opts.maxDepth ?? MAX_JSON_DEPTH;
  // Containers at nesting n hold values at depth n; "64 arrays around a scalar" = 64 containers.
  if (jsonDepth(text) > maxDepth) throw new JsonError(`JSON nesting exceeds max depth ${maxDepth}`);
  try {
    if (!opts.preserveNumbers) return JSON.parse(text);
    return JSON.parse(text, function (_k, v, ctx?: { source?: string }) {
      if (typeof v !== "number" || !ctx?.source) return v;
      const src = ctx.source;
      if (/[.eE]/.test(src)) return new PyFloat(v);
      return Number.isSafeInteger(v) ? v : BigInt(src);
    });
  } catch (e) {
    throw new JsonError(`malformed JSON: ${(e as Error).message}`);
  }
}

/** Parse and require a JSON object (not an array or scalar). */
export function parseJsonObject(text: string, opts: ParseOptions = {}): Record<string, unknown> {
  const v = parseJson(text, opts);
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new JsonError("expected a JSON object");
  }
  return v as Record<string, unknown>;
}
