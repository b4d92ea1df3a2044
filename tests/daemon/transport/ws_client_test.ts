// The TCP_NODELAY WebSocket dialer (daemon/transport/ws_client.ts): the Nagle stall is gone,
// and the protocol corners a raw server can provoke (ping, fragments, oversize, bad upgrade).
import { assert, assertEquals, assertRejects } from "../../support/assert.ts";
import type { Conn } from "../../../daemon/transport/transport.ts";
import { WebSocketTransport } from "../../../daemon/transport/websocket.ts";
import { dialNoDelay } from "../../../daemon/transport/ws_client.ts";
import { createHash } from "node:crypto";
import { makeTestCert } from "../../support/tls.ts";

const certDir = await Deno.makeTempDir({ prefix: "ironmesh-tls-" });
const CERT = await makeTestCert(certDir);
globalThis.addEventListener("unload", () => Deno.removeSync(certDir, { recursive: true }));

async function echoPair(
  scheme: "ws" | "wss" = "ws",
  kind: "nodelay" | "web" = "nodelay",
): Promise<{ client: Conn; close(): Promise<void> }> {
  const t = scheme === "wss"
    ? new WebSocketTransport({ tls: CERT, caCerts: [CERT.cert], client: kind })
    : new WebSocketTransport({ client: kind });
  const l = await t.listen({
    hostname: "127.0.0.1",
    port: 0,
    onConn: async (c) => {
      for (let m = await c.recv(); m !== null; m = await c.recv()) c.send(m);
    },
  });
  const client = await t.dial(`${scheme}://127.0.0.1:${l.port}/`, { timeoutMs: 5000 });
  return {
    client,
    close: async () => {
      client.close();
      await client.closed;
      await l.close();
    },
  };
}

/** 20 request/response round trips of 4 KiB; returns the elapsed ms. */
async function roundTrips4k(client: Conn): Promise<number> {
  const msg = new Uint8Array(4096).fill(7);
  client.send(msg); // warm-up
  assertEquals(((await client.recv(2000)) as Uint8Array).length, 4096);
  const t0 = performance.now();
  for (let i = 0; i < 20; i++) {
    msg[0] = i;
    client.send(msg);
    const r = (await client.recv(2000)) as Uint8Array;
    assertEquals(r[0], i);
  }
  return performance.now() - t0;
}

for (const scheme of ["ws", "wss"] as const) {
  Deno.test(`nodelay dialer (${scheme}://): 4 KiB request/response round trips do not stall on Nagle + delayed ACK`, async () => {
    const p = await echoPair(scheme);
    assertEquals(p.client.kind, scheme);
    const ms = await roundTrips4k(p.client);
    // With Nagle on, each round trip waits ~40 ms for a delayed ACK (20 × 44 ms ≈ 880 ms).
    assert(ms < 400, `20 round trips of 4 KiB took ${ms.toFixed(0)} ms`);
    await p.close();
  });
}

Deno.test("nodelay dialer: large binary and text messages arrive intact, in order", async () => {
  const p = await echoPair();
  const big = new Uint8Array(700_000);
  for (let i = 0; i < big.length; i++) big[i] = i * 31;
  p.client.send(big);
  p.client.send("héllo ✓");
  p.client.send(new Uint8Array(0));
  assertEquals(await p.client.recv(5000), big);
  assertEquals(await p.client.recv(2000), "héllo ✓");
  assertEquals(await p.client.recv(2000), new Uint8Array(0));
  await p.close();
});

/** A hand-rolled WebSocket server on raw TCP, to send what Deno.serve never would. */
function rawServer(
  script: (conn: Deno.Conn, request: string) => Promise<void>,
): { port: number; done: Promise<void>; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await listener.accept();
    const buf = new Uint8Array(4096);
    let req = "";
    while (!req.includes("\r\n\r\n")) {
      const n = await conn.read(buf);
      if (n === null) return;
      req += new TextDecoder().decode(buf.subarray(0, n));
    }
    try {
      await script(conn, req);
    } finally {
      try {
        conn.close();
      } catch { /* closed */ }
    }
  })();
  return { port: (listener.addr as Deno.NetAddr).port, done, close: () => listener.close() };
}

function acceptHeader(request: string): string {
  const key = /sec-websocket-key:\s*(\S+)/i.exec(request)![1];
  return createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
}

