/**
 * ironmesh/0.9 over ws:// between two processes on 127.0.0.1, next to raw Deno WebSocket on
 * the same sizes, as ratios: handshake median, RTT p50/p99 (64 B, 1 KiB), one-way throughput
 * (64 B, 1 KiB, 64 KiB). Also: raw messages over our TCP_NODELAY dialer (the client ironmesh
 * uses), so the transport's own cost is visible; the receiver with an OpenPool (frames verified
 * and decrypted in workers); and the receiver's capacity when the sender only writes frames
 * sealed beforehand (both processes share the machine's cores, so one-way throughput is bounded
 * by the sum of sender and receiver CPU per message, see `deno task bench frame`).
 *
 * The sender keeps up to 1 MiB queued on the socket, yielding to the event loop after every 32
 * messages through a MessageChannel (~20 µs; a `setTimeout(0)` costs ~2 ms per call here and used
 * to cap the raw baseline at ~29,000 msg/s; node:timers' setImmediate slows node:crypto signing
 * by ~40% for the rest of the process), and sleeps 1 ms while the queue is full.
 * The receiving PeerLink passes every frame through the daemon's per-peer token bucket with the
 * rate raised for the bench (printed below).
 */
import { fileURLToPath } from "node:url";
import { generateIdentity } from "../../lib/identity/keyfile.ts";
import { fromUtf8, randomBytes, toB64 } from "../../lib/crypto/sodium.ts";
import { clientHandshake } from "../../daemon/handshake_driver.ts";
import { DEFAULT_LIMITS } from "../../daemon/node.ts";
import { PeerLink } from "../../daemon/peer_link.ts";
import { WebSocketTransport } from "../../daemon/transport/websocket.ts";
import type { Conn } from "../../daemon/transport/transport.ts";
import { fmt, median, printTable, quantile } from "./util.ts";

const PEER = fileURLToPath(new URL("./wire_peer.ts", import.meta.url));
/** Per-peer inbound rate for the bench (frames/s and burst), instead of the daemon's default. */
const BENCH_PEER_RATE = 10_000_000;
const HIGH_WATER = 1 << 20;
/** Workers of the receiver's OpenPool in the "+ open pool" measurements. */
const POOL_WORKERS = 2;

interface Channel {
  send(b: Uint8Array): void;
  /** ironmesh only: seal a message now, to write it later with `sendRaw`. */
  seal?(b: Uint8Array): Uint8Array;
  sendRaw?(frame: Uint8Array): void;
  recv(): Promise<Uint8Array | string>;
  buffered(): number;
  close(): void;
}

type Mode = "ironmesh" | "raw-web" | "raw-nodelay";

/** Yield one event-loop turn (I/O runs) without timer clamping. */
const yielder = (() => {
  const mc = new MessageChannel();
  const waiting: (() => void)[] = [];
  mc.port1.onmessage = () => waiting.shift()?.();
  return {
    turn: () => new Promise<void>((r) => (waiting.push(r), mc.port2.postMessage(0))),
    close: () => mc.port1.close(),
  };
})();

async function startPeer(mode: "ironmesh" | "raw", passphrase: string, poolWorkers = 0) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-net=127.0.0.1",
      "--allow-read",
      "--allow-env",
      PEER,
      mode,
      passphrase,
      String(BENCH_PEER_RATE),
      String(BENCH_PEER_RATE),
      String(poolWorkers),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const port = Number(new TextDecoder().decode((await reader.read()).value).trim());
  reader.releaseLock();
  return {
    port,
    stop: async () => {
      child.kill("SIGKILL");
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}

async function openChannel(mode: Mode, port: number, passphrase: string): Promise<Channel> {
  const t = new WebSocketTransport({ client: mode === "raw-web" ? "web" : "nodelay" });
  const conn: Conn = await t.dial(`ws://127.0.0.1:${port}/`);
  if (mode !== "ironmesh") {
    return {
      send: (b) => conn.send(b),
      recv: async () => (await conn.recv())!,
      buffered: () => conn.bufferedAmount(),
      close: () => conn.close(),
    };
  }
  const h = await clientHandshake(conn, {
    identity: generateIdentity("bench-client"),
    passphrase,
    tofu: () => ({ ok: true }),
  });
  const inbox: (Uint8Array | string)[] = [];
  let wake: (() => void) | null = null;
  const link = new PeerLink(h.conn, h.session, h.peer, {
    onMessage: (m) => {
      inbox.push(m.payload[0] === 0x63 ? fromUtf8(m.payload) : m.payload);
      wake?.();
    },
  });
  return {
    send: (b) => link.send({ type: "MSG", payload: b, destination: h.peer.nodeId }),
    seal: (b) => h.session.seal({ type: "MSG", payload: b, destination: h.peer.nodeId }),
    sendRaw: (f) => conn.send(f),
    recv: async () => {
      while (!inbox.length) await new Promise<void>((r) => wake = r);
      return inbox.shift()!;
    },
    buffered: () => conn.bufferedAmount(),
    close: () => link.close(),
  };
}

async function rtt(ch: Channel, size: number, n: number): Promise<number[]> {
  const b = randomBytes(size);
  b[0] = 1;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    ch.send(b);
    await ch.recv();
    out.push((performance.now() - t0) * 1000);
  }
  return out.slice(Math.floor(n / 10)); // drop warm-up
}

