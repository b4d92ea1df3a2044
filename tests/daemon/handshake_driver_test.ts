// The handshake driver and peer link over every transport: both roles, a wrong passphrase,
// a silent peer (timeout), and encrypted traffic both ways after the handshake.
import { assert, assertEquals, assertRejects } from "../support/assert.ts";
import { generateIdentity } from "../../lib/identity/keyfile.ts";
import { fromUtf8, utf8 } from "../../lib/crypto/sodium.ts";
import { clientHandshake, HandshakeError, serverHandshake } from "../../daemon/handshake_driver.ts";
import { PeerLink } from "../../daemon/peer_link.ts";
import { MemoryNetwork } from "../../daemon/transport/memory.ts";
import { WebSocketTransport } from "../../daemon/transport/websocket.ts";
import type { Conn, Transport } from "../../daemon/transport/transport.ts";
import type { InboundMessage } from "../../lib/wire/session.ts";

const PASS = "a-mesh-passphrase-for-tests";
const alice = generateIdentity("alice"), bob = generateIdentity("bob");
const tofu = () => ({ ok: true as const });

async function pair(t: Transport, serverPass = PASS, clientPass = PASS, serverTimeoutMs?: number) {
  let serverSide!: Promise<Awaited<ReturnType<typeof serverHandshake>>>;
  const got = new Promise<void>((r) => {
    t.listen({
      hostname: "127.0.0.1",
      port: 0,
      onConn: (c: Conn) => {
        serverSide = serverHandshake(c, {
          identity: alice,
          passphrase: serverPass,
          tofu,
          timeoutMs: serverTimeoutMs,
        });
        serverSide.catch(() => {});
        r();
      },
    }).then((l) => listeners.push(l));
  });
  while (!listeners.length) await new Promise((r) => setTimeout(r, 1));
  const l = listeners[listeners.length - 1];
  const conn = await t.dial(`127.0.0.1:${l.port}`);
  const clientSide = clientHandshake(conn, { identity: bob, passphrase: clientPass, tofu });
  clientSide.catch(() => {});
  await got;
  return { serverSide, clientSide, listener: l, conn };
}
const listeners: { port: number; close(): Promise<void> }[] = [];

for (
  const [name, make] of [["memory", () => new MemoryNetwork().transport()], [
    "websocket",
    () => new WebSocketTransport(),
  ]] as const
) {
  Deno.test(`${name}: both roles complete the handshake, same key, messages flow both ways`, async () => {
    listeners.length = 0;
    const p = await pair(make());
    const [a, b] = await Promise.all([p.serverSide, p.clientSide]);
    assertEquals(a.peer.nodeId, bob.nodeId);
    assertEquals(b.peer.nodeId, alice.nodeId);
    assertEquals(a.session.keyId, b.session.keyId);
    const inbox: InboundMessage[] = [];
    const la = new PeerLink(a.conn, a.session, a.peer, { onMessage: (m) => inbox.push(m) });
    const lb = new PeerLink(b.conn, b.session, b.peer, { onMessage: (m) => inbox.push(m) });
    assert(await lb.ping() >= 0);
    assert(await la.ping() >= 0);
    lb.send({
      type: "MSG",
      payload: utf8("to alice"),
      destination: alice.nodeId,
      msgId: crypto.randomUUID(),
    });
    la.send({
      type: "MSG",
      payload: utf8("to bob"),
      destination: bob.nodeId,
      msgId: crypto.randomUUID(),
    });
    while (inbox.length < 2) await new Promise((r) => setTimeout(r, 5));
    assertEquals(inbox.map((m) => fromUtf8(m.payload)).sort(), ["to alice", "to bob"]);
    assert(inbox.every((m) => m.sourceAuthenticated));
    lb.goodbye();
    assertEquals(await la.done, "peer said goodbye");
    await lb.done;
    await p.listener.close();
  });

  Deno.test(`${name}: a wrong passphrase fails on both sides with an actionable code`, async () => {
    listeners.length = 0;
    const p = await pair(make(), PASS, "not-the-mesh-passphrase");
    const se = await assertRejects(() => p.serverSide, HandshakeError) as HandshakeError;
    const ce = await assertRejects(() => p.clientSide, HandshakeError) as HandshakeError;
    assertEquals(se.code, "HS_WRONG_PASSPHRASE");
    assert(se.failure.authFailure === true);
    assertEquals(ce.code, "HS_WRONG_PASSPHRASE");
    assert(ce.hint.includes("passphrase"));
    await p.listener.close();
  });
}

Deno.test("a peer that never answers times the handshake out (HS_TIMEOUT)", async () => {
  const t = new MemoryNetwork().transport();
  let server!: Promise<unknown>;
  const l = await t.listen({
    hostname: "127.0.0.1",
    port: 0,
    onConn: (c) =>
      server = serverHandshake(c, { identity: alice, passphrase: PASS, tofu, timeoutMs: 150 }),
  });
  const silent = await t.dial(`127.0.0.1:${l.port}`);
  while (!server) await new Promise((r) => setTimeout(r, 1));
  const e = await assertRejects(() => server, HandshakeError) as HandshakeError;
  assertEquals(e.code, "HS_TIMEOUT");
  assertEquals((await silent.recv(1000) as string).includes("PASSPHRASE_CHALLENGE"), true);
  silent.close();
  await l.close();
});
