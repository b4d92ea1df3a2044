/** CLI output: plain text or `--json`, colour only on a TTY and never with NO_COLOR. */
import { IronMeshError } from "../lib/errors.ts";

const useColor = () => !Deno.env.get("NO_COLOR") && Deno.stdout.isTerminal();
const paint = (code: string) => (s: string) => useColor() ? `\x1b[${code}m${s}\x1b[0m` : s;

/** Colour helpers (no-ops without a TTY or with NO_COLOR). */
export const color = {
  bold: paint("1"),
  dim: paint("2"),
  red: paint("31"),
  green: paint("32"),
  yellow: paint("33"),
  cyan: paint("36"),
};

/** Where a command writes its results. */
export class Output {
  constructor(readonly json: boolean) {}

  /** A line of human output (suppressed in --json mode). */
  line(text = ""): void {
    if (!this.json) console.log(text);
  }

  /** The machine-readable result (printed only in --json mode). */
  result(value: unknown): void {
    if (this.json) console.log(JSON.stringify(value, null, 2));
  }

  /** A warning on stderr (both modes). */
  warn(text: string): void {
    console.error(`${color.yellow("warning:")} ${text}`);
  }

  /** Key/value rows aligned in two columns. */
  table(rows: [string, string][]): void {
    const w = Math.max(...rows.map(([k]) => k.length));
    for (const [k, v] of rows) this.line(`${color.dim(k.padEnd(w))}  ${v}`);
  }

  /** Report an error: one line on stderr; in --json mode also a JSON object on stdout. */
  error(e: IronMeshError): void {
    console.error(`error: ${e.oneLine()}`);
    if (this.json) {
      console.log(
        JSON.stringify({ ok: false, error: { code: e.code, message: e.message, hint: e.hint } }),
      );
    }
  }
}
