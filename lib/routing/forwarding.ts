/**
 * The relay decision for a received frame (PROTOCOL-0.9 §6.4 step 6, §8.3; `mesh.py`
 * `relay_message`), sans-I/O. Order as the reference: frames for this node (own id, `"*"`,
 * `""`, or a type handled where it arrives) are delivered; otherwise, in mode `relay` only:
 * refuse an originator timestamp older than 24 h → dedup `(source, msg_id)` with the transport
 * (`DUPLICATE_DROPPED`, plus `MSG_REPLAY_CROSS_TRANSPORT` when the copy came over another
 * transport) → `ttl ≤ 0` (`TTL_EXPIRED`) → own id in `hops` (`ROUTE_LOOP`) → `ttl − 1`, own id
 * appended → next hop, skipping open circuit breakers; none → `NO_ROUTE` and a
 * ROUTE_UNREACHABLE toward the source when a route back exists.
 *
 * Ours: mode `off` drops frames addressed to other nodes (the reference delivers them locally);
 * `--max-hops` also bounds relaying (a frame that already crossed `maxHops` relays is dropped,
 * and the forwarded ttl never exceeds the hops left), and the next hop is never the peer the
 * frame came from, its source, or a node already on its path.
 */
import type { Clock } from "../clock.ts";
import { routeUnreachableMessage } from "../wire/v09/control.ts";
import { LOCALLY_HANDLED_TYPES } from "../wire/v09/session.ts";
import type { InboundMessage, OutboundMessage, Priority } from "../wire/session.ts";
import { CircuitBreaker, type CircuitBreakerOptions } from "./circuit_breaker.ts";
import { TransportDedup, type TransportDedupOptions } from "./dedup.ts";
import { type MeshEvent, meshEvent } from "./events.ts";

/** `--mesh-routing`: relay others' traffic, only announce (`passive`), or no mesh at all. */
export type RoutingMode = "relay" | "passive" | "off";
/** Default `--max-hops`: the ttl of messages this node originates, and our relay bound. */
export const DEFAULT_MAX_HOPS = 5;
/** Relays refuse frames whose originator timestamp is older than this (seconds). */
export const MAX_RELAY_AGE_S = 86_400;
/** Transport label of WebSocket links (the reference's `"ws"`). */
export const TRANSPORT_WS = "ws";

/** Where routes come from (a `RoutingTable` satisfies it). */
export interface RouteLookup {
  nextHop(dest: string, avoid?: (hop: string) => boolean): string | null;
}

/** The fields of a received frame the relay decision reads (an `InboundMessage` has them all). */
export type RelayableMessage = Pick<
  InboundMessage,
  | "type"
  | "payload"
  | "msgId"
  | "source"
  | "sourceDisplay"
  | "destination"
  | "timestamp"
  | "priority"
  | "ttl"
  | "hops"
  | "routing"
  | "retries"
  | "sourceSignature"
  | "sourceSigScheme"
  | "e2ePayload"
>;

/** What to do with a received frame. */
export type ForwardAction = "deliver" | "relay" | "drop" | "unreachable";

/** Why a frame was not relayed. */
export type ForwardDropReason =
  | "passive"
  | "routing-off"
  | "stale"
  | "duplicate"
  | "ttl-expired"
  | "max-hops"
  | "route-loop"
  | "no-route";

/** The decision. */
export interface ForwardDecision {
  action: ForwardAction;
  /** For `drop` and `unreachable`. */
  reason?: ForwardDropReason;
  /** For `relay`: the direct neighbour to send `outbound` to. */
  nextHop?: string;
  /**
   * For `relay`: the frame to seal for `nextHop` — every inner field unchanged (originator
   * timestamp, inner signature, sealed body), `ttl − 1` and this node appended to `hops`.
   */
  outbound?: OutboundMessage;
  /** For `unreachable`: a ROUTE_UNREACHABLE for the source, to send to `nextHop`. */
  unreachable?: { nextHop: string; message: OutboundMessage };
  /** Audit events to record, in order. */
  auditEvents: MeshEvent[];
}

/** Options of a forwarder. */
export interface ForwardingOptions {
  selfId: string;
  clock: Clock;
  routes: RouteLookup;
  /** Default `relay`. */
  mode?: RoutingMode;
  /** Default 5. */
  maxHops?: number;
  /** Default 86,400 s. */
  maxRelayAgeS?: number;
  /** A shared cache or bounds for a private one (300 s, 128 × 1024). */
  dedup?: TransportDedup | TransportDedupOptions;
  /** A shared breaker or bounds for a private one (3 failures / 60 s, open 60 s). */
  breaker?: CircuitBreaker | CircuitBreakerOptions;
}

const PRIORITIES = new Set(["LOW", "NORMAL", "HIGH", "CRITICAL"]);

/** The relay engine of one node. */
export class Forwarder {
  readonly selfId: string;
  readonly maxHops: number;
  readonly maxRelayAgeS: number;
  readonly dedup: TransportDedup;
  readonly breaker: CircuitBreaker;
  mode: RoutingMode;
  readonly #clock: Clock;
  readonly #routes: RouteLookup;

