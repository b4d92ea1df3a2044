// Mesh routing over the in-memory network with a fake clock that only moves when the test says
// so: a line converges and a cut link is withdrawn end to end through triggered updates in a few
// simulated seconds (the periodic 30 s announcement never runs); messages for the cut-off node
// wait in the queue and are delivered once the link returns; routes.json / capabilities.json
// survive a restart.
import { assert, assertEquals } from "../support/assert.ts";
import { addrOf, nextEvent, startNode, until } from "../support/nodes.ts";
import { MemoryNetwork } from "../../daemon/transport/memory.ts";
import type { MeshNode } from "../../daemon/node.ts";
import { FakeClock } from "../../lib/clock.ts";
import { generateIdentity } from "../../lib/identity/keyfile.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Move the fake clock one second, run every node's mesh timer, let the frames flow. */
async function step(clock: FakeClock, nodes: MeshNode[]): Promise<void> {
  clock.advance(1);
  for (const n of nodes) n.mesh.tick();
  await sleep(40);
}

/** Steps (simulated seconds) until `cond` holds; throws after `max`. */
async function stepsUntil(
  clock: FakeClock,
  nodes: MeshNode[],
  cond: () => boolean,
  max: number,
  what: string,
): Promise<number> {
  await sleep(40);
  for (let i = 0; i <= max; i++) {
    if (cond()) return i;
    await step(clock, nodes);
  }
  throw new Error(`not within ${max} simulated seconds: ${what}`);
}

Deno.test("mesh routing: a cut link is withdrawn in seconds by triggered updates; queued messages go once it heals", async () => {
  const net = new MemoryNetwork();
  const clock = new FakeClock();
  const names = ["a", "b", "c", "d", "e"];
  const nodes: MeshNode[] = [];
  for (const n of names) {
    nodes.push(await startNode(n, { transport: net.transport(), clock }));
  }
  const [a, b, c, d, e] = nodes;
  try {
    for (let i = 1; i < nodes.length; i++) await nodes[i].connect(addrOf(nodes[i - 1]));
    const conv = await stepsUntil(
      clock,
      nodes,
      () => a.mesh.via(e.nodeId) !== null && e.mesh.via(a.nodeId) !== null,
      10,
      "the line to converge",
    );
    console.log(`  5-node line converged in ${conv} simulated s`);
    assert(conv < 10, "well before the 30 s periodic announcement");
    assertEquals(a.mesh.table.route(e.nodeId)?.cost, 4);
    assertEquals(e.mesh.table.route(a.nodeId)?.cost, 4);

    // Cut D–E: D withdraws E at once and the withdrawal travels back to A.
    d.peers.get(e.nodeId)!.close("cut");
    const gone = await stepsUntil(
      clock,
      nodes,
      () => a.mesh.table.route(e.nodeId) === undefined && a.mesh.via(e.nodeId) === null,
      8,
      "A to lose its route to E",
    );
    console.log(`  withdrawal reached A in ${gone} simulated s`);
    assert(gone <= 5, `withdrawn through 3 hops by triggered updates, took ${gone} s`);
    for (const n of [b, c]) assertEquals(n.mesh.table.route(e.nodeId), undefined);

    // A's messages for E wait in the queue.
    const s1 = await a.send(e.nodeId, enc("while cut 1"));
    const s2 = await a.send(e.nodeId, enc("while cut 2"));
    assertEquals([s1.status, s2.status], ["queued", "queued"]);
    assertEquals(a.store.queue.pendingCount(e.nodeId), 2);

    // Heal: E dials D again; the route comes back and the queue drains, in order, once each.
    const got: string[] = [];
    e.bus.subscribe((x) => {
      if (x.type === "message-in") got.push(dec(x.payload));
    });
    await e.connect(addrOf(d));
    const healed = await stepsUntil(
      clock,
      nodes,
      () => got.length === 2 && a.store.queue.pendingCount(e.nodeId) === 0,
      10,
      "the queued messages to arrive",
    );
    console.log(`  queued messages delivered ${healed} simulated s after the link returned`);
    assert(healed <= 6);
    assertEquals(got, ["while cut 1", "while cut 2"]);
    const log = await Deno.readTextFile(a.audit.path);
    assert(log.includes('"event":"ROUTE_WITHDRAWN"'));
    assert(log.includes('"event":"ROUTE_LEARNED"'));
  } finally {
    for (const n of nodes) await n.stop();
  }
});

