/**
 * A virtual network for in-process tests (ARCHITECTURE.md idea 3): a `Transport` like the
 * in-memory one (daemon/transport/memory.ts, unchanged), plus what real networks do to traffic —
 * per-link latency and jitter, message loss drawn from a seeded RNG, and cuts and partitions
 * between hosts that can be healed again.
 *
 * Hosts: every `transport(label)` is one host (one node), with its own address (10.77.x.y unless
 * given) as the remote address its connections show. Listeners are keyed by `hostname:port` as
 * in the memory transport, and ports are unique across the network, so `addrOf(node)` works.
 *
 * Links are conditioned per unordered pair of hosts (`setLink`, or the network defaults):
 *
 * - **Latency**: each direction of a connection is a FIFO pipe (a stream, like TCP): a message is
 *   delivered `latencyMs + U(0, jitterMs)` after it was sent, but never before the message sent
 *   ahead of it, so jitter never reorders. A close travels behind the messages sent before it.
 *   Latency is real time (timers); tests that drive a `FakeClock` keep it small.
 * - **Loss** (`loss`, a probability): a WebSocket never loses one message inside a connection, so
 *   loss here is a model of what the protocol above must survive anyway — frames that never take
 *   effect (a peer's rate limit drops them, a relay dies with them in its buffer). Only binary
 *   messages are dropped (the encrypted frames after the handshake); the text messages of the
 *   handshake always arrive, so links still come up and loss is exercised where it matters: a
 *   dropped frame is a sequence gap the replay window accepts, and a lost message or `ACK` leaves
 *   the message unacknowledged in the sender's outbox, which re-sends it (`Outbox.retransmit`).
 * - **Cuts** (`cut`, `partition`): mode `reset` (default) closes every connection across the cut
 *   at once, as a TCP reset or the peer's heartbeat timeout would, and refuses new dials across it
 *   until `heal`; mode `blackhole` keeps the connections open but drops everything sent across
 *   and lets dials time out — the node only finds out through its heartbeat.
 *
 * `close()` ends every connection and timer (call it after stopping the nodes).
 */
import {
  type Conn,
  type DialOptions,
  Inbox,
  type Listener,
  type ListenOptions,
  MAX_MESSAGE_BYTES,
  type Transport,
  type WireMessage,
} from "../../daemon/transport/transport.ts";
import type { MeshNode, NodeOptions } from "../../daemon/node.ts";
import { FakeClock } from "../../lib/clock.ts";
import { addrOf, startNode, until } from "./nodes.ts";

/** How one link (a pair of hosts) treats traffic. */
export interface LinkConditions {
  /** One-way delay in ms (default 0: delivered on the next microtask, like the memory transport). */
  latencyMs?: number;
  /** Extra uniform random delay in ms, 0..jitterMs (default 0; never reorders). */
  jitterMs?: number;
  /** Probability that a binary message is dropped (default 0). */
  loss?: number;
}

/** Options of a virtual network. */
export interface VirtualNetworkOptions extends LinkConditions {
  /** Seed of the RNG behind loss and jitter (default 1). */
  seed?: number;
}

/** How a cut behaves. */
export type CutMode = "reset" | "blackhole";

/** Counters of everything the network carried. */
export interface VnetStats {
  /** Messages handed to `send`. */
  sent: number;
  /** Messages pushed to the receiver's inbox. */
  delivered: number;
  /** Binary messages dropped by the loss model. */
  lost: number;
  /** Messages dropped by a blackhole cut. */
  blackholed: number;
  /** Connections closed by a reset cut. */
  resets: number;
  /** Dials refused or timed out across a cut. */
  refusedDials: number;
  /** Connections made. */
  connections: number;
}

/** mulberry32: a small, fast, seeded PRNG in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pairKey = (a: string, b: string) => (a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`);

type Item = { at: number; msg: WireMessage } | { at: number; close: [number, string] };

/** One direction of a connection: a FIFO of messages in flight toward `to`. */
class Pipe {
  readonly #queue: Item[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;
  #lastAt = 0;
  #microtask = false;

  constructor(readonly to: VConn) {}

