/**
 * The state files the `trust` and `audit` commands work on (PROTOCOL-0.9 §11.1), how to
 * open them with the node identity, and who holds the state-directory lock.
 */
import { join } from "node:path";
import { AuditLog } from "./audit/log.ts";
import { auditKey } from "./crypto/kdf.ts";
import { ExitCode, IronMeshError } from "./errors.ts";
import { STATE_LOCK_NAME } from "./fs/lock.ts";
import type { Identity } from "./identity/identity.ts";
import { fsError } from "./identity/keystore.ts";
import { TrustStore } from "./trust/store.ts";

/** known_peers.json in a state directory. */
export function trustStorePath(stateDir: string): string {
  return join(stateDir, "known_peers.json");
}

/** audit.log in a state directory. */
export function auditLogPath(stateDir: string): string {
  return join(stateDir, "audit.log");
}

/** Open the trust store of `stateDir` with the identity's keys; I/O failures say what to do. */
export async function openTrustStore(stateDir: string, id: Identity): Promise<TrustStore> {
  const path = trustStorePath(stateDir);
  try {
    return await TrustStore.open(path, id.seed);
  } catch (e) {
    throw fsError(e, path, "trust store");
  }
}

/** An audit writer for `stateDir` (HMAC key from the seed, checkpoints signed by the identity). */
export function openAuditWriter(stateDir: string, id: Identity): AuditLog {
  return new AuditLog(auditLogPath(stateDir), { key: auditKey(id.seed), signer: id });
}

/** Whether a log path is a readable regular file. */
export type LogFileState = "ok" | "missing";

/**
 * Check that `path` is absent or a readable regular file. Throws AUDIT_UNREADABLE (exit 8)
 * for a directory, a dangling/looping link or a file we may not read; reads nothing else.
 */
export function checkLogFile(path: string): LogFileState {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "missing";
    throw unreadable(path, (e as Error).message);
  }
  if (!info.isFile) throw unreadable(path, "it is not a regular file");
  try {
    Deno.openSync(path, { read: true }).close();
  } catch (e) {
    throw unreadable(
      path,
      e instanceof Deno.errors.PermissionDenied ? "permission denied" : (e as Error).message,
    );
  }
  return "ok";
}

function unreadable(path: string, why: string): IronMeshError {
  return new IronMeshError(
    "AUDIT_UNREADABLE",
    `cannot read the audit log ${path}: ${why}`,
    "run as the user that owns the state directory, and check that the path is a regular file",
    ExitCode.PERMISSION,
  );
}

/** The process holding `<state>/ironmesh.lock`, as recorded in the file. */
export interface LockHolder {
  pid: number | null;
  /** What it said it was doing (e.g. `run`), when recorded. */
  purpose: string;
}

/**
 * Who holds the state-directory lock right now, or null when nobody does. Probes with a
 * non-blocking shared flock on the existing file and releases it at once: creates and writes
 * nothing.
 */
export function stateLockHolder(stateDir: string): LockHolder | null {
  const path = join(stateDir, STATE_LOCK_NAME);
  let f: Deno.FsFile;
  try {
    f = Deno.openSync(path, { read: true });
  } catch {
    return null; // no lock file (or unreadable): nobody we could be told about holds it
  }
  try {
    if (f.tryLockSync(false)) {
      f.unlockSync();
      return null;
    }
  } finally {
    f.close();
  }
  let text = "";
  try {
    text = Deno.readTextFileSync(path).trim();
  } catch { /* raced: the holder just released it */ }
  const [pidText, ...rest] = text.split(/\s+/);
  const pid = Number(pidText);
  return {
    pid: Number.isSafeInteger(pid) && pid > 0 ? pid : null,
    purpose: rest.join(" "),
  };
}
