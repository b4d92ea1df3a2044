import { assert, assertEquals, assertThrows } from "../../support/assert.ts";
import { FakeClock } from "../../../lib/clock.ts";
import { KeyedTokenBuckets, TokenBucket } from "../../../lib/wire/token_bucket.ts";

Deno.test("a bucket starts full, empties, and refills at its rate up to the burst", () => {
  const clock = new FakeClock();
  const b = new TokenBucket(0.5, 5, clock);
  for (let i = 0; i < 5; i++) assert(b.tryConsume(), `token ${i}`);
  assert(!b.tryConsume());
  assertEquals(b.waitMs(), 2000);
  clock.advance(1.9);
  assert(!b.tryConsume());
  clock.advance(0.1);
  assert(b.tryConsume());
  assert(!b.tryConsume());
  clock.advance(3600);
  assertEquals(b.tokens, 5);
  assert(b.isFull());
  assertEquals(b.waitMs(), 0);
});

Deno.test("costs above one, and a wait that covers them", () => {
  const clock = new FakeClock();
  const b = new TokenBucket(20, 100, clock);
  assert(b.tryConsume(100));
  assert(!b.tryConsume(1));
  assertEquals(b.waitMs(40), 2000);
  clock.advance(2);
  assert(b.tryConsume(40));
  assert(!b.tryConsume(1));
});

Deno.test("the global admission bucket: 0.167/s with burst 10", () => {
  const clock = new FakeClock();
  const b = new TokenBucket(0.167, 10, clock);
  let admitted = 0;
  for (let i = 0; i < 20; i++) if (b.tryConsume()) admitted++;
  assertEquals(admitted, 10);
  clock.advance(6);
  assert(b.tryConsume(), "one token after ~6 s");
  assert(!b.tryConsume());
});

Deno.test("invalid parameters are refused", () => {
  const clock = new FakeClock();
  assertThrows(() => new TokenBucket(0, 5, clock), RangeError);
  assertThrows(() => new TokenBucket(1, 0, clock), RangeError);
  assertThrows(() => new TokenBucket(NaN, 5, clock), RangeError);
  assertThrows(() => new KeyedTokenBuckets(1, Infinity, clock), RangeError);
});

Deno.test("keyed buckets are independent per key and bounded in number", () => {
  const clock = new FakeClock();
  const k = new KeyedTokenBuckets(0.5, 5, clock, 3);
  for (let i = 0; i < 5; i++) assert(k.tryConsume("10.0.0.1"));
  assert(!k.tryConsume("10.0.0.1"));
  assert(k.tryConsume("10.0.0.2"));
  assert(k.tryConsume("10.0.0.3"));
  assertEquals(k.size, 3);
  // A fourth key evicts the stalest one (none is full yet); the map never exceeds the cap.
  assert(k.tryConsume("10.0.0.4"));
  assertEquals(k.size, 3);
  // After a refill, full buckets are forgotten first.
  clock.advance(60);
  assert(k.tryConsume("10.0.0.5"));
  assert(k.size <= 3);
});
