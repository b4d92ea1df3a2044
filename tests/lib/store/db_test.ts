import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "../../support/assert.ts";
import { FakeClock, ScriptedRng } from "../../../lib/clock.ts";
import { fromHex, randomBytes, secretBoxSeal, toHex, utf8 } from "../../../lib/crypto/sodium.ts";
import { IronMeshError } from "../../../lib/errors.ts";
import { type MessageStore, openStore } from "../../../lib/store/db.ts";
import { PayloadCipher } from "../../../lib/store/storage_key.ts";
import type { QueuedMessage } from "../../../lib/store/queue.ts";
import type { HistoryMessage } from "../../../lib/store/history.ts";
import {
  copyVectorDb,
  openTestStore,
  rawDb,
  type RawRow,
  rawRows,
  SV,
  tempDir,
  vectorKeys,
} from "./store_helpers.ts";

const BOB = "a5f14a936d289f5d15e90fcaff39a373";
const CAROL = "2c348b324e762618695f63bfdefdf6cd";
const ALICE = "f55eae1a043e0fc95d8694706070202b";
const PAYLOAD_TABLES = ["messages", "pending_messages", "pending_trust_messages"];

/** Our queue row in the shape of `decrypted_by_reference.get_pending_for_peer`. */
function refQueued(m: QueuedMessage): Record<string, unknown> {
  return {
    msg_id: m.msgId,
    source: m.source,
    msg_type: m.msgType,
    payload_hex: toHex(m.payload),
    priority: m.priority,
    created_at: m.createdAt,
    retries: m.retries,
  };
}

/** Our history row in the shape of `decrypted_by_reference.get_messages`. */
function refHistory(m: HistoryMessage): Record<string, unknown> {
  return {
    msg_id: m.msgId,
    source: m.source,
    source_display: m.sourceDisplay,
    destination: m.destination,
    msg_type: m.msgType,
    payload_hex: toHex(m.payload),
    timestamp: m.timestamp,
    priority: m.priority,
    direction: m.direction,
    status: m.status,
    retries: m.retries,
  };
}

/** The reference's decrypted rows without the convenience `payload_text`. */
function withoutText(rows: Record<string, unknown>[]): Record<string, unknown>[] {
  return rows.map(({ payload_text: _t, ...rest }) => rest);
}

/** The recorded raw rows without the derived `payload_layout`. */
function expectedRaw(table: string): Record<string, unknown>[] {
  return SV.raw_rows[table].map(({ payload_layout: _l, ...rest }) => rest);
}

/** Raw rows on disk with the payload as hex, like the vector (key order is not compared). */
function diskRaw(path: string, table: string): Record<string, unknown>[] {
  const db = rawDb(path);
  try {
    return rawRows(db, table).map((r) => {
      if (!("payload" in r)) return r;
      const { payload, ...rest } = r;
      return { ...rest, payload_hex: toHex(payload as Uint8Array) };
    });
  } finally {
    db.close();
  }
}

function plaintextOf(row: RawRow): Uint8Array {
  return new PayloadCipher(vectorKeys(), new ScriptedRng([])).open(fromHex(row.payload_hex!))
    .payload;
}

function checkVectorReads(store: MessageStore): void {
  const ref = SV.decrypted_by_reference;
  assertEquals(
    store.queue.getPendingForPeer(BOB).map(refQueued),
    withoutText(ref["get_pending_for_peer(bob)"]),
  );
  assertEquals(
    store.queue.getPendingForPeer(CAROL).map(refQueued),
    withoutText(ref["get_pending_for_peer(carol)"]),
  );
  assertEquals(
    store.history.query({ limit: 100 }).map(refHistory),
    withoutText(ref["get_messages(limit=100)"]),
  );
}

