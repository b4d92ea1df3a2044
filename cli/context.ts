/** What every command gets: the resolved state dir, output mode, logger. */
import { join } from "node:path";
import { ExitCode, IronMeshError } from "../lib/errors.ts";
import { isLogLevel, LOG_LEVELS, Logger } from "../lib/log.ts";
import { Output } from "./output.ts";
import { usageError } from "./args.ts";

/** A command's environment. */
export interface Context {
  stateDir: string;
  out: Output;
  log: Logger;
  json: boolean;
}

/** The state directory: --state-dir, then IRONMESH_HOME, then ~/.ironmesh. */
export function resolveStateDir(flag: string | undefined): string {
  if (flag) return flag;
  const env = Deno.env.get("IRONMESH_HOME");
  if (env) return env;
  const home = Deno.env.get("HOME");
  if (!home) {
    throw new IronMeshError(
      "NO_HOME",
      "cannot find the home directory (HOME is not set)",
      "pass --state-dir DIR or set IRONMESH_HOME",
      ExitCode.USAGE,
    );
  }
  return join(home, ".ironmesh");
}

/** Build the context from parsed global flags. */
export function makeContext(
  values: { "state-dir"?: string; json?: boolean; "log-level"?: string },
  command: string,
): Context {
  const level = values["log-level"] ?? "info";
  if (!isLogLevel(level)) {
    throw usageError(
      `--log-level must be one of ${LOG_LEVELS.join(", ")}, got '${level}'`,
      command,
    );
  }
  const json = values.json === true;
  return {
    stateDir: resolveStateDir(values["state-dir"]),
    out: new Output(json),
    log: new Logger(level),
    json,
  };
}
