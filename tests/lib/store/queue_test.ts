import { join } from "node:path";
import { assert, assertEquals, assertThrows } from "../../support/assert.ts";
import { FakeClock } from "../../../lib/clock.ts";
import { IronMeshError } from "../../../lib/errors.ts";
import type { MessageStore } from "../../../lib/store/db.ts";
import type { Priority } from "../../../lib/store/priority.ts";
import { DEFAULT_MAX_PENDING_PER_PEER, type OutboundMessage } from "../../../lib/store/queue.ts";
import { openTestStore, pattern, rawDb, tempDir } from "./store_helpers.ts";

const ME = "f55eae1a043e0fc95d8694706070202b";
const BOB = "a5f14a936d289f5d15e90fcaff39a373";
const CAROL = "2c348b324e762618695f63bfdefdf6cd";

const msg = (msgId: string, priority: Priority = "NORMAL", size = 16): OutboundMessage => ({
  msgId,
  source: ME,
  msgType: "MSG",
  payload: pattern(size, msgId.length),
  priority,
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

function fill(s: MessageStore, peer: string, prefix: string, n: number, p: Priority): void {
  const res = s.queue.enqueueMany(
    peer,
    Array.from({ length: n }, (_, i) => msg(`${prefix}-${i}`, p)),
  );
  assert(res.every((r) => r.status === "queued"));
}

Deno.test("C-ST-14: the cap is 1000 undelivered per peer; CRITICAL evicts the oldest LOW", async () => {
  await withStore((s) => {
    assertEquals(DEFAULT_MAX_PENDING_PER_PEER, 1000);
    assertEquals(s.queue.maxPerPeer, 1000);
    fill(s, BOB, "n", 10, "NORMAL");
    fill(s, BOB, "low", 990, "LOW");
    assertEquals(s.queue.pendingCount(BOB), 1000);
    const r = s.queue.enqueue(BOB, msg("crit", "CRITICAL"));
    assertEquals(r, { status: "queued", evicted: { msgId: "low-0", priority: "LOW" } });
    assertEquals(s.queue.pendingCount(BOB), 1000);
    assert(!s.queue.has(BOB, "low-0"));
    assert(s.queue.has(BOB, "n-0")); // older, but NORMAL: the lowest priority goes first
    // Another peer has its own 1000.
    assertEquals(s.queue.enqueue(CAROL, msg("c1")), { status: "queued", evicted: null });
  });
});

Deno.test("C-ST-14: a LOW message into a queue full of HIGH is refused; HIGH/CRITICAL displace", async () => {
  await withStore((s) => {
    fill(s, BOB, "h", 1000, "HIGH");
    assertEquals(s.queue.enqueue(BOB, msg("low", "LOW")), { status: "refused" });
    assertEquals(s.queue.enqueue(BOB, msg("norm", "NORMAL")), { status: "refused" });
    assert(!s.queue.has(BOB, "low"));
    assertEquals(s.queue.pendingCount(BOB), 1000);
    // Equal priority: the oldest of that priority is evicted (FIFO within a priority).
    assertEquals(s.queue.enqueue(BOB, msg("h-new", "HIGH")), {
      status: "queued",
      evicted: { msgId: "h-0", priority: "HIGH" },
    });
    assertEquals(s.queue.enqueue(BOB, msg("c-new", "CRITICAL")), {
      status: "queued",
      evicted: { msgId: "h-1", priority: "HIGH" },
    });
    assertEquals(s.queue.pendingCount(BOB), 1000);
  });
});

Deno.test("eviction picks the lowest priority present, then the oldest; refuses below it", async () => {
  await withStore((s) => {
    fill(s, BOB, "a", 500, "HIGH");
    s.queue.enqueue(BOB, msg("norm-mid", "NORMAL"));
    fill(s, BOB, "b", 499, "HIGH");
    assertEquals(s.queue.enqueue(BOB, msg("low", "LOW")), { status: "refused" });
    assertEquals(s.queue.enqueue(BOB, msg("norm-new", "NORMAL")), {
      status: "queued",
      evicted: { msgId: "norm-mid", priority: "NORMAL" },
    });
  });
});

Deno.test("delivered messages do not count against the cap", async () => {
  await withStore((s) => {
    fill(s, BOB, "h", 1000, "HIGH");
    assertEquals(s.queue.markDelivered(BOB, ["h-0", "h-1"]), 2);
    assertEquals(s.queue.pendingCount(BOB), 998);
    assertEquals(s.queue.enqueue(BOB, msg("low1", "LOW")), { status: "queued", evicted: null });
    assertEquals(s.queue.enqueue(BOB, msg("low2", "LOW")), { status: "queued", evicted: null });
    assertEquals(s.queue.enqueue(BOB, msg("low3", "LOW")).status, "queued"); // evicts low1
    assert(!s.queue.has(BOB, "low1"));
  });
});

Deno.test("takeBatch is FIFO and peeks; markDelivered removes from view; getPendingForPeer is by priority", async () => {
  await withStore((s, clock) => {
    const order: [string, Priority][] = [
      ["m1", "LOW"],
      ["m2", "CRITICAL"],
      ["m3", "NORMAL"],
      ["m4", "HIGH"],
      ["m5", "NORMAL"],
    ];
    for (const [id, p] of order) {
      s.queue.enqueue(BOB, msg(id, p, 1024));
      clock.advance(1);
    }
    const b1 = s.queue.takeBatch(BOB, 2);
    assertEquals(b1.map((m) => m.msgId), ["m1", "m2"]);
    assertEquals(b1[0].payload, pattern(1024, 2));
    assertEquals(b1[0].payloadStatus, "v2");
    assertEquals(b1[0].createdAt, 1736812800);
    // Peeking twice returns the same messages.
    assertEquals(s.queue.takeBatch(BOB, 2).map((m) => m.msgId), ["m1", "m2"]);
    assertEquals(
      s.queue.getPendingForPeer(BOB).map((m) => m.msgId),
      ["m2", "m4", "m3", "m5", "m1"],
    );
    assertEquals(s.queue.markDelivered(BOB, ["m1", "m2"]), 2);
    assertEquals(s.queue.markDelivered(BOB, ["m1"]), 0); // already delivered
    assertEquals(s.queue.takeBatch(BOB, 10).map((m) => m.msgId), ["m3", "m4", "m5"]);
    assertEquals(s.queue.pendingCount(BOB), 3);
    assertThrows(() => s.queue.takeBatch(BOB, 0), IronMeshError);
  });
});

Deno.test("markAttempt counts retries; markDelivered records delivered_at from the clock", async () => {
  await withStore((s, clock, dir) => {
    s.queue.enqueue(BOB, msg("m1"));
    s.queue.enqueue(BOB, msg("m2"));
    assertEquals(s.queue.markAttempt(BOB, ["m1", "m2"]), 2);
    assertEquals(s.queue.markAttempt(BOB, ["m1", "nope"]), 1);
    assertEquals(s.queue.takeBatch(BOB, 2).map((m) => m.retries), [2, 1]);
    clock.set(1736812900.5);
    s.queue.markDelivered(BOB, ["m1"]);
    assertEquals(s.queue.markAttempt(BOB, ["m1"]), 0); // delivered rows are left alone
    const db = rawDb(join(dir, "data.db"));
    const row = db.prepare(
      "SELECT delivered, delivered_at FROM pending_messages WHERE msg_id = 'm1'",
    ).get();
    db.close();
    assertEquals({ ...row }, { delivered: 1, delivered_at: 1736812900.5 });
  });
});

Deno.test("the same (peer, msg_id) twice is a duplicate and changes nothing", async () => {
  await withStore((s) => {
    assertEquals(s.queue.enqueue(BOB, msg("m1", "LOW")).status, "queued");
    assertEquals(s.queue.enqueue(BOB, msg("m1", "CRITICAL")), { status: "duplicate" });
    assertEquals(s.queue.takeBatch(BOB, 5).map((m) => [m.msgId, m.priority]), [["m1", "LOW"]]);
    s.queue.markDelivered(BOB, ["m1"]);
    assertEquals(s.queue.enqueue(BOB, msg("m1")), { status: "duplicate" });
    assertEquals(s.queue.pendingCount(BOB), 0);
    // The same id for another peer is a different queue entry.
    assertEquals(s.queue.enqueue(CAROL, msg("m1")).status, "queued");
    const dups = s.queue.enqueueMany(BOB, [msg("x"), msg("x")]);
    assertEquals(dups.map((r) => r.status), ["queued", "duplicate"]);
  });
});

Deno.test("pendingCounts reports undelivered per peer", async () => {
  await withStore((s) => {
    fill(s, BOB, "b", 3, "NORMAL");
    fill(s, CAROL, "c", 2, "LOW");
    s.queue.markDelivered(CAROL, ["c-0"]);
    assertEquals(
      [...s.queue.pendingCounts()],
      [[CAROL, 1], [BOB, 3]].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    );
    assertEquals(s.queue.pendingCount("nobody"), 0);
  });
});

Deno.test("bad input is refused; a failing enqueueMany rolls back the whole batch", async () => {
  await withStore((s) => {
    const e = assertThrows(
      () => s.queue.enqueue(BOB, { ...msg("m1"), priority: "URGENT" as Priority }),
      IronMeshError,
      "URGENT",
    );
    assertEquals((e as IronMeshError).code, "STORE_BAD_PRIORITY");
    assertThrows(() => s.queue.enqueue("", msg("m1")), IronMeshError, "peer");
    assertThrows(() => s.queue.enqueue(BOB, { ...msg("m1"), msgId: "" }), IronMeshError, "msgId");
    assertThrows(
      () => s.queue.enqueueMany(BOB, [msg("ok-1"), msg("ok-2"), { ...msg("bad"), source: "" }]),
      IronMeshError,
    );
    assertEquals(s.queue.pendingCount(BOB), 0);
    assert(!s.queue.has(BOB, "ok-1"));
  });
});

Deno.test("a 200 × 1 KiB burst through enqueueMany commits quickly (synchronous=FULL)", async () => {
  await withStore((s) => {
    const batch = Array.from({ length: 200 }, (_, i) => msg(`burst-${i}`, "NORMAL", 1024));
    const t0 = performance.now();
    const res = s.queue.enqueueMany(BOB, batch);
    const ms = performance.now() - t0;
    assertEquals(res.filter((r) => r.status === "queued").length, 200);
    assertEquals(s.queue.pendingCount(BOB), 200);
    assert(ms < 2000, `200-message burst took ${ms.toFixed(0)} ms`);
    assertEquals(s.queue.takeBatch(BOB, 200).map((m) => m.msgId), batch.map((m) => m.msgId));
  });
});
