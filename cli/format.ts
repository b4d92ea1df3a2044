/** Small text-output helpers shared by the `trust` and `audit` commands. */
import { usageError } from "./args.ts";

/** Epoch seconds as `YYYY-MM-DD HH:MM:SSZ` (UTC), or `-` when unknown. */
export function fmtTime(ts: number | null | undefined): string {
  if (ts === null || ts === undefined || !Number.isFinite(ts)) return "-";
  const d = new Date(ts * 1000);
  if (Number.isNaN(d.getTime())) return "-";
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

/** Epoch seconds as ISO-8601 (for JSON), or null. */
export function isoTime(ts: number | null | undefined): string | null {
  if (ts === null || ts === undefined || !Number.isFinite(ts)) return null;
  const d = new Date(ts * 1000);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/g;

/** Text on one line with control characters escaped (for messages that quote file content). */
export function oneLine(s: string): string {
  return s.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Text safe for a terminal: control characters (escape sequences included) escaped. */
export function safeText(s: string): string {
  return oneLine(s);
}

/** A value for a one-line `key=value` rendering (strings with spaces or quotes are JSON-quoted). */
export function inlineValue(v: unknown): string {
  if (typeof v === "string") {
    // deno-lint-ignore no-control-regex
    return /^[^\x00-\x20\x7f-\x9f"\\=\u2028\u2029]+$/.test(v) ? v : oneLine(JSON.stringify(v));
  }
  try {
    return oneLine(JSON.stringify(v) ?? String(v));
  } catch {
    return oneLine(String(v));
  }
}

/** Rows in aligned columns (the last column is not padded). */
export function columns(header: string[], rows: string[][]): string[] {
  const all = [header, ...rows];
  const w = header.map((_, i) => Math.max(...all.map((r) => [...(r[i] ?? "")].length)));
  return all.map((r) =>
    r.map((c, i) => (i === r.length - 1 ? c : c + " ".repeat(w[i] - [...c].length))).join("  ")
      .trimEnd()
  );
}

/** Check the positional arguments of a subcommand: exactly `names` (missing/extra → usage). */
export function positionalArgs(positionals: string[], names: string[], command: string): string[] {
  if (positionals.length < names.length) {
    throw usageError(
      `missing ${names.slice(positionals.length).map((n) => `<${n}>`).join(" ")}`,
      command,
    );
  }
  if (positionals.length > names.length) {
    throw usageError(`unexpected argument '${positionals[names.length]}'`, command);
  }
  return positionals;
}
