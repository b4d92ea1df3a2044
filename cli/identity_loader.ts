/**
 * Opening this node's identity (keys.json) for a command: the passphrase comes from
 * --passphrase-file, IRONMESH_KEYS_PASSPHRASE, then `getPassphrase` (IRONMESH_PASSPHRASE_FILE,
 * IRONMESH_PASSPHRASE, a no-echo prompt on a TTY) — never argv; a progress line shows on a
 * TTY while Argon2id runs.
 * Shared by `keys info`, `trust`, `audit` and `restore`.
 */
import type { Identity } from "../lib/identity/identity.ts";
import { type KdfOptions, type KeyFile, openKeyFile } from "../lib/identity/keyfile.ts";
import { keysPath, readKeyFileAt } from "../lib/identity/keystore.ts";
import type { Context } from "./context.ts";
import { color, type Output } from "./output.ts";
import { envPassphrase, getPassphrase } from "./passphrase.ts";

/** A progress line on a TTY while Argon2id runs (it blocks for about a second). */
export function kdfProgress(out: Output): KdfOptions {
  if (out.json || !Deno.stderr.isTerminal()) return {};
  let t0 = 0;
  const enc = new TextEncoder();
  return {
    onDerive(phase) {
      if (phase === "start") {
        t0 = performance.now();
        Deno.stderr.writeSync(
          enc.encode(`${color.cyan("…")} deriving key with Argon2id (about a second)`),
        );
      } else {
        Deno.stderr.writeSync(
          enc.encode(
            `\r\x1b[K${color.green("✓")} key derived in ${
              ((performance.now() - t0) / 1000).toFixed(1)
            } s\n`,
          ),
        );
      }
    },
  };
}

/** An opened identity with the key file it came from. Call `id.wipe()` when done. */
export interface LoadedIdentity {
  id: Identity;
  keyFile: KeyFile;
  path: string;
}

/** Options for `loadIdentity`. */
export interface LoadIdentityOptions {
  /** Value of --passphrase-file. */
  passphraseFile?: string;
  /** Return null instead of failing when the key file is encrypted and no passphrase source exists. */
  optional?: boolean;
}

/**
 * The key-file passphrase: --passphrase-file, then IRONMESH_KEYS_PASSPHRASE (the key-file
 * passphrase `ironmesh run` also reads; a warning is printed), then the `getPassphrase` chain
 * (IRONMESH_PASSPHRASE_FILE, IRONMESH_PASSPHRASE, a prompt on a terminal).
 */
export async function keyFilePassphrase(
  out: Output,
  opts: LoadIdentityOptions,
): Promise<string | null> {
  if (!opts.passphraseFile) {
    const env = envPassphrase("IRONMESH_KEYS_PASSPHRASE", "--passphrase-file", out);
    if (env !== undefined) return env;
  }
  return await getPassphrase({
    file: opts.passphraseFile,
    purpose: "key-file passphrase",
    out,
    optional: opts.optional,
  });
}

/**
 * Read and decrypt `<state>/keys.json`. A missing file says how to create one; a wrong
 * passphrase, a damaged file or a missing passphrase source each fail with their own code.
 */
export async function loadIdentity(
  ctx: Context,
  opts: LoadIdentityOptions & { optional: true },
): Promise<LoadedIdentity | null>;
export async function loadIdentity(
  ctx: Context,
  opts?: LoadIdentityOptions,
): Promise<LoadedIdentity>;
export async function loadIdentity(
  ctx: Context,
  opts: LoadIdentityOptions = {},
): Promise<LoadedIdentity | null> {
  const path = keysPath(ctx.stateDir);
  const keyFile = await readKeyFileAt(path);
  const passphrase = keyFile.summary.encrypted ? await keyFilePassphrase(ctx.out, opts) : null;
  if (keyFile.summary.encrypted && passphrase === null) return null;
  const id = openKeyFile(keyFile, passphrase, path, kdfProgress(ctx.out));
  return { id, keyFile, path };
}
