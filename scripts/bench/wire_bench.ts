/**
 * ironmesh/0.9 over ws:// between two processes on 127.0.0.1, next to raw Deno
 * WebSocket on the same sizes, as ratios: handshake median, RTT p50/p99 (64 B, 1 KiB),
 * one-way throughput (64 B, 1 KiB, 64 KiB). No rate limit sits in this path yet.
 */
import { fileURLToPath } from "node:url";
import { generateIdentity } from "../../lib/identity/keyfile.ts";
import { fromUtf8, randomBytes, toB64 } from "../../lib/crypto/sodium.ts";
import { clientHandshake } from "../../daemon/handshake_driver.ts";
import { PeerLink } from "../../daemon/peer_link.ts";
import { WebSocketTransport } from "../../daemon/transport/websocket.ts";
import type { Conn } from "../../daemon/transport/transport.ts";
import { fmt, median, printTable, quantile } from "./util.ts";

const PEER = fileURLToPath(new URL("./wire_peer.ts", import.meta.url));

interface Channel {
  send(b: Uint8Array): void;
  recv(): Promise<Uint8Array | string>;
  buffered(): number;
  close(): void;
}

async function startPeer(mode: string, passphrase: string) {
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

async function openChannel(mode: string, port: number, passphrase: string): Promise<Channel> {
  const t = new WebSocketTransport();
  const conn: Conn = await t.dial(`ws://127.0.0.1:${port}/`);
  if (mode === "raw") {
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

async function countSoFar(ch: Channel): Promise<number> {
  ch.send(new Uint8Array([2]));
  const r = await ch.recv();
  return Number(String(typeof r === "string" ? r : fromUtf8(r)).split(":")[1]);
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
  let sent = 0;
  while (performance.now() - t0 < seconds * 1000) {
    for (let i = 0; i < 64; i++) ch.send(b), sent++;
    while (ch.buffered() > 4 * 1024 * 1024) await new Promise((r) => setTimeout(r, 0));
    await new Promise((r) => setTimeout(r, 0));
  }
  // Wait until the receiver has counted everything we sent.
  let got = 0;
  while ((got = (await countSoFar(ch)) - start) < sent) await new Promise((r) => setTimeout(r, 5));
  const secs = (performance.now() - t0) / 1000;
  return { msgs: got / secs, mbs: got * size / secs / 1e6 };
}

/** Run the wire benchmark and print its tables. */
export async function wireBench(): Promise<void> {
  const passphrase = toB64(randomBytes(18));
  const peers = {
    ironmesh: await startPeer("ironmesh", passphrase),
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
      (await openChannel("raw", peers.raw.port, passphrase)).close();
      rawOpen.push(performance.now() - t0);
    }
    printTable("connection setup (ms, median of 15)", [
      "what",
      "ironmesh/0.9 (connect + handshake)",
      "raw WebSocket connect",
      "ratio",
    ], [
      [
        "open",
        median(hs).toFixed(2),
        median(rawOpen).toFixed(2),
        `${(median(hs) / median(rawOpen)).toFixed(1)}×`,
      ],
    ]);

    const im = await openChannel("ironmesh", peers.ironmesh.port, passphrase);
    const raw = await openChannel("raw", peers.raw.port, passphrase);
    const rows: (string | number)[][] = [];
    for (const size of [64, 1024]) {
      const a = await rtt(im, size, 2000), r = await rtt(raw, size, 2000);
      rows.push([
        `${size} B`,
        `${fmt(median(a))} / ${fmt(quantile(a, 0.99))}`,
        `${fmt(median(r))} / ${fmt(quantile(r, 0.99))}`,
        `${(median(a) / median(r)).toFixed(1)}×`,
      ]);
    }
    printTable(
      "round trip, µs (p50 / p99)",
      ["size", "ironmesh/0.9", "raw WebSocket", "p50 ratio"],
      rows,
    );

    const trows: (string | number)[][] = [];
    for (const size of [64, 1024, 65536]) {
      const a = await throughput(im, size, 2), r = await throughput(raw, size, 2);
      trows.push([
        `${size >= 1024 ? size / 1024 + " KiB" : size + " B"}`,
        fmt(a.msgs),
        fmt(a.mbs, 1),
        fmt(r.msgs),
        fmt(r.mbs, 1),
        `${(a.msgs / r.msgs).toFixed(2)}×`,
      ]);
    }
    printTable("one-way throughput (2 s each)", [
      "size",
      "ironmesh msg/s",
      "ironmesh MB/s",
      "raw msg/s",
      "raw MB/s",
      "ironmesh / raw",
    ], trows);
    im.close();
    raw.close();
  } finally {
    await peers.ironmesh.stop();
    await peers.raw.stop();
  }
}
