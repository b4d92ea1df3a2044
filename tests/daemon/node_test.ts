// A node over the in-memory network: handshake and registration, messages both ways with
// delivery acknowledgements, simultaneous dial, the offline queue across a restart,
// admission (auth-failure ban with a fake clock) and the trust gate.
import { assert, assertEquals, assertRejects } from "../support/assert.ts";
import { addrOf, MESH_PASS, nextEvent, startNode, until } from "../support/nodes.ts";
import { MemoryNetwork } from "../../daemon/transport/memory.ts";
import { clientHandshake, HandshakeError } from "../../daemon/handshake_driver.ts";
import { generateIdentity } from "../../lib/identity/keyfile.ts";
import { FakeClock } from "../../lib/clock.ts";
import { MAX_PAYLOAD_BYTES, type MeshNode } from "../../daemon/node.ts";
import type { IronMeshError } from "../../lib/errors.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function stopAll(...nodes: MeshNode[]) {
  for (const n of nodes) await n.stop();
}

Deno.test("node: connect, exchange messages both ways, acknowledged deliveries leave the queue", async () => {
  const net = new MemoryNetwork();
  const a = await startNode("alice", { transport: net.transport() });
  const b = await startNode("bob", { transport: net.transport() });
  try {
    const up = nextEvent(b, (e) => e.type === "peer-up");
    const link = await a.connect(addrOf(b));
    assertEquals(link.nodeId, b.nodeId);
    await up;
    const got = nextEvent(b, (e) => e.type === "message-in");
    const delivered = nextEvent(a, (e) => e.type === "delivered");
    const sent = await a.send(b.nodeId, enc("hello bob"));
    assertEquals(sent.status, "sent");
    const ev = await got;
    assert(ev.type === "message-in");
    assertEquals(dec(ev.payload), "hello bob");
    assertEquals(ev.from, a.nodeId);
    assertEquals(ev.msgId, sent.msgId);
    const d = await delivered;
    assert(d.type === "delivered" && d.msgId === sent.msgId);
    assertEquals(a.store.queue.pendingCount(b.nodeId), 0);
    assertEquals(a.outbox.acking(b.nodeId), true);

    const back = nextEvent(a, (e) => e.type === "message-in");
    await b.send(a.nodeId, enc("hi alice"));
    const ev2 = await back;
    assert(ev2.type === "message-in" && dec(ev2.payload) === "hi alice");
    // Both sides stored the message in history.
    assertEquals(b.store.history.get(sent.msgId)?.direction, "inbound");
    assertEquals(a.store.history.get(sent.msgId)?.direction, "outbound");
    // The trust store pinned each other on first contact (TOFU).
    assertEquals(a.trust.trustState(b.nodeId), "trusted");
    assertEquals(b.trust.trustState(a.nodeId), "trusted");
  } finally {
    await stopAll(a, b);
  }
});

Deno.test("node: simultaneous dial leaves exactly one session, the same on both sides", async () => {
  const net = new MemoryNetwork();
  const a = await startNode("alice", { transport: net.transport() });
  const b = await startNode("bob", { transport: net.transport() });
  try {
    await Promise.allSettled([a.connect(addrOf(b)), b.connect(addrOf(a))]);
    await until(() => a.peers.entries().length === 1 && b.peers.entries().length === 1, 3000);
    await new Promise((r) => setTimeout(r, 50)); // let the losing connection finish closing
    const ea = a.peers.entry(b.nodeId)!, eb = b.peers.entry(a.nodeId)!;
    assert(ea.link.open && eb.link.open, "both sides keep a live link");
    const smaller = a.nodeId < b.nodeId ? a.nodeId : b.nodeId;
    assertEquals(ea.dialer, smaller);
    assertEquals(eb.dialer, smaller);
    // The kept links are the two ends of one connection: a ping goes through.
    const rtt = await ea.link.ping(2000);
    assert(rtt >= 0);
    const got = nextEvent(b, (e) => e.type === "message-in");
    await a.send(b.nodeId, enc("after the race"));
    const ev = await got;
    assert(ev.type === "message-in" && dec(ev.payload) === "after the race");
  } finally {
    await stopAll(a, b);
  }
});

Deno.test("node: 200 messages to an offline peer are queued and delivered once, in order, after it returns", async () => {
  const net = new MemoryNetwork();
  const bDir = await Deno.makeTempDir();
  const bId = generateIdentity("bob");
  const a = await startNode("alice", { transport: net.transport() });
  let b = await startNode("bob", { transport: net.transport(), stateDir: bDir, identity: bId });
  const bPort = b.listener!.port;
  try {
    await a.connect(addrOf(b));
    await b.stop();
    await until(() => a.peers.get(bId.nodeId) === undefined, 2000, "alice to see bob offline");
    const ids: string[] = [];
    const sends = [];
    for (let i = 0; i < 200; i++) sends.push(a.send(bId.nodeId, enc(`m${i}`)));
    for (const s of await Promise.all(sends)) {
      assertEquals(s.status, "queued");
      ids.push(s.msgId);
    }
    assertEquals(a.store.queue.pendingCount(bId.nodeId), 200);
    a.addTarget(`127.0.0.1:${bPort}`);
    b = await startNode("bob", {
      transport: net.transport(),
      stateDir: bDir,
      identity: bId,
      listen: { hostname: "127.0.0.1", port: bPort },
    });
    await until(() => a.store.queue.pendingCount(bId.nodeId) === 0, 10_000, "queue to drain");
    const hist = b.store.history.query({ limit: 1000 }).filter((m) => m.direction === "inbound");
    assertEquals(hist.length, 200);
    const order = hist.sort((x, y) => x.rowid - y.rowid).map((m) => dec(m.payload));
    assertEquals(order, ids.map((_, i) => `m${i}`));
  } finally {
    await stopAll(a, b);
  }
});

