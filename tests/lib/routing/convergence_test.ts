/**
 * In-process convergence of routing tables joined by a fake link layer that just hands
 * ROUTE_ANNOUNCE payloads from table to table, one round per simulated second.
 */
import { assert, assertEquals } from "../../support/assert.ts";
import { FakeClock } from "../../../lib/clock.ts";
import { RoutingTable } from "../../../lib/routing/distance_vector.ts";
import { json, nid } from "./helpers.ts";

const T0 = 1736812800;

class DvNet {
  readonly clock = new FakeClock(T0);
  readonly tables = new Map<string, RoutingTable>();
  readonly #links = new Set<string>();
  /** Extra rounds an announcement spends on a link (FIFO per link, like a TCP stream). */
  readonly delays = new Map<string, number>();
  readonly #inFlight: [number, string, string, Uint8Array][] = [];
  #round = 0;
  /** Every announcement delivered: [from, to, destination → cost]. */
  readonly log: [string, string, Map<string, number>][] = [];
  delivered = 0;

  constructor(ids: string[]) {
    for (const id of ids) {
      this.tables.set(id, new RoutingTable({ selfId: id, clock: this.clock }));
    }
  }

  t(id: string): RoutingTable {
    return this.tables.get(id)!;
  }

  key(a: string, b: string): string {
    return a < b ? `${a}|${b}` : `${b}|${a}`;
  }

  connect(a: string, b: string): void {
    this.#links.add(this.key(a, b));
    this.t(a).linkUp(b);
    this.t(b).linkUp(a);
  }

  cut(a: string, b: string): void {
    const k = this.key(a, b);
    this.#links.delete(k);
    for (let i = this.#inFlight.length - 1; i >= 0; i--) {
      const [, from, to] = this.#inFlight[i];
      if (this.key(from, to) === k) this.#inFlight.splice(i, 1);
    }
    this.t(a).linkDown(b);
    this.t(b).linkDown(a);
  }

  /** Build every due announcement, deliver them all, then move time one second. */
  round(): number {
    const now = this.#round++;
    let built = 0;
    for (const [id, t] of this.tables) {
      for (const p of t.dueAnnouncements()) {
        this.#inFlight.push([
          now + (this.delays.get(this.key(id, p)) ?? 0),
          id,
          p,
          t.announceFor(p),
        ]);
        built++;
      }
    }
    const msgs = this.#inFlight.filter(([at]) => at <= now);
    this.#inFlight.splice(0, this.#inFlight.length, ...this.#inFlight.filter(([at]) => at > now));
    for (const [, from, to, payload] of msgs) {
      if (!this.#links.has(this.key(from, to))) continue;
      const r = this.t(to).onAnnounce(from, payload);
      assert(r.accepted, `announce ${from} → ${to} refused: ${r.reason}`);
      const costs = new Map<string, number>();
      for (const e of json(payload).routes as { destination: string; cost: number }[]) {
        costs.set(e.destination, e.cost);
      }
      this.log.push([from, to, costs]);
      this.delivered++;
    }
    this.clock.advance(1);
    for (const t of this.tables.values()) t.expire();
    return built;
  }

  /** Whether some table still owes a neighbour a triggered announcement (or one is in flight). */
  triggered(): boolean {
    if (this.#inFlight.length) return true;
    for (const t of this.tables.values()) {
      if (t.neighbors().some((p) => t.isTriggered(p))) return true;
    }
    return false;
  }

  /** Run rounds until nothing is triggered; returns the number of rounds. */
  settle(max = 40): number {
    for (let i = 1; i <= max; i++) {
      this.round();
      if (!this.triggered()) return i;
    }
    throw new Error(`no convergence within ${max} rounds`);
  }

  /** Run rounds until `done()` holds; returns the number of rounds. */
  until(done: () => boolean, max = 40): number {
    for (let i = 1; i <= max; i++) {
      this.round();
      if (done()) return i;
    }
    throw new Error(`condition not reached within ${max} rounds`);
  }
}

const LINE = ["A", "B", "C", "D", "E"].map(nid);
const [A, B, C, D, E] = LINE;

function line(): DvNet {
  const net = new DvNet(LINE);
  for (let i = 0; i + 1 < LINE.length; i++) net.connect(LINE[i], LINE[i + 1]);
  return net;
}

