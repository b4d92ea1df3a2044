/**
 * Atomic state-file writes: write `<path>.<pid>.<n>.tmp`, fsync it, rename over
 * the target, fsync the directory. A crash at any moment leaves either the old
 * or the new complete file, never a mix.
 */
import { dirname } from "node:path";

let counter = 0;

/** Options for atomic writes. */
export interface AtomicWriteOptions {
  /** File mode (default 0o600). */
  mode?: number;
}

/** Atomically replace `path` with `data` (mode 0600 by default). */
export async function atomicWrite(
  path: string,
  data: Uint8Array | string,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const tmp = `${path}.${Deno.pid}.${++counter}.tmp`;
  const mode = opts.mode ?? 0o600;
  try {
    const f = await Deno.open(tmp, { write: true, createNew: true, mode });
    try {
      let off = 0;
      while (off < bytes.length) off += await f.write(bytes.subarray(off));
      await f.syncData();
    } finally {
      f.close();
    }
    await Deno.chmod(tmp, mode);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await syncDir(dirname(path));
}

/** Synchronous variant of `atomicWrite`, for shutdown paths that cannot await. */
export function atomicWriteSync(
  path: string,
  data: Uint8Array | string,
  opts: AtomicWriteOptions = {},
): void {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const tmp = `${path}.${Deno.pid}.${++counter}.tmp`;
  const mode = opts.mode ?? 0o600;
  try {
    const f = Deno.openSync(tmp, { write: true, createNew: true, mode });
    try {
      let off = 0;
      while (off < bytes.length) off += f.writeSync(bytes.subarray(off));
      f.syncDataSync();
    } finally {
      f.close();
    }
    Deno.chmodSync(tmp, mode);
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* already gone */ }
    throw e;
  }
  syncDirSync(dirname(path));
}

/** Synchronous variant of `syncDir`. */
export function syncDirSync(dir: string): void {
  try {
    const d = Deno.openSync(dir, { read: true });
    try {
      d.syncSync();
    } finally {
      d.close();
    }
  } catch { /* some filesystems refuse directory fsync */ }
}

/** fsync the directory `dir` (after a rename in it), where the filesystem allows it. */
export async function syncDir(dir: string): Promise<void> {
  try {
    const d = await Deno.open(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch { /* some filesystems refuse directory fsync; the rename is still atomic */ }
}

/** Create the state directory with mode 0700 if missing (existing directories are left alone). */
export async function ensureStateDir(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
}
