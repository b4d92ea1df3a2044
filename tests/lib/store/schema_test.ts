import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "../../support/assert.ts";
import { IronMeshError } from "../../../lib/errors.ts";
import { ScriptedRng } from "../../../lib/clock.ts";
import { openStore } from "../../../lib/store/db.ts";
import { SCHEMA_VERSION } from "../../../lib/store/schema.ts";
import { copyVectorDb, openTestStore, randomKeys, rawDb, SV, tempDir } from "./store_helpers.ts";

const TABLES = ["_meta", "messages", "pending_messages", "peers", "pending_trust_messages"];

function schemaSql(db: DatabaseSync): string[] {
  return (db.prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")
    .all() as { sql: string }[]).map((r) => r.sql);
}

/** Columns, indexes and index columns of every table, as PRAGMA reports them. */
function shape(db: DatabaseSync): unknown {
  const out: Record<string, unknown> = {};
  for (const t of TABLES) {
    const indexes = (db.prepare(`PRAGMA index_list(${t})`).all() as Record<string, unknown>[])
      .map((i) => ({
        name: i.name,
        unique: i.unique,
        origin: i.origin,
        partial: i.partial,
        columns: (db.prepare(`PRAGMA index_info(${String(i.name)})`).all() as {
          name: string;
        }[]).map((c) => c.name),
      }))
      .sort((a, b) => String(a.name).localeCompare(String(b.name)));
    out[t] = {
      columns: (db.prepare(`PRAGMA table_xinfo(${t})`).all()).map((c) => ({ ...c })),
      indexes,
    };
  }
  return out;
}

/** The vector data.db, opened from a temp copy (opening it in place would create -wal/-shm). */
function vectorDb(dir: string): DatabaseSync {
  const sub = join(dir, "vector");
  Deno.mkdirSync(sub);
  return new DatabaseSync(copyVectorDb(sub), { readOnly: true });
}

