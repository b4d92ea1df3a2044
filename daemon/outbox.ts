/**
 * Outbound delivery: every message a node accepts is committed to the offline queue
 * first (so it survives kill -9), then written to the peer's link when there is one.
 * Messages stay queued until the peer acknowledges them with an `ACK` frame (ours;
 * the reference logs ACKs and never sends them). A peer that has not acknowledged
 * anything within `ackProbeMs` of the link coming up is treated as a reference node:
 * a message then counts as delivered once written, as the reference does. The
 * receiver's history deduplicates re-sent messages, so delivery is exactly once.
 *
 * Far destinations (no direct link) are served through the mesh (`OutboxOptions.mesh`): when a
 * route and the destination's keys are known, its queue is written, sealed end to end, to the
 * next hop's link; the final receiver's ACK comes back as a mesh frame and settles it the same
 * way. Each re-send through the mesh carries a higher `retries` count so relays' duplicate
 * filters let it pass (the receiver's history still delivers it once). Without a route the
 * messages simply stay queued until one appears.
 */
import type { Clock } from "../lib/clock.ts";
import { TokenBucket } from "../lib/wire/token_bucket.ts";
import type { Logger } from "../lib/log.ts";
import type { MessageStore } from "../lib/store/db.ts";
import type { EnqueueResult } from "../lib/store/queue.ts";
import type { OutboundMessage, Priority } from "../lib/wire/session.ts";
import type { EventBus } from "./events.ts";
import type { PeerLink } from "./peer_link.ts";

/** Hop budget of user messages (the reference's max_hops default). */
export const USER_MESSAGE_TTL = 5;

/** A message to send. */
export interface OutboxInput {
  /** Destination node id. */
  to: string;
  msgType: string;
  payload: Uint8Array;
  priority?: Priority;
  /** Default: a fresh uuid4 string (as the reference's user messages). */
  msgId?: string;
}

/** A queued message handed to the mesh to frame. */
export interface MeshQueued {
  msgId: string;
  msgType: string;
  payload: Uint8Array;
  priority: Priority;
}

/** How the outbox reaches destinations it has no direct link to (the mesh router). */
export interface OutboxMesh {
  /** The neighbour's link a far destination is reached through now (route and keys known), or null. */
  via(dest: string): PeerLink | null;
  /** The frame of a queued message for a far destination (sealed end to end); `attempt` counts re-sends. */
  frame(dest: string, m: MeshQueued, attempt: number): OutboundMessage;
  /** Whether a far destination acknowledges deliveries (null: unknown yet, probed). */
  acking(dest: string): boolean | null;
}

/** What `submit` did. */
export interface Submitted {
  msgId: string;
  to: string;
  /** `sent` = written to a live link now; `queued` = waiting for the peer. */
  status: "sent" | "queued";
  /** A lower-priority message evicted to make room (queue full). */
  evicted?: string;
}

interface PeerState {
  /** The link written to: the destination's own, or (mesh) the next hop's. */
  link: PeerLink;
  /** Served through the mesh (sealed end to end, via a next hop). */
  mesh: boolean;
  /** Mesh: how many times this destination's queue was (re)started; sent as `retries`. */
  attempt: number;
  /** Row id of the last message written on this link. */
  lastId: number;
  /** msg_id → row id, written and not yet acknowledged. */
  inflight: Map<string, number>;
  /** null = unknown yet; true = acknowledges; false = reference node (never acknowledges). */
  acking: boolean | null;
  probe?: ReturnType<typeof setTimeout>;
  /** Monotonic ms of the last ACK (or of the link coming up). */
  lastProgressMs: number;
  /** Outbound bandwidth bucket (bytes), when limited. */
  bucket: TokenBucket | null;
  /** A flush scheduled for when the bucket refills. */
  wait?: ReturnType<typeof setTimeout>;
}

interface Waiting {
  input: Required<Omit<OutboxInput, "priority">> & { priority: Priority };
  resolve: (s: Submitted) => void;
  reject: (e: unknown) => void;
}

/** Options of the outbox. */
export interface OutboxOptions {
  store: MessageStore;
  selfId: string;
  bus: EventBus;
  clock: Clock;
  log: Logger;
  /** Most unacknowledged messages in flight per peer (default 512). */
  window?: number;
  /** How long to wait for a first ACK before treating the peer as a reference node (default 3000 ms). */
  ackProbeMs?: number;
  /** Outbound bytes per second per peer (0 = unlimited; default 64 MiB/s, burst 16 MiB). */
  bandwidthBytesPerSec?: number;
  bandwidthBurstBytes?: number;
  /** Far destinations through the mesh (none: direct links only). */
  mesh?: OutboxMesh | null;
  /** ACK probe for far destinations (default 15,000 ms: several hops each way). */
  meshAckProbeMs?: number;
  /** How long a destination reported unreachable waits before it is tried again (default 3000 ms). */
  unreachableHoldMs?: number;
}