async function countSoFar(ch: Channel): Promise<{ count: number; dropped: number }> {
  ch.send(new Uint8Array([2]));
  const r = await ch.recv();
  const parts = String(typeof r === "string" ? r : fromUtf8(r)).split(":");
  return { count: Number(parts[1]), dropped: Number(parts[2] ?? 0) };
}

async function throughput(
  ch: Channel,
  size: number,
  seconds: number,
): Promise<{ msgs: number; mbs: number }> {
  const b = randomBytes(size);
  b[0] = 0;
  const start = await countSoFar(ch);
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let sent = 0;
  while (performance.now() < end) {
    if (ch.buffered() >= HIGH_WATER) {
      await new Promise((r) => setTimeout(r, 1)); // the receiver is behind: sleep, don't spin
      continue;
    }
    for (let i = 0; i < 32 && ch.buffered() < HIGH_WATER; i++) ch.send(b), sent++;
    await yielder.turn(); // let the socket write (and read the peer's replies)
  }
  // Wait until the receiver has counted everything we sent.
  let now = start;
  while ((now = await countSoFar(ch)).count - start.count < sent) {
    if (now.dropped > start.dropped) throw new Error("the receiver's rate limit dropped frames");
    await new Promise((r) => setTimeout(r, 2));
  }
  const got = now.count - start.count;
  const secs = (performance.now() - t0) / 1000;
  return { msgs: got / secs, mbs: got * size / secs / 1e6 };
}

/**
 * How fast the receiving process opens frames when the sender only writes: `n` frames sealed
 * beforehand, then written as fast as the socket takes them.
 */
async function receiveCapacity(ch: Channel, size: number, n: number): Promise<number> {
  const b = randomBytes(size);
  b[0] = 0;
  const start = await countSoFar(ch);
  const frames: Uint8Array[] = [];
  for (let i = 0; i < n; i++) frames.push(ch.seal!(b));
  const t0 = performance.now();
  for (let i = 0; i < n;) {
    if (ch.buffered() >= HIGH_WATER) {
      await new Promise((r) => setTimeout(r, 1));
      continue;
    }
    for (let k = 0; k < 32 && i < n; k++) ch.sendRaw!(frames[i++]);
    await yielder.turn();
  }
  while ((await countSoFar(ch)).count - start.count < n) {
    await new Promise((r) => setTimeout(r, 2));
  }
  return n / ((performance.now() - t0) / 1000);
}

const ratio = (a: number, b: number) => `${(a / b).toFixed(a / b < 0.1 ? 3 : 2)}×`;

