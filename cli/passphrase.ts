/**
 * Where a passphrase comes from, in order: --passphrase-file, IRONMESH_PASSPHRASE_FILE,
 * IRONMESH_PASSPHRASE (with a warning), a no-echo prompt on a TTY. Never argv.
 */
import { ExitCode, IronMeshError } from "../lib/errors.ts";
import type { Output } from "./output.ts";
import { promptHidden } from "./prompt.ts";

/** The reference's minimum passphrase length. */
export const MIN_PASSPHRASE_LENGTH = 12;

/** Strip the reference's way: leading/trailing "\n", then "\r". */
function stripFileContents(s: string): string {
  return s.replace(/^\n+|\n+$/g, "").replace(/^\r+|\r+$/g, "");
}

function readPassphraseFile(path: string, source: string): string {
  try {
    return stripFileContents(Deno.readTextFileSync(path));
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "does not exist"
      : e instanceof Deno.errors.PermissionDenied
      ? "is not readable"
      : (e as Error).message;
    throw new IronMeshError(
      "PASSPHRASE_FILE",
      `passphrase file ${path} (from ${source}) ${why}`,
      "check the path and its permissions (it should be chmod 600 and owned by you)",
      ExitCode.BAD_PASSPHRASE,
    );
  }
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

/** Check the minimum length; the error names the fix. */
export function checkPassphraseStrength(p: string): void {
  if (p.length < MIN_PASSPHRASE_LENGTH) {
    throw new IronMeshError(
      "PASSPHRASE_TOO_SHORT",
      `Passphrase too short (${p.length} chars). Minimum ${MIN_PASSPHRASE_LENGTH} characters required`,
      "choose a longer passphrase (a random one: `openssl rand -base64 24`)",
      ExitCode.BAD_PASSPHRASE,
    );
  }
}

/** Get a passphrase from the first available source. */
export async function getPassphrase(opts: PassphraseOptions): Promise<string | null> {
  const purpose = opts.purpose ?? "passphrase";
  if (opts.file) return readPassphraseFile(opts.file, "--passphrase-file");
  const envFile = Deno.env.get("IRONMESH_PASSPHRASE_FILE");
  if (envFile) return readPassphraseFile(envFile, "IRONMESH_PASSPHRASE_FILE");
  const env = Deno.env.get("IRONMESH_PASSPHRASE");
  if (env !== undefined && env !== "") {
    opts.out.warn(
      "using IRONMESH_PASSPHRASE: environment variables are readable by other processes of your user; prefer --passphrase-file",
    );
    return env;
  }
  if (Deno.stdin.isTerminal()) {
    const first = await promptHidden(`${purpose[0].toUpperCase()}${purpose.slice(1)}: `);
    if (opts.confirm) {
      checkPassphraseStrength(first);
      const second = await promptHidden(`Repeat ${purpose}: `);
      if (second !== first) {
        throw new IronMeshError(
          "PASSPHRASE_MISMATCH",
          "the two passphrases differ",
          "run the command again and type the same passphrase twice",
          ExitCode.BAD_PASSPHRASE,
        );
      }
    }
    return first;
  }
  if (opts.optional) return null;
  throw new IronMeshError(
    "PASSPHRASE_REQUIRED",
    `Passphrase is required (no ${purpose} source found)`,
    "pass --passphrase-file FILE, or set IRONMESH_PASSPHRASE_FILE, or run on a terminal to be asked",
    ExitCode.BAD_PASSPHRASE,
  );
}
