import { assert, assertEquals, assertThrows } from "../../support/assert.ts";
import { FakeClock } from "../../../lib/clock.ts";
import { CircuitBreaker } from "../../../lib/routing/circuit_breaker.ts";
import { TransportDedup } from "../../../lib/routing/dedup.ts";
import {
  DEFAULT_MAX_HOPS,
  Forwarder,
  type ForwardingOptions,
  type RelayableMessage,
  type RouteLookup,
} from "../../../lib/routing/forwarding.ts";
import { RoutingTable } from "../../../lib/routing/distance_vector.ts";
import { parseRouteUnreachable } from "../../../lib/wire/v09/control.ts";
import { bytes, nid } from "./helpers.ts";

const T0 = 1736812800;
const [ME, P, Q, R, SRC, DST] = ["me", "p", "q", "r", "src", "dst"].map(nid);

/** A route lookup over a fixed map (destination → ordered candidate hops). */
function routes(map: Record<string, string[]>): RouteLookup {
  return {
    nextHop: (dest, avoid) => (map[dest] ?? []).find((h) => !avoid?.(h)) ?? null,
  };
}

function fwd(
  map: Record<string, string[]> = { [DST]: [Q] },
  opts: Partial<ForwardingOptions> = {},
) {
  const clock = new FakeClock(T0);
  return { f: new Forwarder({ selfId: ME, clock, routes: routes(map), ...opts }), clock };
}

function msg(over: Partial<RelayableMessage> = {}): RelayableMessage {
  return {
    type: "MSG",
    payload: new Uint8Array(0),
    msgId: "m-1",
    source: SRC,
    sourceDisplay: SRC,
    destination: DST,
    timestamp: T0 - 1.5,
    priority: "HIGH",
    ttl: 5,
    hops: [],
    routing: {},
    retries: 0,
    sourceSignature: new Uint8Array(64).fill(7),
    sourceSigScheme: "v2",
    e2ePayload: bytes("sealed"),
    ...over,
  };
}

Deno.test("forwarding: frames for this node, broadcasts and locally handled types are delivered", () => {
  const { f } = fwd();
  for (const destination of [ME, "*", ""]) {
    assertEquals(f.decide(msg({ destination }), P).action, "deliver");
  }
  for (
    const type of ["ROUTE_ANNOUNCE", "ROUTE_UNREACHABLE", "CAPABILITY_ANNOUNCE", "GROUP_BROADCAST"]
  ) {
    assertEquals(f.decide(msg({ type }), P), { action: "deliver", auditEvents: [] });
  }
});

Deno.test("forwarding: modes passive and off drop others' frames; off still delivers ours", () => {
  const passive = fwd({ [DST]: [Q] }, { mode: "passive" }).f;
  assertEquals(passive.decide(msg(), P), { action: "drop", reason: "passive", auditEvents: [] });
  const off = fwd({ [DST]: [Q] }, { mode: "off" }).f;
  assertEquals(off.decide(msg(), P).reason, "routing-off");
  assertEquals(off.decide(msg({ destination: ME }), P).action, "deliver");
  assertThrows(() => fwd({}, { mode: "bogus" as "off" }), RangeError);
  assertThrows(() => fwd({}, { maxHops: 0 }), RangeError);
});

Deno.test("forwarding: a relay keeps every inner field, decrements ttl and appends itself", () => {
  const { f } = fwd();
  const m = msg({ ttl: 4, hops: [P] });
  const d = f.decide(m, P);
  assertEquals([d.action, d.nextHop], ["relay", Q]);
  const o = d.outbound!;
  assertEquals([o.ttl, o.hops], [3, [P, ME]]);
  assertEquals(
    [o.type, o.msgId, o.source, o.sourceDisplay, o.destination, o.timestamp, o.priority],
    ["MSG", "m-1", SRC, SRC, DST, T0 - 1.5, "HIGH"],
  );
  assertEquals([o.sourceSignature, o.sourceSigScheme, o.e2ePayload], [
    m.sourceSignature,
    "v2",
    m.e2ePayload,
  ]);
  assertEquals(o.payload, m.payload);
  assertEquals(m.hops, [P]); // the received message is not mutated
  assertEquals(d.auditEvents, [{
    event: "MESSAGE_RELAYED",
    details: { source: SRC, destination: DST, next_hop: Q, msg_id: "m-1" },
  }]);
  const unsigned = f.decide(
    msg({ msgId: "m-2", sourceSignature: undefined, priority: "weird" }),
    P,
  );
  assertEquals("sourceSignature" in unsigned.outbound!, false);
  assertEquals(unsigned.outbound!.priority, "NORMAL");
});

