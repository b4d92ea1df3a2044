// The mesh over the in-memory network: a line of five nodes A–B–C–D–E (each dialing only its
// neighbour). A reaches E through three relays that never see the plaintext; a relay that
// alters the sealed body or substitutes the content is caught at E; an unknown originator is
// dropped; a relay without a route answers ROUTE_UNREACHABLE.
import { assert, assertEquals } from "../support/assert.ts";
import { addrOf, nextEvent, startNode, until } from "../support/nodes.ts";
import { MemoryNetwork } from "../../daemon/transport/memory.ts";
import type { MeshNode, NodeOptions } from "../../daemon/node.ts";
import { buildE2eMessage, sealE2e } from "../../lib/routing/e2e.ts";
import { ed25519PkToCurve25519 } from "../../lib/crypto/sodium.ts";
import { generateIdentity } from "../../lib/identity/keyfile.ts";
import type { OutboundMessage } from "../../lib/wire/session.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** Start nodes and link them in a line, each dialing the previous one. */
async function line(
  names: string[],
  opts: (name: string) => Partial<NodeOptions> = () => ({}),
): Promise<MeshNode[]> {
  const net = new MemoryNetwork();
  const nodes: MeshNode[] = [];
  for (const n of names) nodes.push(await startNode(n, { transport: net.transport(), ...opts(n) }));
  for (let i = 1; i < nodes.length; i++) await nodes[i].connect(addrOf(nodes[i - 1]));
  return nodes;
}

async function stopAll(nodes: MeshNode[]) {
  for (const n of nodes) await n.stop();
}

/** Audit events named `event` in a node's log (after flushing its audit queue). */
async function audited(n: MeshNode, event: string): Promise<Record<string, unknown>[]> {
  await n.recordAudit("TEST_MARK", {});
  const text = await Deno.readTextFile(n.audit.path);
  return text.split("\n").filter((l) => l.includes(`"event":"${event}"`)).map((l) => {
    const e = JSON.parse(l);
    return (e.details ?? e.entry_data?.details ?? e) as Record<string, unknown>;
  });
}

function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

Deno.test("mesh: A reaches E through three relays; no relay ever holds the plaintext", async () => {
  const nodes = await line(["a", "b", "c", "d", "e"]);
  const [a, b, c, d, e] = nodes;
  try {
    await until(() => a.mesh.via(e.nodeId) !== null, 10_000, "A's route and key for E");
    assertEquals(a.mesh.via(e.nodeId)!.nodeId, b.nodeId);
    assertEquals(a.mesh.table.route(e.nodeId)?.cost, 4);

    const secret = "the eagle lands at dawn — do not tell the relays";
    const seen: { relay: string; inPayload: Uint8Array; out: OutboundMessage }[] = [];
    for (const r of [b, c, d]) {
      r.mesh.relayTap = (m, out) => {
        seen.push({ relay: r.name, inPayload: m.payload, out: { ...out } });
      };
    }
    const got = nextEvent(e, (ev) => ev.type === "message-in", 10_000);
    const sent = await a.send(e.nodeId, enc(secret));
    assertEquals(sent.status, "sent");
    const delivered = nextEvent(a, (ev) => ev.type === "delivered" && ev.msgId === sent.msgId);
    const ev = await got;
    assert(ev.type === "message-in");
    assertEquals(dec(ev.payload), secret);
    assertEquals(ev.from, a.nodeId);
    assertEquals(ev.msgId, sent.msgId);
    await delivered; // E's ACK travelled back through the mesh
    assertEquals(a.store.queue.pendingCount(e.nodeId), 0);
    assertEquals(e.store.history.get(sent.msgId)?.source, a.nodeId);

    // Every relay forwarded it once, with an empty payload and only the sealed body.
    const mine = seen.filter((s) => s.out.msgId === sent.msgId);
    assertEquals(mine.map((s) => s.relay).sort(), ["b", "c", "d"]);
    for (const s of mine) {
      assertEquals(s.inPayload.length, 0, `${s.relay} received no plaintext`);
      assertEquals(s.out.payload?.length ?? 0, 0, `${s.relay} forwards no plaintext`);
      assert(s.out.e2ePayload && s.out.e2ePayload.length === enc(secret).length + 48);
      assert(!contains(s.out.e2ePayload, enc("eagle")), "the sealed body hides the text");
    }
    // No relay stored or published it.
    for (const r of [b, c, d]) {
      assertEquals(r.store.history.get(sent.msgId), null);
    }
    // The relays audited the path.
    const relayed = await audited(c, "MESSAGE_RELAYED");
    assert(relayed.some((x) => x.msg_id === sent.msgId && x.next_hop === d.nodeId));

    // And back: E answers A the same way.
    const back = nextEvent(a, (x) => x.type === "message-in", 10_000);
    await e.send(a.nodeId, enc("roger"));
    const r = await back;
    assert(r.type === "message-in" && dec(r.payload) === "roger" && r.from === e.nodeId);
  } finally {
    for (const n of nodes) n.mesh.relayTap = null;
    await stopAll(nodes);
  }
});

