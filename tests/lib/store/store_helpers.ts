/** Shared fixtures for the data.db tests: temp dirs, the vector database, fixed keys. */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { fromHex, randomBytes } from "../../../lib/crypto/sodium.ts";
import { FakeClock } from "../../../lib/clock.ts";
import { type MessageStore, openStore, type OpenStoreOptions } from "../../../lib/store/db.ts";
import type { StorageKeys } from "../../../lib/store/storage_key.ts";
import { loadVector, vectorPath } from "../../support/vectors.ts";

/** A raw row of store.expected.json. */
export type RawRow = Record<string, unknown> & { payload_hex?: string };

/** The parts of store.expected.json the tests read. */
export interface StoreVector {
  passphrase: string;
  storage_salt_hex: string;
  storage_salt_b64_in_meta: string;
  argon2id: { opslimit: number; memlimit_bytes: number; output_len: number; ikm_hex: string };
  hkdf_info_hex: string;
  storage_key_hex: string;
  legacy_storage_key_hex: string;
  journal_mode: string;
  schema_sql: string[];
  operations: {
    action: string;
    clock: number;
    result: unknown;
    random_draws: { purpose: string; size: number; hex: string }[];
  }[];
  decrypted_by_reference: Record<string, Record<string, unknown>[]>;
  raw_rows: Record<string, RawRow[]>;
}

/** store.expected.json. */
export const SV = loadVector<StoreVector>("store", "store.expected.json");

/** The vector's keys (pre-derived: no Argon2id). */
export function vectorKeys(): StorageKeys {
  return {
    storageKey: fromHex(SV.storage_key_hex),
    legacyKey: fromHex(SV.legacy_storage_key_hex),
  };
}

/** Fresh random keys for a new test database. */
export function randomKeys(withLegacy = false): StorageKeys {
  return { storageKey: randomBytes(32), legacyKey: withLegacy ? randomBytes(32) : null };
}

/** A new temp dir; remove it with `Deno.removeSync(dir, { recursive: true })`. */
export function tempDir(): string {
  return Deno.makeTempDirSync({ prefix: "ironmesh-store-" });
}

/** Copy the vector data.db (never opened in place) into a temp dir, writable; returns its path. */
export function copyVectorDb(dir: string): string {
  const dst = join(dir, "data.db");
  Deno.copyFileSync(vectorPath("store", "data.db"), dst);
  Deno.chmodSync(dst, 0o600);
  return dst;
}

/** Open a store at `<dir>/data.db` with random keys and a fake clock unless overridden. */
export function openTestStore(
  dir: string,
  opts: Partial<OpenStoreOptions> = {},
): Promise<MessageStore> {
  return openStore(join(dir, "data.db"), {
    credential: opts.credential ?? { keys: randomKeys() },
    clock: opts.clock ?? new FakeClock(),
    ...opts,
  });
}

/** A second, raw connection for inspecting what is on disk. */
export function rawDb(path: string): DatabaseSync {
  return new DatabaseSync(path);
}

/** Rows of a table in rowid order, as plain objects. */
export function rawRows(db: DatabaseSync, table: string): Record<string, unknown>[] {
  return (db.prepare(`SELECT * FROM ${table} ORDER BY rowid`).all() as Record<string, unknown>[])
    .map((r) => ({ ...r }));
}

/** `n` bytes of a recognisable pattern (payload bodies). */
export function pattern(n: number, seed = 0): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}