Deno.test("vector data.db opens with the mesh passphrase; every payload decrypts as recorded", async () => {
  const dir = tempDir();
  try {
    const path = copyVectorDb(dir);
    const store = await openStore(path, {
      credential: { passphrase: SV.passphrase }, // the only Argon2id run in this file
      clock: new FakeClock(1736812810),
      rng: new ScriptedRng([]), // opening must not draw (salt exists, nothing to migrate)
    });
    try {
      assertEquals(store.schemaVersionFound, 3);
      assertEquals(store.migration, { scanned: false, migrated: 0, skipped: 0, marked: true });
      assertEquals(store.storageFormat(), "aead-v2");
      checkVectorReads(store);
      // The delivered row is not pending; the texts decode as recorded.
      assertEquals(store.queue.pendingCount(CAROL), 1);
      const hist = store.history.query({ limit: 100 });
      assertEquals(
        hist.map((m) => new TextDecoder().decode(m.payload)),
        SV.decrypted_by_reference["get_messages(limit=100)"].map((r) => r.payload_text),
      );
      const held = store.pendingTrust.list(CAROL);
      assertEquals(held.length, 1);
      assertEquals(held[0].msgId, "pt-1");
      assertEquals(held[0].payloadStatus, "v2");
      assertEquals(
        toHex(held[0].payload),
        toHex(plaintextOf(SV.raw_rows.pending_trust_messages[0])),
      );
      assertEquals(held[0].queuedAt, 1736812809.0);
      const bob = store.peers.get(BOB)!;
      const rp = SV.raw_rows.peers[0];
      assertEquals<Record<string, unknown>>({ ...bob }, {
        nodeId: rp.node_id,
        identityPublicB64: rp.identity_public_b64,
        fingerprint: rp.fingerprint,
        firstSeen: rp.first_seen,
        lastSeen: rp.last_seen,
        lastAddress: rp.last_address,
        trusted: 0,
        trustFirstSeen: null,
      });
      assertEquals(store.integrityCheck(), ["ok"]);
    } finally {
      store.close();
    }
    // Opening and reading rewrote nothing.
    for (const t of [...PAYLOAD_TABLES, "peers", "_meta"]) {
      assertEquals(diskRaw(path, t), expectedRaw(t), t);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("C-ST-11: replaying the recorded operations writes the vector's rows byte for byte", async () => {
  const dir = tempDir();
  try {
    const path = join(dir, "data.db");
    const clock = new FakeClock(1736812800);
    const draws = [fromHex(SV.storage_salt_hex)];
    for (const op of SV.operations) for (const d of op.random_draws) draws.push(fromHex(d.hex));
    const rng = new ScriptedRng(draws);
    const store = await openStore(path, {
      clock,
      rng,
      credential: {
        derive: (salt) => {
          assertEquals(toHex(salt), SV.storage_salt_hex);
          return vectorKeys();
        },
      },
    });
    const pm = SV.raw_rows.pending_messages;
    const at = (i: number) => clock.set(SV.operations[i].clock);
    const queue = (i: number, row: RawRow) => {
      at(i);
      const r = store.queue.enqueue(String(row.peer_node_id), {
        msgId: String(row.msg_id),
        source: String(row.source),
        msgType: String(row.msg_type),
        payload: row.payload_hex ? plaintextOf(row) : new Uint8Array(0),
        priority: row.priority as "NORMAL",
      });
      assertEquals(r, { status: "queued", evicted: null });
    };
    for (let i = 0; i < 5; i++) queue(i, pm[i]);
    at(5);
    assertEquals(store.queue.markDelivered(CAROL, ["q-low-1"]), 1);
    const msgs = SV.raw_rows.messages;
    for (let i = 0; i < 3; i++) {
      at(6 + i);
      const row = msgs[i];
      const rec = {
        msgId: String(row.msg_id),
        source: String(row.source),
        sourceDisplay: String(row.source_display),
        destination: String(row.destination),
        msgType: String(row.msg_type),
        payload: plaintextOf(row),
        priority: String(row.priority),
      };
      const r = row.direction === "inbound"
        ? store.history.recordInbound(rec)
        : store.history.recordOutbound(rec);
      assertEquals(r, "inserted");
    }
    at(9);
    const p = SV.raw_rows.peers[0];
    store.peers.upsert(String(p.node_id), {
      identityPublicB64: String(p.identity_public_b64),
      fingerprint: String(p.fingerprint),
      address: String(p.last_address),
    });
    at(10);
    const pt = SV.raw_rows.pending_trust_messages[0];
    const r = store.pendingTrust.enqueue(String(pt.source_node_id), {
      msgId: String(pt.msg_id),
      msgType: String(pt.msg_type),
      payload: plaintextOf(pt),
    });
    assertEquals(r, { status: "queued", evicted: 0, queuedCount: 1 });
    assertEquals(rng.remaining, 0);
    checkVectorReads(store);
    store.close();
    for (const t of [...PAYLOAD_TABLES, "peers"]) {
      assertEquals(diskRaw(path, t), expectedRaw(t), t);
    }
    const meta = diskRaw(path, "_meta").sort((a, b) => String(a.key).localeCompare(String(b.key)));
    assertEquals(
      meta,
      [...SV.raw_rows._meta].sort((a, b) => String(a.key).localeCompare(String(b.key))),
    );
    // Every payload we wrote starts with "IMSTOREv2\0" (except the empty one).
    const db = rawDb(path);
    const blobs = PAYLOAD_TABLES.flatMap((t) =>
      (db.prepare(`SELECT payload FROM ${t}`).all() as { payload: Uint8Array }[]).map((x) =>
        x.payload
      )
    );
    db.close();
    assertEquals(blobs.length, 9);
    assertEquals(
      blobs.filter((b) => b.length > 0).every((b) =>
        toHex(b.subarray(0, 10)) === toHex(utf8("IMSTOREv2\0"))
      ),
      true,
    );
    assertEquals(blobs.filter((b) => b.length === 0).length, 1);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a wrong storage key is refused on open (and the file is left as it was)", async () => {
  const dir = tempDir();
  try {
    const path = copyVectorDb(dir);
    const e = await assertRejects(
      () =>
        openStore(path, {
          credential: { keys: { storageKey: randomBytes(32), legacyKey: null } },
        }),
      IronMeshError,
    );
    assertEquals((e as IronMeshError).code, "STORE_WRONG_PASSPHRASE");
    assertEquals((e as IronMeshError).exitCode, 3);
    for (const t of PAYLOAD_TABLES) assertEquals(diskRaw(path, t), expectedRaw(t), t);
    // The right keys still work afterwards.
    const store = await openStore(path, { credential: { keys: vectorKeys() } });
    checkVectorReads(store);
    store.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

/** Insert pre-0.9.5 rows straight into the tables (legacy-key SecretBox, no prefix). */
function seedLegacyRows(path: string, legacyKey: Uint8Array, plain: Uint8Array[]): void {
  const db = rawDb(path);
  try {
    db.exec("DELETE FROM _meta WHERE key = 'storage_format'");
    const ins = db.prepare(
      `INSERT INTO pending_messages (peer_node_id, msg_id, source, msg_type, payload, created_at)
       VALUES (?, ?, ?, 'MSG', ?, 1736812800.0)`,
    );
    plain.forEach((p, i) => ins.run(BOB, `legacy-${i}`, ALICE, secretBoxSeal(p, legacyKey)));
    db.prepare(
      `INSERT INTO messages (msg_id, source, destination, msg_type, payload, timestamp, direction)
       VALUES ('legacy-h', ?, ?, 'MSG', ?, 1736812800.0, 'inbound')`,
    ).run(BOB, ALICE, secretBoxSeal(plain[0], legacyKey));
    db.prepare(
      `INSERT INTO pending_trust_messages (source_node_id, msg_id, msg_type, payload, queued_at)
       VALUES (?, 'legacy-t', 'MSG', ?, 1736812800.0)`,
    ).run(CAROL, secretBoxSeal(plain[1], legacyKey));
  } finally {
    db.close();
  }
}

Deno.test("C-ST-12: legacy-key payloads are read and re-encrypted under key v2 on open", async () => {
  const dir = tempDir();
  try {
    const path = join(dir, "data.db");
    const keys = { storageKey: randomBytes(32), legacyKey: randomBytes(32) };
    (await openTestStore(dir, { credential: { keys } })).close();
    const plain = [utf8("old message one"), utf8("old message two"), utf8("old three")];
    seedLegacyRows(path, keys.legacyKey, plain);
    // A plaintext-era row (never encrypted) must survive untouched.
    const db = rawDb(path);
    db.prepare(
      `INSERT INTO pending_messages (peer_node_id, msg_id, source, msg_type, payload, created_at)
       VALUES (?, 'plain-era', ?, 'MSG', ?, 1736812800.0)`,
    ).run(BOB, ALICE, utf8("stored before encryption"));
    db.close();

    const store = await openTestStore(dir, { credential: { keys } });
    assertEquals(store.migration, { scanned: true, migrated: 5, skipped: 1, marked: true });
    assertEquals(store.storageFormat(), "aead-v2");
    const batch = store.queue.takeBatch(BOB, 10);
    assertEquals(batch.map((m) => m.msgId), ["legacy-0", "legacy-1", "legacy-2", "plain-era"]);
    assertEquals(batch.map((m) => m.payloadStatus), ["v2", "v2", "v2", "plain"]);
    assertEquals(batch.slice(0, 3).map((m) => m.payload), plain);
    assertEquals(batch[3].payload, utf8("stored before encryption"));
    assertEquals(store.history.get("legacy-h")?.payload, plain[0]);
    assertEquals(store.pendingTrust.list(CAROL)[0].payload, plain[1]);
    store.close();

    // On disk: prefixed now, and they open with key v2 only.
    const after = rawDb(path);
    const rows = after.prepare(
      "SELECT msg_id, payload FROM pending_messages ORDER BY id",
    ).all() as { msg_id: string; payload: Uint8Array }[];
    after.close();
    const v2Only = new PayloadCipher({ storageKey: keys.storageKey, legacyKey: null }, {
      bytes: randomBytes,
    });
    for (const r of rows.slice(0, 3)) {
      assertEquals(toHex(r.payload.subarray(0, 10)), toHex(utf8("IMSTOREv2\0")));
      assertEquals(v2Only.open(r.payload).status, "v2");
    }
    assertEquals(rows[3].payload, utf8("stored before encryption"));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("migration is deferred (marker withheld) when no unprefixed row opens", async () => {
  const dir = tempDir();
  try {
    const path = join(dir, "data.db");
    const rightLegacy = randomBytes(32);
    const storageKey = randomBytes(32);
    (await openTestStore(dir, { credential: { keys: { storageKey, legacyKey: null } } })).close();
    seedLegacyRows(path, rightLegacy, [utf8("a"), utf8("b")]);
    // First open with a wrong legacy key: nothing migrates, the marker is not written.
    const wrong = await openTestStore(dir, {
      credential: { keys: { storageKey, legacyKey: randomBytes(32) } },
    });
    assertEquals(wrong.migration, { scanned: true, migrated: 0, skipped: 4, marked: false });
    assertEquals(wrong.storageFormat(), null);
    wrong.close();
    // A later open with the right legacy key still migrates them.
    const right = await openTestStore(dir, {
      credential: { keys: { storageKey, legacyKey: rightLegacy } },
    });
    assertEquals(right.migration, { scanned: true, migrated: 4, skipped: 0, marked: true });
    assertEquals(right.queue.takeBatch(BOB, 5).map((m) => m.payloadStatus), ["v2", "v2"]);
    right.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a store reopens with its data; close is idempotent and wipes nothing on disk", async () => {
  const dir = tempDir();
  try {
    const keys = { storageKey: randomBytes(32), legacyKey: null };
    const s1 = await openTestStore(dir, { credential: { keys } });
    s1.queue.enqueue(BOB, { msgId: "m1", source: ALICE, msgType: "MSG", payload: utf8("hi") });
    s1.close();
    s1.close();
    assert(!s1.isOpen);
    const s2 = await openTestStore(dir, { credential: { keys } });
    assertEquals(s2.schemaVersionFound, 3);
    assertEquals(s2.queue.takeBatch(BOB, 1)[0].payload, utf8("hi"));
    s2.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
