// `/ws` on in-process nodes over the in-memory network: the snapshot and live pushes, and the
// reference's actions — send (to a peer or a capability), history, pending-trust promote and
// block (held messages released or dropped), capability-change accept and reject, session
// rotation, the mesh-only revocation broadcast — plus refusals of bad input.
import { assert, assertEquals, assertStringIncludes } from "../../support/assert.ts";
import { addrOf, nextEvent, startNode, until } from "../../support/nodes.ts";
import { DashWs, obj, startDashboard } from "../../support/dashboard.ts";
import { MemoryNetwork } from "../../../daemon/transport/memory.ts";
import { MESH_DISABLED_MESSAGE } from "../../../daemon/dashboard/actions.ts";
import { directMeshView, type MeshNode } from "../../../daemon/node.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function stopAll(...nodes: MeshNode[]) {
  for (const n of nodes) await n.stop();
}

Deno.test("ws: snapshot on connect, live peer and message pushes, periodic state, GUI_ACCESS audited", async () => {
  const net = new MemoryNetwork();
  const hub = await startNode("hub", { transport: net.transport() });
  const bob = await startNode("bob", { transport: net.transport() });
  const d = await startDashboard(hub);
  const ws = await DashWs.open(d);
  try {
    const snap = obj((await ws.next((m) => m.type === "snapshot")).data);
    assertEquals(snap.node_id, hub.nodeId);
    assertEquals(snap.peers, []);
    await bob.connect(addrOf(hub));
    const pe = await ws.next((m) => m.type === "peer_event");
    assertEquals(pe.event, "connected");
    assertEquals(pe.peer_id, bob.nodeId);
    assertEquals(pe.name, "bob");
    await bob.send(hub.nodeId, enc("hello hub"));
    const me = await ws.next((m) => m.type === "message_event" && m.direction === "in");
    assertEquals(me.payload, "hello hub");
    assertEquals(me.peer_id, bob.nodeId);
    assertEquals(me.msg_type, "MSG");
    assertEquals(me.disposition, "delivered");
    const su = obj((await ws.next((m) => m.type === "state_update")).data);
    assertEquals((su.peers as Record<string, unknown>[])[0].node_id, bob.nodeId);
    assertEquals(obj(su.cards).messages_received, 1);
    // The connection was audited (GUI_ACCESS), and the entry reached the live audit tail.
    const au = await ws.next((m) =>
      m.type === "audit_event" && obj(m.entry).event === "GUI_ACCESS"
    );
    assertEquals(obj(obj(au.entry).details).path, "/ws");
    await bob.stop();
    const down = await ws.next((m) => m.type === "peer_event" && m.event === "disconnected");
    assertEquals(down.peer_id, bob.nodeId);
    // ?token= works too (the reference's way).
    const q = await DashWs.open(d, { query: true });
    await q.next((m) => m.type === "snapshot");
    await q.close();
  } finally {
    await ws.close();
    await d.close();
    await stopAll(hub);
  }
});