Deno.test("mesh: a relay that alters the sealed body or substitutes the content is caught at E", async () => {
  const nodes = await line(["a", "b", "c", "d", "e"]);
  const [a, , c, , e] = nodes;
  try {
    await until(() => a.mesh.via(e.nodeId) !== null, 10_000, "A's route and key for E");
    // 1. C flips one byte of the sealed body.
    c.mesh.relayTap = (_m, out) => {
      if (out.e2ePayload) {
        const x = out.e2ePayload.slice();
        x[x.length - 1] ^= 0x01; // the last ciphertext byte
        out.e2ePayload = x;
      }
    };
    const decryptFail = nextEvent(
      e,
      (x) => x.type === "security" && x.event === "E2E_DECRYPT_FAILURE",
      10_000,
    );
    let delivered = 0;
    e.bus.subscribe((x) => {
      if (x.type === "message-in") delivered++;
    });
    const s1 = await a.send(e.nodeId, enc("first"));
    const f = await decryptFail;
    assert(f.type === "security");
    assertEquals(f.details.msg_id, s1.msgId);
    assertEquals(f.details.source, a.nodeId);

    // 2. C replaces the body with its own text, sealed to E: the inner signature fails.
    const eKeys = c.mesh.keysOf(e.nodeId)!;
    c.mesh.relayTap = (_m, out) => {
      out.e2ePayload = sealE2e(
        enc("forged by c"),
        eKeys.x25519 ?? ed25519PkToCurve25519(eKeys.ed25519),
      );
    };
    const sigDrop = nextEvent(
      e,
      (x) => x.type === "security" && x.event === "INNER_SOURCE_SIG_DROP",
      10_000,
    );
    a.outbox.retransmit(0); // the unacknowledged message goes out again (a new attempt)
    const sd = await sigDrop;
    assert(sd.type === "security");
    assertEquals(sd.details.source, a.nodeId);
    assertEquals(sd.details.reason, "verification-failed");
    assertEquals(delivered, 0);
    assert((await audited(e, "E2E_DECRYPT_FAILURE")).length >= 1);
    assert((await audited(e, "INNER_SOURCE_SIG_DROP")).length >= 1);

    // 3. An honest relay again: the re-sent message arrives, exactly once.
    c.mesh.relayTap = null;
    const ok = nextEvent(e, (x) => x.type === "message-in", 10_000);
    a.outbox.retransmit(0);
    const m = await ok;
    assert(m.type === "message-in" && dec(m.payload) === "first");
    await until(() => a.store.queue.pendingCount(e.nodeId) === 0, 5000, "A's queue to drain");
    a.outbox.retransmit(0); // nothing left in flight: no duplicate either way
    await new Promise((r) => setTimeout(r, 200));
    assertEquals(delivered, 1);
  } finally {
    for (const n of nodes) n.mesh.relayTap = null;
    await stopAll(nodes);
  }
});

