// Scale: 100 real nodes (each with its own state dir, store, audit log and trust store) in one
// process, on the virtual network and one fake clock, joined in a random connected topology of
// average degree 3.5. Every node must learn the shortest route to every other node, and the keys
// to seal to it; then a message between each of 500 sampled pairs is delivered exactly once
// (sealed end to end, relayed, acknowledged back through the mesh). Convergence time is printed.
import { assert, assertEquals } from "../support/assert.ts";
import { hopDistances, randomConnectedGraph, seededRandom, Sim } from "../support/vnet.ts";

const N = 100;
const EDGES = 175; // average degree 3.5
const PAIRS = 500;
const SEED = 20_260_101;

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test(`mesh scale: ${N} nodes in a random connected topology converge; ${PAIRS} sampled pairs each get a message exactly once`, async () => {
  const random = seededRandom(SEED);
  const graph = randomConnectedGraph(N, EDGES, random);
  const dist = hopDistances(N, graph);
  const degrees = new Array(N).fill(0);
  for (const [a, b] of graph) degrees[a]++, degrees[b]++;
  const avgDegree = (2 * graph.length) / N;
  assert(avgDegree >= 3 && avgDegree <= 4, `average degree ${avgDegree}`);
  assert(dist.every((row) => row.every(Number.isFinite)), "connected");
  const diameter = Math.max(...dist.flat());

  const names = [...Array(N).keys()].map((i) => `n${String(i).padStart(3, "0")}`);
  const t0 = performance.now();
  // --max-hops 15 (the routing horizon): the default 5 would not reach across this diameter.
  const sim = await Sim.start(names, { seed: SEED, node: () => ({ mesh: { maxHops: 15 } }) });
  try {
    const nodes = sim.nodes;
    const tStarted = performance.now();
    await sim.link(graph.map(([a, b]) => [names[a], names[b]]), 120_000);
    const tLinked = performance.now();

    /** Pairs whose route is not a shortest path, or whose destination key is unknown. */
    const wrong = (): number => {
      let bad = 0;
      for (let i = 0; i < N; i++) {
        for (let j = 0; j < N; j++) {
          if (i === j) continue;
          const dest = nodes[j].nodeId;
          const r = nodes[i].mesh.reach(dest);
          if (!r || r.hops !== dist[i][j] || nodes[i].mesh.keysOf(dest) === null) bad++;
        }
      }
      return bad;
    };
    const converged = await sim.stepsUntil(() => wrong() === 0, 30, "100-node convergence");
    const tConverged = performance.now();
    console.log(
      `  ${N} nodes, ${graph.length} links (average degree ${avgDegree}, diameter ${diameter}): ` +
        `every node has the shortest route and keys to all ${N - 1} others ${converged} ` +
        `simulated s after the links came up (wall: start ${
          ((tStarted - t0) / 1000).toFixed(1)
        } s, link-up ${((tLinked - tStarted) / 1000).toFixed(1)} s, convergence ${
          ((tConverged - tLinked) / 1000).toFixed(1)
        } s)`,
    );
    assert(converged <= 15, `converged in ${converged} simulated s`);

    // 500 distinct ordered pairs, sampled with the seeded RNG.
    const pairs: [number, number][] = [];
    const taken = new Set<number>();
    while (pairs.length < PAIRS) {
      const i = Math.floor(random() * N), j = Math.floor(random() * N);
      if (i === j || taken.has(i * N + j)) continue;
      taken.add(i * N + j);
      pairs.push([i, j]);
    }
    const hops = pairs.map(([i, j]) => dist[i][j]);
    const got = new Map<string, [number, number, string][]>();
    const index = new Map(nodes.map((n, i) => [n.nodeId, i]));
    nodes.forEach((n, i) =>
      n.bus.subscribe((e) => {
        if (e.type !== "message-in") return;
        const l = got.get(e.msgId) ?? [];
        l.push([i, index.get(e.from) ?? -1, dec(e.payload)]);
        got.set(e.msgId, l);
      })
    );
    const sent = new Map<string, [number, number, string]>();
    const tSend = performance.now();
    const submitted = await Promise.all(
      pairs.map(([i, j]) => nodes[i].send(nodes[j].nodeId, enc(`${names[i]} → ${names[j]}`))),
    );
    submitted.forEach((s, k) => {
      const [i, j] = pairs[k];
      sent.set(s.msgId, [j, i, `${names[i]} → ${names[j]}`]);
    });
    const queued = () =>
      nodes.reduce(
        (n, x) => n + [...x.store.queue.pendingCounts().values()].reduce((a, b) => a + b, 0),
        0,
      );
    const took = await sim.stepsUntil(
      () => got.size === PAIRS && queued() === 0,
      30,
      `${PAIRS} deliveries and their acknowledgements`,
    );
    const sendMs = performance.now() - tSend;
    // A few more seconds: nothing is re-sent or delivered again.
    for (let i = 0; i < 3; i++) await sim.step();
    for (const [id, want] of sent) assertEquals(got.get(id), [want], `message ${id}`);
    assertEquals(got.size, PAIRS);
    console.log(
      `  ${PAIRS} pairs (${Math.min(...hops)}–${Math.max(...hops)} hops, mean ${
        (hops.reduce((a, b) => a + b, 0) / PAIRS).toFixed(2)
      }): all delivered exactly once and acknowledged in ${took} simulated s ` +
        `(wall ${(sendMs / 1000).toFixed(1)} s)`,
    );
  } finally {
    await sim.stop();
  }
});