Deno.test("ws: send_message reaches the peer (by name, id or capability); get_history lists both ways", async () => {
  const net = new MemoryNetwork();
  const hub = await startNode("hub", { transport: net.transport() });
  const bob = await startNode("bob", { transport: net.transport() });
  const d = await startDashboard(hub);
  const ws = await DashWs.open(d);
  try {
    await bob.connect(addrOf(hub));
    await until(() => hub.peers.get(bob.nodeId) !== undefined, 2000, "link");
    const got = nextEvent(bob, (e) => e.type === "message-in");
    const ack = await ws.request({ action: "send_message", to_node: "bob", payload: "hi bob" });
    assertEquals(ack.type, "send_ack");
    assertEquals(ack.to, bob.nodeId);
    assertEquals(ack.to_name, "bob");
    const ev = await got;
    assert(ev.type === "message-in");
    assertEquals(dec(ev.payload), "hi bob");
    assertEquals(ev.msgId, ack.msg_id);
    const delivered = await ws.next((m) => m.type === "delivered" && m.msg_id === ack.msg_id);
    assertEquals(delivered.peer_id, bob.nodeId);
    const out = await ws.next((m) => m.type === "message_event" && m.direction === "out");
    assertEquals(out.payload, "hi bob", "outbound feed items carry the text");

    const req = await ws.request({
      action: "send_message",
      to_node: bob.nodeId.slice(0, 10),
      msg_type: "REQ",
      priority: "HIGH",
      payload: "a request",
    });
    assertEquals(req.type, "send_ack");
    await bob.send(hub.nodeId, enc("reply"));
    await nextEvent(hub, (e) => e.type === "message-in");
    const h = await ws.request({ action: "get_history", peer_id: "bob", limit: 10 });
    assertEquals(h.type, "history");
    const msgs = h.messages as Record<string, unknown>[];
    assertEquals(msgs.map((m) => [m.direction, m.text, m.type]), [
      ["outbound", "hi bob", "MSG"],
      ["outbound", "a request", "REQ"],
      ["inbound", "reply", "MSG"],
    ]);
    const clamped = await ws.request({ action: "get_history", limit: 0 });
    assertEquals((clamped.messages as unknown[]).length, 1, "limit clamps to 1..5000");

    // Capabilities come from the node's mesh view: none without mesh routing.
    hub.meshView = directMeshView(hub);
    const none = await ws.request({ action: "send_message", to_capability: "llm:*", payload: "x" });
    assertEquals(none.type, "send_error");
    assertEquals(none.code, "NO_CAPABILITY");
    assertStringIncludes(String(none.hint), "not enabled yet");
    hub.meshView = {
      routingEnabled: true,
      routes: () => [],
      capabilities: () => [{ capability: "llm:chat", nodeIds: [bob.nodeId] }],
    };
    const capGot = nextEvent(bob, (e) => e.type === "message-in");
    const viaCap = await ws.request({
      action: "send_message",
      to_capability: "llm:*",
      payload: "to whoever chats",
    });
    assertEquals(viaCap.to, bob.nodeId);
    assertEquals(viaCap.capability, "llm:*");
    const ce = await capGot;
    assert(ce.type === "message-in" && dec(ce.payload) === "to whoever chats");

    // Bad input: clear errors, nothing sent.
    const bad = async (msg: Record<string, unknown>, error: string) => {
      const r = await ws.request({ action: "send_message", ...msg });
      assertEquals(r.type, "send_error", JSON.stringify(msg));
      assertStringIncludes(String(r.error), error);
    };
    await bad({ payload: "x" }, "to_node required");
    await bad({ to_node: "bob" }, "payload required");
    await bad({ to_node: "bob", payload: 5 }, "payload required");
    await bad({ to_node: "bob", payload: "x", msg_type: "PING" }, "msg_type must be one of");
    await bad({ to_node: "bob", payload: "x", priority: "URGENT" }, "priority must be one of");
    await bad({ to_node: "nobody-here", payload: "x" }, "nobody-here");
    await bad({ to_node: "bob", to_capability: "x", payload: "x" }, "not both");
    await bad({ to_node: "bob", payload: "é".repeat(400_000) }, "exceeds the 768000-byte limit");
  } finally {
    await ws.close();
    await d.close();
    await stopAll(bob, hub);
  }
});

Deno.test("ws: promoting a pending peer releases its held messages; blocking drops them", async () => {
  const net = new MemoryNetwork();
  const hub = await startNode("hub", {
    transport: net.transport(),
    trust: { mode: "tofu", requireMessagePromotion: true },
  });
  const carol = await startNode("carol", { transport: net.transport() });
  const mallory = await startNode("mallory", { transport: net.transport() });
  const d = await startDashboard(hub);
  const ws = await DashWs.open(d);
  try {
    await carol.connect(addrOf(hub));
    await mallory.connect(addrOf(hub));
    for (const t of ["one", "two"]) await carol.send(hub.nodeId, enc(t));
    await mallory.send(hub.nodeId, enc("let me in"));
    await until(() => hub.store.pendingTrust.count(carol.nodeId) === 2, 3000, "carol held");
    await until(() => hub.store.pendingTrust.count(mallory.nodeId) === 1, 3000, "mallory held");
    const held = await ws.next((m) =>
      m.type === "pending_trust" && m.source_node_id === carol.nodeId
    );
    assert((held.queued_count as number) >= 1);

    const list = await ws.request({ action: "list_pending_trust" });
    assertEquals(list.type, "pending_trust_list");
    assertEquals(list.gate_enabled, true);
    const pending = list.pending as Record<string, unknown>[];
    assertEquals(
      pending.map((p) => [p.name, p.queued_count, p.trust_state]).sort(),
      [["carol", 2, "pending"], ["mallory", 1, "pending"]],
    );

    const released: string[] = [];
    hub.bus.subscribe((e) => {
      if (e.type === "message-in" && e.disposition === "delivered") released.push(dec(e.payload));
    });
    const p = await ws.request({ action: "promote_peer", target_node_id: carol.nodeId });
    assertEquals(p.type, "promote_ack");
    assertEquals(p.ok, true);
    assertEquals(p.target, carol.nodeId);
    assertEquals(p.drained, 2);
    assertEquals(released, ["one", "two"]);
    assertEquals(hub.trust.trustState(carol.nodeId), "trusted");
    const inbox = hub.store.history.query({ direction: "inbound", source: carol.nodeId });
    assertEquals(inbox.map((m) => dec(m.payload)).sort(), ["one", "two"]);
    // What carol sends now is delivered at once.
    const live = nextEvent(hub, (e) => e.type === "message-in" && e.disposition === "delivered");
    await carol.send(hub.nodeId, enc("three"));
    assert(dec(((await live) as { payload: Uint8Array }).payload) === "three");

    const b = await ws.request({ action: "block_peer", target_node_id: "mallory" });
    assertEquals(b.type, "block_ack");
    assertEquals(b.ok, true);
    assertEquals(b.discarded, 1);
    assertEquals(hub.trust.trustState(mallory.nodeId), "blocked");
    assertEquals(hub.store.pendingTrust.count(mallory.nodeId), 0);
    const after = await ws.request({ action: "list_pending_trust" });
    assertEquals(after.pending, []);
    // The changes are audited like the CLI's, and the mirrored counters move.
    const log = await Deno.readTextFile(hub.audit.path);
    assertStringIncludes(log, '"event":"PEER_PROMOTED"');
    assertStringIncludes(log, '"event":"PEER_BLOCKED"');
    await until(
      () =>
        d.metrics.audit.get("ironmesh_peer_promoted_total") === 1 &&
        d.metrics.audit.get("ironmesh_peer_blocked_total") === 1,
      3000,
      "audit-mirrored counters",
    );
    // Unknown targets: a failed ack with the reason.
    const u = await ws.request({ action: "promote_peer", target_node_id: "ghost" });
    assertEquals([u.type, u.ok], ["promote_ack", false]);
    assertStringIncludes(String(u.error), "ghost");
    const missing = await ws.request({ action: "block_peer" });
    assertEquals([missing.type, missing.error], ["send_error", "target_node_id required"]);
  } finally {
    await ws.close();
    await d.close();
    await stopAll(carol, mallory, hub);
  }
});

