/**
 * Opening data.db (PROTOCOL-0.9 §11.6): schema 3 migrations, `journal_mode=WAL`,
 * `synchronous=FULL` (a committed write survives kill -9 and power loss),
 * `foreign_keys=ON`, mode 0600, the storage salt, the storage keys, the legacy-payload
 * upgrade. `MessageStore` bundles the queue, pending-trust queue, history and peers.
 */
import { DatabaseSync } from "node:sqlite";
import { dirname } from "node:path";
import { type Clock, type Rng, systemClock, systemRng } from "../clock.ts";
import { fromB64, toB64, wipe } from "../crypto/sodium.ts";
import { ExitCode, IronMeshError } from "../errors.ts";
import { type CleanupOptions, type CleanupReport, runCleanup } from "./cleanup.ts";
import { StoreContext } from "./context.ts";
import { History } from "./history.ts";
import {
  type PayloadMigration,
  storageKeyMismatch,
  upgradeStorageFormat,
} from "./migrate_payloads.ts";
import { DEFAULT_PENDING_TRUST_CAP, type DrainedItem, PendingTrustQueue } from "./pending_trust.ts";
import { PeerTable } from "./peers.ts";
import { DEFAULT_MAX_PENDING_PER_PEER, OfflineQueue } from "./queue.ts";
import {
  getMeta,
  META_STORAGE_FORMAT,
  META_STORAGE_SALT,
  migrateSchema,
  setMeta,
} from "./schema.ts";
import {
  deriveStorageKeys,
  PayloadCipher,
  STORAGE_SALT_BYTES,
  type StorageKeys,
} from "./storage_key.ts";

/** How the store gets its keys. */
export type StoreCredential =
  /** Mesh passphrase: Argon2id + HKDF over the database's salt (~1 s, 256 MiB) on open. */
  | { passphrase: string }
  /** Pre-derived keys for this database's salt; the salt is neither read nor created. */
  | { keys: StorageKeys }
  /** Called with the database's salt (created if missing), e.g. to derive once and cache. */
  | { derive: (salt: Uint8Array) => StorageKeys | Promise<StorageKeys> };

/** Options of `openStore`. */
export interface OpenStoreOptions {
  credential: StoreCredential;
  /** Timestamps (default the system clock). */
  clock?: Clock;
  /** Storage salt and SecretBox nonces (default libsodium's CSPRNG). */
  rng?: Rng;
  /** Offline-queue cap per peer (default 1000; 0 = unbounded). */
  maxPendingPerPeer?: number;
  /** Pending-trust cap per peer (default 100; 0 = unbounded). */
  pendingTrustCap?: number;
  /** How long to wait for another connection's write lock (default 5000 ms). */
  busyTimeoutMs?: number;
}

