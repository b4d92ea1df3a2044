// The mesh through real nodes on the virtual network (tests/support/vnet.ts), on one fake clock:
// what only the vnet transport does; ring and partial-mesh topologies
// converge to shortest paths; a cut link gives a new route within a bounded simulated time; a
// partition (a silent blackhole, found by the heartbeat) and its heal converge again and the
// messages queued meanwhile arrive once; 25% frame loss is survived by the outbox's re-sends,
// every message delivered exactly once; a forged route announcement that creates a forwarding
// loop is contained by the hop list and the TTL and counted out to infinity; a message that
// reaches a relay over two paths is relayed once and delivered once.
import { assert, assertEquals, assertRejects } from "../support/assert.ts";
import { until } from "../support/nodes.ts";
import { hopDistances, type LinkConditions, Sim, VirtualNetwork } from "../support/vnet.ts";
import type { MeshNode } from "../../daemon/node.ts";
import { type Conn, RecvTimeout } from "../../daemon/transport/transport.ts";
import { buildE2eMessage } from "../../lib/routing/e2e.ts";
import { ed25519PkToCurve25519 } from "../../lib/crypto/sodium.ts";
import { generateIdentity } from "../../lib/identity/keyfile.ts";
import { encodeRouteAnnounce } from "../../lib/routing/distance_vector.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Edge = readonly [string, string];

// -----------------------------------------------------------------------------------------------
// The vnet transport: what only it does (the shared expectations run in
// tests/daemon/transport/compliance_test.ts, with latency and jitter on).

Deno.test("vnet transport: latency, seeded loss of binary messages only, cuts and heals", async () => {
  const run = async (cond: LinkConditions) => {
    const net = new VirtualNetwork({ seed: 99, ...cond });
    const a = net.transport("a"), b = net.transport("b");
    let gotServer!: (c: Conn) => void;
    const serverConn = new Promise<Conn>((r) => gotServer = r);
    const l = await b.listen({ hostname: "127.0.0.1", port: 0, onConn: gotServer });
    const client = await a.dial(`127.0.0.1:${l.port}`);
    const server = await serverConn;
    const t0 = performance.now();
    client.send("handshake text");
    for (let i = 0; i < 1000; i++) client.send(new Uint8Array([i >> 8, i & 255]));
    client.send("last");
    const got: number[] = [];
    const texts: string[] = [];
    let first = -1;
    for (;;) {
      const m = await server.recv(2000);
      if (first < 0) first = performance.now() - t0;
      if (typeof m === "string") {
        texts.push(m);
        if (m === "last") break;
      } else if (m) got.push((m[0] << 8) | m[1]);
    }
    net.close();
    return { got, texts, first, stats: net.stats };
  };
  const lossy = await run({ loss: 0.25 });
  assertEquals(lossy.texts, ["handshake text", "last"], "text (handshake) messages never dropped");
  assert(lossy.got.every((v, i) => i === 0 || v > lossy.got[i - 1]), "survivors stay in order");
  assertEquals(lossy.stats.lost, 1000 - lossy.got.length);
  assert(lossy.got.length > 680 && lossy.got.length < 820, `kept ${lossy.got.length} of 1000`);
  const again = await run({ loss: 0.25 });
  assertEquals(again.got, lossy.got, "the same seed drops the same messages");
  const slow = await run({ latencyMs: 30 });
  assertEquals(slow.got.length, 1000);
  assert(slow.first >= 29, `first message after ${slow.first} ms`);

  // A reset cut closes live connections across it and refuses dials until healed; a blackhole
  // keeps them open and silently drops what crosses.
  const net = new VirtualNetwork();
  try {
    const a = net.transport("a"), b = net.transport("b");
    let server!: Conn;
    const l = await b.listen({ hostname: "127.0.0.1", port: 0, onConn: (c) => server = c });
    const c1 = await a.dial(`127.0.0.1:${l.port}`);
    await sleep(1);
    net.cut("a", "b");
    assertEquals(await c1.closed, "connection reset (vnet cut)");
    assertEquals(await server.recv(100), null);
    await assertRejects(() => a.dial(`127.0.0.1:${l.port}`));
    net.heal("a", "b");
    const c2 = await a.dial(`127.0.0.1:${l.port}`);
    await sleep(1);
    net.cut("a", "b", "blackhole");
    c2.send(new Uint8Array([1]));
    c2.send("text too");
    await assertRejects(() => server.recv(50), RecvTimeout);
    net.healPartition();
    c2.send(new Uint8Array([2]));
    assertEquals(await server.recv(500), new Uint8Array([2]));
    assertEquals(net.stats.blackholed, 2);
    assertEquals(net.stats.resets, 1);
  } finally {
    net.close();
  }
});

