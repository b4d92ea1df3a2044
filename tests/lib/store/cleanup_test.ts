import { assert, assertEquals } from "../../support/assert.ts";
import { FakeClock } from "../../../lib/clock.ts";
import { utf8 } from "../../../lib/crypto/sodium.ts";
import {
  CLEANUP_INTERVAL_S,
  HISTORY_MAX_AGE_S,
  PENDING_MAX_AGE_S,
} from "../../../lib/store/cleanup.ts";
import { openTestStore, tempDir } from "./store_helpers.ts";

const ME = "f55eae1a043e0fc95d8694706070202b";
const BOB = "a5f14a936d289f5d15e90fcaff39a373";

const out = (msgId: string) => ({ msgId, source: ME, msgType: "MSG", payload: utf8(msgId) });
const hist = (msgId: string) => ({ ...out(msgId), source: BOB, destination: ME });

Deno.test("cleanup: queue entries > 24 h and history > 30 days are removed, with counts", async () => {
  assertEquals(PENDING_MAX_AGE_S, 86_400);
  assertEquals(HISTORY_MAX_AGE_S, 2_592_000);
  assertEquals(CLEANUP_INTERVAL_S, 3_600);
  const dir = tempDir();
  const t0 = 1736812800;
  const clock = new FakeClock(t0);
  const s = await openTestStore(dir, { clock });
  try {
    s.queue.enqueue(BOB, out("old-undelivered"));
    s.queue.enqueue(BOB, out("old-delivered"));
    s.history.recordInbound(hist("h-old"));
    clock.advance(10);
    s.queue.markDelivered(BOB, ["old-delivered"]); // delivered_at = t0 + 10
    clock.advance(3600);
    s.queue.enqueue(BOB, out("young"));
    s.history.recordInbound(hist("h-young"));

    // Nothing is old enough yet.
    assertEquals(s.cleanup(), { expiredUndelivered: 0, removedDelivered: 0, prunedHistory: 0 });

    // t0 + 24 h + 5 s: the first undelivered entry is past 24 h; the delivered one (t0+10) is not.
    clock.set(t0 + 86_400 + 5);
    assertEquals(s.cleanup(), { expiredUndelivered: 1, removedDelivered: 0, prunedHistory: 0 });
    assert(!s.queue.has(BOB, "old-undelivered"));
    assert(s.queue.has(BOB, "old-delivered"));

    clock.set(t0 + 86_400 + 11);
    assertEquals(s.cleanup(), { expiredUndelivered: 0, removedDelivered: 1, prunedHistory: 0 });

    // 30 days after the first history entry.
    clock.set(t0 + 30 * 86_400 + 1);
    assertEquals(s.cleanup(), { expiredUndelivered: 1, removedDelivered: 0, prunedHistory: 1 });
    assertEquals(s.history.query().map((m) => m.msgId), ["h-young"]);
    assertEquals(s.queue.pendingCount(BOB), 0);

    // An explicit `now` and ages override the clock and defaults.
    assertEquals(s.cleanup(t0 + 10 * 86_400, { historyMaxAgeS: 3600 }), {
      expiredUndelivered: 0,
      removedDelivered: 0,
      prunedHistory: 1,
    });
    assertEquals(s.history.count(), 0);
  } finally {
    s.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
