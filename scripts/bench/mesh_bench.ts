/**
 * The mesh: 3 hops next to 1 hop in the same run, as ratios, and the convergence time of the
 * 100-node virtual network.
 *
 * 1. A line of four real nodes A–B–C–D in this process (one thread), over real WebSockets
 *    (ws:// on 127.0.0.1), state dirs in the temp dir (so every relay fsyncs its MESSAGE_RELAYED
 *    audit entry, as a daemon does). A→B is one hop (direct); A→D is three hops (sealed end to end
 *    for D, relayed by B and C, the ACK inner-signed and relayed back). RTT: send → the sender's
 *    `delivered` event (the destination's ACK back at A), one message at a time, 200 B; median and
 *    p99. Throughput: a burst of messages submitted at once, until the last ACK. The per-peer
 *    inbound rate limit is raised for the bench (the default 1,000 frames/s would throttle it),
 *    and all four nodes share one core's event loop: relays' CPU is not in parallel here.
 * 2. The 100-node vnet of tests/daemon/mesh_scale_test.ts (random connected topology, average
 *    degree 3.5, in-memory virtual network, fake clock): simulated seconds from the last link up
 *    until every node has the shortest route and the keys to every other, and the wall time of
 *    link-up and convergence. Deno grants /dev/shm only with --allow-all, which `deno task bench`
 *    does not pass, so the state dirs are on disk here and the wall times include every node's
 *    audit fsyncs (tens of thousands); the test (`--allow-all`) runs on tmpfs, ~4× faster.
 *
 *   deno task bench mesh
 */
import type { MeshNode } from "../../daemon/node.ts";
import { addrOf, startNode, until } from "../../tests/support/nodes.ts";
import { hopDistances, randomConnectedGraph, seededRandom, Sim } from "../../tests/support/vnet.ts";
import { fmt, median, printTable, quantile } from "./util.ts";

const RTT_SAMPLES = 200;
const RTT_WARMUP = 20;
const BURSTS: [bytes: number, count: number][] = [[200, 1000], [4096, 500]];
const BURST_ROUNDS = 3;
/** Per-peer inbound frames/s (and burst) for the bench, instead of the daemon's 1,000. */
const BENCH_PEER_RATE = 1_000_000;

function ratio(a: number, b: number): string {
  return `${fmt(a / b, 2)}×`;
}

/** Resolves each message's `delivered` event (the destination's ACK) at the sender. */
function deliveryWaiter(node: MeshNode) {
  const waiting = new Map<string, () => void>();
  const early = new Set<string>();
  node.bus.subscribe((e) => {
    if (e.type !== "delivered") return;
    const w = waiting.get(e.msgId);
    if (w) {
      waiting.delete(e.msgId);
      w();
    } else early.add(e.msgId);
  });
  return (msgId: string) =>
    new Promise<void>((resolve) => {
      if (early.delete(msgId)) resolve();
      else waiting.set(msgId, resolve);
    });
}

/** Send → ACK times of 200-byte messages, one at a time, alternating between the two targets. */
async function rtts(from: MeshNode, targets: MeshNode[], acked: (id: string) => Promise<void>) {
  const payload = new Uint8Array(200).fill(0x61);
  const out: number[][] = targets.map(() => []);
  for (let i = 0; i < RTT_WARMUP + RTT_SAMPLES; i++) {
    for (const [k, to] of targets.entries()) {
      const t0 = performance.now();
      const s = await from.send(to.nodeId, payload);
      await acked(s.msgId);
      if (i >= RTT_WARMUP) out[k].push(performance.now() - t0);
    }
  }
  return out;
}

/** Messages per second of a burst submitted at once, until the last ACK. */
async function burst(
  from: MeshNode,
  to: MeshNode,
  acked: (id: string) => Promise<void>,
  bytes: number,
  count: number,
): Promise<number> {
  const payload = new Uint8Array(bytes).fill(0x62);
  const t0 = performance.now();
  const sent = await Promise.all(
    Array.from({ length: count }, () => from.send(to.nodeId, payload)),
  );
  await Promise.all(sent.map((s) => acked(s.msgId)));
  return count / ((performance.now() - t0) / 1000);
}

