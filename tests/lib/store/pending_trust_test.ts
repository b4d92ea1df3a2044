import { assert, assertEquals, assertThrows } from "../../support/assert.ts";
import { FakeClock } from "../../../lib/clock.ts";
import { utf8 } from "../../../lib/crypto/sodium.ts";
import { IronMeshError } from "../../../lib/errors.ts";
import type { MessageStore } from "../../../lib/store/db.ts";
import {
  DEFAULT_PENDING_TRUST_CAP,
  type PendingTrustInput,
} from "../../../lib/store/pending_trust.ts";
import { openTestStore, tempDir } from "./store_helpers.ts";

const ME = "f55eae1a043e0fc95d8694706070202b";
const BOB = "a5f14a936d289f5d15e90fcaff39a373";
const CAROL = "2c348b324e762618695f63bfdefdf6cd";

const item = (msgId: string): PendingTrustInput => ({
  msgId,
  msgType: "MSG",
  payload: utf8(`body of ${msgId}`),
});

async function withStore(fn: (s: MessageStore, clock: FakeClock) => void): Promise<void> {
  const dir = tempDir();
  const clock = new FakeClock(1736812800);
  const store = await openTestStore(dir, { clock });
  try {
    fn(store, clock);
  } finally {
    store.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("pending-trust cap is 100 per peer; the oldest is evicted", async () => {
  await withStore((s, clock) => {
    assertEquals(DEFAULT_PENDING_TRUST_CAP, 100);
    for (let i = 0; i < 100; i++) {
      const r = s.pendingTrust.enqueue(BOB, item(`m${i}`));
      assertEquals(r, { status: "queued", evicted: 0, queuedCount: i + 1 });
      clock.advance(0.5);
    }
    assertEquals(s.pendingTrust.enqueue(BOB, item("m100")), {
      status: "queued",
      evicted: 1,
      queuedCount: 100,
    });
    assertEquals(s.pendingTrust.enqueue(BOB, item("m101")).status, "queued");
    const held = s.pendingTrust.list(BOB);
    assertEquals(held.length, 100);
    assertEquals(held[0].msgId, "m2");
    assertEquals(held[99].msgId, "m101");
    // Carol's queue is separate.
    assertEquals(s.pendingTrust.enqueue(CAROL, item("c0")).status, "queued");
    assertEquals(s.pendingTrust.count(CAROL), 1);
  });
});

Deno.test("a duplicate (source, msg_id) is a no-op and never evicts", async () => {
  await withStore((s) => {
    for (let i = 0; i < 100; i++) s.pendingTrust.enqueue(BOB, item(`m${i}`));
    assertEquals(s.pendingTrust.enqueue(BOB, item("m50")), { status: "duplicate" });
    assertEquals(s.pendingTrust.list(BOB)[0].msgId, "m0");
    assertEquals(s.pendingTrust.count(BOB), 100);
  });
});

Deno.test("promote drains in arrival order and deletes in the same transaction", async () => {
  await withStore((s, clock) => {
    for (const id of ["a", "b", "c"]) {
      s.pendingTrust.enqueue(BOB, { ...item(id), priority: id === "b" ? "HIGH" : "BOGUS" });
      clock.advance(1);
    }
    s.pendingTrust.enqueue(CAROL, item("other"));
    const drained = s.pendingTrust.drain(BOB);
    assertEquals(drained.map((d) => d.msgId), ["a", "b", "c"]);
    assertEquals(drained.map((d) => d.priority), ["NORMAL", "HIGH", "NORMAL"]);
    assertEquals(drained[1].payload, utf8("body of b"));
    assertEquals(drained[1].payloadStatus, "v2");
    assertEquals(drained.map((d) => d.queuedAt), [1736812800, 1736812801, 1736812802]);
    assertEquals(s.pendingTrust.count(BOB), 0);
    assertEquals(s.pendingTrust.drain(BOB), []);
    assertEquals(s.pendingTrust.count(CAROL), 1);
  });
});

Deno.test("promote into history records every drained message exactly once", async () => {
  await withStore((s) => {
    s.history.recordInbound({
      msgId: "b",
      source: BOB,
      destination: ME,
      msgType: "MSG",
      payload: utf8("already delivered"),
    });
    for (const id of ["a", "b", "c"]) s.pendingTrust.enqueue(BOB, item(id));
    const drained = s.promote(BOB, ME);
    assertEquals(drained.map((d) => [d.msgId, d.recorded]), [
      ["a", "inserted"],
      ["b", "duplicate"],
      ["c", "inserted"],
    ]);
    assertEquals(s.history.get("c")!.payload, utf8("body of c"));
    assertEquals(s.history.get("c")!.destination, ME);
    assertEquals(s.history.get("b")!.payload, utf8("already delivered"));
    assertEquals(s.pendingTrust.count(BOB), 0);
  });
});

Deno.test("block discards and returns the count; summary lists peers oldest first", async () => {
  await withStore((s, clock) => {
    s.pendingTrust.enqueue(CAROL, item("c1"));
    clock.advance(5);
    s.pendingTrust.enqueue(BOB, item("b1"));
    clock.advance(5);
    s.pendingTrust.enqueue(BOB, item("b2"));
    assertEquals(s.pendingTrust.summary(), [
      {
        sourceNodeId: CAROL,
        queuedCount: 1,
        oldestQueuedAt: 1736812800,
        newestQueuedAt: 1736812800,
      },
      { sourceNodeId: BOB, queuedCount: 2, oldestQueuedAt: 1736812805, newestQueuedAt: 1736812810 },
    ]);
    assertEquals(s.pendingTrust.discard(BOB), 2);
    assertEquals(s.pendingTrust.discard(BOB), 0);
    assertEquals(s.pendingTrust.summary().length, 1);
  });
});

Deno.test("pending-trust input is validated", async () => {
  await withStore((s) => {
    assertThrows(() => s.pendingTrust.enqueue("", item("x")), IronMeshError, "sourceNodeId");
    assertThrows(() => s.pendingTrust.enqueue(BOB, { ...item("x"), msgType: "" }), IronMeshError);
    assert(s.pendingTrust.count(BOB) === 0);
  });
});