function upgradeResponse(request: string): Uint8Array {
  return new TextEncoder().encode(
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${acceptHeader(request)}\r\n\r\n`,
  );
}

async function readFrame(conn: Deno.Conn): Promise<{ opcode: number; payload: Uint8Array }> {
  const head = new Uint8Array(2);
  await readExact(conn, head);
  assert((head[1] & 0x80) !== 0, "client frames must be masked");
  let len = head[1] & 0x7f;
  if (len === 126) {
    const b = new Uint8Array(2);
    await readExact(conn, b);
    len = (b[0] << 8) | b[1];
  }
  const mask = new Uint8Array(4);
  await readExact(conn, mask);
  const payload = new Uint8Array(len);
  await readExact(conn, payload);
  for (let i = 0; i < len; i++) payload[i] ^= mask[i & 3];
  return { opcode: head[0] & 0x0f, payload };
}

async function readExact(conn: Deno.Conn, into: Uint8Array): Promise<void> {
  for (let o = 0; o < into.length;) {
    const n = await conn.read(into.subarray(o));
    if (n === null) throw new Error("eof");
    o += n;
  }
}

Deno.test("nodelay dialer: answers pings, reassembles fragments, closes cleanly", async () => {
  const srv = rawServer(async (conn, req) => {
    await conn.write(upgradeResponse(req));
    // ping "hi", then a binary message in two fragments: [1,2] + [3]
    await conn.write(new Uint8Array([0x89, 2, 0x68, 0x69, 0x02, 2, 1, 2, 0x80, 1, 3]));
    const pong = await readFrame(conn);
    assertEquals(pong.opcode, 0x0a);
    assertEquals(new TextDecoder().decode(pong.payload), "hi");
    const close = await readFrame(conn);
    assertEquals(close.opcode, 0x08);
    assertEquals((close.payload[0] << 8) | close.payload[1], 1000);
    await conn.write(new Uint8Array([0x88, 2, 0x03, 0xe8]));
  });
  const c = await dialNoDelay(`ws://127.0.0.1:${srv.port}/`, { timeoutMs: 3000 });
  assertEquals(await c.recv(2000), new Uint8Array([1, 2, 3]));
  c.close(1000, "done");
  assertEquals(await c.recv(100), null);
  await srv.done;
  await c.closed;
  srv.close();
});

Deno.test("nodelay dialer: a message over the cap is never delivered and closes the connection", async () => {
  const srv = rawServer(async (conn, req) => {
    await conn.write(upgradeResponse(req));
    // binary frame declaring 2,000 bytes against a 1,000-byte cap
    await conn.write(new Uint8Array([0x82, 126, 0x07, 0xd0, ...new Uint8Array(2000)]));
    const close = await readFrame(conn).catch(() => null);
    if (close) assertEquals((close.payload[0] << 8) | close.payload[1], 1009);
  });
  const c = await dialNoDelay(`ws://127.0.0.1:${srv.port}/`, {
    timeoutMs: 3000,
    maxMessageBytes: 1000,
  });
  assertEquals(await c.recv(2000), null);
  let threw = false;
  try {
    c.send(new Uint8Array(1));
  } catch {
    threw = true;
  }
  assert(threw, "send after close must throw");
  await srv.done;
  srv.close();
});

Deno.test("nodelay dialer: a bad upgrade answer and a silent server are refused", async () => {
  const bad = rawServer(async (conn) => {
    await conn.write(
      new TextEncoder().encode(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          "Sec-WebSocket-Accept: d3Jvbmc=\r\n\r\n",
      ),
    );
    await new Promise((r) => setTimeout(r, 200));
  });
  const e = await assertRejects(() =>
    dialNoDelay(`ws://127.0.0.1:${bad.port}/`, { timeoutMs: 3000 })
  );
  assert(String(e).includes("Accept"), String(e));
  await bad.done;
  bad.close();

  const silent = rawServer(() => new Promise((r) => setTimeout(r, 500)));
  const t0 = performance.now();
  await assertRejects(
    () => dialNoDelay(`ws://127.0.0.1:${silent.port}/`, { timeoutMs: 150 }),
    Deno.errors.TimedOut,
  );
  assert(performance.now() - t0 < 450);
  await silent.done;
  silent.close();
});