/** The outbound side of message delivery. */
export class Outbox {
  readonly #o: Required<OutboxOptions>;
  readonly #peers = new Map<string, PeerState>();
  /** Mesh destinations reported unreachable: not retried before this monotonic ms. */
  readonly #holds = new Map<string, number>();
  /** Mesh: the last attempt number used per destination. */
  readonly #attempts = new Map<string, number>();
  #waiting: Waiting[] = [];
  #scheduled = false;

  constructor(opts: OutboxOptions) {
    this.#o = {
      window: 512,
      ackProbeMs: 3000,
      bandwidthBytesPerSec: 64 * 1024 * 1024,
      bandwidthBurstBytes: 16 * 1024 * 1024,
      mesh: null,
      meshAckProbeMs: 15_000,
      unreachableHoldMs: 3000,
      ...opts,
    };
  }

  /** Accept a message: resolves once it is committed to disk (and written, if the peer is up). */
  submit(input: OutboxInput): Promise<Submitted> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({
        input: {
          ...input,
          priority: input.priority ?? "NORMAL",
          msgId: input.msgId ?? crypto.randomUUID(),
        },
        resolve,
        reject,
      });
      if (!this.#scheduled) {
        this.#scheduled = true;
        queueMicrotask(() => this.#commit());
      }
    });
  }

  /** Commit everything submitted since the last commit in one transaction. */
  #commit(): void {
    this.#scheduled = false;
    const batch = this.#waiting;
    this.#waiting = [];
    let results: EnqueueResult[];
    const { store, selfId } = this.#o;
    try {
      results = store.transaction(() =>
        batch.map(({ input: m }) => {
          const r = store.queue.enqueue(m.to, {
            msgId: m.msgId,
            source: selfId,
            msgType: m.msgType,
            payload: m.payload,
            priority: m.priority,
          });
          if (r.status === "queued") {
            store.history.insert({
              msgId: m.msgId,
              source: selfId,
              destination: m.to,
              msgType: m.msgType,
              payload: m.payload,
              priority: m.priority,
            }, "outbound");
          }
          return r;
        })
      );
    } catch (e) {
      for (const w of batch) w.reject(e);
      return;
    }
    const touched = new Set<string>();
    batch.forEach((w, i) => {
      const r = results[i];
      if (r.status !== "queued") {
        w.reject(
          new Error(
            r.status === "duplicate"
              ? `message ${w.input.msgId} is already queued`
              : `the queue for ${w.input.to} is full of higher-priority messages`,
          ),
        );
        return;
      }
      if (!touched.has(w.input.to)) {
        touched.add(w.input.to);
        if (!this.#peers.has(w.input.to)) this.#route(w.input.to);
      }
      this.#o.bus.publish({
        type: "message-out",
        msgId: w.input.msgId,
        to: w.input.to,
        msgType: w.input.msgType,
        queued: !this.#peers.has(w.input.to),
      });
    });
    for (const peer of touched) this.flush(peer);
    batch.forEach((w, i) => {
      const r = results[i];
      if (r.status !== "queued") return;
      const st = this.#peers.get(w.input.to);
      w.resolve({
        msgId: w.input.msgId,
        to: w.input.to,
        status: st && st.lastId >= 0 && this.#wasWritten(st, w.input.msgId) ? "sent" : "queued",
        ...(r.evicted ? { evicted: r.evicted.msgId } : {}),
      });
    });
  }

  #wasWritten(st: PeerState, msgId: string): boolean {
    return st.inflight.has(msgId) || st.acking === false;
  }

  #state(link: PeerLink, mesh: boolean, attempt: number, acking: boolean | null): PeerState {
    return {
      link,
      mesh,
      attempt,
      lastId: 0,
      inflight: new Map(),
      acking,
      lastProgressMs: this.#o.clock.monotonicMs(),
      bucket: this.#o.bandwidthBytesPerSec > 0
        ? new TokenBucket(
          this.#o.bandwidthBytesPerSec,
          // A burst of at most one second's worth, but never below one 1 MiB frame.
          Math.max(Math.min(this.#o.bandwidthBurstBytes, this.#o.bandwidthBytesPerSec), 1_048_576),
          this.#o.clock,
        )
        : null,
    };
  }

  /** A link to `link.nodeId` is up: (re)send everything undelivered, oldest first. */
  linkUp(link: PeerLink): void {
    this.#clear(link.nodeId);
    this.#holds.delete(link.nodeId);
    this.#peers.set(link.nodeId, this.#state(link, false, 0, null));
    this.flush(link.nodeId);
  }

  /**
   * The link to `nodeId` is gone: unacknowledged messages stay queued for the next link (or
   * route); far destinations served through that link look for another route.
   */
  linkDown(nodeId: string): void {
    const st = this.#peers.get(nodeId);
    if (st && (!st.mesh || st.link.nodeId === nodeId)) this.#clear(nodeId);
    let rerouted = false;
    for (const [dest, s] of [...this.#peers]) {
      if (s.mesh && s.link.nodeId === nodeId) {
        this.#clear(dest);
        rerouted = true;
      }
    }
    if (rerouted || st) this.reroute();
  }

  #clear(dest: string): void {
    const st = this.#peers.get(dest);
    if (!st) return;
    if (st.probe !== undefined) clearTimeout(st.probe);
    if (st.wait !== undefined) clearTimeout(st.wait);
    this.#peers.delete(dest);
  }

  /**
   * Routes changed: every destination with queued messages and no direct link is (re)assigned
   * to the link of its next hop, or left queued when there is none. `clearHolds` lifts the
   * pause of destinations reported unreachable (a route changed since).
   */
  reroute(clearHolds = false): void {
    const mesh = this.#o.mesh;
    if (!mesh) return;
    if (clearHolds) this.#holds.clear();
    let pending: Map<string, number>;
    try {
      pending = this.#o.store.queue.pendingCounts();
    } catch (e) {
      this.#o.log.debug("cannot read the queue to reroute", { error: String(e) });
      return;
    }
    for (const dest of pending.keys()) {
      if (dest !== this.#o.selfId) this.#route(dest);
    }
    for (const [dest, st] of [...this.#peers]) {
      if (st.mesh && !pending.has(dest) && mesh.via(dest) !== st.link) this.#clear(dest);
    }
  }

  /** (Re)assign a destination without a direct link to its next hop's link. */
  #route(dest: string): void {
    const mesh = this.#o.mesh;
    if (!mesh) return;
    const st = this.#peers.get(dest);
    if (st && !st.mesh) return; // a direct link always wins
    const hold = this.#holds.get(dest);
    if (hold !== undefined) {
      if (this.#o.clock.monotonicMs() < hold) return;
      this.#holds.delete(dest);
    }
    const link = mesh.via(dest);
    if (st && link === st.link && link.open) return;
    if (st) this.#clear(dest);
    if (!link || !link.open) return;
    const attempt = (this.#attempts.get(dest) ?? -1) + 1;
    this.#attempts.set(dest, attempt);
    this.#peers.set(dest, this.#state(link, true, attempt, mesh.acking(dest)));
    this.flush(dest);
  }

  /**
   * A relay reported `dest` unreachable (ROUTE_UNREACHABLE): what was in flight stays queued;
   * the destination is tried again after a short pause or as soon as routes change.
   */
  unreachable(dest: string): void {
    const st = this.#peers.get(dest);
    if (!st?.mesh) return;
    this.#clear(dest);
    this.#holds.set(dest, this.#o.clock.monotonicMs() + this.#o.unreachableHoldMs);
  }

  /** Whether `dest` is served through the mesh right now (and through which neighbour). */
  meshVia(dest: string): string | null {
    const st = this.#peers.get(dest);
    return st?.mesh ? st.link.nodeId : null;
  }

  /** True when `nodeId` acknowledges deliveries (null while unknown). */
  acking(nodeId: string): boolean | null {
    return this.#peers.get(nodeId)?.acking ?? null;
  }

  /** The peer acknowledged these msg_ids (an empty list announces that it acknowledges). */
  ack(nodeId: string, msgIds: string[]): void {
    const st = this.#peers.get(nodeId);
    if (!st) return;
    st.acking = true;
    st.lastProgressMs = this.#o.clock.monotonicMs();
    if (st.probe !== undefined) {
      clearTimeout(st.probe);
      st.probe = undefined;
    }
    const known = msgIds.filter((id) => st.inflight.has(id));
    if (known.length) this.#delivered(nodeId, st, known);
    this.flush(nodeId);
  }

  #delivered(nodeId: string, st: PeerState, ids: string[]): void {
    try {
      this.#o.store.queue.markDelivered(nodeId, ids);
    } catch (e) {
      this.#o.log.error("cannot mark messages delivered", { peer: nodeId, error: String(e) });
      return;
    }
    for (const id of ids) {
      st.inflight.delete(id);
      this.#o.bus.publish({ type: "delivered", msgId: id, to: nodeId });
    }
  }

  /** Write queued messages to the peer's link, up to the in-flight window. */
  flush(nodeId: string): void {
    const st = this.#peers.get(nodeId);
    if (!st) return;
    const { store, window } = this.#o;
    for (;;) {
      const room = window - st.inflight.size;
      if (room <= 0 || !st.link.open) return;
      const batch = store.queue.takeBatch(nodeId, room, st.lastId);
      if (batch.length === 0) return;
      for (const m of batch) {
        if (m.payloadStatus === "undecryptable") {
          this.#o.log.warn("dropping a queued message that no longer decrypts", {
            peer: nodeId,
            msg_id: m.msgId,
          });
          store.queue.markDelivered(nodeId, [m.msgId]);
          st.lastId = m.id;
          continue;
        }
        if (st.bucket) {
          const cost = Math.min(m.payload.length + 256, st.bucket.burst);
          if (!st.bucket.tryConsume(cost)) {
            // Over the peer's outbound bandwidth: the message stays queued; try again on refill.
            if (st.wait === undefined) {
              st.wait = setTimeout(() => {
                st.wait = undefined;
                this.flush(nodeId);
              }, Math.max(1, Math.ceil(st.bucket.waitMs(cost))));
            }
            this.#afterWrites(nodeId, st);
            return;
          }
        }
        try {
          st.link.send(
            st.mesh
              ? this.#o.mesh!.frame(nodeId, {
                msgId: m.msgId,
                msgType: m.msgType,
                payload: m.payload,
                priority: m.priority as Priority,
              }, st.attempt)
              : {
                type: m.msgType,
                payload: m.payload,
                msgId: m.msgId,
                destination: nodeId,
                priority: m.priority as Priority,
                ttl: USER_MESSAGE_TTL,
              },
          );
        } catch (e) {
          this.#o.log.debug("send failed; message stays queued", {
            peer: nodeId,
            msg_id: m.msgId,
            error: String(e),
          });
          return;
        }
        st.lastId = m.id;
        st.inflight.set(m.msgId, m.id);
      }
      this.#afterWrites(nodeId, st);
    }
  }

  /** After writing: settle deliveries for reference peers, or start the ACK probe. */
  #afterWrites(nodeId: string, st: PeerState): void {
    if (st.acking === false) this.#delivered(nodeId, st, [...st.inflight.keys()]);
    else if (st.acking === null && st.probe === undefined && st.inflight.size > 0) {
      st.probe = setTimeout(() => {
        st.probe = undefined;
        if (st.acking !== null || this.#peers.get(nodeId) !== st) return;
        st.acking = false;
        this.#o.log.info(
          "peer does not acknowledge messages (reference node?); delivered = written",
          {
            peer: nodeId,
          },
        );
        this.#delivered(nodeId, st, [...st.inflight.keys()]);
        this.flush(nodeId);
      }, st.mesh ? this.#o.meshAckProbeMs : this.#o.ackProbeMs);
    }
  }

  /**
   * Re-send what a peer has left unacknowledged for `afterMs` (frames dropped by its rate
   * limit, say): everything undelivered goes out again; its history drops the duplicates.
   */
  retransmit(afterMs = 10_000): void {
    const now = this.#o.clock.monotonicMs();
    for (const [nodeId, st] of this.#peers) {
      if (st.acking !== true || st.inflight.size === 0 || now - st.lastProgressMs < afterMs) {
        continue;
      }
      this.#o.log.info("re-sending unacknowledged messages", {
        peer: nodeId,
        count: st.inflight.size,
      });
      st.inflight.clear();
      st.lastId = 0;
      st.lastProgressMs = now;
      if (st.mesh) {
        st.attempt = (this.#attempts.get(nodeId) ?? st.attempt) + 1;
        this.#attempts.set(nodeId, st.attempt);
      }
      this.flush(nodeId);
    }
  }

  /** Stop timers (shutdown). */
  close(): void {
    for (const id of [...this.#peers.keys()]) this.#clear(id);
  }
}