function storeError(path: string, e: unknown): IronMeshError {
  if (e instanceof IronMeshError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  if (/not a database|malformed|corrupt/i.test(msg)) {
    return new IronMeshError(
      "STORE_CORRUPT",
      `${path} is damaged: ${msg}`,
      "move data.db (and data.db-wal, data.db-shm) aside to start an empty store, or restore a backup",
      ExitCode.TAMPERED,
    );
  }
  if (/permission|readonly|read-only|EACCES/i.test(msg)) {
    return new IronMeshError(
      "STORE_PERMISSION",
      `cannot open ${path} for writing: ${msg}`,
      "check the owner and permissions of the state directory (it should be yours, mode 0700)",
      ExitCode.PERMISSION,
    );
  }
  if (/locked|busy/i.test(msg)) {
    return new IronMeshError(
      "STORE_BUSY",
      `${path} is locked by another process: ${msg}`,
      "stop the other ironmesh process using this --state-dir",
      ExitCode.LOCKED,
    );
  }
  return new IronMeshError(
    "STORE_OPEN_FAILED",
    `cannot open ${path}: ${msg}`,
    "check the path and free disk space; run 'ironmesh doctor' for details",
    ExitCode.FAILURE,
  );
}

function ensureFile(path: string): void {
  Deno.mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    Deno.openSync(path, { write: true, createNew: true, mode: 0o600 }).close();
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
}

/** Make data.db and its -wal/-shm owner-only (SQLite gives -wal/-shm the db file's mode). */
function tightenModes(path: string): void {
  if (Deno.build.os === "windows") return;
  for (const p of [path, `${path}-wal`, `${path}-shm`]) {
    let mode: number | null = null;
    try {
      mode = Deno.statSync(p).mode;
    } catch {
      continue; // not created yet
    }
    if (mode !== null && (mode & 0o077) !== 0) Deno.chmodSync(p, 0o600);
  }
}

function readOrCreateSalt(db: DatabaseSync, rng: Rng): Uint8Array {
  const stored = getMeta(db, META_STORAGE_SALT);
  if (stored === null) {
    const salt = rng.bytes(STORAGE_SALT_BYTES);
    setMeta(db, META_STORAGE_SALT, toB64(salt));
    return salt;
  }
  let salt: Uint8Array;
  try {
    salt = fromB64(stored.trim());
  } catch {
    salt = new Uint8Array(0);
  }
  if (salt.length !== STORAGE_SALT_BYTES) {
    throw new IronMeshError(
      "STORE_BAD_SALT",
      `data.db storage salt is invalid (${salt.length} bytes, expected ${STORAGE_SALT_BYTES})`,
      "data.db _meta.storage_salt is damaged; restore data.db from a backup or move it aside",
      ExitCode.TAMPERED,
    );
  }
  return salt;
}

function inTx<T>(db: DatabaseSync, fn: () => T): T {
  db.exec("BEGIN IMMEDIATE");
  try {
    const r = fn();
    db.exec("COMMIT");
    return r;
  } catch (e) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw e;
  }
}

/** Open (creating if needed) data.db at `path` and make it ready for use. */
export async function openStore(path: string, opts: OpenStoreOptions): Promise<MessageStore> {
  const clock = opts.clock ?? systemClock;
  const rng = opts.rng ?? systemRng;
  const cred = opts.credential;
  let db: DatabaseSync;
  try {
    ensureFile(path);
    db = new DatabaseSync(path, {
      enableForeignKeyConstraints: true,
      timeout: opts.busyTimeoutMs ?? 5000,
    });
  } catch (e) {
    throw storeError(path, e);
  }
  let keys: StorageKeys | null = null;
  let ownKeys = false;
  try {
    const mode = db.prepare("PRAGMA journal_mode=WAL").get() as { journal_mode?: string };
    if (String(mode?.journal_mode).toLowerCase() !== "wal") {
      throw new IronMeshError(
        "STORE_NO_WAL",
        `${path}: SQLite refused journal_mode=WAL (got ${mode?.journal_mode})`,
        "put the state directory on a local filesystem that supports shared memory (not NFS)",
        ExitCode.UNSUPPORTED,
      );
    }
    db.exec("PRAGMA synchronous=FULL");
    db.exec("PRAGMA foreign_keys=ON");
    const needSalt = !("keys" in cred);
    const { found, salt } = inTx(db, () => {
      const found = migrateSchema(db);
      return { found, salt: needSalt ? readOrCreateSalt(db, rng) : null };
    });
    if ("passphrase" in cred) {
      keys = deriveStorageKeys(cred.passphrase, salt!);
      ownKeys = true;
    } else if ("derive" in cred) {
      keys = await cred.derive(salt!.slice());
    } else {
      keys = cred.keys;
    }
    const ctx = new StoreContext(db, new PayloadCipher(keys, rng), clock);
    if (ownKeys) wipe(keys.storageKey, keys.legacyKey);
    if (storageKeyMismatch(ctx)) {
      throw new IronMeshError(
        "STORE_WRONG_PASSPHRASE",
        `${path}: the stored messages do not decrypt with this passphrase`,
        "start with the mesh passphrase this node used before, or move data.db aside",
        ExitCode.WRONG_PASSPHRASE,
      );
    }
    const migration = ctx.tx(() => upgradeStorageFormat(ctx));
    tightenModes(path);
    return new MessageStore(path, ctx, found, migration, opts);
  } catch (e) {
    if (ownKeys && keys) wipe(keys.storageKey, keys.legacyKey);
    try {
      db.close();
    } catch { /* already closed */ }
    throw storeError(path, e);
  }
}