// -----------------------------------------------------------------------------------------------
// Helpers over a Sim

/** Hop distances between named nodes over `edges`. */
function distances(names: readonly string[], edges: readonly Edge[]): Map<string, number> {
  const ix = new Map(names.map((n, i) => [n, i]));
  const d = hopDistances(names.length, edges.map(([a, b]) => [ix.get(a)!, ix.get(b)!]));
  const out = new Map<string, number>();
  for (const a of names) for (const b of names) out.set(`${a}>${b}`, d[ix.get(a)!][ix.get(b)!]);
  return out;
}

/** Pairs whose route is not the shortest path over `edges` (or has no key to seal with). */
function wrongRoutes(sim: Sim, names: readonly string[], edges: readonly Edge[]): string[] {
  const d = distances(names, edges);
  const bad: string[] = [];
  for (const a of names) {
    for (const b of names) {
      if (a === b) continue;
      const want = d.get(`${a}>${b}`)!;
      const r = sim.node(a).mesh.reach(sim.node(b).nodeId);
      const hops = r?.hops ?? Infinity;
      if (hops !== want || (want !== Infinity && !sim.node(a).mesh.keysOf(sim.node(b).nodeId))) {
        bad.push(`${a}>${b}: ${hops} (want ${want})`);
      }
    }
  }
  return bad;
}

/** Records every delivery (`message-in`) on every node: msgId → [receiver, sender, text][]. */
function deliveries(sim: Sim): Map<string, [string, string, string][]> {
  const got = new Map<string, [string, string, string][]>();
  const byId = new Map(sim.nodes.map((n) => [n.nodeId, n.name]));
  for (const n of sim.nodes) {
    n.bus.subscribe((e) => {
      if (e.type !== "message-in") return;
      const l = got.get(e.msgId) ?? [];
      l.push([n.name, byId.get(e.from) ?? e.from, dec(e.payload)]);
      got.set(e.msgId, l);
    });
  }
  return got;
}

/** Every sent message arrived exactly once, at its destination, from its sender, intact. */
function assertExactlyOnce(
  got: Map<string, [string, string, string][]>,
  sent: Map<string, [string, string, string]>,
): void {
  for (const [id, want] of sent) {
    assertEquals(got.get(id), [want], `message ${id} (${want[1]} → ${want[0]})`);
  }
  for (const id of got.keys()) assert(sent.has(id), `unexpected delivery ${id}`);
}

/** Send `text` from `a` to `b`, remembering it in `sent`. */
async function send(
  sim: Sim,
  sent: Map<string, [string, string, string]>,
  a: string,
  b: string,
  text = `${a} to ${b}`,
): Promise<string> {
  const s = await sim.node(a).send(sim.node(b).nodeId, enc(text));
  sent.set(s.msgId, [b, a, text]);
  return s.msgId;
}

function queued(sim: Sim): number {
  let n = 0;
  for (const node of sim.nodes) for (const c of node.store.queue.pendingCounts().values()) n += c;
  return n;
}

/** Audit events named `event` in a node's log. */
async function audited(n: MeshNode, event: string): Promise<Record<string, unknown>[]> {
  await n.recordAudit("TEST_MARK", {});
  const text = await Deno.readTextFile(n.audit.path);
  return text.split("\n").filter((l) => l.includes(`"event":"${event}"`)).map((l) =>
    JSON.parse(l).details as Record<string, unknown>
  );
}

// -----------------------------------------------------------------------------------------------
// Topologies

