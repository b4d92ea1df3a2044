/**
 * Advisory `flock` on a sentinel file (`<path>.lock`), the same lock the Python
 * reference takes for known_peers.json and audit.log, so its CLI and our daemon
 * exclude each other. Waits for the lock; use `tryFileLock` for a non-blocking try.
 */

/** Run `fn` while holding an exclusive flock on `lockPath` (created 0600 if missing). */
export async function withFileLock<T>(lockPath: string, fn: () => Promise<T> | T): Promise<T> {
  const f = await Deno.open(lockPath, { read: true, write: true, create: true, mode: 0o600 });
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

/** Synchronous variant of `withFileLock`. */
export function withFileLockSync<T>(lockPath: string, fn: () => T): T {
  const f = Deno.openSync(lockPath, { read: true, write: true, create: true, mode: 0o600 });
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
