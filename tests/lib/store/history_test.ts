import { join } from "node:path";
import { assert, assertEquals, assertThrows } from "../../support/assert.ts";
import { FakeClock } from "../../../lib/clock.ts";
import { toHex, utf8 } from "../../../lib/crypto/sodium.ts";
import { IronMeshError } from "../../../lib/errors.ts";
import type { MessageStore } from "../../../lib/store/db.ts";
import { clampLimit, type HistoryRecord } from "../../../lib/store/history.ts";
import { openTestStore, randomKeys, rawDb, tempDir } from "./store_helpers.ts";

const ME = "f55eae1a043e0fc95d8694706070202b";
const BOB = "a5f14a936d289f5d15e90fcaff39a373";
const CAROL = "2c348b324e762618695f63bfdefdf6cd";

const rec = (msgId: string, source: string, destination: string, text = msgId): HistoryRecord => ({
  msgId,
  source,
  destination,
  msgType: "MSG",
  payload: utf8(text),
});

async function withStore(
  fn: (s: MessageStore, clock: FakeClock, dir: string) => void | Promise<void>,
): Promise<void> {
  const dir = tempDir();
  const clock = new FakeClock(1736812800);
  const store = await openTestStore(dir, { clock });
  try {
    await fn(store, clock, dir);
  } finally {
    store.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

/** in-1 (bob, t+0), out-1 (to bob, t+1), in-2 (carol CONV, t+2), in-3 (bob REQ, t+3). */
function seed(s: MessageStore, clock: FakeClock): void {
  assertEquals(s.history.recordInbound(rec("in-1", BOB, ME)), "inserted");
  clock.advance(1);
  assertEquals(
    s.history.recordOutbound({ ...rec("out-1", ME, BOB), priority: "HIGH" }),
    "inserted",
  );
  clock.advance(1);
  assertEquals(
    s.history.recordInbound({ ...rec("in-2", CAROL, ME), msgType: "CONV", sourceDisplay: "carol" }),
    "inserted",
  );
  clock.advance(1);
  assertEquals(s.history.recordInbound({ ...rec("in-3", BOB, ME), msgType: "REQ" }), "inserted");
}

const ids = (rows: { msgId: string }[]) => rows.map((r) => r.msgId);

Deno.test("history stores encrypted payloads and reads them back with all fields", async () => {
  await withStore((s, _clock, dir) => {
    s.history.recordInbound({ ...rec("in-1", BOB, ME, "hello é🚀"), priority: "CRITICAL" });
    const m = s.history.get("in-1")!;
    assertEquals({ ...m, rowid: 0 }, {
      rowid: 0,
      msgId: "in-1",
      source: BOB,
      sourceDisplay: BOB, // no display name → the node_id, as the reference stores it
      destination: ME,
      msgType: "MSG",
      payload: utf8("hello é🚀"),
      payloadStatus: "v2",
      timestamp: 1736812800,
      priority: "CRITICAL",
      direction: "inbound",
      status: "delivered",
      retries: 0,
    });
    assert(m.rowid > 0);
    const db = rawDb(join(dir, "data.db"));
    const raw = db.prepare("SELECT payload FROM messages").get() as { payload: Uint8Array };
    db.close();
    assertEquals(toHex(raw.payload.subarray(0, 10)), toHex(utf8("IMSTOREv2\0")));
    assert(!toHex(raw.payload).includes(toHex(utf8("hello"))));
    assertEquals(s.history.get("missing"), null);
  });
});

Deno.test("receiver dedup: a msg_id is stored once; a clash from another source is a conflict", async () => {
  const dir = tempDir();
  const keys = randomKeys();
  try {
    const s1 = await openTestStore(dir, { credential: { keys } });
    assert(!s1.history.hasMessage("m1"));
    assertEquals(s1.history.recordInbound(rec("m1", BOB, ME, "first")), "inserted");
    assert(s1.history.hasMessage("m1"));
    assertEquals(s1.history.recordInbound(rec("m1", BOB, ME, "again")), "duplicate");
    s1.close();
    // Durable across a restart.
    const s2 = await openTestStore(dir, { credential: { keys } });
    assert(s2.history.hasMessage("m1"));
    assertEquals(s2.history.recordInbound(rec("m1", BOB, ME, "third")), "duplicate");
    assertEquals(s2.history.recordInbound(rec("m1", CAROL, ME, "forged")), "conflict");
    assertEquals(s2.history.get("m1")!.payload, utf8("first"));
    assertEquals(s2.history.count(), 1);
    s2.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("query filters: peer, source, since, type, direction; newest and oldest first", async () => {
  await withStore((s, clock) => {
    seed(s, clock);
    assertEquals(ids(s.history.query()), ["in-3", "in-2", "out-1", "in-1"]);
    assertEquals(ids(s.history.query({ order: "oldest" })), ["in-1", "out-1", "in-2", "in-3"]);
    assertEquals(ids(s.history.query({ peer: BOB })), ["in-3", "out-1", "in-1"]);
    assertEquals(ids(s.history.query({ source: BOB })), ["in-3", "in-1"]);
    assertEquals(ids(s.history.query({ since: 1736812801 })), ["in-3", "in-2"]); // strictly after
    assertEquals(ids(s.history.query({ msgType: "CONV" })), ["in-2"]);
    assertEquals(ids(s.history.query({ direction: "outbound" })), ["out-1"]);
    assertEquals(ids(s.history.query({ peer: BOB, msgType: "REQ" })), ["in-3"]);
    assertEquals(ids(s.history.query({ limit: 2 })), ["in-3", "in-2"]);
    assertEquals(s.history.query({ msgType: "CONV" })[0].sourceDisplay, "carol");
    assertThrows(() => s.history.query({ since: NaN }), IronMeshError, "since");
  });
});

Deno.test("limit is clamped to 1–5000", async () => {
  assertEquals(clampLimit(undefined), 100);
  assertEquals(clampLimit(0), 1);
  assertEquals(clampLimit(-5), 1);
  assertEquals(clampLimit(2.9), 2);
  assertEquals(clampLimit(5001), 5000);
  assertEquals(clampLimit(1e12), 5000);
  assertEquals(clampLimit(NaN), 100);
  await withStore((s, clock) => {
    seed(s, clock);
    assertEquals(s.history.query({ limit: 0 }).length, 1);
    assertEquals(s.history.query({ limit: 1e9 }).length, 4);
  });
});

Deno.test("follow pages by rowid in insertion order (inbox --follow)", async () => {
  await withStore((s, clock) => {
    seed(s, clock);
    const first = s.history.follow(0, { limit: 3 });
    assertEquals(ids(first), ["in-1", "out-1", "in-2"]);
    const cursor = first[2].rowid;
    assertEquals(ids(s.history.follow(cursor)), ["in-3"]);
    const last = s.history.maxRowid();
    assertEquals(s.history.follow(last), []);
    // A new message with an older timestamp still shows up after the cursor.
    clock.set(1000);
    s.history.recordInbound(rec("late", BOB, ME));
    assertEquals(ids(s.history.follow(last)), ["late"]);
    assertEquals(ids(s.history.follow(0, { source: CAROL })), ["in-2"]);
    assertThrows(() => s.history.follow(-1), IronMeshError);
  });
});

Deno.test("unknown peer-supplied priorities are stored as NORMAL; bad records are refused", async () => {
  await withStore((s) => {
    s.history.recordInbound({ ...rec("p1", BOB, ME), priority: "SUPER" });
    assertEquals(s.history.get("p1")!.priority, "NORMAL");
    assertThrows(() => s.history.recordInbound(rec("", BOB, ME)), IronMeshError, "msgId");
    assertThrows(
      () => s.history.recordInbound({ ...rec("p2", BOB, ME), destination: "" }),
      IronMeshError,
      "destination",
    );
    assertEquals(s.history.count(), 1);
  });
});