Deno.test("C-ST-13: a new data.db has the reference schema SQL byte for byte", async () => {
  const dir = tempDir();
  try {
    const store = await openTestStore(dir);
    store.close();
    const db = rawDb(join(dir, "data.db"));
    try {
      assertEquals(schemaSql(db), SV.schema_sql);
      const ref = vectorDb(dir);
      try {
        assertEquals(schemaSql(ref), SV.schema_sql); // the fixture itself agrees
        assertEquals(shape(db), shape(ref));
      } finally {
        ref.close();
      }
      const v = db.prepare("SELECT value FROM _meta WHERE key = 'schema_version'").get() as {
        value: string;
      };
      assertEquals(v.value, String(SCHEMA_VERSION));
      assertEquals(v.value, "3");
    } finally {
      db.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("durability settings: WAL, synchronous=FULL, foreign_keys=ON", async () => {
  const dir = tempDir();
  try {
    const store = await openTestStore(dir);
    assertEquals(store.pragmas(), { journalMode: "wal", synchronous: 2, foreignKeys: 1 });
    assertEquals(store.integrityCheck(), ["ok"]);
    assertEquals(store.schemaVersionFound, 0);
    store.close();
    // WAL is persistent in the file header.
    const db = rawDb(join(dir, "data.db"));
    assertEquals({ ...db.prepare("PRAGMA journal_mode").get() }, { journal_mode: "wal" });
    db.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("data.db and its WAL files are created owner-only (0600)", async () => {
  if (Deno.build.os === "windows") return;
  const dir = tempDir();
  try {
    const store = await openTestStore(dir);
    store.peers.upsert("n1", {});
    for (const suffix of ["", "-wal", "-shm"]) {
      const mode = Deno.statSync(join(dir, "data.db" + suffix)).mode! & 0o777;
      assertEquals(mode.toString(8), "600", `data.db${suffix}`);
    }
    store.close();
    // A group/world-readable existing file is tightened on open.
    Deno.chmodSync(join(dir, "data.db"), 0o644);
    (await openTestStore(dir)).close();
    assertEquals((Deno.statSync(join(dir, "data.db")).mode! & 0o777).toString(8), "600");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("storage salt: 16 bytes from the injected Rng, created once, kept on reopen", async () => {
  const dir = tempDir();
  try {
    const salt = new Uint8Array(16).fill(0x5a);
    const seen: Uint8Array[] = [];
    const derive = (s: Uint8Array) => {
      seen.push(s);
      return randomKeysFixed;
    };
    const randomKeysFixed = randomKeys();
    (await openStore(join(dir, "data.db"), {
      credential: { derive },
      rng: new ScriptedRng([salt]),
    })).close();
    // Reopen: no random draw (the ScriptedRng is empty), same salt handed to derive.
    (await openStore(join(dir, "data.db"), {
      credential: { derive },
      rng: new ScriptedRng([]),
    })).close();
    assertEquals(seen, [salt, salt]);
    const db = rawDb(join(dir, "data.db"));
    const row = db.prepare("SELECT value FROM _meta WHERE key = 'storage_salt'").get() as {
      value: string;
    };
    assertEquals(row.value, "WlpaWlpaWlpaWlpaWlpaWg==");
    db.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a schema-1 database (reference v1 tables only) migrates to schema 3", async () => {
  const dir = tempDir();
  try {
    // Build v1 from the vector's own statements (the peers table without its v2 columns).
    const path = join(dir, "data.db");
    const db = new DatabaseSync(path);
    const v1 = SV.schema_sql.filter((s) =>
      !s.includes("pending_trust") && !s.startsWith("CREATE TABLE sqlite_sequence")
    ).map((s) =>
      s.startsWith("CREATE TABLE peers")
        ? s.replace(", trusted INTEGER DEFAULT 0, trust_first_seen REAL)", ")")
        : s
    );
    for (const s of v1) db.exec(s);
    db.prepare("INSERT INTO _meta VALUES ('schema_version', '1')").run();
    db.prepare("INSERT INTO peers (node_id, first_seen) VALUES ('old-peer', 1.5)").run();
    db.close();
    const store = await openTestStore(dir);
    assertEquals(store.schemaVersionFound, 1);
    assertEquals(store.peers.get("old-peer")?.trusted, 0);
    assertEquals(store.peers.get("old-peer")?.firstSeen, 1.5);
    store.close();
    const after = rawDb(path);
    assertEquals(schemaSql(after), SV.schema_sql);
    after.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a newer schema version is refused, not downgraded", async () => {
  const dir = tempDir();
  try {
    (await openTestStore(dir)).close();
    const db = rawDb(join(dir, "data.db"));
    db.prepare("UPDATE _meta SET value = '4' WHERE key = 'schema_version'").run();
    db.close();
    const e = await assertRejects(() => openTestStore(dir), IronMeshError, "schema version 4");
    assertEquals((e as IronMeshError).code, "STORE_SCHEMA_TOO_NEW");
    const check = rawDb(join(dir, "data.db"));
    const v = check.prepare("SELECT value FROM _meta WHERE key = 'schema_version'").get() as {
      value: string;
    };
    assertEquals(v.value, "4");
    check.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a file that is not SQLite gives STORE_CORRUPT with a hint", async () => {
  const dir = tempDir();
  try {
    Deno.writeTextFileSync(join(dir, "data.db"), "x".repeat(4096));
    const e = await assertRejects(() => openTestStore(dir), IronMeshError);
    assertEquals((e as IronMeshError).code, "STORE_CORRUPT");
    assert((e as IronMeshError).hint.includes("aside"));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a damaged storage salt is refused", async () => {
  const dir = tempDir();
  try {
    (await openTestStore(dir, { credential: { derive: () => randomKeys() } })).close();
    const db = rawDb(join(dir, "data.db"));
    db.prepare("UPDATE _meta SET value = 'AAAA' WHERE key = 'storage_salt'").run();
    db.close();
    const e = await assertRejects(
      () => openTestStore(dir, { credential: { derive: () => randomKeys() } }),
      IronMeshError,
    );
    assertEquals((e as IronMeshError).code, "STORE_BAD_SALT");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