Deno.test("mesh topology: a ring of 6 converges to shortest paths; a cut link reroutes the long way within 8 simulated s", async () => {
  const names = ["r0", "r1", "r2", "r3", "r4", "r5"];
  const ring: Edge[] = names.map((n, i) => [n, names[(i + 1) % names.length]]);
  const sim = await Sim.start(names, { latencyMs: 1 });
  try {
    await sim.link(ring);
    const conv = await sim.stepsUntil(
      () => wrongRoutes(sim, names, ring).length === 0,
      10,
      "the ring to converge",
    );
    console.log(`  ring of 6 converged in ${conv} simulated s`);
    assertEquals(sim.node("r0").mesh.reach(sim.node("r3").nodeId)?.hops, 3);

    // Every ordered pair exchanges a message: 30 messages, each delivered once.
    const got = deliveries(sim);
    const sent = new Map<string, [string, string, string]>();
    for (const a of names) for (const b of names) if (a !== b) await send(sim, sent, a, b);
    await sim.stepsUntil(() => got.size === sent.size && queued(sim) === 0, 10, "30 deliveries");
    assertExactlyOnce(got, sent);

    // Cut r0–r1: r0 now reaches r1 the long way (5 hops through r5), and r1 reaches r0 likewise.
    const r0 = sim.node("r0"), r1 = sim.node("r1"), r2 = sim.node("r2");
    assertEquals(r0.mesh.reach(r2.nodeId), { hops: 2, via: r1.nodeId });
    sim.net.cut("r0", "r1");
    const cutRing = ring.filter(([a, b]) => !(a === "r0" && b === "r1"));
    const rerouted = await sim.stepsUntil(
      () => wrongRoutes(sim, names, cutRing).length === 0,
      8,
      "every route around the cut",
    );
    console.log(`  after cutting r0–r1, every route went the other way in ${rerouted} simulated s`);
    assertEquals(r0.mesh.reach(r1.nodeId), { hops: 5, via: sim.node("r5").nodeId });
    assertEquals(r0.mesh.reach(r2.nodeId), { hops: 4, via: sim.node("r5").nodeId });
    // And traffic follows: r0 → r2 crosses r5, r4, r3.
    const before = (await audited(sim.node("r4"), "MESSAGE_RELAYED")).length;
    const id = await send(sim, sent, "r0", "r2", "the long way round");
    const id2 = await send(sim, sent, "r1", "r0", "and back");
    await sim.stepsUntil(() => got.has(id) && got.has(id2) && queued(sim) === 0, 5, "delivery");
    assertExactlyOnce(got, sent);
    const relayed = (await audited(sim.node("r4"), "MESSAGE_RELAYED")).slice(before);
    assert(relayed.some((e) => e.msg_id === id), "r4 relayed r0's message");
    assert(relayed.some((e) => e.msg_id === id2), "r4 relayed r1's message");
  } finally {
    await sim.stop();
  }
});

Deno.test("mesh topology: a 3×3 grid converges; a cut on the path reroutes within 8 simulated s; an isolated node is counted out, then heals", async () => {
  // g00 g01 g02
  // g10 g11 g12
  // g20 g21 g22
  const names: string[] = [];
  const grid: Edge[] = [];
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 3; c++) {
      names.push(`g${r}${c}`);
      if (c > 0) grid.push([`g${r}${c - 1}`, `g${r}${c}`]);
      if (r > 0) grid.push([`g${r - 1}${c}`, `g${r}${c}`]);
    }
  }
  const sim = await Sim.start(names, { latencyMs: 1, jitterMs: 2 });
  try {
    await sim.link(grid);
    const conv = await sim.stepsUntil(
      () => wrongRoutes(sim, names, grid).length === 0,
      10,
      "the grid to converge",
    );
    console.log(`  3×3 grid converged in ${conv} simulated s`);
    const a = sim.node("g00"), z = sim.node("g22");
    assertEquals(a.mesh.reach(z.nodeId)?.hops, 4);
    const got = deliveries(sim);
    const sent = new Map<string, [string, string, string]>();

    // Cut the first link of g00's path to g22: the other one takes over, same length.
    const first = sim.nodes.find((n) => n.nodeId === a.mesh.reach(z.nodeId)!.via)!.name;
    const other = first === "g01" ? "g10" : "g01";
    sim.net.cut("g00", first);
    let edges = grid.filter(([x, y]) => !(x === "g00" && y === first));
    const took = await sim.stepsUntil(
      () => wrongRoutes(sim, names, edges).length === 0,
      8,
      `routes after cutting g00–${first}`,
    );
    console.log(`  cut g00–${first}: every route recomputed in ${took} simulated s`);
    assertEquals(a.mesh.reach(z.nodeId), { hops: 4, via: sim.node(other).nodeId });
    const id = await send(sim, sent, "g00", "g22", "corner to corner");
    await sim.stepsUntil(() => got.has(id) && queued(sim) === 0, 5, "the corner message");

    // Cut the other one: g00 is isolated. The grid's cycles let stale routes to it circulate
    // (distance vector's count to infinity) until they reach cost 16; triggered updates bound it.
    sim.net.cut("g00", other);
    edges = edges.filter(([x, y]) => !(x === "g00" && y === other));
    const gone = await sim.stepsUntil(
      () => sim.nodes.every((n) => n === a || n.mesh.reach(a.nodeId) === null),
      30,
      "every route to the isolated g00 to go",
    );
    console.log(`  g00 isolated: every route to it gone in ${gone} simulated s`);
    assertEquals(wrongRoutes(sim, names, edges), []);
    const late = await send(sim, sent, "g22", "g00", "after the heal");
    await sim.step();
    assert(!got.has(late));

    // Heal one link: g00's reconnect loop dials again (on its backoff, 5 s doubling per failed
    // attempt), routes return, the queue drains.
    sim.net.heal("g00", "g01");
    edges = [...edges, ["g00", "g01"]];
    const redial = await sim.stepsUntil(() => sim.linked("g00", "g01"), 45, "g00 to re-dial");
    const healed = await sim.stepsUntil(
      () => wrongRoutes(sim, names, edges).length === 0 && got.has(late) && queued(sim) === 0,
      5,
      "the heal",
    );
    console.log(
      `  healed g00–g01: re-dialed after ${redial} simulated s (backoff), converged and ` +
        `delivered ${healed} s later`,
    );
    assertExactlyOnce(got, sent);
  } finally {
    await sim.stop();
  }
});