Deno.test("forwarding: frames older than 24 h are refused", () => {
  const { f } = fwd();
  assertEquals(f.decide(msg({ timestamp: T0 - 86_400 }), P).action, "relay");
  assertEquals(f.decide(msg({ msgId: "old", timestamp: T0 - 86_401 }), P).reason, "stale");
});

Deno.test("forwarding: duplicates are dropped, a copy over another transport is audited", () => {
  const { f, clock } = fwd();
  assertEquals(f.decide(msg(), P, "ws").action, "relay");
  const same = f.decide(msg(), R, "ws");
  assertEquals([same.action, same.reason], ["drop", "duplicate"]);
  assertEquals(same.auditEvents, [{
    event: "DUPLICATE_DROPPED",
    details: { source: SRC, msg_id: "m-1" },
  }]);
  clock.advance(2.5);
  const cross = f.decide(msg(), R, "rns");
  assertEquals(cross.auditEvents[1], {
    event: "MSG_REPLAY_CROSS_TRANSPORT",
    details: {
      peer: SRC,
      msg_id: "m-1",
      original_transport: "ws",
      replay_transport: "rns",
      time_delta_ms: 2500,
    },
  });
  assertEquals(f.decide(msg({ source: R }), P).action, "relay"); // ids are per source
});

Deno.test("forwarding: ttl 0 expires, our id on the path is a loop, --max-hops bounds the path", () => {
  const { f } = fwd();
  assertEquals(f.decide(msg({ ttl: 0 }), P), {
    action: "drop",
    reason: "ttl-expired",
    auditEvents: [{ event: "TTL_EXPIRED", details: { source: SRC, msg_id: "m-1" } }],
  });
  assertEquals(f.decide(msg({ msgId: "l", hops: [P, ME, R] }), P), {
    action: "drop",
    reason: "route-loop",
    auditEvents: [{
      event: "ROUTE_LOOP",
      details: { source: SRC, msg_id: "l", hops: [P, ME, R] },
    }],
  });
  const five = [1, 2, 3, 4, 5].map((i) => nid(`h${i}`));
  const d = f.decide(msg({ msgId: "h", ttl: 200, hops: five }), P);
  assertEquals([d.reason, d.auditEvents[0].details.reason], ["max-hops", "max-hops"]);
  // An inflated ttl is clamped to the hops left.
  const ok = f.decide(msg({ msgId: "c", ttl: 200, hops: five.slice(0, 2) }), P);
  assertEquals([ok.outbound!.ttl, ok.outbound!.hops!.length], [DEFAULT_MAX_HOPS - 3, 3]);
  // A reference-sized ttl passes unchanged at every relay position.
  for (let k = 1; k <= 5; k++) {
    const r = f.decide(msg({ msgId: `k${k}`, ttl: 6 - k, hops: five.slice(0, k - 1) }), P);
    assertEquals(r.outbound?.ttl, 5 - k);
  }
});

Deno.test("forwarding: no route → NO_ROUTE and ROUTE_UNREACHABLE back when a route exists", () => {
  const { f } = fwd({ [SRC]: [P] });
  const d = f.decide(msg(), P);
  assertEquals([d.action, d.reason], ["unreachable", "no-route"]);
  assertEquals(d.auditEvents, [{
    event: "NO_ROUTE",
    details: { destination: DST, msg_id: "m-1" },
  }]);
  assertEquals(d.unreachable!.nextHop, P);
  const u = d.unreachable!.message;
  assertEquals([u.type, u.destination, u.ttl], ["ROUTE_UNREACHABLE", SRC, 3]);
  assertEquals(parseRouteUnreachable(u.payload!), {
    destination: DST,
    originalMsgId: "m-1",
    reason: "no_route",
  });
  const none = fwd({}).f.decide(msg(), P);
  assertEquals([none.action, none.unreachable], ["unreachable", undefined]);
});

Deno.test("forwarding: never back to the sender, the source, or a node on the path", () => {
  const { f } = fwd({ [DST]: [P, SRC, R, Q] });
  const d = f.decide(msg({ hops: [R] }), P);
  assertEquals(d.nextHop, Q);
  assertEquals(fwd({ [DST]: [P] }).f.decide(msg(), P).action, "unreachable");
});

