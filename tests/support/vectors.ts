/** Loads the Python-made golden vectors from ../shared/vectors (read-only; never edited). */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fromHex } from "../../lib/crypto/sodium.ts";

/** Absolute path of the shared vectors directory (override with IRONMESH_VECTORS). */
export const VECTORS_DIR = Deno.env.get("IRONMESH_VECTORS") ??
  fileURLToPath(new URL("../../../shared/vectors", import.meta.url));

/** Path of a file inside the vectors directory. */
export function vectorPath(...parts: string[]): string {
  return join(VECTORS_DIR, ...parts);
}

/** Parse a vectors JSON file. */
export function loadVector<T = Record<string, unknown>>(...parts: string[]): T {
  return JSON.parse(Deno.readTextFileSync(vectorPath(...parts))) as T;
}

/** A float recorded as `{python_repr, ieee754_hex}`; the IEEE-754 bits are authoritative. */
export interface VectorFloat {
  python_repr: string;
  ieee754_hex: string;
}

/** The exact double a vector float records. */
export function vectorFloat(f: VectorFloat): number {
  return new DataView(fromHex(f.ieee754_hex).buffer).getFloat64(0, false);
}
