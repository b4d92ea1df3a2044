// One compliance suite, run against every transport (ARCHITECTURE.md idea 3).
import { assert, assertEquals, assertRejects } from "../../support/assert.ts";
import type { Conn, Transport } from "../../../daemon/transport/transport.ts";
import { MAX_MESSAGE_BYTES, RecvTimeout } from "../../../daemon/transport/transport.ts";
import { MemoryNetwork } from "../../../daemon/transport/memory.ts";
import { WebSocketTransport } from "../../../daemon/transport/websocket.ts";
import { VirtualNetwork } from "../../support/vnet.ts";
import { makeTestCert } from "../../support/tls.ts";

const certDir = await Deno.makeTempDir({ prefix: "ironmesh-tls-" });
const CERT = await makeTestCert(certDir);
globalThis.addEventListener("unload", () => Deno.removeSync(certDir, { recursive: true }));

interface Pair {
  client: Conn;
  server: Conn;
  close(): Promise<void>;
}

async function connect(t: Transport, scheme = ""): Promise<Pair> {
  let gotServer!: (c: Conn) => void;
  const serverConn = new Promise<Conn>((r) => gotServer = r);
  const l = await t.listen({ hostname: "127.0.0.1", port: 0, onConn: gotServer });
  const client = await t.dial(`${scheme}127.0.0.1:${l.port}`, { timeoutMs: 5000 });
  const server = await serverConn;
  return {
    client,
    server,
    close: async () => {
      client.close();
      server.close();
      await Promise.all([client.closed, server.closed]);
      await l.close();
    },
  };
}

const transports: [string, () => Transport, string][] = [
  ["memory", () => new MemoryNetwork().transport(), ""],
  [
    "vnet (latency and jitter)",
    () => new VirtualNetwork({ latencyMs: 3, jitterMs: 4, seed: 7 }).transport("solo", "127.0.0.1"),
    "",
  ],
  ["websocket ws:// (TCP_NODELAY dialer, the default)", () => new WebSocketTransport(), ""],
  [
    "websocket wss:// (TCP_NODELAY dialer, pinned self-signed cert)",
    () => new WebSocketTransport({ tls: CERT, caCerts: [CERT.cert] }),
    "wss://",
  ],
  ["websocket ws:// (Deno WebSocket client)", () => new WebSocketTransport({ client: "web" }), ""],
  [
    "websocket wss:// (Deno WebSocket client, pinned self-signed cert)",
    () => new WebSocketTransport({ tls: CERT, caCerts: [CERT.cert], client: "web" }),
    "wss://",
  ],
];

for (const [name, make, scheme] of transports) {
  Deno.test(`${name} transport: text and binary both ways, in order`, async () => {
    const p = await connect(make(), scheme);
    p.client.send("hello");
    p.client.send(new Uint8Array([1, 2, 3]));
    assertEquals(await p.server.recv(2000), "hello");
    assertEquals(await p.server.recv(2000), new Uint8Array([1, 2, 3]));
    for (let i = 0; i < 200; i++) p.server.send(new Uint8Array([i & 255, 7]));
    for (let i = 0; i < 200; i++) {
      assertEquals(await p.client.recv(2000), new Uint8Array([i & 255, 7]));
    }
    assert(p.server.remoteAddress.startsWith("127.0.0.1:"), p.server.remoteAddress);
    await p.close();
  });

  Deno.test(`${name} transport: close reaches the other side; recv then returns null; send throws`, async () => {
    const p = await connect(make(), scheme);
    p.client.close(1000, "bye");
    assertEquals(await p.server.recv(2000), null);
    await p.server.closed;
    let threw = false;
    try {
      p.client.send("x");
    } catch {
      threw = true;
    }
    assert(threw);
    await p.close();
  });

  Deno.test(`${name} transport: recv times out; a message over 1 MiB is never delivered`, async () => {
    const p = await connect(make(), scheme);
    await assertRejects(() => p.server.recv(50), RecvTimeout);
    let refused = false;
    try {
      p.client.send(new Uint8Array(MAX_MESSAGE_BYTES + 1));
    } catch {
      refused = true;
    }
    const got = refused ? null : await p.server.recv(2000).catch(() => null);
    assert(refused || got === null, "oversize message must be refused or close the connection");
    // Exactly 1 MiB still goes through.
    const q = await connect(make(), scheme);
    q.client.send(new Uint8Array(MAX_MESSAGE_BYTES));
    assertEquals(((await q.server.recv(5000)) as Uint8Array).length, MAX_MESSAGE_BYTES);
    await p.close();
    await q.close();
  });

  Deno.test(`${name} transport: dialing a port nobody listens on fails`, async () => {
    const t = make();
    const l = await t.listen({ hostname: "127.0.0.1", port: 0, onConn: () => {} });
    const port = l.port;
    await l.close();
    await assertRejects(() => t.dial(`${scheme}127.0.0.1:${port}`, { timeoutMs: 2000 }));
  });
}

for (const client of ["nodelay", "web"] as const) {
  Deno.test(`wss:// without the pinned certificate is refused (${client} client; identity still comes from the handshake)`, async () => {
    const server = new WebSocketTransport({ tls: CERT });
    const l = await server.listen({ hostname: "127.0.0.1", port: 0, onConn: () => {} });
    await assertRejects(() =>
      new WebSocketTransport({ client }).dial(`wss://127.0.0.1:${l.port}/`, { timeoutMs: 3000 })
    );
    // A plaintext client probing a TLS server, and a TLS client probing a plaintext server, both fail cleanly
    // and the server keeps serving.
    const plain = new WebSocketTransport();
    const pl = await plain.listen({ hostname: "127.0.0.1", port: 0, onConn: (c) => c.send("ok") });
    await assertRejects(() =>
      new WebSocketTransport({ caCerts: [CERT.cert], client }).dial(`wss://127.0.0.1:${pl.port}/`, {
        timeoutMs: 3000,
      })
    );
    const c = await new WebSocketTransport({ client }).dial(`127.0.0.1:${pl.port}`);
    assertEquals(await c.recv(2000), "ok");
    c.close();
    await c.closed;
    await l.close();
    await pl.close();
  });
}