Deno.test("mesh topology: a partition (silent, found by the heartbeat) withdraws every route across; the heal converges and delivers what waited, once", async () => {
  // Two rings of four joined by two bridges: L0–R0 and L2–R2.
  const left = ["l0", "l1", "l2", "l3"], right = ["k0", "k1", "k2", "k3"];
  const names = [...left, ...right];
  const ring = (g: string[]): Edge[] => g.map((n, i) => [n, g[(i + 1) % g.length]]);
  const bridges: Edge[] = [["l0", "k0"], ["l2", "k2"]];
  const all = [...ring(left), ...ring(right), ...bridges];
  const sim = await Sim.start(names, {
    latencyMs: 1,
    // A silent link is dropped after 3 heartbeats without a frame (real time: 3 × 250 ms);
    // a dial into the blackhole gives up after 300 ms.
    node: () => ({ heartbeatS: 0.25, dial: { timeoutMs: 300 } }),
  });
  try {
    await sim.link(all);
    await sim.stepsUntil(() => wrongRoutes(sim, names, all).length === 0, 10, "convergence");
    const got = deliveries(sim);
    const sent = new Map<string, [string, string, string]>();

    sim.net.partition(left, right, "blackhole");
    const t0 = Date.now();
    await until(
      () => !sim.linked("l0", "k0") && !sim.linked("l2", "k2"),
      5000,
      "the heartbeat to drop the bridges",
    );
    const detectMs = Date.now() - t0;
    const split = [...ring(left), ...ring(right)];
    const withdrawn = await sim.stepsUntil(
      () => wrongRoutes(sim, names, split).length === 0,
      30,
      "every route across the partition to go",
    );
    console.log(
      `  partition: heartbeat dropped the bridges after ${detectMs} ms (real), every route ` +
        `across withdrawn ${withdrawn} simulated s later`,
    );
    // Messages across wait in the queues, on both sides.
    for (const [a, b] of [["l1", "k3"], ["k1", "l3"], ["l0", "k2"]]) {
      await send(sim, sent, a, b, `${a} to ${b} across the partition`);
    }
    await sim.step();
    assertEquals(got.size, 0);
    assertEquals(queued(sim), 3);
    // Lost destinations stay lost for 2 × the route TTL: partition suspected (audited).
    for (let i = 0; i < 22; i++) await sim.step(10);
    const suspected = await audited(sim.node("l1"), "MESH_PARTITION_SUSPECTED");
    const kIds = new Set(right.map((n) => sim.node(n).nodeId));
    assert(suspected.some((e) => kIds.has(e.destination as string)), "partition suspected");

    // Heal: the dialers re-dial on their backoff, routes converge, the queues drain, once each.
    sim.net.healPartition();
    const redial = await sim.stepsUntil(
      () => sim.linked("l0", "k0") && sim.linked("l2", "k2"),
      400,
      "the bridges to come back",
    );
    const healed = await sim.stepsUntil(
      () => wrongRoutes(sim, names, all).length === 0 && got.size === 3 && queued(sim) === 0,
      10,
      "convergence and delivery after the heal",
    );
    console.log(
      `  heal: bridges re-dialed within ${redial} simulated s (backoff), converged and ` +
        `delivered ${healed} s later`,
    );
    assertExactlyOnce(got, sent);
  } finally {
    await sim.stop();
  }
});

