/**
 * Where a passphrase comes from, in order: --passphrase-file, IRONMESH_PASSPHRASE_FILE,
 * IRONMESH_PASSPHRASE (with a warning), a no-echo prompt on a TTY. Never argv.
 */
import { ExitCode, IronMeshError } from "../lib/errors.ts";
import { checkPassphraseStrength, stripPassphraseFile } from "../lib/node_inputs.ts";
import type { Output } from "./output.ts";
import { promptHidden } from "./prompt.ts";

/**
 * Read and strip a passphrase file named by `source` (a flag or an environment variable);
 * `label` is what the error calls the file.
 */
export function readPassphraseFile(
  path: string,
  source: string,
  label = "passphrase file",
): string {
  try {
    return stripPassphraseFile(Deno.readTextFileSync(path));
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "does not exist"
      : e instanceof Deno.errors.PermissionDenied
      ? "is not readable"
      : (e as Error).message;
    throw new IronMeshError(
      "PASSPHRASE_FILE",
      `${label} ${path} (from ${source}) ${why}`,
      "check the path and its permissions (it should be chmod 600 and owned by you)",
      ExitCode.BAD_PASSPHRASE,
    );
  }
}

/**
 * A secret from the environment variable `name` (unset or empty: undefined), with a warning
 * that points at `preferred` (the flag naming a file) instead.
 */
export function envPassphrase(name: string, preferred: string, out: Output): string | undefined {
  const env = Deno.env.get(name);
  if (env === undefined || env === "") return undefined;
  out.warn(
    `using ${name}: environment variables are readable by other processes of your user; prefer ${preferred}`,
  );
  return env;
}

/** Where one secret may come from before a prompt: a flag's file, a file variable, a variable. */
export interface PassphraseSources {
  /** The flag naming a file, e.g. "--passphrase-file". */
  flag: string;
  /** The environment variable naming a file, e.g. "IRONMESH_PASSPHRASE_FILE". */
  fileEnv: string;
  /** The environment variable holding the secret itself (read with a warning). */
  env: string;
  /** What errors call the file (default "passphrase file"). */
  label?: string;
}

const MESH_SOURCES: PassphraseSources = {
  flag: "--passphrase-file",
  fileEnv: "IRONMESH_PASSPHRASE_FILE",
  env: "IRONMESH_PASSPHRASE",
};

/**
 * The secret from the first non-interactive source: `file` (the flag's value), the file
 * variable, the variable (with a warning). Undefined when none is set.
 */
export function passphraseFromSources(
  file: string | undefined,
  sources: PassphraseSources,
  out: Output,
): string | undefined {
  if (file) return readPassphraseFile(file, sources.flag, sources.label);
  const envFile = Deno.env.get(sources.fileEnv);
  if (envFile) return readPassphraseFile(envFile, sources.fileEnv, sources.label);
  return envPassphrase(sources.env, sources.flag, out);
}

/**
 * Ask on the terminal without echo. With `confirm` (a new secret), the answer must be strong
 * enough and is asked again with `confirm.repeat`; `confirm.what` names it when they differ.
 */
export async function promptPassphrase(
  prompt: string,
  confirm?: { repeat: string; what: string },
): Promise<string> {
  const first = await promptHidden(prompt);
  if (confirm) {
    checkPassphraseStrength(first);
    const second = await promptHidden(confirm.repeat);
    if (second !== first) {
      throw new IronMeshError(
        "PASSPHRASE_MISMATCH",
        `the two ${confirm.what} differ`,
        "run the command again and type the same passphrase twice",
        ExitCode.BAD_PASSPHRASE,
      );
    }
  }
  return first;
}

/** Options for `getPassphrase`. */
export interface PassphraseOptions {
  /** Value of --passphrase-file. */
  file?: string;
  /** Ask twice on a TTY (creating a new secret). */
  confirm?: boolean;
  /** What the passphrase is for, shown in the prompt. */
  purpose?: string;
  /** Return null instead of failing when no source exists. */
  optional?: boolean;
  out: Output;
}

/** Get a passphrase from the first available source. */
export async function getPassphrase(opts: PassphraseOptions): Promise<string | null> {
  const purpose = opts.purpose ?? "passphrase";
  const given = passphraseFromSources(opts.file, MESH_SOURCES, opts.out);
  if (given !== undefined) return given;
  if (Deno.stdin.isTerminal()) {
    return await promptPassphrase(
      `${purpose[0].toUpperCase()}${purpose.slice(1)}: `,
      opts.confirm ? { repeat: `Repeat ${purpose}: `, what: "passphrases" } : undefined,
    );
  }
  if (opts.optional) return null;
  throw new IronMeshError(
    "PASSPHRASE_REQUIRED",
    `Passphrase is required (no ${purpose} source found)`,
    "pass --passphrase-file FILE, or set IRONMESH_PASSPHRASE_FILE, or run on a terminal to be asked",
    ExitCode.BAD_PASSPHRASE,
  );
}