function costsOf(payload: Uint8Array): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of json(payload).routes as { destination: string; cost: number }[]) {
    out[r.destination] = r.cost;
  }
  return out;
}

Deno.test("convergence: a line of 5 learns every route by triggered updates alone", () => {
  const net = line();
  const rounds = net.settle();
  assert(rounds <= 6, `took ${rounds} rounds`);
  assert(net.clock.now() - T0 < 30, "converged before the first periodic announcement");
  assertEquals(net.t(A).route(E), {
    destination: E,
    nextHop: B,
    cost: 4,
    learnedFrom: B,
    updated: net.t(A).route(E)!.updated,
  });
  for (let i = 0; i < LINE.length; i++) {
    for (let j = 0; j < LINE.length; j++) {
      if (i === j) continue;
      const r = net.t(LINE[i]).route(LINE[j]);
      assertEquals(r?.cost, Math.abs(i - j), `${i} → ${j}`);
      assertEquals(r?.nextHop, LINE[i + Math.sign(j - i)]);
    }
  }
  assertEquals(net.t(A).nextHop(E), B);
});

Deno.test("convergence: poisoned reverse in the converged line", () => {
  const net = line();
  net.settle();
  // B → A: A itself omitted; everything B learned from C is real.
  assertEquals(costsOf(net.t(B).announceFor(A)), { [B]: 0, [C]: 1, [D]: 2, [E]: 3 });
  // A → B: all A knows came from B, so all of it is poisoned; B omitted.
  assertEquals(costsOf(net.t(A).announceFor(B)), { [A]: 0, [C]: 16, [D]: 16, [E]: 16 });
  // C → B: A was learned from B (poisoned), D and E from D (real).
  assertEquals(costsOf(net.t(C).announceFor(B)), { [C]: 0, [A]: 16, [D]: 1, [E]: 2 });
});

Deno.test("convergence: a cut link withdraws within a few triggered rounds and heals the same way", () => {
  const net = line();
  net.settle();
  const before = net.clock.now();
  net.cut(D, E);
  const rounds = net.until(() => LINE.slice(0, 4).every((n) => net.t(n).route(E) === undefined));
  assert(rounds <= 4, `withdrawal took ${rounds} rounds`);
  assert(net.clock.now() - before < 10, "no wait for the 30 s announce or the 90 s expiry");
  assertEquals(net.t(A).nextHop(E), null);
  assertEquals(net.t(E).routes(), []);
  net.settle();
  assertEquals(net.t(A).route(D)?.cost, 3); // the rest of the line is untouched
  net.connect(D, E);
  const heal = net.until(() => net.t(A).route(E)?.cost === 4 && net.t(E).route(A)?.cost === 4);
  assert(heal <= 5, `heal took ${heal} rounds`);
});

Deno.test("convergence: a ring does not count to infinity beyond 16 and settles with no route", () => {
  // Ring A-B-C-D-A with a leaf X on C; then the leaf's link is cut.
  const [X] = ["X"].map(nid);
  const ids = [A, B, C, D, X];
  const net = new DvNet(ids);
  net.connect(A, B);
  net.connect(B, C);
  net.connect(C, D);
  net.connect(D, A);
  net.connect(C, X);
  net.settle();
  assertEquals([net.t(A).route(X)?.cost, net.t(B).route(X)?.cost], [3, 2]);
  const mark = net.log.length;
  net.cut(C, X);
  const rounds = net.until(() => [A, B, C, D].every((n) => net.t(n).route(X) === undefined), 30);
  assert(rounds <= 20, `took ${rounds} rounds`);
  // Every cost carried for X after the cut is a real hop count (< 16) or the infinity 16.
  const carried = net.log.slice(mark).map(([, , c]) => c.get(X)).filter((c) => c !== undefined);
  assert(carried.every((c) => c! >= 1 && c! <= 16), `costs ${carried}`);
  // And it stays gone through periodic announcements and expiry.
  for (let i = 0; i < 120; i++) net.round();
  assert([A, B, C, D].every((n) => net.t(n).route(X) === undefined));
});

