/**
 * Exclusive lock on a state directory (`<dir>/ironmesh.lock`): an flock held for
 * the life of the process, with the holder's pid written inside so a second
 * process is told who holds it. The kernel drops an flock when its holder dies
 * (even on SIGKILL), so a stale file never blocks a restart.
 */
import { join } from "node:path";
import { ExitCode, IronMeshError } from "../errors.ts";

/** Name of the lock file inside a state directory. */
export const STATE_LOCK_NAME = "ironmesh.lock";

/** A held lock; `release()` unlocks and closes it. */
export interface StateLock {
  readonly path: string;
  release(): void;
}

/** Read the pid recorded in a lock file, or null. */
export function lockHolderPid(path: string): number | null {
  try {
    const pid = Number(Deno.readTextFileSync(path).trim().split(/\s+/)[0]);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Take the exclusive lock `path` now or throw `STATE_LOCKED` naming the holder's pid. */
export function acquireLock(path: string, purpose = "ironmesh"): StateLock {
  const f = Deno.openSync(path, { read: true, write: true, create: true, mode: 0o600 });
  let locked = false;
  try {
    locked = f.tryLockSync(true);
  } catch (e) {
    f.close();
    throw e;
  }
  if (!locked) {
    f.close();
    const pid = lockHolderPid(path);
    throw new IronMeshError(
      "STATE_LOCKED",
      `${path} is locked by another process${pid ? ` (pid ${pid})` : ""}`,
      pid
        ? `stop that process (kill ${pid}) or use another --state-dir`
        : "stop the other ironmesh process or use another --state-dir",
      ExitCode.LOCKED,
    );
  }
  f.truncateSync(0);
  f.writeSync(new TextEncoder().encode(`${Deno.pid} ${purpose}\n`));
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      try {
        f.truncateSync(0);
        f.unlockSync();
      } finally {
        f.close();
      }
    },
  };
}

/** Lock a state directory (`<dir>/ironmesh.lock`). */
export function lockStateDir(dir: string, purpose = "ironmesh"): StateLock {
  return acquireLock(join(dir, STATE_LOCK_NAME), purpose);
}