Deno.test("mesh topology: 25% frame loss — the outbox re-sends until every message is delivered exactly once", async () => {
  // A line a–b–c: a↔c through b (sealed end to end, relayed), a↔b direct.
  const names = ["a", "b", "c"];
  const line: Edge[] = [["a", "b"], ["b", "c"]];
  const sim = await Sim.start(names, { latencyMs: 1, seed: 2024 });
  try {
    await sim.link(line);
    await sim.stepsUntil(
      () =>
        wrongRoutes(sim, names, line).length === 0 &&
        sim.node("a").mesh.acking(sim.node("c").nodeId) === true &&
        sim.node("c").mesh.acking(sim.node("a").nodeId) === true,
      10,
      "convergence (and each end knowing the other acknowledges)",
    );
    // Loss from now on: one frame in four never arrives, whatever it carries (messages,
    // ACKs, route and capability announcements).
    sim.net.setDefaults({ loss: 0.25 });
    const lostBefore = sim.net.stats.lost;
    const got = deliveries(sim);
    const sent = new Map<string, [string, string, string]>();
    for (let i = 0; i < 20; i++) {
      await send(sim, sent, "a", "c", `a to c #${i}`);
      await send(sim, sent, "c", "a", `c to a #${i}`);
      await send(sim, sent, "a", "b", `a to b #${i}`);
      await send(sim, sent, "b", "a", `b to a #${i}`);
    }
    const steps = await sim.stepsUntil(
      () => queued(sim) === 0,
      300,
      "every message acknowledged",
    );
    const lost = sim.net.stats.lost - lostBefore;
    console.log(
      `  80 messages under 25% loss: all acknowledged after ${steps} simulated s; ` +
        `${lost} frames lost`,
    );
    assert(lost > 20, `the loss model dropped ${lost} frames`);
    assertExactlyOnce(got, sent);
    // Nothing more arrives later (no late duplicate).
    sim.net.setDefaults({ loss: 0 });
    for (let i = 0; i < 12; i++) await sim.step();
    assertExactlyOnce(got, sent);
  } finally {
    await sim.stop();
  }
});