Deno.test("forwarding: the circuit breaker trips after 3 failures and reroutes", () => {
  const { f, clock } = fwd({ [DST]: [Q, R] });
  assertEquals(f.nextHopFor(DST), Q);
  assertEquals(f.sendFailed(Q), []);
  assertEquals(f.sendFailed(Q), []);
  assertEquals(f.sendFailed(Q), [{ event: "CIRCUIT_BREAKER_TRIPPED", details: { peer: Q } }]);
  assertEquals(f.sendFailed(Q), []); // already open: no second event
  assertEquals(f.nextHopFor(DST), R);
  assertEquals(f.decide(msg(), P).nextHop, R);
  clock.advance(60);
  assertEquals(f.breaker.state(Q, clock.monotonicMs()), "half-open");
  assertEquals(f.nextHopFor(DST), Q);
  f.sendSucceeded(Q);
  assertEquals(f.breaker.state(Q, clock.monotonicMs()), "closed");
});

Deno.test("circuit breaker: failures outside the window do not count; half-open re-trips at once", () => {
  const b = new CircuitBreaker({ failureThreshold: 3, windowMs: 60_000, cooldownMs: 10_000 });
  b.recordFailure("x", 0);
  b.recordFailure("x", 30_000);
  assertEquals(b.recordFailure("x", 61_000), []); // the first one aged out
  assertEquals(b.state("x", 61_000), "closed");
  assertEquals(b.recordFailure("x", 62_000).length, 1);
  assertEquals([b.state("x", 71_999), b.allows("x", 71_999)], ["open", false]);
  assertEquals(b.state("x", 72_000), "half-open");
  assertEquals(b.recordFailure("x", 72_001).length, 1); // one failure re-opens
  assertEquals(b.state("x", 80_000), "open");
  b.recordSuccess("x");
  assertEquals([b.state("x", 80_000), b.peers()], ["closed", []]);
  b.recordFailure("y", 0);
  b.forget("y");
  assertEquals(b.peers(), []);
  assertThrows(() => new CircuitBreaker({ failureThreshold: 0 }), RangeError);
});

Deno.test("transport dedup: expiry, bounds and per-source ids", () => {
  const d = new TransportDedup({ ttlMs: 1000, maxSources: 2, maxIdsPerSource: 2 });
  assertEquals(d.checkAndAdd("s", "a", "ws", 0), { duplicate: false });
  assertEquals(d.checkAndAdd("s", "a", "ws", 999), {
    duplicate: true,
    originalTransport: "ws",
    thisTransport: "ws",
    crossTransport: false,
    timeDeltaMs: 999,
  });
  assertEquals(d.checkAndAdd("s", "a", "ws", 1000).duplicate, false); // expired: new again
  d.checkAndAdd("s", "b", "ws", 1000);
  d.checkAndAdd("s", "c", "ws", 1000); // evicts "a"
  assertEquals([d.has("s", "a", 1001), d.has("s", "c", 1001)], [false, true]);
  d.checkAndAdd("t", "x", "ws", 1000);
  d.checkAndAdd("u", "x", "ws", 1000); // evicts source "s"
  assertEquals([d.sourceCount, d.has("s", "c", 1001)], [2, false]);
  d.clear();
  assertEquals(d.sourceCount, 0);
  assertThrows(() => new TransportDedup({ ttlMs: 0 }), RangeError);
});

Deno.test("forwarding: a shared dedup and breaker can be injected", () => {
  const dedup = new TransportDedup();
  const breaker = new CircuitBreaker();
  const a = fwd({ [DST]: [Q] }, { dedup, breaker }).f;
  assert(a.dedup === dedup && a.breaker === breaker);
  a.decide(msg(), P);
  assertEquals(dedup.has(SRC, "m-1", 0), true);
});

Deno.test("forwarding: over a RoutingTable, a broken next hop leaves the direct link or nothing", () => {
  const clock = new FakeClock(T0);
  const table = new RoutingTable({ selfId: ME, clock });
  const f = new Forwarder({ selfId: ME, clock, routes: table });
  table.linkUp(P);
  table.linkUp(Q);
  table.onAnnounce(
    Q,
    bytes(JSON.stringify({ origin: Q, routes: [{ destination: DST, cost: 1 }] })),
  );
  assertEquals(f.decide(msg(), P).nextHop, Q);
  for (let i = 0; i < 3; i++) f.sendFailed(Q);
  const d = f.decide(msg({ msgId: "m-2" }), P);
  assertEquals([d.action, d.unreachable], ["unreachable", undefined]); // no route back to SRC
  table.linkUp(DST); // a live direct link wins over everything
  assertEquals(f.decide(msg({ msgId: "m-3" }), P).nextHop, DST);
});
