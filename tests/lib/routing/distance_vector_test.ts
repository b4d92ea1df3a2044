import { assert, assertEquals, assertThrows } from "../../support/assert.ts";
import { FakeClock } from "../../../lib/clock.ts";
import { fromHex } from "../../../lib/crypto/sodium.ts";
import {
  DEFAULT_ROUTE_TTL_S,
  encodeRouteAnnounce,
  INFINITY_COST,
  MAX_ANNOUNCE_BYTES,
  parseRouteAnnounce,
  pyIntCost,
  RouteAnnounceError,
  RoutingTable,
  type RoutingTableOptions,
} from "../../../lib/routing/distance_vector.ts";
import { CONTROL, type ControlCase } from "../wire/v09/fixtures.ts";
import { bytes, json, nid, text } from "./helpers.ts";

const T0 = 1736812800;
const [A, B, C, D, E, X] = ["A", "B", "C", "D", "E", "X"].map(nid);

function table(self = A, opts: Partial<RoutingTableOptions> = {}) {
  const clock = new FakeClock(T0);
  return { t: new RoutingTable({ selfId: self, clock, ...opts }), clock };
}

/** A ROUTE_ANNOUNCE payload from `origin` with the given (destination, cost) entries. */
function ann(origin: string, routes: [string, unknown][], seq?: number): Uint8Array {
  const o: Record<string, unknown> = {
    origin,
    routes: routes.map(([destination, cost]) => ({ destination, cost })),
  };
  if (seq !== undefined) o.sequence_number = seq;
  return bytes(JSON.stringify(o));
}