Deno.test("mesh topology: a forged ROUTE_ANNOUNCE that makes a forwarding loop is contained by the hop list and TTL, and counted out", async () => {
  const names = ["a", "b", "c"];
  const tri: Edge[] = [["a", "b"], ["b", "c"], ["c", "a"]];
  const sim = await Sim.start(names, { latencyMs: 1 });
  try {
    await sim.link(tri);
    await sim.stepsUntil(() => wrongRoutes(sim, names, tri).length === 0, 10, "convergence");
    for (let i = 0; i < 2; i++) await sim.step(); // every neighbour may get a triggered update now
    const [a, b, c] = names.map((n) => sim.node(n));
    const z = generateIdentity("nowhere").nodeId;

    // A's link to B carries a forged announcement: "Z is my neighbour". B believes it, tells C,
    // C tells A, A tells B: a loop a → c → b → a with costs rising by one per turn.
    const forged = encodeRouteAnnounce({
      origin: a.nodeId,
      routes: [{ destination: a.nodeId, cost: 0 }, { destination: z, cost: 1 }],
      sequenceNumber: a.mesh.table.sequenceNumber + 1,
    });
    a.peers.get(b.nodeId)!.send({
      type: "ROUTE_ANNOUNCE",
      payload: forged,
      destination: b.nodeId,
      ttl: 3,
      priority: "NORMAL",
    });
    await sim.settle();
    const hop = (n: MeshNode) => n.mesh.table.nextHop(z);
    assertEquals([hop(a), hop(c), hop(b)], [c.nodeId, b.nodeId, a.nodeId], "the loop is there");

    // A frame for Z enters the loop at A: C relays it to B; B will not send it back to its
    // source (nor to a node already on its path): NO_ROUTE, and A hears ROUTE_UNREACHABLE.
    const frame = buildE2eMessage({
      destination: z,
      payload: enc("into the loop"),
      recipient: new Uint8Array(32).fill(5),
    });
    a.peers.get(c.nodeId)!.send(frame);
    await sim.settle();
    const relays = (await Promise.all([a, b, c].map((n) => audited(n, "MESSAGE_RELAYED"))))
      .flat().filter((e) => e.msg_id === frame.msgId);
    assertEquals(relays.length, 1, "relayed once (by C), then stopped");
    assert((await audited(b, "NO_ROUTE")).some((e) => e.msg_id === frame.msgId));
    assert(
      (await audited(a, "ROUTE_UNREACHABLE")).some((e) => e.original_msg_id === frame.msgId),
      "A is told",
    );
    // The two guards behind it: a frame whose hop list holds the relay is a loop; a spent TTL ends.
    const looped = buildE2eMessage({
      destination: z,
      payload: enc("x"),
      recipient: new Uint8Array(32).fill(5),
    });
    a.peers.get(c.nodeId)!.send({ ...looped, hops: [c.nodeId] });
    const spent = buildE2eMessage({
      destination: z,
      payload: enc("y"),
      recipient: new Uint8Array(32).fill(5),
      ttl: 0,
    });
    a.peers.get(c.nodeId)!.send(spent);
    await sim.settle();
    assert((await audited(c, "ROUTE_LOOP")).some((e) => e.msg_id === looped.msgId));
    assert((await audited(c, "TTL_EXPIRED")).some((e) => e.msg_id === spent.msgId));

    // The control plane counts the bogus route up to infinity (16) and withdraws it everywhere.
    const gone = await sim.stepsUntil(
      () => [a, b, c].every((n) => n.mesh.table.route(z) === undefined),
      30,
      "the forged route to be counted out",
    );
    console.log(`  forged route counted to infinity and withdrawn in ${gone} simulated s`);
    // And the real routes are intact.
    assertEquals(wrongRoutes(sim, names, tri), []);
  } finally {
    await sim.stop();
  }
});

Deno.test("mesh topology: one message over two paths is relayed once where they meet and delivered once", async () => {
  //      b
  //    /   \
  //  a       r — d
  //    \   /
  //      c
  const names = ["a", "b", "c", "r", "d"];
  const edges: Edge[] = [["a", "b"], ["a", "c"], ["b", "r"], ["c", "r"], ["r", "d"]];
  const sim = await Sim.start(names, { latencyMs: 1, jitterMs: 3 });
  try {
    await sim.link(edges);
    await sim.stepsUntil(() => wrongRoutes(sim, names, edges).length === 0, 10, "convergence");
    const [a, b, c, r, d] = names.map((n) => sim.node(n));
    const got = deliveries(sim);
    const keys = a.mesh.keysOf(d.nodeId)!;
    const frame = buildE2eMessage({
      destination: d.nodeId,
      payload: enc("one message, two paths"),
      recipient: keys.x25519 ?? ed25519PkToCurve25519(keys.ed25519),
    });
    const id = frame.msgId!;
    // The same sealed message (same msg_id, same originator) leaves through both b and c.
    a.peers.get(b.nodeId)!.send(frame);
    a.peers.get(c.nodeId)!.send(frame);
    await sim.stepsUntil(() => got.has(id), 5, "the delivery");
    await sim.step();
    assertEquals(got.get(id), [["d", "a", "one message, two paths"]]);
    const atR = (await audited(r, "MESSAGE_RELAYED")).filter((e) => e.msg_id === id);
    assertEquals(atR.length, 1, "r relays the first copy only");
    assert(
      (await audited(r, "DUPLICATE_DROPPED")).some((e) => e.msg_id === id),
      "r drops the second copy",
    );
    // A re-send (retries 1) passes the relays again, over both paths; d's history still holds
    // it once and nothing is delivered twice.
    a.peers.get(b.nodeId)!.send({ ...frame, retries: 1 });
    a.peers.get(c.nodeId)!.send({ ...frame, retries: 1 });
    for (let i = 0; i < 3; i++) await sim.step();
    assertEquals(got.get(id)!.length, 1);
    assertEquals(
      (await audited(r, "MESSAGE_RELAYED")).filter((e) => e.msg_id === id).length,
      2,
      "the re-send is relayed once more",
    );
    assertEquals(
      d.store.history.query({ limit: 10 }).filter((m) => m.msgId === id).length,
      1,
    );
  } finally {
    await sim.stop();
  }
});