Deno.test("mesh: a relayed message from an unknown originator is dropped and audited", async () => {
  const nodes = await line(["a", "b", "c"]);
  const [, b, c] = nodes;
  try {
    await until(() => b.mesh.keysOf(c.nodeId) !== null, 5000, "B knows C");
    const stranger = generateIdentity("stranger");
    const cKeys = b.mesh.keysOf(c.nodeId)!;
    const msg = buildE2eMessage({
      destination: c.nodeId,
      payload: enc("who am I"),
      recipient: cKeys.x25519 ?? ed25519PkToCurve25519(cKeys.ed25519),
    });
    const drop = nextEvent(
      c,
      (x) => x.type === "security" && x.event === "INNER_SOURCE_SIG_DROP",
    );
    // B hands C a frame claiming a source C has never heard of (B cannot sign for it).
    b.peers.get(c.nodeId)!.send({
      ...msg,
      source: stranger.nodeId,
      sourceSignature: new Uint8Array(64).fill(7),
      sourceSigScheme: "v2",
    });
    const ev = await drop;
    assert(ev.type === "security");
    assertEquals(ev.details.source, stranger.nodeId);
    assertEquals(ev.details.reason, "unknown-source");
    assertEquals(c.store.history.query({ limit: 10 }).length, 0);
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("mesh: a relay without a route answers ROUTE_UNREACHABLE; undeliverable messages stay queued", async () => {
  const nodes = await line(["a", "b", "c"]);
  const [a, b] = nodes;
  try {
    await until(() => a.mesh.table.route(b.nodeId) !== undefined, 5000, "A's routes");
    const nowhere = generateIdentity("nowhere").nodeId;
    // A frame for a node nobody reaches, handed to B.
    const frame = buildE2eMessage({
      destination: nowhere,
      payload: enc("x"),
      recipient: new Uint8Array(32).fill(9),
    });
    a.peers.get(b.nodeId)!.send(frame);
    let unreachable: Record<string, unknown>[] = [];
    await until(
      () => {
        a.recordAudit("TEST_MARK", {});
        const text = Deno.readTextFileSync(a.audit.path);
        unreachable = text.split("\n").filter((l) => l.includes('"event":"ROUTE_UNREACHABLE"'))
          .map((l) => JSON.parse(l).details);
        return unreachable.length > 0;
      },
      5000,
      "ROUTE_UNREACHABLE at A",
    );
    assertEquals(unreachable[0].destination, nowhere);
    assertEquals(unreachable[0].original_msg_id, frame.msgId);
    assertEquals(unreachable[0].reporter, b.nodeId);
    const noRoute = await audited(b, "NO_ROUTE");
    assert(noRoute.some((x) => x.destination === nowhere));

    // A message A originates for that node: queued, never written anywhere.
    const s = await a.send(nowhere, enc("later"));
    assertEquals(s.status, "queued");
    assertEquals(a.store.queue.pendingCount(nowhere), 1);
    assertEquals(a.outbox.meshVia(nowhere), null);
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("mesh: --max-hops bounds what A originates; --e2e-plaintext-compat adds the readable copy", async () => {
  const nodes = await line(
    ["a", "b", "c", "d"],
    (n) => n === "a" ? { mesh: { maxHops: 1, confidentiality: "plaintext" } } : {},
  );
  const [a, b, c, d] = nodes;
  try {
    await until(
      () => a.mesh.via(c.nodeId) !== null && a.mesh.via(d.nodeId) !== null,
      10_000,
      "A's routes and keys",
    );
    const seenAtB: OutboundMessage[] = [];
    b.mesh.relayTap = (_m, out) => void seenAtB.push({ ...out });
    // One relay (B) is within a budget of 1: C gets it, sealed, with the plaintext beside it.
    const got = nextEvent(c, (x) => x.type === "message-in", 10_000);
    const s = await a.send(c.nodeId, enc("readable by relays"));
    const ev = await got;
    assert(ev.type === "message-in" && dec(ev.payload) === "readable by relays");
    const out = seenAtB.find((o) => o.msgId === s.msgId)!;
    assertEquals(dec(out.payload!), "readable by relays", "the compat form carries the plaintext");
    assert(out.e2ePayload && out.e2ePayload.length === out.payload!.length + 48);
    assertEquals(out.ttl, 0);
    // Two relays are not: C drops the frame for D (ttl spent) and audits it.
    let atD = 0;
    d.bus.subscribe((x) => {
      if (x.type === "message-in") atD++;
    });
    const s2 = await a.send(d.nodeId, enc("too far"));
    await until(() => seenAtB.some((o) => o.msgId === s2.msgId), 5000, "B to relay it");
    await new Promise((r) => setTimeout(r, 200));
    assertEquals(atD, 0);
    const expired = await audited(c, "TTL_EXPIRED");
    assert(expired.some((x) => x.msg_id === s2.msgId && x.source === a.nodeId));
  } finally {
    for (const n of nodes) n.mesh.relayTap = null;
    await stopAll(nodes);
  }
});
