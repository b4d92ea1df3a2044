/** Flag parsing for every command: node:util parseArgs plus the global flags, with errors that say what to do. */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { ExitCode, IronMeshError } from "../lib/errors.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Flags every command accepts. */
export const GLOBAL_OPTIONS = {
  "state-dir": { type: "string" },
  json: { type: "boolean" },
  "log-level": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies Options;

/** A usage error: exit 2, with a pointer to the right --help. */
export function usageError(message: string, command: string): IronMeshError {
  return new IronMeshError(
    "USAGE",
    message,
    `try 'ironmesh ${command ? command + " " : ""}--help'`,
    ExitCode.USAGE,
  );
}

/** Parse `argv` for `command` with its own options plus the global ones. */
export function parseCommandArgs<O extends Options>(argv: string[], options: O, command: string) {
  try {
    return parseArgs({
      args: argv,
      options: { ...GLOBAL_OPTIONS, ...options },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    const err = e as Error & { code?: string };
    const m = err.message.match(/Unknown option '([^']+)'/);
    if (m) throw usageError(`unknown option '${m[1]}' for '${command || "ironmesh"}'`, command);
    const v = err.message.match(/Option '([^']+)'.*argument missing/);
    if (v) {
      throw usageError(
        `option '${v[1].split(",").pop()!.trim().replace(/ <value>$/, "")}' needs a value`,
        command,
      );
    }
    throw usageError(err.message.split(". ")[0], command);
  }
}

/** Parse an integer flag in [min, max] or throw a usage error naming the flag. */
export function intFlag(
  value: string | undefined,
  name: string,
  def: number,
  min: number,
  max: number,
  command: string,
): number {
  if (value === undefined) return def;
  const n = Number(value);
  if (!/^-?\d+$/.test(value) || n < min || n > max) {
    throw usageError(
      `--${name} must be a whole number from ${min} to ${max}, got '${value}'`,
      command,
    );
  }
  return n;
}