/** Run the wire benchmark and print its tables. */
export async function wireBench(): Promise<void> {
  const passphrase = toB64(randomBytes(18));
  console.log(
    `\nDoS caps raised for this bench: the receiving PeerLink admits frames through the ` +
      `daemon's per-peer token bucket at ${fmt(BENCH_PEER_RATE)} frames/s (burst ` +
      `${fmt(BENCH_PEER_RATE)}) instead of the default ${fmt(DEFAULT_LIMITS.peerRate)}/s ` +
      `(burst ${fmt(DEFAULT_LIMITS.peerBurst)}).`,
  );
  const peers = {
    ironmesh: await startPeer("ironmesh", passphrase),
    pooled: await startPeer("ironmesh", passphrase, POOL_WORKERS),
    raw: await startPeer("raw", passphrase),
  };
  try {
    const hs: number[] = [];
    for (let i = 0; i < 15; i++) {
      const t0 = performance.now();
      const ch = await openChannel("ironmesh", peers.ironmesh.port, passphrase);
      hs.push(performance.now() - t0);
      ch.close();
    }
    const rawOpen: number[] = [];
    for (let i = 0; i < 15; i++) {
      const t0 = performance.now();
      (await openChannel("raw-web", peers.raw.port, passphrase)).close();
      rawOpen.push(performance.now() - t0);
    }
    printTable("connection setup (ms, median of 15)", [
      "what",
      "ironmesh/0.9 (connect + handshake)",
      "raw Deno WebSocket connect",
      "ratio",
    ], [
      [
        "open",
        median(hs).toFixed(2),
        median(rawOpen).toFixed(2),
        ratio(median(hs), median(rawOpen)),
      ],
    ]);

    const im = await openChannel("ironmesh", peers.ironmesh.port, passphrase);
    const web = await openChannel("raw-web", peers.raw.port, passphrase);
    const nd = await openChannel("raw-nodelay", peers.raw.port, passphrase);
    const rows: (string | number)[][] = [];
    for (const size of [64, 1024]) {
      const a = await rtt(im, size, 2000), r = await rtt(web, size, 2000);
      const n = await rtt(nd, size, 2000);
      rows.push([
        `${size} B`,
        `${fmt(median(a))} / ${fmt(quantile(a, 0.99))}`,
        `${fmt(median(r))} / ${fmt(quantile(r, 0.99))}`,
        `${fmt(median(n))} / ${fmt(quantile(n, 0.99))}`,
        ratio(median(a), median(r)),
      ]);
    }
    printTable(
      "round trip, µs (p50 / p99)",
      ["size", "ironmesh/0.9", "raw Deno WebSocket", "raw, nodelay dialer", "p50 ratio"],
      rows,
    );

    const pooled = await openChannel("ironmesh", peers.pooled.port, passphrase);
    const trows: (string | number)[][] = [];
    for (const size of [64, 1024, 65536]) {
      const a = await throughput(im, size, 2), r = await throughput(web, size, 2);
      const n = await throughput(nd, size, 2);
      const p = await throughput(pooled, size, 2);
      trows.push([
        `${size >= 1024 ? size / 1024 + " KiB" : size + " B"}`,
        fmt(a.msgs),
        fmt(a.mbs, 1),
        `${fmt(p.msgs)} / ${fmt(p.mbs, 1)}`,
        fmt(r.msgs),
        fmt(r.mbs, 1),
        `${fmt(n.msgs)} / ${fmt(n.mbs, 1)}`,
        ratio(a.msgs, r.msgs),
      ]);
    }
    printTable("one-way throughput (2 s each)", [
      "size",
      "ironmesh msg/s",
      "ironmesh MB/s",
      `+ open pool (${POOL_WORKERS} workers) msg/s / MB/s`,
      "raw Deno WS msg/s",
      "raw Deno WS MB/s",
      "raw nodelay msg/s / MB/s",
      "ironmesh / raw",
    ], trows);

    const crows: (string | number)[][] = [];
    for (const [size, n] of [[1024, 16_000], [65536, 1_200]]) {
      const a = await receiveCapacity(im, size, n), p = await receiveCapacity(pooled, size, n);
      crows.push([
        `${size / 1024} KiB`,
        `${fmt(a)} / ${fmt((a * size) / 1e6, 1)}`,
        `${fmt(p)} / ${fmt((p * size) / 1e6, 1)}`,
        ratio(p, a),
      ]);
    }
    printTable("receiver capacity, frames sealed beforehand (msg/s / MB/s)", [
      "size",
      "ironmesh",
      `+ open pool (${POOL_WORKERS} workers)`,
      "pool / none",
    ], crows);
    pooled.close();
    im.close();
    web.close();
    nd.close();
  } finally {
    yielder.close();
    await peers.ironmesh.stop();
    await peers.pooled.stop();
    await peers.raw.stop();
  }
}
