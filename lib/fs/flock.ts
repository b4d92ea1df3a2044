/**
 * Advisory `flock` on a sentinel file (`<path>.lock`), the same lock the Python
 * reference takes for known_peers.json and audit.log, so its CLI and our daemon
 * exclude each other. Waits for the lock; use `tryFileLock` for a non-blocking try.
 */

const LOCK_FILE: Deno.OpenOptions = { read: true, write: true, create: true, mode: 0o600 };

/** Run `fn` holding an exclusive flock on the open sentinel `f`; closes `f`. */
async function holdingLock<T>(f: Deno.FsFile, fn: () => Promise<T> | T): Promise<T> {
  try {
    await f.lock(true);
    try {
      return await fn();
    } finally {
      await f.unlock();
    }
  } finally {
    f.close();
  }
}

/** Run `fn` while holding an exclusive flock on `lockPath` (created 0600 if missing). */
export async function withFileLock<T>(lockPath: string, fn: () => Promise<T> | T): Promise<T> {
  return await holdingLock(await Deno.open(lockPath, LOCK_FILE), fn);
}

/**
 * Like `withFileLock`, but when the sentinel cannot be created (a read-only directory) `fn`
 * runs unlocked and `onUnlocked` is told why.
 */
export async function withFileLockIfPossible<T>(
  lockPath: string,
  fn: () => Promise<T>,
  onUnlocked: (why: string) => void,
): Promise<T> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(lockPath, LOCK_FILE);
  } catch (e) {
    onUnlocked((e as Error).message);
    return await fn();
  }
  return await holdingLock(f, fn);
}

/** Synchronous variant of `withFileLock`. */
export function withFileLockSync<T>(lockPath: string, fn: () => T): T {
  const f = Deno.openSync(lockPath, LOCK_FILE);
  try {
    f.lockSync(true);
    try {
      return fn();
    } finally {
      f.unlockSync();
    }
  } finally {
    f.close();
  }
}
