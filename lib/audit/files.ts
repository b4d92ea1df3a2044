/** File names around an audit log: archives `.1`–`.5`, the `.lock` sentinel and the checkpoint. */
import { basename, dirname, join } from "node:path";
import { ExitCode, IronMeshError } from "../errors.ts";

/** Archives kept by rotation (`<path>.1` newest … `<path>.5` oldest). */
export const MAX_ARCHIVES = 5;
/** Default rotation threshold (10 MiB), as the reference. */
export const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;
/** Smallest rotation threshold the reference accepts. */
export const MIN_MAX_BYTES = 1024;

/** `<path>.<i>`. */
export function archivePath(path: string, i: number): string {
  return `${path}.${i}`;
}

/** The flock sentinel shared with the reference: `<path>.lock`. */
export function lockPathFor(path: string): string {
  return `${path}.lock`;
}

/** The checkpoint next to the log: `audit.log` → `audit.checkpoint` (else `<name>.checkpoint`). */
export function checkpointPathFor(path: string): string {
  const name = basename(path);
  const stem = name.endsWith(".log") ? name.slice(0, -4) : name;
  return join(dirname(path), `${stem}.checkpoint`);
}

/** True if `path` exists as a file. */
export function fileExists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Existing log files oldest first: `.5 … .1` then the live file (live only unless `archives`). */
export function logFilesOldestFirst(path: string, archives: boolean): string[] {
  const files: string[] = [];
  if (archives) {
    for (let i = MAX_ARCHIVES; i >= 1; i--) {
      const p = archivePath(path, i);
      if (fileExists(p)) files.push(p);
    }
  }
  if (fileExists(path)) files.push(path);
  return files;
}

/** Read a whole file, or null when it does not exist; other failures are AUDIT_UNREADABLE. */
export function readFileOrNull(path: string): Uint8Array | null {
  try {
    return Deno.readFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    const perm = e instanceof Deno.errors.PermissionDenied;
    throw new IronMeshError(
      "AUDIT_UNREADABLE",
      `cannot read ${path}: ${(e as Error).message}`,
      perm ? "run as the user that owns the state directory" : "check that it is a regular file",
      perm ? ExitCode.PERMISSION : ExitCode.FAILURE,
    );
  }
}
