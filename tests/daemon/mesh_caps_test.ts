// Capabilities and revocation across the mesh (in-memory network): find and send_to_capability
// with every strategy over three hops, the trust binding of a changed set, and a signed
// revocation that reaches every node (each applies it once) while replayed and stale copies
// are refused.
import { assert, assertEquals, assertRejects } from "../support/assert.ts";
import { addrOf, startNode, until } from "../support/nodes.ts";
import { MemoryNetwork } from "../../daemon/transport/memory.ts";
import type { MeshNode, NodeOptions } from "../../daemon/node.ts";
import type { NodeEvent } from "../../daemon/events.ts";
import { toB64 } from "../../lib/crypto/sodium.ts";
import { generateIdentity } from "../../lib/identity/keyfile.ts";
import { nodeSigner } from "../../lib/wire/v09/frame.ts";
import { revocationMessage } from "../../lib/wire/v09/control.ts";
import { IronMeshError } from "../../lib/errors.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startAll(
  net: MemoryNetwork,
  specs: [string, Partial<NodeOptions>?][],
): Promise<MeshNode[]> {
  const out: MeshNode[] = [];
  for (const [name, o] of specs) {
    out.push(await startNode(name, { transport: net.transport(), ...o }));
  }
  return out;
}

function inbox(n: MeshNode): string[] {
  const got: string[] = [];
  n.bus.subscribe((e) => {
    if (e.type === "message-in") got.push(dec(e.payload));
  });
  return got;
}

Deno.test("mesh caps: find and send_to_capability first|random|all across three hops; a changed set is demoted", async () => {
  const net = new MemoryNetwork();
  const nodes = await startAll(net, [
    ["a"],
    ["b"],
    ["c", { mesh: { capabilities: ["llm:chat"] } }],
    ["d", { mesh: { capabilities: ["llm:code", "db:sql"] } }],
  ]);
  const [a, b, c, d] = nodes;
  try {
    await b.connect(addrOf(a));
    await c.connect(addrOf(b));
    await d.connect(addrOf(c));
    await until(
      () => a.mesh.findCapabilities("llm:*").filter((r) => r.reachable).length === 2,
      10_000,
      "A to see both llm nodes as reachable",
    );
    const rows = a.mesh.findCapabilities("llm:*");
    assertEquals(
      rows.map((r) => [r.capability, r.node_id, r.hops]).sort(),
      [
        ["llm:chat", c.nodeId, 2],
        ["llm:code", d.nodeId, 3],
      ].sort(),
    );
    assertEquals(a.mesh.findCapabilities("db:?ql").map((r) => r.node_id), [d.nodeId]);
    assertEquals(a.mesh.findCapabilities("[!l]*:*").map((r) => r.capability), ["db:sql"]);
    assertEquals(a.mesh.findCapabilities("gpu:*"), []);

    const atC = inbox(c), atD = inbox(d);
    // first → the nearest (2 hops).
    assertEquals(a.mesh.selectCapability("llm:*", "first"), [c.nodeId]);
    const first = await a.mesh.sendToCapability("llm:*", enc("first"), "first");
    assertEquals(first.map((s) => s.to), [c.nodeId]);
    // all → both.
    const all = await a.mesh.sendToCapability("llm:*", enc("all"), "all");
    assertEquals(all.map((s) => s.to).sort(), [c.nodeId, d.nodeId].sort());
    // random → one of them each time; both come up.
    const picked = new Set<string>();
    for (let i = 0; i < 40 && picked.size < 2; i++) {
      picked.add(a.mesh.selectCapability("llm:*", "random")[0]);
    }
    assertEquals([...picked].sort(), [c.nodeId, d.nodeId].sort());
    const r = await a.mesh.sendToCapability("llm:*", enc("random"), "random");
    assertEquals(r.length, 1);
    await until(
      () => atC.length + atD.length === 4,
      10_000,
      "the capability messages to arrive",
    );
    assertEquals(atC.filter((x) => x === "first").length, 1);
    assertEquals(atD.includes("first"), false);
    assert(atC.includes("all") && atD.includes("all"));
    await assertRejects(
      () => a.mesh.sendToCapability("gpu:*", enc("x"), "first"),
      IronMeshError,
      "no known node offers",
    );

    // The trust binding: B pins C directly; C's first set is the baseline, a changed set demotes.
    await until(
      () => b.trust.getPeer(c.nodeId)?.capabilityHash !== undefined,
      5000,
      "B's baseline of C",
    );
    assertEquals(b.trust.trustState(c.nodeId), "trusted");
    c.mesh.setLocalCapabilities(["llm:chat", "shell:exec"]);
    await until(
      () => b.trust.trustState(c.nodeId) === "pending-cap-change",
      5000,
      "B to demote C",
    );
    await until(
      () => a.mesh.registry.remoteCapabilities(c.nodeId).includes("shell:exec"),
      5000,
      "A to learn C's new set through B",
    );
    await sleep(100);
    await b.recordAudit("TEST_MARK", {});
    const log = await Deno.readTextFile(b.audit.path);
    assert(log.includes('"event":"PEER_CAP_BASELINE"'));
    assert(log.includes('"event":"PEER_CAP_SET_CHANGED"'));
  } finally {
    for (const n of nodes) await n.stop();
  }
});

