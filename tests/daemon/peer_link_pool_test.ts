// PeerLink with an OpenPool (frames verified and decrypted in workers): same delivery, same
// order, same rejections as without; rekey mid-stream loses nothing; a dead pool falls back.
import { assert, assertEquals } from "../support/assert.ts";
import { generateIdentity } from "../../lib/identity/keyfile.ts";
import { fromUtf8, utf8 } from "../../lib/crypto/sodium.ts";
import type { InboundMessage } from "../../lib/wire/session.ts";
import { clientHandshake, serverHandshake } from "../../daemon/handshake_driver.ts";
import { OpenPool } from "../../daemon/open_pool.ts";
import { PeerLink } from "../../daemon/peer_link.ts";
import { MemoryNetwork } from "../../daemon/transport/memory.ts";
import { WebSocketTransport } from "../../daemon/transport/websocket.ts";
import type { Conn, Transport } from "../../daemon/transport/transport.ts";

const PASS = "a-mesh-passphrase-for-tests";
const tofu = () => ({ ok: true as const });

interface Side {
  link: PeerLink;
  got: InboundMessage[];
  rejected: string[];
  next(n: number): Promise<void>;
}

async function linked(
  t: Transport,
  pool: OpenPool,
): Promise<{ a: Side; b: Side; close(): Promise<void> }> {
  const alice = generateIdentity("alice"), bob = generateIdentity("bob");
  let server!: Promise<Awaited<ReturnType<typeof serverHandshake>>>;
  const l = await t.listen({
    hostname: "127.0.0.1",
    port: 0,
    onConn: (c: Conn) => server = serverHandshake(c, { identity: alice, passphrase: PASS, tofu }),
  });
  const conn = await t.dial(`127.0.0.1:${l.port}`);
  const client = await clientHandshake(conn, { identity: bob, passphrase: PASS, tofu });
  const srv = await server;
  const side = (h: typeof client, withPool: boolean): Side => {
    const got: InboundMessage[] = [], rejected: string[] = [];
    let waiter: (() => void) | null = null;
    const link = new PeerLink(
      h.conn,
      h.session,
      h.peer,
      {
        onMessage: (m) => (got.push(m), waiter?.()),
        onReject: (code) => rejected.push(code),
      },
      undefined,
      withPool ? { openPool: pool } : {},
    );
    return {
      link,
      got,
      rejected,
      next: async (n) => {
        const deadline = Date.now() + 10_000;
        while (got.length < n) {
          if (Date.now() > deadline) throw new Error(`only ${got.length} of ${n} messages`);
          await new Promise<void>((r) => (waiter = r, setTimeout(r, 50)));
        }
      },
    };
  };
  // alice (server) receives through the pool; bob without.
  const a = side(srv, true), b = side(client, false);
  return {
    a,
    b,
    close: async () => {
      b.link.goodbye();
      await Promise.all([a.link.done, b.link.done]);
      await l.close();
    },
  };
}

for (
  const [name, make] of [
    ["memory", () => new MemoryNetwork().transport()],
    ["ws://", () => new WebSocketTransport()],
  ] as const
) {
  Deno.test(`pooled PeerLink over ${name}: ordered delivery, PING both ways, rekey mid-stream, GOODBYE`, async () => {
    const pool = new OpenPool({ workers: 2 });
    try {
      const { a, b, close } = await linked(make(), pool);
      const N = 600;
      for (let i = 0; i < N; i++) {
        if (i === 200) assert(b.link.rekey() || a.link.rekey(), "a rekey starts");
        if (i === 400) assert(a.link.rekey() || b.link.rekey() || true);
        b.link.send({ type: "MSG", payload: utf8(`m${i}`), destination: a.link.nodeId });
        if (i % 50 === 0) await new Promise((r) => setTimeout(r, 0));
      }
      await a.next(N);
      assertEquals(
        a.got.map((m) => fromUtf8(m.payload)),
        Array.from({ length: N }, (_, i) => `m${i}`),
      );
      assert(a.got.every((m) => m.sourceAuthenticated && m.type === "MSG"));
      assertEquals(a.rejected, []);
      assert(a.link.session.rekeyCount >= 1, "rekeyed");
      assert((await b.link.ping(5000)) >= 0);
      assert((await a.link.ping(5000)) >= 0);
      a.link.send({ type: "MSG", payload: utf8("back"), destination: b.link.nodeId });
      await b.next(1);
      await close();
      assertEquals(await a.link.done, "peer said goodbye");
      assert(a.link.stats.framesReceived >= N + 3); // + PONG, PING, GOODBYE, rekey frames
    } finally {
      pool.close();
    }
  });
}

Deno.test("pooled PeerLink: replayed and tampered frames are rejected as without the pool", async () => {
  const pool = new OpenPool({ workers: 1 });
  try {
    const { a, b, close } = await linked(new MemoryNetwork().transport(), pool);
    const frame = b.link.session.seal({
      type: "MSG",
      payload: utf8("once"),
      destination: a.link.nodeId,
    });
    const tampered = frame.slice();
    tampered[40] ^= 1;
    b.link.conn.send(frame);
    b.link.conn.send(frame);
    b.link.conn.send(tampered);
    b.link.send({ type: "MSG", payload: utf8("after"), destination: a.link.nodeId });
    await a.next(2);
    assertEquals(a.got.map((m) => fromUtf8(m.payload)), ["once", "after"]);
    assertEquals(a.rejected, ["FR_REPLAY", "FR_SIGNATURE"]);
    await close();
  } finally {
    pool.close();
  }
});

Deno.test("pooled PeerLink: a closed pool falls back to opening on the event loop", async () => {
  const pool = new OpenPool({ workers: 1 });
  const { a, b, close } = await linked(new MemoryNetwork().transport(), pool);
  pool.close();
  for (let i = 0; i < 20; i++) {
    b.link.send({ type: "MSG", payload: utf8(`x${i}`), destination: a.link.nodeId });
  }
  await a.next(20);
  assertEquals(
    a.got.map((m) => fromUtf8(m.payload)),
    Array.from({ length: 20 }, (_, i) => `x${i}`),
  );
  await close();
});
