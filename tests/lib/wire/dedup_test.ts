import { assertEquals, assertThrows } from "../../support/assert.ts";
import { DedupCache } from "../../../lib/wire/dedup.ts";

Deno.test("dedup: second copy within 300 s is a duplicate, after 300 s it is new again", () => {
  const d = new DedupCache();
  assertEquals(d.checkAndAdd("alice", "m1", 0), false);
  assertEquals(d.checkAndAdd("alice", "m1", 299_999), true);
  assertEquals(d.has("alice", "m1", 299_999), true);
  assertEquals(d.checkAndAdd("alice", "m1", 300_000), false);
  assertEquals(d.checkAndAdd("alice", "m1", 300_001), true);
});

Deno.test("dedup: ids are per source", () => {
  const d = new DedupCache();
  assertEquals(d.checkAndAdd("alice", "m1", 0), false);
  assertEquals(d.checkAndAdd("bob", "m1", 0), false);
  assertEquals(d.checkAndAdd("bob", "m1", 1), true);
});

Deno.test("dedup: at most maxIdsPerSource ids, oldest evicted", () => {
  const d = new DedupCache({ maxIdsPerSource: 3 });
  for (const id of ["a", "b", "c", "d"]) assertEquals(d.checkAndAdd("s", id, 0), false);
  assertEquals(d.has("s", "a", 1), false);
  assertEquals(d.has("s", "b", 1), true);
  assertEquals(d.has("s", "d", 1), true);
});

Deno.test("dedup: at most maxSources sources, least recently used evicted", () => {
  const d = new DedupCache({ maxSources: 2 });
  d.checkAndAdd("s1", "x", 0);
  d.checkAndAdd("s2", "x", 0);
  assertEquals(d.checkAndAdd("s1", "x", 1), true); // s1 becomes most recent
  d.checkAndAdd("s3", "x", 2); // evicts s2
  assertEquals(d.sourceCount, 2);
  assertEquals(d.has("s2", "x", 3), false);
  assertEquals(d.has("s1", "x", 3), true);
  d.clear();
  assertEquals(d.sourceCount, 0);
});

Deno.test("dedup: expired ids are pruned and bounds must be positive", () => {
  const d = new DedupCache({ ttlMs: 10, maxIdsPerSource: 100 });
  d.checkAndAdd("s", "old", 0);
  d.checkAndAdd("s", "new", 20);
  assertEquals(d.has("s", "old", 20), false);
  assertEquals(d.has("s", "new", 29), true);
  assertThrows(() => new DedupCache({ ttlMs: 0 }), RangeError);
  assertThrows(() => new DedupCache({ maxSources: -1 }), RangeError);
});