  push(item: Item): void {
    item.at = Math.max(item.at, this.#lastAt);
    this.#lastAt = item.at;
    this.#queue.push(item);
    this.#arm();
  }

  #arm(): void {
    if (this.#timer !== null || this.#microtask || this.#queue.length === 0) return;
    const wait = this.#queue[0].at - performance.now();
    if (wait <= 0) {
      this.#microtask = true;
      queueMicrotask(() => {
        this.#microtask = false;
        this.#drain();
      });
    } else {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#drain();
      }, Math.ceil(wait));
    }
  }

  #drain(): void {
    const now = performance.now();
    while (this.#queue.length && this.#queue[0].at <= now + 0.5) {
      const item = this.#queue.shift()!;
      if ("close" in item) this.to.remoteClosed(...item.close);
      else this.to.arrive(item.msg);
    }
    this.#arm();
  }

  /** Messages (and closes) in flight. */
  get size(): number {
    return this.#queue.length;
  }

  /** Forget everything in flight (a reset). */
  clear(): void {
    this.#queue.length = 0;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}

/** One end of a virtual connection. */
class VConn implements Conn {
  readonly kind = "memory";
  readonly inbox = new Inbox();
  /** Pipe carrying what this end sends. */
  out!: Pipe;
  peer!: VConn;
  #open = true;
  #resolveClosed!: (r: string) => void;
  readonly closed = new Promise<string>((r) => this.#resolveClosed = r);

  constructor(
    readonly net: VirtualNetwork,
    /** Host label of this end and of the other end. */
    readonly host: string,
    readonly peerHost: string,
    readonly remoteAddress: string,
  ) {}

  get open(): boolean {
    return this.#open;
  }

  send(msg: WireMessage): void {
    if (!this.#open) throw new Error("connection closed");
    const size = typeof msg === "string" ? new TextEncoder().encode(msg).length : msg.length;
    if (size > MAX_MESSAGE_BYTES) {
      this.close(1009, "message too big");
      return;
    }
    const at = this.net.admit(this.host, this.peerHost, typeof msg !== "string");
    if (at === null) return;
    // Copy bytes so the sender can reuse its buffer.
    this.out.push({ at, msg: typeof msg === "string" ? msg : msg.slice() });
  }

  recv(timeoutMs?: number): Promise<WireMessage | null> {
    return this.inbox.recv(timeoutMs);
  }

  close(code = 1000, reason = "closed"): void {
    if (!this.#open) return;
    this.#end(reason);
    // The close reaches the other end behind what was sent before it (not across a blackhole:
    // there the other end finds out by its heartbeat).
    if (this.net.cutMode(this.host, this.peerHost) === "blackhole") return;
    this.out.push({ at: this.net.delayAt(this.host, this.peerHost), close: [code, reason] });
  }

  bufferedAmount(): number {
    return 0;
  }

  /** A message reached this end. */
  arrive(msg: WireMessage): void {
    if (!this.#open) return;
    this.net.stats.delivered++;
    this.inbox.push(msg);
  }

  /** The other end closed. */
  remoteClosed(_code: number, reason: string): void {
    if (!this.#open) return;
    this.#end(reason);
  }

  /** Drop both ends now, with whatever is in flight (a reset cut, or `VirtualNetwork.close`). */
  reset(reason: string): void {
    for (const c of [this, this.peer]) {
      c.out.clear();
      if (c.#open) c.#end(reason);
    }
  }

  #end(reason: string): void {
    this.#open = false;
    this.inbox.end();
    this.#resolveClosed(reason);
    this.net.forget(this);
  }
}

interface VListener {
  host: string;
  opts: ListenOptions;
}

/** A transport of one host of the virtual network. */
export class VnetTransport implements Transport {
  readonly name = "memory";
  constructor(
    readonly net: VirtualNetwork,
    /** Host label (a node's name, say). */
    readonly host: string,
    /** The address its connections come from. */
    readonly hostname: string,
  ) {}

  listen(opts: ListenOptions): Promise<Listener> {
    return this.net.listen(this, opts);
  }

  dial(address: string, opts?: DialOptions): Promise<Conn> {
    return this.net.dial(this, address, opts);
  }
}

/** The virtual network shared by the transports of one test. */
export class VirtualNetwork {
  readonly stats: VnetStats = {
    sent: 0,
    delivered: 0,
    lost: 0,
    blackholed: 0,
    resets: 0,
    refusedDials: 0,
    connections: 0,
  };
  readonly #defaults: Required<LinkConditions>;
  readonly #links = new Map<string, LinkConditions>();
  readonly #cuts = new Map<string, CutMode>();
  readonly #listeners = new Map<string, VListener>();
  readonly #conns = new Set<VConn>();
  readonly #dialTimers = new Map<ReturnType<typeof setTimeout>, () => void>();
  readonly #random: () => number;
  #nextPort = 41000;
  #nextHost = 1;

  constructor(opts: VirtualNetworkOptions = {}) {
    this.#random = seededRandom(opts.seed ?? 1);
    this.#defaults = {
      latencyMs: opts.latencyMs ?? 0,
      jitterMs: opts.jitterMs ?? 0,
      loss: opts.loss ?? 0,
    };
  }

  /** A transport for the host `label`, whose connections come from `hostname` (default: its own 10.77.x.y). */
  transport(label = `h${this.#nextHost}`, hostname?: string): VnetTransport {
    const n = this.#nextHost++;
    return new VnetTransport(this, label, hostname ?? `10.77.${n >> 8}.${n & 255}`);
  }

  // -------------------------------------------------------------------------------------------
  // Conditions

  /** Change the defaults of every link without its own conditions. */
  setDefaults(c: LinkConditions): void {
    Object.assign(this.#defaults, c);
  }

  /** Conditions of the link between hosts `a` and `b` (merged over the defaults). */
  setLink(a: string, b: string, c: LinkConditions): void {
    this.#links.set(pairKey(a, b), { ...this.#links.get(pairKey(a, b)), ...c });
  }

  /** The conditions in force between `a` and `b`. */
  conditions(a: string, b: string): Required<LinkConditions> {
    return { ...this.#defaults, ...this.#links.get(pairKey(a, b)) };
  }

  /** Cut the link between hosts `a` and `b` (see the module doc for the modes). */
  cut(a: string, b: string, mode: CutMode = "reset"): void {
    this.#cuts.set(pairKey(a, b), mode);
    if (mode === "reset") {
      for (const c of [...this.#conns]) {
        if (pairKey(c.host, c.peerHost) === pairKey(a, b) && c.open) {
          this.stats.resets++;
          c.reset("connection reset (vnet cut)");
        }
      }
    }
  }

  /** Restore the link between `a` and `b` (nodes re-dial on their own schedule). */
  heal(a: string, b: string): void {
    this.#cuts.delete(pairKey(a, b));
  }

  /** Cut every link between the two groups of hosts. */
  partition(groupA: readonly string[], groupB: readonly string[], mode: CutMode = "reset"): void {
    for (const a of groupA) for (const b of groupB) if (a !== b) this.cut(a, b, mode);
  }

  /** Heal every link between the two groups (or every cut, without arguments). */
  healPartition(groupA?: readonly string[], groupB?: readonly string[]): void {
    if (!groupA || !groupB) {
      this.#cuts.clear();
      return;
    }
    for (const a of groupA) for (const b of groupB) this.heal(a, b);
  }

  /** Whether traffic passes between `a` and `b`. */
  reachable(a: string, b: string): boolean {
    return !this.#cuts.has(pairKey(a, b));
  }

  /** How the link between `a` and `b` is cut, or null. */
  cutMode(a: string, b: string): CutMode | null {
    return this.#cuts.get(pairKey(a, b)) ?? null;
  }

  /** Live connection ends. */
  get connectionEnds(): number {
    return this.#conns.size;
  }

  /** Messages in flight or received and not yet read, over every live connection. */
  backlog(): number {
    let n = 0;
    for (const c of this.#conns) n += c.out.size + c.inbox.size;
    return n;
  }

  // -------------------------------------------------------------------------------------------
  // Used by the transports and connections

  /** When a message sent now from `from` to `to` arrives (ms, performance clock). */
  delayAt(from: string, to: string): number {
    const c = this.conditions(from, to);
    const jitter = c.jitterMs > 0 ? this.#random() * c.jitterMs : 0;
    return performance.now() + c.latencyMs + jitter;
  }

  /** A message is sent from `from` to `to`: its arrival time, or null when it is dropped. */
  admit(from: string, to: string, binary: boolean): number | null {
    this.stats.sent++;
    if (this.#cuts.get(pairKey(from, to)) === "blackhole") {
      this.stats.blackholed++;
      return null;
    }
    const c = this.conditions(from, to);
    if (binary && c.loss > 0 && this.#random() < c.loss) {
      this.stats.lost++;
      return null;
    }
    return c.latencyMs > 0 || c.jitterMs > 0 ? this.delayAt(from, to) : 0;
  }

  forget(c: VConn): void {
    this.#conns.delete(c);
  }

  listen(t: VnetTransport, opts: ListenOptions): Promise<Listener> {
    const port = opts.port || this.#nextPort++;
    const key = `${opts.hostname}:${port}`;
    if (this.#listeners.has(key)) {
      return Promise.reject(new Deno.errors.AddrInUse(`${key} in use`));
    }
    this.#listeners.set(key, { host: t.host, opts });
    return Promise.resolve({
      hostname: opts.hostname,
      port,
      close: () => {
        this.#listeners.delete(key);
        return Promise.resolve();
      },
    });
  }

  dial(t: VnetTransport, address: string, opts?: DialOptions): Promise<Conn> {
    const key = address.replace(/^wss?:\/\//, "").replace(/\/$/, "");
    const l = this.#listeners.get(key);
    if (!l) {
      return Promise.reject(new Deno.errors.ConnectionRefused(`connection refused: ${address}`));
    }
    const cut = this.#cuts.get(pairKey(t.host, l.host));
    if (cut === "reset") {
      this.stats.refusedDials++;
      return Promise.reject(
        new Deno.errors.ConnectionRefused(`connection refused: ${address} (vnet cut)`),
      );
    }
    if (cut === "blackhole") {
      this.stats.refusedDials++;
      const ms = opts?.timeoutMs ?? 10_000;
      return new Promise((_, reject) => {
        const fail = () => reject(new Deno.errors.TimedOut(`dial ${address} timed out (vnet cut)`));
        const timer = setTimeout(() => {
          this.#dialTimers.delete(timer);
          fail();
        }, ms);
        this.#dialTimers.set(timer, fail);
      });
    }
    const local = new VConn(this, t.host, l.host, address);
    const remote = new VConn(this, l.host, t.host, `${t.hostname}:${this.#nextPort++}`);
    local.peer = remote;
    remote.peer = local;
    local.out = new Pipe(remote);
    remote.out = new Pipe(local);
    this.#conns.add(local);
    this.#conns.add(remote);
    this.stats.connections++;
    const setup = this.conditions(t.host, l.host).latencyMs;
    if (setup > 0) setTimeout(() => remote.open && l.opts.onConn(remote), setup);
    else queueMicrotask(() => l.opts.onConn(remote));
    return Promise.resolve(local);
  }

  /** End every connection and pending dial (after the nodes stopped). */
  close(): void {
    for (const c of [...this.#conns]) c.reset("vnet closed");
    for (const [timer, fail] of this.#dialTimers) {
      clearTimeout(timer);
      fail();
    }
    this.#dialTimers.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// A harness: mesh nodes on one virtual network and one fake clock.

/** Options of a simulated mesh. */
export interface SimOptions extends VirtualNetworkOptions {
  /** Extra options of each node, by name. */
  node?: (name: string) => Partial<NodeOptions>;
  /**
   * Where the nodes' state dirs go (default: /dev/shm when it is writable, else the temp dir).
   * A node fsyncs its audit log twice per event; on tmpfs that costs nothing, which keeps a
   * 100-node mesh (tens of thousands of audit events) fast.
   */
  stateRoot?: string;
}

function tmpfsRoot(): string | undefined {
  try {
    const st = Deno.statSync("/dev/shm");
    if (!st.isDirectory) return undefined;
    const probe = Deno.makeTempDirSync({ dir: "/dev/shm", prefix: "ironmesh-probe-" });
    Deno.removeSync(probe);
    return "/dev/shm";
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Real `MeshNode`s (each with its own state dir, store, audit log and trust store) on one
 * `VirtualNetwork`, sharing one `FakeClock` that only moves when the test says so: `step()`
 * advances it, runs every node's mesh timer (`MeshRouter.tick`) and waits until the network is
 * quiet, so routing time is counted in simulated seconds however slow the machine is.
 */
export class Sim {
  readonly clock = new FakeClock();
  readonly net: VirtualNetwork;
  readonly nodes: MeshNode[] = [];
  readonly #byName = new Map<string, MeshNode>();
  /** Simulated seconds since the start. */
  elapsedS = 0;
  #root: string | null = null;

  private constructor(opts: SimOptions) {
    this.net = new VirtualNetwork(opts);
  }

  /** Start one node per name (in parallel batches). */
  static async start(names: readonly string[], opts: SimOptions = {}): Promise<Sim> {
    const sim = new Sim(opts);
    try {
      sim.#root = await Deno.makeTempDir({
        dir: opts.stateRoot ?? tmpfsRoot(),
        prefix: "ironmesh-vnet-",
      });
      for (let i = 0; i < names.length; i += 10) {
        const batch = names.slice(i, i + 10);
        const started = await Promise.all(batch.map(async (name) =>
          startNode(name, {
            stateDir: await Deno.makeTempDir({ dir: sim.#root!, prefix: `${name}-` }),
            transport: sim.net.transport(name),
            clock: sim.clock,
            ...opts.node?.(name),
          })
        ));
        for (const n of started) {
          sim.nodes.push(n);
          sim.#byName.set(n.name, n);
        }
      }
    } catch (e) {
      await sim.stop();
      throw e;
    }
    return sim;
  }

  /** The directory holding the nodes' state dirs. */
  get stateRoot(): string | null {
    return this.#root;
  }

  /** The node called `name`. */
  node(name: string): MeshNode {
    const n = this.#byName.get(name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** Whether `a` and `b` have a live link (both ends registered it). */
  linked(a: string, b: string): boolean {
    const na = this.node(a), nb = this.node(b);
    return na.peers.get(nb.nodeId) !== undefined && nb.peers.get(na.nodeId) !== undefined;
  }

  /**
   * Link each pair: its first node dials the second as a static peer (so it re-dials with
   * backoff after a loss), all at once; resolves when every link is up.
   */
  async link(edges: readonly (readonly [string, string])[], ms = 60_000): Promise<void> {
    for (const [a, b] of edges) this.node(a).addTarget(addrOf(this.node(b)));
    await until(() => edges.every(([a, b]) => this.linked(a, b)), ms, "every link up");
    await this.settle();
  }

  /** Wait until the network has been quiet for two polls in a row (at most `maxMs`). */
  async settle(maxMs = 5000): Promise<void> {
    const t0 = Date.now();
    let quiet = 0;
    await sleep(1);
    while (quiet < 2 && Date.now() - t0 < maxMs) {
      await sleep(quiet ? 5 : 2);
      quiet = this.net.backlog() === 0 ? quiet + 1 : 0;
    }
  }

  /**
   * Move the clock `seconds`, run every node's clock-driven work — its mesh timer
   * (`MeshRouter.tick`) and the re-send check its reconnect loop runs (`Outbox.retransmit`, for
   * messages unacknowledged for 10 s) — and let the traffic settle. (The nodes' own real-time
   * timers keep running too; they find nothing due between steps.)
   */
  async step(seconds = 1): Promise<void> {
    this.clock.advance(seconds);
    this.elapsedS += seconds;
    for (const n of this.nodes) {
      n.mesh.tick();
      n.outbox.retransmit();
    }
    await this.settle();
  }

  /** Steps of one simulated second until `cond` holds; returns how many it took (0: at once). */
  async stepsUntil(cond: () => boolean, max: number, what: string): Promise<number> {
    await this.settle();
    for (let i = 0; i <= max; i++) {
      if (cond()) return i;
      if (i < max) await this.step();
    }
    throw new Error(`not within ${max} simulated seconds: ${what}`);
  }

  /**
   * Stop every node, then the network; remove the state dirs. The mesh routers are closed
   * first, so tearing the mesh down does not cascade route withdrawals (and their audit
   * entries) through every node.
   */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.mesh.close().catch(() => {})));
    await Promise.all(this.nodes.map((n) => n.stop().catch(() => {})));
    this.net.close();
    if (this.#root) await Deno.remove(this.#root, { recursive: true }).catch(() => {});
  }
}

/**
 * A random connected graph on nodes 0..n−1 with `edges` edges (a random spanning tree, then
 * random extra edges; no loops or parallel edges): average degree 2·edges/n.
 */
export function randomConnectedGraph(
  n: number,
  edges: number,
  random: () => number,
): [number, number][] {
  if (edges < n - 1 || edges > (n * (n - 1)) / 2) throw new RangeError("impossible edge count");
  const out: [number, number][] = [];
  const seen = new Set<string>();
  const add = (a: number, b: number) => {
    const k = a < b ? `${a}-${b}` : `${b}-${a}`;
    if (a === b || seen.has(k)) return false;
    seen.add(k);
    out.push([a, b]);
    return true;
  };
  const order = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  for (let i = 1; i < n; i++) add(order[i], order[Math.floor(random() * i)]);
  while (out.length < edges) add(Math.floor(random() * n), Math.floor(random() * n));
  return out;
}

/** Hop distances from every node to every other (BFS), for graphs as `randomConnectedGraph` makes. */
export function hopDistances(n: number, edges: readonly (readonly [number, number])[]): number[][] {
  const adj: number[][] = Array.from({ length: n }, () => []);
  for (const [a, b] of edges) {
    adj[a].push(b);
    adj[b].push(a);
  }
  return adj.map((_, src) => {
    const d = new Array<number>(n).fill(Infinity);
    d[src] = 0;
    const q = [src];
    for (let h = 0; h < q.length; h++) {
      for (const v of adj[q[h]]) {
        if (d[v] === Infinity) {
          d[v] = d[q[h]] + 1;
          q.push(v);
        }
      }
    }
    return d;
  });
}