Deno.test("mesh revocation: a broadcast from A reaches every node once; replayed and stale copies are refused", async () => {
  const net = new MemoryNetwork();
  const nodes = await startAll(net, [["a"], ["b"], ["c"], ["d"], ["e"]]);
  const [a, b, c, d, e] = nodes;
  const target = generateIdentity("mallory");
  const applied = new Map<string, number>();
  const refused: NodeEvent[] = [];
  for (const n of nodes) {
    n.bus.subscribe((ev) => {
      if (
        ev.type === "trust-change" && ev.nodeId === target.nodeId &&
        ev.details.reason === "revocation"
      ) applied.set(n.name, (applied.get(n.name) ?? 0) + 1);
      if (ev.type === "security" && ev.event === "REVOCATION_REFUSED") refused.push(ev);
    });
  }
  try {
    // A triangle A–B–C (copies reach B and C twice) and a tail C–D–E.
    await b.connect(addrOf(a));
    await c.connect(addrOf(b));
    await c.connect(addrOf(a));
    await d.connect(addrOf(c));
    await e.connect(addrOf(d));
    // D and E never met A: they pin its key (an operator's decision), so they accept it as revoker.
    for (const n of [d, e]) await n.trust.pin(a.nodeId, toB64(a.identity.publicKey));
    await until(() => e.mesh.via(a.nodeId) !== null, 10_000, "the mesh to converge");

    const sent = await a.mesh.revokeAndBroadcast(target.nodeId, "key stolen");
    assertEquals(sent, 2);
    assert(a.trust.isRevoked(target.nodeId));
    await until(
      () => [b, c, d, e].every((n) => n.trust.isRevoked(target.nodeId)),
      5000,
      "every node to record the revocation",
    );
    await sleep(300); // let every duplicate copy arrive
    assertEquals(Object.fromEntries(applied), { b: 1, c: 1, d: 1, e: 1 });
    assertEquals(e.trust.revocation(target.nodeId)?.revoker, a.nodeId);
    assertEquals(refused, [], "duplicates are dropped silently, nothing refused");

    // Replay: E's operator clears the revocation; the same signed message arrives again.
    const ts = Math.trunc(e.trust.revocation(target.nodeId)!.timestamp);
    await e.trust.clearRevocation(target.nodeId);
    // Ed25519 is deterministic: the same (target, revoker, timestamp) gives the same bytes.
    const replay = revocationMessage(
      nodeSigner(a.identity.secretKey),
      a.nodeId,
      target.nodeId,
      ts,
      "key stolen",
    );
    d.peers.get(e.nodeId)!.send(replay);
    await sleep(300);
    assertEquals(e.trust.isRevoked(target.nodeId), false, "a replay is not applied again");
    assertEquals(applied.get("e"), 1);

    // Stale: a revocation signed by A 400 s ago is refused (and audited) by B.
    const other = generateIdentity("eve");
    const stale = revocationMessage(
      nodeSigner(a.identity.secretKey),
      a.nodeId,
      other.nodeId,
      Math.trunc(Date.now() / 1000) - 400,
      "old news",
    );
    a.peers.get(b.nodeId)!.send(stale);
    await until(() => refused.length > 0, 5000, "B to refuse the stale revocation");
    const ev = refused[0];
    assert(ev.type === "security");
    assertEquals(ev.details.reason, "stale");
    assertEquals(ev.details.target_node_id, other.nodeId);
    assertEquals(b.trust.isRevoked(other.nodeId), false);
    await b.recordAudit("TEST_MARK", {});
    await a.recordAudit("TEST_MARK", {});
    const log = await Deno.readTextFile(b.audit.path);
    assert(log.includes('"event":"REVOCATION_REFUSED"'));
    const aLog = await Deno.readTextFile(a.audit.path);
    assert(aLog.includes('"event":"REVOCATION_BROADCAST"'));
  } finally {
    for (const n of nodes) await n.stop();
  }
});