/** Section 1: the line A–B–C–D over ws://, 1 hop next to 3 hops. */
async function hops(): Promise<void> {
  const nodes: MeshNode[] = [];
  try {
    for (const name of ["a", "b", "c", "d"]) {
      nodes.push(
        await startNode(`bench-${name}`, {
          dial: { allowPlaintextWs: true },
          limits: { peerRate: BENCH_PEER_RATE, peerBurst: BENCH_PEER_RATE },
          reconnectTickS: 1,
        }),
      );
    }
    const [a, b, , d] = nodes;
    for (let i = 1; i < nodes.length; i++) await nodes[i].connect(`ws://${addrOf(nodes[i - 1])}`);
    await until(
      () => a.mesh.via(d.nodeId) !== null && d.mesh.via(a.nodeId) !== null,
      30_000,
      "A's route and keys for D",
    );
    const acked = deliveryWaiter(a);
    const [rtt1, rtt3] = await rtts(a, [b, d], acked);
    const rows: (string | number)[][] = [];
    const rttRows: [string, number][] = [
      [`RTT p50, send → ACK, 200 B, ${RTT_SAMPLES} each, interleaved (ms)`, 0.5],
      ["RTT p99 (ms)", 0.99],
    ];
    for (const [label, q] of rttRows) {
      const one = q === 0.5 ? median(rtt1) : quantile(rtt1, q);
      const three = q === 0.5 ? median(rtt3) : quantile(rtt3, q);
      rows.push([label, fmt(one, 2), fmt(three, 2), ratio(three, one)]);
    }
    for (const [bytes, count] of BURSTS) {
      // Alternating rounds, median of each (the state dirs' fsyncs make single runs noisy).
      const one: number[] = [], three: number[] = [];
      for (let r = 0; r < BURST_ROUNDS; r++) {
        one.push(await burst(a, b, acked, bytes, count));
        three.push(await burst(a, d, acked, bytes, count));
      }
      const t1 = median(one), t3 = median(three);
      rows.push([
        `throughput, ${count} × ${bytes} B to the last ACK, median of ${BURST_ROUNDS} (msg/s)`,
        fmt(t1),
        fmt(t3),
        ratio(t3, t1),
      ]);
    }
    printTable(
      "mesh: 3 hops next to 1 hop (line A–B–C–D, 4 nodes in one process, ws:// on 127.0.0.1)",
      ["measure", "1 hop (A→B, direct)", "3 hops (A→D, sealed, 2 relays)", "3 hops / 1 hop"],
      rows,
    );
  } finally {
    for (const n of nodes) await n.stop();
  }
}

/** Section 2: the 100-node vnet of the scale test. */
async function convergence(): Promise<void> {
  const N = 100, EDGES = 175, SEED = 20_260_101;
  const graph = randomConnectedGraph(N, EDGES, seededRandom(SEED));
  const dist = hopDistances(N, graph);
  const diameter = Math.max(...dist.flat());
  const names = [...Array(N).keys()].map((i) => `n${String(i).padStart(3, "0")}`);
  const t0 = performance.now();
  const sim = await Sim.start(names, { seed: SEED, node: () => ({ mesh: { maxHops: 15 } }) });
  try {
    const tStarted = performance.now();
    await sim.link(graph.map(([x, y]) => [names[x], names[y]]), 180_000);
    const tLinked = performance.now();
    const nodes = sim.nodes;
    const done = () =>
      nodes.every((n, i) =>
        nodes.every((m, j) => {
          if (i === j) return true;
          const r = n.mesh.reach(m.nodeId);
          return r !== null && r.hops === dist[i][j] && n.mesh.keysOf(m.nodeId) !== null;
        })
      );
    const simS = await sim.stepsUntil(done, 60, "convergence");
    const tConverged = performance.now();
    const root = sim.stateRoot ?? "";
    const where = root.startsWith("/dev/shm")
      ? "state dirs on tmpfs"
      : `state dirs on disk, ${root.split("/").slice(0, -1).join("/") || "/"}`;
    printTable(
      `mesh: convergence of 100 nodes (vnet: in-memory, fake clock, one process; ${where})`,
      [
        "nodes",
        "links",
        "avg degree",
        "diameter",
        "converged after link-up",
        "wall: start",
        "wall: link-up",
        "wall: convergence",
      ],
      [[
        N,
        graph.length,
        fmt((2 * graph.length) / N, 1),
        diameter,
        `${simS} simulated s`,
        `${fmt((tStarted - t0) / 1000, 1)} s`,
        `${fmt((tLinked - tStarted) / 1000, 1)} s`,
        `${fmt((tConverged - tLinked) / 1000, 1)} s`,
      ]],
    );
  } finally {
    await sim.stop();
  }
}

/** `deno task bench mesh`. */
export async function meshBench(): Promise<void> {
  await hops();
  await convergence();
}
