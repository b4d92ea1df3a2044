/**
 * Reading the state files for a backup and writing a verified restore into a state
 * directory. Reads take the same flocks the writers take (`known_peers.json.lock`,
 * `audit.log.lock`, shared with Python IronMesh), so a running daemon's trust store and
 * audit set (log, archives, checkpoint) are captured consistently. Restores stage every
 * file as a temp file (0600, fsynced) first and only then rename them into place.
 */
import { join } from "node:path";
import { ExitCode, IronMeshError } from "../errors.ts";
import { atomicWrite, syncDir } from "../fs/atomic_write.ts";
import { withFileLockIfPossible } from "../fs/flock.ts";
import { fsError, pathExists } from "../identity/keystore.ts";
import {
  ARCHIVE_NAMES,
  AUDIT_NAME,
  CHECKPOINT_NAME,
  KEYS_NAME,
  STATE_FILES,
  TRUST_NAME,
} from "./contents.ts";

/** Read `path` when it is a regular file; null when absent. Other kinds are refused. */
export async function readStateFile(path: string): Promise<Uint8Array | null> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw fsError(e, path, "state file");
  }
  if (!info.isFile) {
    throw new IronMeshError(
      "NOT_A_FILE",
      `${path} is not a regular file`,
      "move it aside: state files are plain files",
      ExitCode.BAD_INPUT,
    );
  }
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw fsError(e, path, "state file");
  }
}

const exists = (path: string) => pathExists(path, "state file");

/** Read every backed-up state file of `stateDir` (null = absent), under the writers' locks. */
export async function readStateFiles(
  stateDir: string,
  onUnlocked: (what: string, why: string) => void,
): Promise<Map<string, Uint8Array | null>> {
  const files = new Map<string, Uint8Array | null>();
  const path = (n: string) => join(stateDir, n);
  files.set(KEYS_NAME, await readStateFile(path(KEYS_NAME)));
  const trust = path(TRUST_NAME);
  if (await exists(trust)) {
    files.set(
      TRUST_NAME,
      await withFileLockIfPossible(
        `${trust}.lock`,
        () => readStateFile(trust),
        (why) => onUnlocked(TRUST_NAME, why),
      ),
    );
  } else files.set(TRUST_NAME, null);
  const audit = [...ARCHIVE_NAMES, AUDIT_NAME, CHECKPOINT_NAME];
  const anyAudit = (await Promise.all(audit.map((n) => exists(path(n))))).some((b) => b);
  const readAudit = async () => {
    for (const n of audit) files.set(n, await readStateFile(path(n)));
  };
  if (anyAudit) {
    await withFileLockIfPossible(
      `${path(AUDIT_NAME)}.lock`,
      readAudit,
      (why) => onUnlocked(AUDIT_NAME, why),
    );
  } else await readAudit();
  return files;
}

/** Which of the backed-up state files exist in `stateDir` now. */
export async function existingStateFiles(stateDir: string): Promise<string[]> {
  const out: string[] = [];
  for (const n of STATE_FILES) {
    if (await exists(join(stateDir, n))) out.push(n);
  }
  return out;
}

/** The order restored files are renamed into place: audit oldest first, trust, keys last. */
export const RESTORE_ORDER: readonly string[] = [
  ...ARCHIVE_NAMES,
  AUDIT_NAME,
  CHECKPOINT_NAME,
  TRUST_NAME,
  KEYS_NAME,
];

/** What `writeRestore` did. */
export interface RestoreWriteResult {
  written: string[];
  /** Managed files that existed but are not in the backup (removed so the set is exactly the backup's). */
  removed: string[];
  /** Set when the previous keys.json (a different one) was kept. */
  keptOldKeys: string | null;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Write `files` into `stateDir` (which must exist and be locked by the caller): every file
 * is first written to a temp file (0600, fsynced); if any of that fails, the temps are
 * removed and nothing changed. Then the previous keys.json, when different, is kept as
 * keys.json.bak, the temps are renamed over their targets in RESTORE_ORDER, managed files
 * absent from the backup are removed, and the directory is fsynced.
 */
export async function writeRestore(
  stateDir: string,
  files: Map<string, Uint8Array>,
): Promise<RestoreWriteResult> {
  const staged: { name: string; tmp: string }[] = [];
  const names = RESTORE_ORDER.filter((n) => files.has(n));
  try {
    for (const name of names) {
      const tmp = join(stateDir, `.${name}.restore-${Deno.pid}.tmp`);
      const f = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
      staged.push({ name, tmp });
      try {
        const data = files.get(name)!;
        let off = 0;
        while (off < data.length) off += await f.write(data.subarray(off));
        await f.syncData();
      } finally {
        f.close();
      }
      await Deno.chmod(tmp, 0o600);
    }
  } catch (e) {
    for (const s of staged) await Deno.remove(s.tmp).catch(() => {});
    throw fsError(e, stateDir, "state directory");
  }
  let keptOldKeys: string | null = null;
  const keys = join(stateDir, KEYS_NAME);
  const newKeys = files.get(KEYS_NAME);
  const oldKeys = await readStateFile(keys).catch(() => null);
  if (oldKeys && newKeys && !sameBytes(oldKeys, newKeys)) {
    keptOldKeys = `${keys}.bak`;
    try {
      await atomicWrite(keptOldKeys, oldKeys, { mode: 0o600 });
    } catch (e) {
      for (const s of staged) await Deno.remove(s.tmp).catch(() => {});
      throw fsError(e, keptOldKeys, "key backup");
    }
  }
  const written: string[] = [];
  try {
    for (const s of staged) {
      await Deno.rename(s.tmp, join(stateDir, s.name));
      written.push(s.name);
    }
  } catch (e) {
    for (const s of staged) await Deno.remove(s.tmp).catch(() => {});
    throw new IronMeshError(
      "RESTORE_INCOMPLETE",
      `restore stopped after writing ${written.join(", ") || "nothing"}: ${(e as Error).message}`,
      "fix the cause (disk full? permissions?) and run the restore again with --force",
      ExitCode.FAILURE,
    );
  }
  const removed: string[] = [];
  for (const name of STATE_FILES) {
    if (files.has(name)) continue;
    try {
      await Deno.remove(join(stateDir, name));
      removed.push(name);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        throw fsError(e, join(stateDir, name), "state file");
      }
    }
  }
  await syncDir(stateDir);
  return { written, removed, keptOldKeys };
}