Deno.test("ws: a capability change is listed with its diff; accept releases, reject drops", async () => {
  const net = new MemoryNetwork();
  const hub = await startNode("hub", { transport: net.transport() });
  const carol = await startNode("carol", { transport: net.transport() });
  const d = await startDashboard(hub);
  const ws = await DashWs.open(d);
  try {
    await carol.connect(addrOf(hub));
    await hub.observeCapabilities(carol.nodeId, ["llm:chat", "fs:read"]);
    await hub.observeCapabilities(carol.nodeId, ["llm:chat", "shell:exec"]);
    const cc = await ws.next((m) => m.type === "cap_change_detected");
    assertEquals(cc.peer, carol.nodeId);
    assertEquals(cc.added, ["shell:exec"]);
    assertEquals(cc.removed, ["fs:read"]);
    await carol.send(hub.nodeId, enc("under new caps"));
    await until(() => hub.store.pendingTrust.count(carol.nodeId) === 1, 3000, "held");
    const list = await ws.request({ action: "list_pending_cap" });
    const item = (list.pending as Record<string, unknown>[])[0];
    assertEquals(item.node_id, carol.nodeId);
    assertEquals(item.added, ["shell:exec"]);
    assertEquals(item.removed, ["fs:read"]);
    assertEquals(item.trust_state, "pending-cap-change");
    assertEquals(item.queued_count, 1);
    assert(typeof item.baseline_hash === "string" && typeof item.pending_hash === "string");
    const a = await ws.request({ action: "cap_promote_peer", target_node_id: "carol" });
    assertEquals([a.type, a.ok, a.drained], ["cap_promote_ack", true, 1]);
    assertEquals(hub.trust.trustState(carol.nodeId), "trusted");
    assertEquals(
      hub.store.history.query({ direction: "inbound" }).map((m) => dec(m.payload)),
      ["under new caps"],
    );

    await hub.observeCapabilities(carol.nodeId, ["llm:chat", "shell:exec", "net:raw"]);
    await carol.send(hub.nodeId, enc("dropped"));
    await until(() => hub.store.pendingTrust.count(carol.nodeId) === 1, 3000, "held again");
    const r = await ws.request({
      action: "cap_reject_peer",
      target_node_id: carol.nodeId,
      block: true,
    });
    assertEquals([r.type, r.ok, r.discarded, r.blocked], ["cap_reject_ack", true, 1, true]);
    assertEquals(hub.trust.trustState(carol.nodeId), "blocked");
    const empty = await ws.request({ action: "list_pending_cap" });
    assertEquals(empty.pending, []);
    const badBlock = await ws.request({
      action: "cap_reject_peer",
      target_node_id: "carol",
      block: "yes",
    });
    assertEquals(badBlock.type, "send_error");
  } finally {
    await ws.close();
    await d.close();
    await stopAll(carol, hub);
  }
});