/** An open data.db: the offline queue, pending-trust queue, history and peers tables. */
export class MessageStore {
  /** Path of data.db. */
  readonly path: string;
  /** Offline queue (`pending_messages`). */
  readonly queue: OfflineQueue;
  /** Pending-trust queue (`pending_trust_messages`). */
  readonly pendingTrust: PendingTrustQueue;
  /** Message history (`messages`). */
  readonly history: History;
  /** Peer sightings (`peers`). */
  readonly peers: PeerTable;
  /** Schema version found on open (0 = new file). */
  readonly schemaVersionFound: number;
  /** What the legacy-payload upgrade did on open. */
  readonly migration: PayloadMigration;
  #ctx: StoreContext;
  #closed = false;

  /** Use `openStore`. */
  constructor(
    path: string,
    ctx: StoreContext,
    schemaVersionFound: number,
    migration: PayloadMigration,
    opts: OpenStoreOptions,
  ) {
    this.path = path;
    this.#ctx = ctx;
    this.schemaVersionFound = schemaVersionFound;
    this.migration = migration;
    this.queue = new OfflineQueue(ctx, opts.maxPendingPerPeer ?? DEFAULT_MAX_PENDING_PER_PEER);
    this.pendingTrust = new PendingTrustQueue(
      ctx,
      opts.pendingTrustCap ?? DEFAULT_PENDING_TRUST_CAP,
    );
    this.history = new History(ctx);
    this.peers = new PeerTable(ctx);
  }

  /** Whether `close()` has not been called yet. */
  get isOpen(): boolean {
    return !this.#closed;
  }

  /** Hourly cleanup (24 h queue, 30 d history) relative to `now` (default the store clock). */
  cleanup(now?: number, opts?: CleanupOptions): CleanupReport {
    return runCleanup(this.#ctx, now ?? this.#ctx.clock.now(), opts);
  }

  /** Run `fn` (synchronous) in one transaction: one commit, one fsync, for several writes. */
  transaction<T>(fn: () => T): T {
    return this.#ctx.tx(fn);
  }

  /** Drain pending-trust messages into history in one transaction (promote). */
  promote(sourceNodeId: string, selfNodeId: string): DrainedItem[] {
    return this.pendingTrust.drain(sourceNodeId, {
      history: this.history,
      destination: selfNodeId,
    });
  }

  /** `PRAGMA integrity_check` result lines (`["ok"]` when healthy). */
  integrityCheck(): string[] {
    return (this.#ctx.db.prepare("PRAGMA integrity_check").all() as { integrity_check: string }[])
      .map((r) => String(r.integrity_check));
  }

  /** The connection's durability settings (for `doctor`): expect wal / 2 (FULL) / 1. */
  pragmas(): { journalMode: string; synchronous: number; foreignKeys: number } {
    const one = (sql: string) => Object.values(this.#ctx.db.prepare(sql).get() ?? {})[0];
    return {
      journalMode: String(one("PRAGMA journal_mode")),
      synchronous: Number(one("PRAGMA synchronous")),
      foreignKeys: Number(one("PRAGMA foreign_keys")),
    };
  }

  /** `_meta.storage_format` (`aead-v2` once migrated), or null. */
  storageFormat(): string | null {
    return getMeta(this.#ctx.db, META_STORAGE_FORMAT);
  }

  /** Fold the WAL into the main file (e.g. before a backup). */
  checkpoint(): void {
    this.#ctx.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }

  /** Close the connection and wipe the keys. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ctx.clear();
    this.#ctx.cipher.wipe();
    this.#ctx.db.close();
  }
}