Deno.test("node: 3 wrong passphrases from one address ban it for 5 minutes; other addresses are unaffected", async () => {
  const net = new MemoryNetwork();
  const clock = new FakeClock();
  const b = await startNode("bob", { transport: net.transport(), clock });
  const mallory = generateIdentity("mallory");
  const attempt = async (from: string, passphrase: string) => {
    const conn = await net.transport(from).dial(addrOf(b));
    return clientHandshake(conn, {
      identity: mallory,
      passphrase,
      tofu: () => ({ ok: true }),
      clock,
    });
  };
  try {
    for (let i = 0; i < 3; i++) {
      const e = await assertRejects(
        () => attempt("10.0.0.66", "not-the-mesh-passphrase"),
        HandshakeError,
      ) as HandshakeError;
      assertEquals(e.code, "HS_WRONG_PASSPHRASE");
    }
    const blocked = await assertRejects(
      () => attempt("10.0.0.66", MESH_PASS),
      HandshakeError,
    ) as HandshakeError;
    assertEquals(blocked.code, "HS_AUTH_BLOCKED");
    // Another address with the right passphrase gets in.
    const ok = await attempt("10.0.0.7", MESH_PASS);
    assertEquals(ok.peer.nodeId, b.nodeId);
    ok.conn.close();
    clock.advance(301);
    const later = await attempt("10.0.0.66", MESH_PASS);
    assertEquals(later.peer.nodeId, b.nodeId);
    later.conn.close();
    await b.recordAudit("TEST_MARK", {});
    const log = await Deno.readTextFile(b.audit.path);
    assertEquals(log.match(/"event":"AUTH_FAILURE"/g)?.length, 3);
    assert(log.includes('"event":"AUTH_IP_BLOCKED"'));
    assert(log.includes('"ip":"10.0.0.66"'));
  } finally {
    await b.stop();
  }
});

Deno.test("node: allow_list refuses an unlisted peer; a blocked peer's messages are dropped; promotion holds them", async () => {
  const net = new MemoryNetwork();
  const strict = await startNode("strict", {
    transport: net.transport(),
    trust: { mode: "allow_list", allowList: { entries: [] } },
  });
  const gated = await startNode("gated", {
    transport: net.transport(),
    trust: { mode: "tofu", requireMessagePromotion: true },
  });
  const c = await startNode("carol", { transport: net.transport() });
  try {
    // The server refuses after its own HELLO (as the reference): it closes without a message.
    const refused = nextEvent(strict, (ev) => ev.type === "handshake-failed");
    await c.connect(addrOf(strict)).then((l) => l.done, () => "refused");
    const r = await refused;
    assert(r.type === "handshake-failed");
    assertEquals(r.code, "HS_NOT_ALLOWED");
    assertEquals(strict.peers.size, 0);
    await until(() => c.peers.get(strict.nodeId) === undefined, 2000, "carol to drop the link");

    await c.connect(addrOf(gated));
    assertEquals(gated.trust.trustState(c.nodeId), "pending");
    const held = nextEvent(gated, (ev) => ev.type === "message-in");
    await c.send(gated.nodeId, enc("wait for me"));
    const ev = await held;
    assert(ev.type === "message-in");
    assertEquals(ev.disposition, "held");
    assertEquals(gated.store.pendingTrust.count(c.nodeId), 1);
    // Held messages are acknowledged (stored durably), so the sender's queue is empty.
    await until(() => c.store.queue.pendingCount(gated.nodeId) === 0, 2000, "ack of held message");

    await gated.trust.setState(c.nodeId, "blocked", { actor: "cli" });
    await c.send(gated.nodeId, enc("dropped"));
    await new Promise((r) => setTimeout(r, 100));
    assertEquals(gated.store.pendingTrust.count(c.nodeId), 1);
    assertEquals(
      gated.store.history.query({ limit: 10 }).filter((m) => m.direction === "inbound").length,
      0,
    );
  } finally {
    await stopAll(strict, gated, c);
  }
});

