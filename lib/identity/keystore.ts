/** Finding, reading and saving keys.json inside a state directory, with errors that say what to do. */
import { join } from "node:path";
import { atomicWrite, ensureStateDir } from "../fs/atomic_write.ts";
import { ExitCode, IronMeshError } from "../errors.ts";
import { type KeyFile, parseKeyFile } from "./keyfile.ts";

/** Path of keys.json in a state directory. */
export function keysPath(stateDir: string): string {
  return join(stateDir, "keys.json");
}

/** Map a filesystem error on `path` to an IronMeshError. */
export function fsError(e: unknown, path: string, what: string): IronMeshError {
  if (e instanceof IronMeshError) return e;
  if (e instanceof Deno.errors.NotFound) {
    return new IronMeshError(
      "NOT_FOUND",
      `${what} ${path} does not exist`,
      "check --state-dir / IRONMESH_HOME",
      ExitCode.NOT_FOUND,
    );
  }
  if (e instanceof Deno.errors.PermissionDenied) {
    return new IronMeshError(
      "PERMISSION",
      `cannot access ${what} ${path}: permission denied`,
      "check its owner and mode (state files should be yours, chmod 600, in a chmod 700 directory)",
      ExitCode.PERMISSION,
    );
  }
  if (
    e instanceof Deno.errors.NotADirectory || /not a directory/i.test(String((e as Error)?.message))
  ) {
    return new IronMeshError(
      "PERMISSION",
      `cannot use ${what} ${path}: a path component is not a directory`,
      "point --state-dir at a directory",
      ExitCode.PERMISSION,
    );
  }
  return new IronMeshError(
    "IO",
    `cannot access ${what} ${path}: ${(e as Error).message}`,
    "check the disk and the path",
    ExitCode.FAILURE,
  );
}

/** True when something (of any kind) exists at `path`; other errors name it as `what`. */
export async function pathExists(path: string, what: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw fsError(e, path, what);
  }
}

/** True when a key file exists at `path`. */
export async function keyFileExists(path: string): Promise<boolean> {
  return await pathExists(path, "key file");
}

/** Read and parse keys.json; a missing file says how to create one. */
export async function readKeyFileAt(path: string): Promise<KeyFile> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new IronMeshError(
        "KEYS_NOT_FOUND",
        `no identity at ${path}`,
        "create one with 'ironmesh keys generate' (or pass the right --state-dir)",
        ExitCode.NOT_FOUND,
      );
    }
    throw fsError(e, path, "key file");
  }
  return parseKeyFile(text, path);
}

/** Write keys.json atomically (0600) in a 0700 state directory. */
export async function saveKeyFileAt(stateDir: string, text: string): Promise<string> {
  const path = keysPath(stateDir);
  try {
    await ensureStateDir(stateDir);
    await atomicWrite(path, text, { mode: 0o600 });
  } catch (e) {
    throw fsError(e, stateDir, "state directory");
  }
  return path;
}