Deno.test("ws: rotate_session rekeys a live link; revocation broadcast waits for mesh routing", async () => {
  const net = new MemoryNetwork();
  const hub = await startNode("hub", { transport: net.transport() });
  const bob = await startNode("bob", { transport: net.transport() });
  const d = await startDashboard(hub);
  const ws = await DashWs.open(d);
  try {
    await bob.connect(addrOf(hub));
    await until(() => hub.peers.get(bob.nodeId) !== undefined, 2000, "link");
    const r = await ws.request({ action: "rotate_session", peer_id: "bob" });
    assertEquals(r, {
      type: "rotate_ack",
      peer_id: bob.nodeId,
      action: "rotate_session",
      id: r.id,
    });
    const link = hub.peers.get(bob.nodeId)!;
    await until(() => link.session.rekeyCount === 1, 3000, "rekey completed");
    // Messages still flow under the new key.
    const got = nextEvent(bob, (e) => e.type === "message-in");
    await ws.request({ action: "send_message", to_node: "bob", payload: "after rekey" });
    await got;
    await until(() => d.metrics.peer(bob.nodeId).rekeys === 1, 2000, "rekey counted");

    // Without mesh routing the broadcast is refused; with it, it goes to the router.
    hub.meshView = directMeshView(hub);
    const revoke = { action: "broadcast_revocation", target_node_id: "bob", reason: "lost laptop" };
    const rev = await ws.request(revoke);
    assertEquals(rev.type, "send_error");
    assertEquals(rev.error, MESH_DISABLED_MESSAGE);
    assertEquals(rev.code, "MESH_DISABLED");
    assertEquals(hub.trust.trustState(bob.nodeId), "trusted", "nothing changed");
    const broadcasts: [string, string][] = [];
    hub.meshView = {
      ...directMeshView(hub),
      routingEnabled: true,
      broadcastRevocation: (id, reason) => {
        broadcasts.push([id, reason]);
        return Promise.resolve();
      },
    };
    const ok = await ws.request(revoke);
    assertEquals([ok.type, ok.target], ["revoke_ack", bob.nodeId]);
    assertEquals(broadcasts, [[bob.nodeId, "lost laptop"]]);

    await bob.stop();
    await until(() => hub.peers.get(bob.nodeId) === undefined, 2000, "link down");
    const off = await ws.request({ action: "rotate_session", peer_id: bob.nodeId });
    assertEquals(off.type, "send_error");
    assertEquals(off.error, `Peer ${bob.nodeId} not online`);
    const none = await ws.request({ action: "rotate_session" });
    assertEquals(none.error, "peer_id required");
    const dlg = await ws.request({ action: "start_dialogue", peer_a: "a", peer_b: "b" });
    assertEquals(dlg.code, "UNSUPPORTED");
  } finally {
    await ws.close();
    await d.close();
    await stopAll(hub);
  }
});

Deno.test("ws: bad frames, oversize messages, floods and cross-origin upgrades are refused", async () => {
  const net = new MemoryNetwork();
  const hub = await startNode("hub", { transport: net.transport() });
  const d = await startDashboard(hub);
  try {
    const ws = await DashWs.open(d);
    ws.socket.send("{nope");
    const inv = await ws.next((m) => m.type === "send_error" && m.code === "BAD_JSON");
    assertEquals(inv.error, "Invalid JSON");
    ws.socket.send("[1]");
    await ws.next((m) => m.type === "send_error" && m.code === "BAD_JSON" && m !== inv);
    const unknown = await ws.request({ action: "self_destruct" });
    assertEquals(unknown.error, "Unknown action: self_destruct");
    const noAction = await ws.request({});
    assertEquals(noAction.error, "action required");
    // A flood is throttled (20/s, burst 60) without closing the socket.
    for (let i = 0; i < 100; i++) ws.socket.send(JSON.stringify({ action: "list_pending_cap" }));
    await ws.next((m) => m.code === "RATE_LIMITED");
    assertEquals(ws.socket.readyState, WebSocket.OPEN);
    // Binary frames and messages over 1 MiB close the socket.
    ws.socket.send(new Uint8Array([1, 2, 3]));
    const closed = await ws.closed;
    assertEquals(closed.code, 1003);
    const big = await DashWs.open(d);
    big.socket.send(JSON.stringify({ action: "refresh", pad: "x".repeat(1_100_000) }));
    assertEquals((await big.closed).code, 1009);

    // A browser page on another origin cannot open the socket, even with the token.
    const r = await fetch(`http://127.0.0.1:${d.port}/ws?token=${d.token}`, {
      headers: {
        origin: "http://evil.test",
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
      },
    });
    assertEquals(r.status, 403);
    assertEquals(obj(await r.json()).code, "BAD_ORIGIN");
  } finally {
    await d.close();
    await hub.stop();
  }
});