  constructor(opts: ForwardingOptions) {
    this.selfId = opts.selfId;
    this.#clock = opts.clock;
    this.#routes = opts.routes;
    this.mode = opts.mode ?? "relay";
    this.maxHops = opts.maxHops ?? DEFAULT_MAX_HOPS;
    this.maxRelayAgeS = opts.maxRelayAgeS ?? MAX_RELAY_AGE_S;
    if (!Number.isInteger(this.maxHops) || this.maxHops < 1 || this.maxHops > 255) {
      throw new RangeError("maxHops must be an integer in 1..255");
    }
    if (!["relay", "passive", "off"].includes(this.mode)) {
      throw new RangeError(`invalid routing mode ${this.mode}`);
    }
    this.dedup = opts.dedup instanceof TransportDedup ? opts.dedup : new TransportDedup(opts.dedup);
    this.breaker = opts.breaker instanceof CircuitBreaker
      ? opts.breaker
      : new CircuitBreaker(opts.breaker);
  }

  /** Whether a frame is for this node rather than for relaying. */
  isForThisNode(msg: Pick<RelayableMessage, "type" | "destination">): boolean {
    const d = msg.destination;
    return LOCALLY_HANDLED_TYPES.has(msg.type) || d === this.selfId || d === "*" || d === "";
  }

  /**
   * Decide what to do with a frame received from the direct neighbour `fromPeer` over
   * `transport`. Records the `(source, msg_id)` pair when relaying is attempted.
   */
  decide(
    msg: RelayableMessage,
    fromPeer: string,
    transport: string = TRANSPORT_WS,
  ): ForwardDecision {
    if (this.isForThisNode(msg)) return { action: "deliver", auditEvents: [] };
    if (this.mode === "off") return drop("routing-off");
    if (this.mode === "passive") return drop("passive");
    const events: MeshEvent[] = [];
    const ids = { source: msg.source, msg_id: msg.msgId };
    if (this.#clock.now() - msg.timestamp > this.maxRelayAgeS) return drop("stale");
    const nowMs = this.#clock.monotonicMs();
    const seen = this.dedup.checkAndAdd(msg.source, msg.msgId, transport, nowMs);
    if (seen.duplicate) {
      events.push(meshEvent("DUPLICATE_DROPPED", { ...ids }));
      if (seen.crossTransport) {
        events.push(meshEvent("MSG_REPLAY_CROSS_TRANSPORT", {
          peer: msg.source,
          msg_id: msg.msgId,
          original_transport: seen.originalTransport,
          replay_transport: seen.thisTransport,
          time_delta_ms: Math.round(seen.timeDeltaMs),
        }));
      }
      return drop("duplicate", events);
    }
    if (msg.ttl <= 0) return drop("ttl-expired", [meshEvent("TTL_EXPIRED", { ...ids })]);
    if (msg.hops.includes(this.selfId)) {
      return drop("route-loop", [meshEvent("ROUTE_LOOP", { ...ids, hops: [...msg.hops] })]);
    }
    if (msg.hops.length >= this.maxHops) {
      return drop("max-hops", [meshEvent("TTL_EXPIRED", { ...ids, reason: "max-hops" })]);
    }
    const hops = [...msg.hops, this.selfId];
    const ttl = Math.min(msg.ttl - 1, this.maxHops - hops.length);
    const onPath = new Set(hops);
    const nextHop = this.#routes.nextHop(
      msg.destination,
      (hop) =>
        hop === fromPeer || hop === msg.source || onPath.has(hop) ||
        !this.breaker.allows(hop, nowMs),
    );
    if (nextHop === null) {
      events.push(meshEvent("NO_ROUTE", { destination: msg.destination, msg_id: msg.msgId }));
      const decision: ForwardDecision = {
        action: "unreachable",
        reason: "no-route",
        auditEvents: events,
      };
      const back = this.nextHopFor(msg.source);
      if (back !== null) {
        decision.unreachable = {
          nextHop: back,
          message: routeUnreachableMessage(msg.source, msg.destination, msg.msgId),
        };
      }
      return decision;
    }
    const outbound: OutboundMessage = {
      type: msg.type,
      payload: msg.payload,
      msgId: msg.msgId,
      source: msg.source,
      sourceDisplay: msg.sourceDisplay,
      destination: msg.destination,
      timestamp: msg.timestamp,
      priority: (PRIORITIES.has(msg.priority) ? msg.priority : "NORMAL") as Priority,
      routing: msg.routing,
      retries: msg.retries,
      ttl,
      hops,
    };
    if (msg.sourceSignature !== undefined) outbound.sourceSignature = msg.sourceSignature;
    if (msg.sourceSigScheme !== undefined) outbound.sourceSigScheme = msg.sourceSigScheme;
    if (msg.e2ePayload !== undefined) outbound.e2ePayload = msg.e2ePayload;
    events.push(meshEvent("MESSAGE_RELAYED", {
      source: msg.source,
      destination: msg.destination,
      next_hop: nextHop,
      msg_id: msg.msgId,
    }));
    return { action: "relay", nextHop, outbound, auditEvents: events };
  }

  /** Next hop for a message this node originates (direct link first; open breakers skipped). */
  nextHopFor(dest: string): string | null {
    const nowMs = this.#clock.monotonicMs();
    return this.#routes.nextHop(dest, (hop) => !this.breaker.allows(hop, nowMs));
  }

  /** The frame reached `nextHop`'s socket: its breaker closes. */
  sendSucceeded(nextHop: string): void {
    this.breaker.recordSuccess(nextHop);
  }

  /** Sending to `nextHop` failed; returns `CIRCUIT_BREAKER_TRIPPED` when its breaker opens. */
  sendFailed(nextHop: string): MeshEvent[] {
    return this.breaker.recordFailure(nextHop, this.#clock.monotonicMs());
  }
}

function drop(reason: ForwardDropReason, auditEvents: MeshEvent[] = []): ForwardDecision {
  return { action: "drop", reason, auditEvents };
}