Deno.test("convergence: with uneven link delays a lost destination still counts only to 16", () => {
  const X = nid("X");
  for (let seed = 1; seed <= 12; seed++) {
    const rand = prng(seed);
    const ring = ["q0", "q1", "q2", "q3", "q4"].map(nid);
    const net = new DvNet([...ring, X]);
    for (let i = 0; i < 5; i++) {
      net.connect(ring[i], ring[(i + 1) % 5]);
      net.delays.set(net.key(ring[i], ring[(i + 1) % 5]), Math.floor(rand() * 4));
    }
    net.connect(ring[0], X);
    net.settle(80);
    assertEquals(net.t(ring[2]).route(X)?.cost, 3);
    const mark = net.log.length;
    let worst = 0;
    net.cut(ring[0], X);
    const rounds = net.until(() => {
      for (const n of ring) worst = Math.max(worst, net.t(n).route(X)?.cost ?? 0);
      return ring.every((n) => net.t(n).route(X) === undefined);
    }, 120);
    const carried = net.log.slice(mark).map(([, , c]) => c.get(X)).filter((c) => c !== undefined);
    assert(carried.every((c) => c! >= 1 && c! <= 16), `seed ${seed}: costs ${carried}`);
    assert(worst <= 15, `seed ${seed}: a table held cost ${worst}`);
    assert(rounds <= 80, `seed ${seed}: ${rounds} rounds`);
    for (let i = 0; i < 100; i++) net.round();
    assert(ring.every((n) => net.t(n).route(X) === undefined), `seed ${seed}: route came back`);
  }
});

Deno.test("convergence: a ring re-routes around a cut within a few rounds", () => {
  const ids = ["r0", "r1", "r2", "r3", "r4", "r5"].map(nid);
  const net = new DvNet(ids);
  for (let i = 0; i < 6; i++) net.connect(ids[i], ids[(i + 1) % 6]);
  net.settle();
  assertEquals(net.t(ids[0]).route(ids[2])?.cost, 2);
  const before = net.clock.now();
  net.cut(ids[0], ids[1]);
  const rounds = net.until(() =>
    net.t(ids[0]).route(ids[1])?.cost === 5 && net.t(ids[0]).route(ids[2])?.cost === 4 &&
    net.t(ids[1]).route(ids[0])?.cost === 5
  );
  assert(rounds <= 6 && net.clock.now() - before < 10, `took ${rounds} rounds`);
  assertEquals(net.t(ids[0]).nextHop(ids[1]), ids[5]);
});

/** mulberry32: a small seeded PRNG for the topology. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("convergence: 100 nodes in a random mesh reach shortest-path routes", () => {
  const rand = prng(20250114);
  const ids = Array.from({ length: 100 }, (_, i) => nid(`n${i}`));
  const net = new DvNet(ids);
  const adj = new Map(ids.map((id) => [id, new Set<string>()]));
  const edge = (a: string, b: string) => {
    if (a === b || adj.get(a)!.has(b)) return false;
    adj.get(a)!.add(b);
    adj.get(b)!.add(a);
    net.connect(a, b);
    return true;
  };
  for (let i = 1; i < ids.length; i++) edge(ids[i], ids[Math.floor(rand() * i)]);
  let edges = ids.length - 1;
  while (edges < 175) {
    if (edge(ids[Math.floor(rand() * 100)], ids[Math.floor(rand() * 100)])) edges++;
  }
  const rounds = net.settle(60);
  for (const src of ids) {
    const dist = new Map([[src, 0]]);
    const queue = [src];
    while (queue.length) {
      const u = queue.shift()!;
      for (const v of adj.get(u)!) {
        if (!dist.has(v)) {
          dist.set(v, dist.get(u)! + 1);
          queue.push(v);
        }
      }
    }
    const t = net.t(src);
    for (const dst of ids) {
      if (dst === src) continue;
      assertEquals(t.route(dst)?.cost, dist.get(dst), `${src} → ${dst}`);
      const hop = t.nextHop(dst)!;
      assertEquals(dist.get(dst)! - 1, hop === dst ? 0 : net.t(hop).route(dst)!.cost);
    }
  }
  console.log(
    `    100 nodes / ${edges} links: converged in ${rounds} rounds ` +
      `(${rounds} s simulated), ${net.delivered} announcements`,
  );
});