Deno.test("node: an oversize message is refused at submit with a clear error and nothing is queued", async () => {
  const net = new MemoryNetwork();
  const a = await startNode("alice", { transport: net.transport() });
  const b = await startNode("bob", { transport: net.transport() });
  try {
    await a.connect(addrOf(b));
    const e = await assertRejects(() => a.send(b.nodeId, new Uint8Array(MAX_PAYLOAD_BYTES + 1)));
    assertEquals((e as IronMeshError).code, "MESSAGE_TOO_LARGE");
    assertEquals(a.store.queue.pendingCount(b.nodeId), 0);
    // The largest allowed payload fits in one frame and arrives.
    const got = nextEvent(b, (ev) => ev.type === "message-in");
    await a.send(b.nodeId, new Uint8Array(MAX_PAYLOAD_BYTES).fill(7));
    const ev = await got;
    assert(ev.type === "message-in" && ev.payload.length === MAX_PAYLOAD_BYTES);
  } finally {
    await stopAll(a, b);
  }
});

Deno.test("node: a peer flooding frames is throttled; another peer's messages still arrive", async () => {
  const net = new MemoryNetwork();
  const victim = await startNode("victim", {
    transport: net.transport(),
    limits: { peerRate: 50, peerBurst: 50 },
  });
  const flooder = await startNode("flooder", { transport: net.transport() });
  const friend = await startNode("friend", { transport: net.transport() });
  try {
    const fl = await flooder.connect(addrOf(victim));
    await friend.connect(addrOf(victim));
    const received = new Map<string, number>();
    victim.bus.subscribe((e) => {
      if (e.type === "message-in") received.set(e.from, (received.get(e.from) ?? 0) + 1);
    });
    for (let i = 0; i < 500; i++) {
      fl.send({ type: "MSG", payload: enc(`flood ${i}`), destination: victim.nodeId });
    }
    for (let i = 0; i < 10; i++) await friend.send(victim.nodeId, enc(`hello ${i}`));
    await until(() => (received.get(friend.nodeId) ?? 0) === 10, 5000, "friend's messages");
    await new Promise((r) => setTimeout(r, 100));
    const flooded = received.get(flooder.nodeId) ?? 0;
    assert(flooded <= 60, `at most the burst (+ refill) got through, got ${flooded}`);
    assert(flooded >= 40, `the burst itself is delivered, got ${flooded}`);
    const linkStats = victim.peers.get(flooder.nodeId)!.stats;
    assert(linkStats.rejected >= 440, `dropped frames counted: ${linkStats.rejected}`);
  } finally {
    await stopAll(victim, flooder, friend);
  }
});

Deno.test("node: messages dropped by the receiver's rate limit are re-sent until acknowledged", async () => {
  const net = new MemoryNetwork();
  const clock = new FakeClock();
  const slow = await startNode("slow", {
    transport: net.transport(),
    limits: { peerRate: 20, peerBurst: 20 },
    clock,
  });
  const eager = await startNode("eager", { transport: net.transport(), clock });
  try {
    await eager.connect(addrOf(slow));
    await until(() => eager.outbox.acking(slow.nodeId) === true, 2000, "ack capability");
    const sends = [];
    for (let i = 0; i < 60; i++) sends.push(eager.send(slow.nodeId, enc(`m${i}`)));
    await Promise.all(sends);
    await new Promise((r) => setTimeout(r, 100));
    assert(eager.store.queue.pendingCount(slow.nodeId) > 0, "some were dropped by the limit");
    for (let round = 0; round < 10 && eager.store.queue.pendingCount(slow.nodeId) > 0; round++) {
      clock.advance(11); // refills the bucket and expires the retransmit timer
      eager.outbox.retransmit();
      await new Promise((r) => setTimeout(r, 100));
    }
    assertEquals(eager.store.queue.pendingCount(slow.nodeId), 0);
    const got = slow.store.history.query({ limit: 100 }).filter((m) => m.direction === "inbound");
    assertEquals(got.length, 60, "each message stored exactly once");
  } finally {
    await stopAll(slow, eager);
  }
});

Deno.test("node: outbound bandwidth per peer is capped; held messages go out as the bucket refills", async () => {
  const net = new MemoryNetwork();
  const clock = new FakeClock();
  const a = await startNode("alice", {
    transport: net.transport(),
    clock,
    limits: { peerBandwidth: 1_048_576 },
  });
  const b = await startNode("bob", { transport: net.transport(), clock });
  try {
    await a.connect(addrOf(b));
    let got = 0;
    b.bus.subscribe((e) => {
      if (e.type === "message-in") got++;
    });
    for (let i = 0; i < 3; i++) await a.send(b.nodeId, new Uint8Array(700_000));
    await new Promise((r) => setTimeout(r, 300));
    assertEquals(got, 1, "the second 700 KB does not fit the 1 MiB burst while time stands still");
    clock.advance(1);
    await until(() => got === 2, 5000, "the second after one second's refill");
    await new Promise((r) => setTimeout(r, 300));
    assertEquals(got, 2, "the third waits for the next refill");
    clock.advance(1);
    await until(() => got === 3, 5000, "the third after the next refill");
  } finally {
    await stopAll(a, b);
  }
});
