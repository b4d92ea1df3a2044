/**
 * data.db schema 3 exactly as the reference creates it (PROTOCOL-0.9 §11.6): the same
 * migration steps and the same statement text, so `sqlite_master.sql` matches a
 * Python-made database byte for byte (whitespace included).
 */
import type { DatabaseSync } from "node:sqlite";
import { ExitCode, IronMeshError } from "../errors.ts";

/** The schema version this code writes and reads. */
export const SCHEMA_VERSION = 3;

/** `_meta` keys. */
export const META_SCHEMA_VERSION = "schema_version";
/** `_meta` key of the base64 16-byte storage salt. */
export const META_STORAGE_SALT = "storage_salt";
/** `_meta` key of the storage-format marker. */
export const META_STORAGE_FORMAT = "storage_format";
/** `_meta.storage_format` value once every legacy payload is migrated. */
export const STORAGE_FORMAT_AEAD_V2 = "aead-v2";

const COL = " ".repeat(16);
const END = " ".repeat(12);
const IDX_END = "\n" + " ".repeat(8);

function table(name: string, columns: string[]): string {
  return `CREATE TABLE IF NOT EXISTS ${name} (\n${
    columns.map((c) => COL + c).join(",\n")
  }\n${END})`;
}

/** `_meta (key, value)`. */
const META_SQL = table("_meta", ["key TEXT PRIMARY KEY", "value TEXT"]);

/** Schema v1: history, offline queue, peers. */
const V1_SQL = [
  table("messages", [
    "msg_id TEXT PRIMARY KEY",
    "source TEXT NOT NULL",
    "source_display TEXT",
    "destination TEXT NOT NULL",
    "msg_type TEXT NOT NULL",
    "payload BLOB",
    "timestamp REAL NOT NULL",
    "priority TEXT DEFAULT 'NORMAL'",
    "direction TEXT NOT NULL",
    "status TEXT DEFAULT 'delivered'",
    "retries INTEGER DEFAULT 0",
  ]),
  `CREATE INDEX IF NOT EXISTS idx_messages_timestamp ON messages(timestamp)${IDX_END}`,
  `CREATE INDEX IF NOT EXISTS idx_messages_source ON messages(source)${IDX_END}`,
  `CREATE INDEX IF NOT EXISTS idx_messages_destination ON messages(destination)${IDX_END}`,
  table("pending_messages", [
    "id INTEGER PRIMARY KEY AUTOINCREMENT",
    "peer_node_id TEXT NOT NULL",
    "msg_id TEXT NOT NULL",
    "source TEXT NOT NULL",
    "msg_type TEXT NOT NULL",
    "payload BLOB",
    "priority TEXT DEFAULT 'NORMAL'",
    "created_at REAL NOT NULL",
    "delivered INTEGER DEFAULT 0",
    "delivered_at REAL",
    "retries INTEGER DEFAULT 0",
    "UNIQUE(peer_node_id, msg_id)",
  ]),
  `CREATE INDEX IF NOT EXISTS idx_pending_peer ON pending_messages(peer_node_id, delivered)${IDX_END}`,
  table("peers", [
    "node_id TEXT PRIMARY KEY",
    "identity_public_b64 TEXT",
    "fingerprint TEXT",
    "first_seen REAL",
    "last_seen REAL",
    "last_address TEXT",
  ]),
];

/** Schema v2: trust columns appended to `peers` (ALTER TABLE, as the reference does). */
const V2_COLUMNS: [string, string][] = [
  ["trusted", "ALTER TABLE peers ADD COLUMN trusted INTEGER DEFAULT 0"],
  ["trust_first_seen", "ALTER TABLE peers ADD COLUMN trust_first_seen REAL"],
];

/** Schema v3: the pending-trust queue. */
const V3_SQL = [
  table("pending_trust_messages", [
    "id INTEGER PRIMARY KEY AUTOINCREMENT",
    "source_node_id TEXT NOT NULL",
    "msg_id TEXT NOT NULL",
    "msg_type TEXT NOT NULL",
    "payload BLOB",
    "priority TEXT DEFAULT 'NORMAL'",
    "queued_at REAL NOT NULL",
    "UNIQUE(source_node_id, msg_id)",
  ]),
  `CREATE INDEX IF NOT EXISTS idx_pending_trust_source\n${END}ON pending_trust_messages(source_node_id, queued_at)${IDX_END}`,
];

/** Read a `_meta` value (null when absent). */
export function getMeta(db: DatabaseSync, key: string): string | null {
  const row = db.prepare("SELECT value FROM _meta WHERE key = ?").get(key) as
    | { value: unknown }
    | undefined;
  if (!row || row.value === null || row.value === undefined) return null;
  return String(row.value);
}

/** Write a `_meta` value (insert or replace). */
export function setMeta(db: DatabaseSync, key: string, value: string): void {
  db.prepare("INSERT OR REPLACE INTO _meta (key, value) VALUES (?, ?)").run(key, value);
}

function columnNames(db: DatabaseSync, tableName: string): Set<string> {
  const rows = db.prepare(`PRAGMA table_info(${tableName})`).all() as { name: string }[];
  return new Set(rows.map((r) => r.name));
}

/** The schema version recorded in `_meta` (0 for a new database). */
export function schemaVersionOf(db: DatabaseSync): number {
  const v = getMeta(db, META_SCHEMA_VERSION);
  if (v === null) return 0;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0 || String(n) !== v.trim()) {
    throw new IronMeshError(
      "STORE_BAD_SCHEMA",
      `data.db schema_version "${v}" is not a number`,
      "data.db _meta is damaged; restore data.db from a backup or move it aside",
      ExitCode.TAMPERED,
    );
  }
  return n;
}

/**
 * Bring the schema to version 3 inside the caller's transaction. Returns the version found.
 * A newer schema is refused rather than silently downgraded.
 */
export function migrateSchema(db: DatabaseSync): number {
  db.exec(META_SQL);
  const current = schemaVersionOf(db);
  if (current > SCHEMA_VERSION) {
    throw new IronMeshError(
      "STORE_SCHEMA_TOO_NEW",
      `data.db has schema version ${current}; this ironmesh understands up to ${SCHEMA_VERSION}`,
      "upgrade ironmesh, or use another --state-dir",
      ExitCode.UNSUPPORTED,
    );
  }
  if (current < 1) { for (const sql of V1_SQL) db.exec(sql); }
  if (current < 2) {
    const have = columnNames(db, "peers");
    for (const [name, sql] of V2_COLUMNS) if (!have.has(name)) db.exec(sql);
  }
  if (current < 3) { for (const sql of V3_SQL) db.exec(sql); }
  if (current !== SCHEMA_VERSION) setMeta(db, META_SCHEMA_VERSION, String(SCHEMA_VERSION));
  return current;
}
