/** Splitting `<cmd> <sub> [flags]` and printing help for command groups like `keys` and `audit`. */
import { GLOBAL_OPTIONS } from "./args.ts";

const VALUE_FLAGS = new Set(
  Object.entries(GLOBAL_OPTIONS).filter(([, o]) => o.type === "string").map(([k]) => `--${k}`),
);

/** Find the first positional word (the subcommand) and return it with the remaining argv. */
export function splitSubcommand(
  argv: string[],
  valueFlags: string[] = [],
): { sub: string | null; rest: string[] } {
  const takesValue = new Set([...VALUE_FLAGS, ...valueFlags]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") break;
    if (a.startsWith("-")) {
      if (takesValue.has(a)) i++;
      continue;
    }
    return { sub: a, rest: [...argv.slice(0, i), ...argv.slice(i + 1)] };
  }
  return { sub: null, rest: argv };
}

/** Global flags, listed at the end of every help text. */
export const GLOBAL_HELP = `Global flags:
  --state-dir DIR     state directory (default: $IRONMESH_HOME or ~/.ironmesh)
  --json              machine-readable JSON output
  --log-level LEVEL   debug | info | warn | error (default: info)
  -h, --help          show help`;