function costs(payload: Uint8Array): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of json(payload).routes as { destination: string; cost: number }[]) {
    out[r.destination] = r.cost;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Golden vectors (control_payloads.json: MeshRouter.send_announcement on alice)

Deno.test("dv vectors: alice's two ROUTE_ANNOUNCE payloads are reproduced byte for byte", () => {
  const cases = CONTROL.payloads.filter((c) => c.name === "ROUTE_ANNOUNCE") as (ControlCase & {
    to: string;
  })[];
  assertEquals(cases.map((c) => c.to), ["bob", "dave"]);
  const id = (n: string) => CONTROL.identities[n].node_id;
  const { t, clock } = table(id("alice"));
  t.linkUp(id("bob"));
  t.linkUp(id("dave"));
  // bob announces carol (learned first), then dave announces himself: the table order matters.
  clock.set(1736812790.25);
  t.onAnnounce(id("bob"), ann(id("bob"), [[id("carol"), 1]]));
  clock.set(1736812795.0);
  t.onAnnounce(id("dave"), ann(id("dave"), [[id("dave"), 0]]));
  assertEquals(t.routes().map((r) => [r.destination, r.cost, r.learnedFrom]), [
    [id("carol"), 2, id("bob")],
    [id("dave"), 1, id("dave")],
  ]);
  for (const c of cases) {
    const got = t.announceFor(id(c.to));
    assertEquals(text(got), c.payload_text!);
    assertEquals(got, fromHex(c.payload_hex!));
  }
  assertEquals(t.sequenceNumber, 2);
});

Deno.test("dv vectors: a received reference announce installs cost + 1 via its sender", () => {
  const c = CONTROL.payloads.find((x) => x.name === "ROUTE_ANNOUNCE")!;
  const alice = CONTROL.identities.alice.node_id, bob = CONTROL.identities.bob.node_id;
  const { t } = table(bob);
  t.linkUp(alice);
  const r = t.onAnnounce(alice, fromHex(c.payload_hex!));
  assert(r.accepted);
  // alice (cost 0) → 1; carol at 16 is a poisoned entry (ignored); dave 1 → 2.
  assertEquals(t.routes().map((x) => [x.destination, x.cost, x.nextHop]), [
    [alice, 1, alice],
    [CONTROL.identities.dave.node_id, 2, alice],
  ]);
});

// ---------------------------------------------------------------------------------------------
// Encoding and parsing

Deno.test("dv: encode uses COMPACT JSON in the reference's key order", () => {
  const p = encodeRouteAnnounce({
    origin: A,
    routes: [{ destination: A, cost: 0 }, { destination: B, cost: 16 }],
    sequenceNumber: 7,
  });
  assertEquals(
    text(p),
    `{"origin":"${A}","routes":[{"destination":"${A}","cost":0},{"destination":"${B}","cost":16}],"sequence_number":7}`,
  );
});

Deno.test("dv: parse mirrors Python int() on cost and skips bad entries", () => {
  assertEquals(pyIntCost(3), 3);
  assertEquals(pyIntCost(" 4 "), 4);
  assertEquals(pyIntCost("1_0"), 10);
  assertEquals(pyIntCost("2.5"), null);
  assertEquals(pyIntCost(true), 1);
  assertEquals(pyIntCost(null), null);
  assertEquals(pyIntCost([1]), null);
  assertEquals(pyIntCost(10n ** 30n) !== null && pyIntCost(10n ** 30n)! > 16, true);
  const p = parseRouteAnnounce(
    bytes(
      `{"origin":"o","sequence_number":3,"routes":[{"destination":"a","cost":2.9},` +
        `{"destination":"b"},{"destination":"","cost":1},{"cost":1},[1],` +
        `{"destination":"c","cost":"x"},{"destination":"d","cost":-1}]}`,
    ),
  );
  assertEquals(p.origin, "o");
  assertEquals(p.sequenceNumber, 3);
  assertEquals(p.entries, [
    { destination: "a", cost: 2 },
    { destination: "b", cost: INFINITY_COST },
    { destination: "d", cost: -1 },
  ]);
  assertEquals([p.skipped, p.truncated], [4, false]);
});

Deno.test("dv: parse refuses oversize, non-object, non-list and too-deep payloads", () => {
  const err = (p: Uint8Array) => assertThrows(() => parseRouteAnnounce(p), RouteAnnounceError);
  assertEquals(
    (err(new Uint8Array(MAX_ANNOUNCE_BYTES + 1)) as RouteAnnounceError).reason,
    "too-large",
  );
  assertEquals((err(bytes("[1]")) as RouteAnnounceError).reason, "malformed");
  assertEquals((err(bytes('{"routes":{}}')) as RouteAnnounceError).reason, "malformed");
  assertEquals((err(new Uint8Array([0xff])) as RouteAnnounceError).reason, "malformed");
  err(bytes(`{"routes":${"[".repeat(64)}1${"]".repeat(64)}}`));
  assertEquals(parseRouteAnnounce(bytes("{}")).entries, []);
});

// ---------------------------------------------------------------------------------------------
// Table rules

Deno.test("dv: a route is installed at cost + 1 via the sender and expires after the TTL", () => {
  const { t, clock } = table();
  t.linkUp(B);
  const r = t.onAnnounce(B, ann(B, [[B, 0], [C, 1], [D, 2]]));
  assertEquals([r.accepted, r.changed, r.learned], [true, true, 3]);
  assertEquals(r.events[1], {
    event: "ROUTE_LEARNED",
    details: { destination: C, next_hop: B, cost: 2 },
  });
  assertEquals(t.route(D), { destination: D, nextHop: B, cost: 3, learnedFrom: B, updated: T0 });
  clock.advance(DEFAULT_ROUTE_TTL_S);
  assertEquals(t.expire().events, []); // exactly 90 s old: kept (age > ttl expires)
  clock.advance(0.5);
  const ex = t.expire();
  assert(ex.changed);
  assertEquals(ex.events.map((e) => [e.event, e.details.destination]), [
    ["ROUTE_EXPIRED", B],
    ["ROUTE_EXPIRED", C],
    ["ROUTE_EXPIRED", D],
  ]);
  assertEquals(t.size, 0);
});

Deno.test("dv: a refresh from the learner keeps the route alive without a change", () => {
  const { t, clock } = table();
  t.linkUp(B);
  t.onAnnounce(B, ann(B, [[C, 1]]));
  clock.advance(60);
  const r = t.onAnnounce(B, ann(B, [[C, 1]]));
  assertEquals([r.changed, r.events], [false, []]);
  clock.advance(60);
  t.expire();
  assertEquals(t.route(C)?.cost, 2);
});

Deno.test("dv: cost ≥ 16 from the learner withdraws; from another neighbour it is ignored", () => {
  const { t } = table();
  t.linkUp(B);
  t.linkUp(C);
  t.onAnnounce(B, ann(B, [[D, 1]]));
  let r = t.onAnnounce(C, ann(C, [[D, 16]]));
  assertEquals([r.changed, t.route(D)?.nextHop], [false, B]);
  r = t.onAnnounce(B, ann(B, [[D, 15]])); // 15 + 1 = 16: infinity
  assertEquals([r.changed, r.withdrawn, t.route(D)], [true, 1, undefined]);
  assertEquals(r.events, [{
    event: "ROUTE_WITHDRAWN",
    details: { destination: D, learned_from: B, reason: "withdrawn" },
  }]);
  t.onAnnounce(B, ann(B, [[D, 1]]));
  r = t.onAnnounce(B, ann(B, [[D, -1]])); // cost ≤ 0 after + 1 is a withdrawal too
  assertEquals(t.route(D), undefined);
});

Deno.test("dv: the learner overwrites even upward; another neighbour needs a strictly lower cost", () => {
  const { t } = table();
  t.linkUp(B);
  t.linkUp(C);
  t.onAnnounce(B, ann(B, [[D, 2]]));
  t.onAnnounce(C, ann(C, [[D, 2]])); // tie: kept via B
  assertEquals([t.route(D)?.nextHop, t.route(D)?.cost], [B, 3]);
  t.onAnnounce(B, ann(B, [[D, 5]])); // the learner may raise the cost
  assertEquals([t.route(D)?.nextHop, t.route(D)?.cost], [B, 6]);
  const r = t.onAnnounce(C, ann(C, [[D, 2]])); // now strictly lower via C
  assertEquals([t.route(D)?.nextHop, t.route(D)?.cost, r.learned], [C, 3, 1]);
  assertEquals(t.routes().map((x) => x.destination), [D]); // replaced in place
});

Deno.test("dv: routes to ourselves are never installed; cost 0 only counts for the sender", () => {
  const { t } = table();
  t.linkUp(B);
  const r = t.onAnnounce(B, ann(B, [[A, 0], [B, 0], [C, 0], [D, 1]]));
  assertEquals(t.routes().map((x) => [x.destination, x.cost]), [[B, 1], [D, 2]]);
  assertEquals(r.ignored, 1);
});

Deno.test("dv: destinations that are not node ids, and filtered ones, are ignored", () => {
  const { t } = table(A, { learnFilter: (dst) => dst !== X });
  t.linkUp(B);
  const r = t.onAnnounce(B, ann(B, [["not-a-node-id", 1], [X, 1], [C, 1]]));
  assertEquals(t.routes().map((x) => x.destination), [C]);
  assertEquals(r.ignored, 2);
  const loose = table(A, { validateIds: false }).t;
  loose.linkUp(B);
  loose.onAnnounce(B, ann(B, [["free-form", 1]]));
  assertEquals(loose.route("free-form")?.cost, 2);
});

Deno.test("dv: whole announcements are refused from strangers, untrusted peers, wrong origins", () => {
  const { t } = table(A, { acceptFrom: (p) => p !== C });
  assertEquals(t.onAnnounce(B, ann(B, [[D, 1]])).reason, "not-a-neighbor");
  t.linkUp(B);
  t.linkUp(C);
  assertEquals(t.onAnnounce(C, ann(C, [[D, 1]])).reason, "untrusted-peer");
  assertEquals(t.onAnnounce(B, ann(D, [[D, 1]])).reason, "origin-mismatch");
  assertEquals(t.onAnnounce(B, bytes("nope")).reason, "malformed");
  assertEquals(t.size, 0);
});

Deno.test("dv: a sequence_number not above the last on this link is ignored until relinked", () => {
  const { t } = table();
  t.linkUp(B);
  assert(t.onAnnounce(B, ann(B, [[C, 1]], 5)).accepted);
  const r = t.onAnnounce(B, ann(B, [[C, 7]], 5));
  assertEquals([r.accepted, r.reason, t.route(C)?.cost], [false, "stale-sequence", 2]);
  assert(t.onAnnounce(B, ann(B, [[C, 3]], 6)).accepted);
  assert(t.onAnnounce(B, ann(B, [[C, 3]])).accepted); // absent sequence: accepted
  t.linkUp(B); // a new session resets the counter
  assert(t.onAnnounce(B, ann(B, [[C, 1]], 1)).accepted);
});

Deno.test("dv: a route missing from its learner's full announcement is withdrawn", () => {
  const { t } = table();
  t.linkUp(B);
  t.onAnnounce(B, ann(B, [[B, 0], [C, 1], [D, 2]]));
  const r = t.onAnnounce(B, ann(B, [[B, 0], [D, 2]]));
  assertEquals([r.withdrawn, t.route(C)], [1, undefined]);
  assertEquals(r.events[0].details, { destination: C, learned_from: B, reason: "omitted" });
  assertEquals(t.route(D)?.cost, 3);
});

Deno.test("dv: only 1024 entries are read, and a truncated list withdraws nothing", () => {
  const { t } = table(A, { validateIds: false, maxRoutes: 5000 });
  t.linkUp(B);
  t.onAnnounce(B, ann(B, [["keep", 3]]));
  const many: [string, unknown][] = Array.from({ length: 1100 }, (_, i) => [`d${i}`, 1]);
  const r = t.onAnnounce(B, ann(B, many));
  assertEquals([r.learned, t.size], [1024, 1025]);
  assert(t.route("keep") !== undefined);
  assert(t.route("d1023") !== undefined && t.route("d1024") === undefined);
  assertEquals((json(t.announceFor(C)).routes as unknown[]).length, 1024);
});

Deno.test("dv: the table holds at most maxRoutes destinations", () => {
  const { t } = table(A, { maxRoutes: 2 });
  t.linkUp(B);
  const r = t.onAnnounce(B, ann(B, [[C, 1], [D, 1], [E, 1]]));
  assertEquals([t.size, r.learned, r.ignored], [2, 2, 1]);
});

// ---------------------------------------------------------------------------------------------
// Announcements

Deno.test("dv: split horizon with poisoned reverse; self first at cost 0", () => {
  const { t } = table();
  t.linkUp(B);
  t.linkUp(C);
  t.onAnnounce(B, ann(B, [[B, 0], [D, 1]]));
  t.onAnnounce(C, ann(C, [[C, 0], [E, 2]]));
  const toB = json(t.announceFor(B));
  assertEquals(toB.origin, A);
  assertEquals((toB.routes as unknown[])[0], { destination: A, cost: 0 });
  assertEquals(costs(t.announceFor(B)), { [A]: 0, [D]: 16, [C]: 1, [E]: 3 }); // B omitted
  assertEquals(costs(t.announceFor(C)), { [A]: 0, [B]: 1, [D]: 2, [E]: 16 }); // C omitted
  assertEquals(json(t.announceFor(C)).sequence_number, 4);
});

Deno.test("dv: a withdrawn route is announced at 16 during the hold, then dropped", () => {
  const { t, clock } = table(A, { withdrawHoldS: 20 });
  t.linkUp(B);
  t.linkUp(C);
  t.onAnnounce(B, ann(B, [[D, 1]]));
  t.onAnnounce(B, ann(B, [[D, 16]]));
  assertEquals(costs(t.announceFor(C))[D], 16);
  assertEquals(t.withdrawnDestinations(), [D]);
  clock.advance(21);
  t.expire();
  assertEquals(costs(t.announceFor(C))[D], undefined);
  t.onAnnounce(B, ann(B, [[D, 1]])); // re-learned: announced at its cost again
  assertEquals(costs(t.announceFor(C))[D], 2);
});

Deno.test("dv: linkDown withdraws every route through the peer", () => {
  const { t } = table();
  t.linkUp(B);
  t.linkUp(C);
  t.onAnnounce(B, ann(B, [[B, 0], [D, 1]]));
  t.onAnnounce(C, ann(C, [[C, 0]]));
  const r = t.linkDown(B);
  assert(r.changed);
  assertEquals(r.events.map((e) => [e.event, e.details.destination, e.details.reason]), [
    ["ROUTE_WITHDRAWN", B, "link-down"],
    ["ROUTE_WITHDRAWN", D, "link-down"],
  ]);
  assertEquals([t.isLinked(B), t.neighbors(), t.routes().map((x) => x.destination)], [
    false,
    [C],
    [C],
  ]);
  assertEquals(costs(t.announceFor(C)), { [A]: 0, [B]: 16, [D]: 16 });
});

Deno.test("dv: triggered announcements are immediate, rate limited, and periodic otherwise", () => {
  const { t, clock } = table(A, { triggeredMinIntervalS: 1, announceIntervalS: 30 });
  assertEquals([t.dueAnnouncements(), t.nextAnnounceAt()], [[], null]);
  t.linkUp(B);
  t.linkUp(C);
  assertEquals(t.dueAnnouncements(), [B, C]); // a new link gets our table at once
  assertEquals(t.nextAnnounceAt(), 0);
  t.announceFor(B);
  t.announceFor(C);
  assertEquals(t.dueAnnouncements(), []);
  assertEquals(t.nextAnnounceAt(), 30_000);
  t.onAnnounce(B, ann(B, [[D, 1]])); // a change: due to everyone, but not within 1 s
  assert(t.isTriggered(B) && t.isTriggered(C));
  assertEquals(t.dueAnnouncements(), []);
  assertEquals(t.nextAnnounceAt(), 1000);
  clock.advance(1);
  assertEquals(t.dueAnnouncements(), [B, C]);
  t.announceFor(B);
  t.announceFor(C);
  t.onAnnounce(B, ann(B, [[D, 1]])); // a refresh is not a change
  clock.advance(5);
  assertEquals(t.dueAnnouncements(), []);
  clock.advance(25);
  assertEquals(t.dueAnnouncements(), [B, C]); // periodic, 30 s after the last one
});

Deno.test("dv: a neighbour that newly loses a destination we still reach gets our table at once", () => {
  const { t } = table();
  t.linkUp(B);
  t.linkUp(C);
  t.onAnnounce(B, ann(B, [[D, 1]]));
  t.onAnnounce(C, ann(C, [[D, 2]]));
  t.announceFor(B);
  t.announceFor(C);
  const r = t.onAnnounce(C, ann(C, [[D, 16]]));
  assertEquals([r.changed, t.isTriggered(C), t.isTriggered(B)], [false, true, false]);
  t.announceFor(C);
  t.onAnnounce(C, ann(C, [[D, 16]])); // still lost: no second answer
  assertEquals(t.isTriggered(C), false);
});

// ---------------------------------------------------------------------------------------------
// Lookups, partitions, restore

Deno.test("dv: nextHop prefers a live direct link and honours avoid", () => {
  const { t } = table();
  assertEquals(t.nextHop(A), null);
  t.linkUp(B);
  t.linkUp(C);
  t.onAnnounce(B, ann(B, [[C, 1], [D, 1]]));
  assertEquals(t.nextHop(C), C); // direct beats the learned route via B
  assertEquals(t.nextHop(D), B);
  assertEquals(t.nextHop(D, (h) => h === B), null);
  assertEquals(t.nextHop(C, (h) => h === C), B); // direct avoided: fall back to the route
  assertEquals(t.nextHop(E), null);
  t.linkDown(C);
  assertEquals(t.nextHop(C), B); // the learned route takes over when the link goes
});

Deno.test("dv: a lost destination is reported as a suspected partition after 2 × TTL", () => {
  const { t, clock } = table(A, { routeTtlS: 90 });
  t.linkUp(B);
  t.onAnnounce(B, ann(B, [[C, 1]]));
  t.linkDown(B);
  clock.advance(180);
  assertEquals(t.expire().events, []);
  clock.advance(1);
  assertEquals(t.expire().events, [{
    event: "MESH_PARTITION_SUSPECTED",
    details: { destination: C },
  }]);
  clock.advance(299);
  assertEquals(t.expire().events, []); // at most every 300 s
  clock.advance(2);
  assertEquals(t.expire().events.length, 1);
  t.linkUp(B);
  t.onAnnounce(B, ann(B, [[C, 1]])); // reachable again: no more reports
  clock.advance(1000);
  t.onAnnounce(B, ann(B, [[C, 1]]));
  assertEquals(t.expire().events, []);
});

Deno.test("dv: restored routes count only once their neighbour is linked", () => {
  const { t } = table();
  const n = t.restore([
    { destination: C, nextHop: B, cost: 2, learnedFrom: B, updated: T0 },
    { destination: A, nextHop: B, cost: 1, learnedFrom: B, updated: T0 }, // self: skipped
    { destination: D, nextHop: B, cost: 16, learnedFrom: B, updated: T0 }, // infinite: skipped
  ]);
  assertEquals(n, 1);
  t.linkUp(C);
  assertEquals([t.nextHop(C), costs(t.announceFor(C))], [C, { [A]: 0 }]);
  assertEquals(t.nextHop(D), null);
  const up = t.linkUp(B);
  assert(up.changed);
  assertEquals(costs(t.announceFor(E)), { [A]: 0, [C]: 2 });
  t.linkUp(D);
  t.onAnnounce(D, ann(D, [[C, 5]])); // a worse offer does not displace a live restored route
  assertEquals(t.route(C)?.nextHop, B);
});