Deno.test("mesh routing: a destination that only appears later gets its queued messages; mode passive does not relay", async () => {
  const net = new MemoryNetwork();
  const a = await startNode("a", { transport: net.transport() });
  const p = await startNode("p", { transport: net.transport(), mesh: { mode: "passive" } });
  const lateId = generateIdentity("late");
  let late: MeshNode | null = null;
  try {
    await p.connect(addrOf(a));
    // Queued for a node nobody has heard of yet.
    const s = await a.send(lateId.nodeId, enc("hello, newcomer"));
    assertEquals(s.status, "queued");
    late = await startNode("late", { transport: net.transport(), identity: lateId });
    await late.connect(addrOf(p));
    // A learns a route to `late` through the passive node, but P never relays: still queued.
    await until(() => a.mesh.table.route(lateId.nodeId) !== undefined, 5000, "A's route via P");
    await sleep(500);
    assertEquals(a.store.queue.pendingCount(lateId.nodeId), 1);
    assert((await auditOf(p)).includes('"event":"MESSAGE_RELAYED"') === false);
    // A direct link delivers it.
    const got = nextEvent(late, (x) => x.type === "message-in");
    await late.connect(addrOf(a));
    const ev = await got;
    assert(ev.type === "message-in" && dec(ev.payload) === "hello, newcomer");
  } finally {
    await late?.stop();
    await p.stop();
    await a.stop();
  }
});

async function auditOf(n: MeshNode): Promise<string> {
  await n.recordAudit("TEST_MARK", {});
  return await Deno.readTextFile(n.audit.path);
}

Deno.test("mesh routing: routes.json and capabilities.json are written and loaded at the next start", async () => {
  const net = new MemoryNetwork();
  const dir = await Deno.makeTempDir();
  const id = generateIdentity("keeper");
  let k = await startNode("keeper", {
    transport: net.transport(),
    stateDir: dir,
    identity: id,
    mesh: { capabilities: ["llm:chat", "fs:read"] },
  });
  const m = await startNode("middle", { transport: net.transport() });
  const f = await startNode("far", {
    transport: net.transport(),
    mesh: { capabilities: ["gpu:render"] },
  });
  try {
    await m.connect(addrOf(k));
    await f.connect(addrOf(m));
    await until(
      () =>
        k.mesh.table.route(f.nodeId)?.cost === 2 &&
        k.mesh.registry.remoteCapabilities(f.nodeId).includes("gpu:render"),
      10_000,
      "keeper's route and caps for far",
    );
    await k.stop();
    const routes = JSON.parse(await Deno.readTextFile(`${dir}/routes.json`));
    assert(typeof routes.hmac === "string" && routes.body.includes(f.nodeId));
    const caps = JSON.parse(await Deno.readTextFile(`${dir}/capabilities.json`));
    assert(caps.body.includes('"gpu:render"') && caps.body.includes('"llm:chat"'));
    // Restart without --capability: the persisted local set and the remote sets are back.
    k = await startNode("keeper", { transport: net.transport(), stateDir: dir, identity: id });
    assertEquals(k.mesh.registry.localCapabilities(), ["fs:read", "llm:chat"]);
    assertEquals(k.mesh.registry.remoteCapabilities(f.nodeId), ["gpu:render"]);
    assertEquals(k.mesh.table.route(f.nodeId)?.learnedFrom, m.nodeId);
  } finally {
    await k.stop();
    await f.stop();
    await m.stop();
  }
});
