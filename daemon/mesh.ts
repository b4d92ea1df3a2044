/**
 * The mesh router of a running node (PROTOCOL-0.9 §8, §9, §7.3; ARCHITECTURE.md: the router
 * loop lives in daemon/, the rules in lib/routing/). It composes the sans-I/O pieces — the
 * distance-vector `RoutingTable`, the relay `Forwarder` with its circuit breaker, the
 * `CapabilityRegistry` and the `RevocationFlood` — with the node's links, clock, audit log,
 * trust store and outbox:
 *
 * - links: a new or lost link updates the table and triggers announcements at once (rate
 *   limited to one per second per neighbour), so the mesh converges in seconds; the periodic
 *   30 s announcement, route expiry and the 10 s-then-60 s capability announcement run on one
 *   timer driven by the injected clock (`tick()`);
 * - frames: ROUTE_ANNOUNCE, CAPABILITY_ANNOUNCE, REVOCATION and ROUTE_UNREACHABLE are handled
 *   here; frames for other nodes are relayed (mode `relay`) with circuit-breaker feedback, or
 *   dropped (`passive`, `off`), every decision audited (MESSAGE_RELAYED, NO_ROUTE, …);
 * - end to end: messages for far destinations are sealed to them (strict confidentiality by
 *   default: no plaintext beside the sealed body) and leave through the next hop's link
 *   (`via`/`frame`, used by the outbox); sealed messages for us are opened here
 *   (`openE2eInbound`), the originator's inner signature verified, and delivered through the
 *   inbound pipeline keyed by that originator, whose ACK goes back through the mesh;
 * - keys of far nodes (`keysOf`): live link, trust-store pin, keys carried by verified
 *   capability announces (see mesh_keys.ts), earlier sightings; revoked nodes have none.
 *
 * Trust gating of relayed messages: keyed by the authenticated originator (its inner signature
 * verified), not by the relay that handed the frame over — a relay only carries sealed bytes, and
 * a blocked or revoked originator must not get through by choosing another path. The reference
 * keys its gate by the immediate peer; for direct messages both are the same node.
 */
import { join } from "node:path";
import type { Rng } from "../lib/clock.ts";
import { capabilitiesKey, routesKey } from "../lib/crypto/kdf.ts";
import { ed25519PkToCurve25519, ed25519SkToCurve25519 } from "../lib/crypto/sodium.ts";
import { ExitCode, IronMeshError } from "../lib/errors.ts";
import {
  CAPABILITY_ANNOUNCE_FIRST_DELAY_S,
  CAPABILITY_ANNOUNCE_INTERVAL_S,
  CapabilityRegistry,
  type CapabilityStrategy,
} from "../lib/routing/capabilities.ts";
import {
  DEFAULT_ANNOUNCE_INTERVAL_S,
  DEFAULT_ROUTE_TTL_S,
  ROUTE_CLEANUP_INTERVAL_S,
  type RouteUpdate,
  RoutingTable,
} from "../lib/routing/distance_vector.ts";
import {
  buildE2eMessage,
  type Confidentiality,
  type E2eOpenKeys,
  openE2eInbound,
} from "../lib/routing/e2e.ts";
import { type MeshEvent, meshEvent } from "../lib/routing/events.ts";
import {
  DEFAULT_MAX_HOPS,
  type ForwardDecision,
  Forwarder,
  type RoutingMode,
} from "../lib/routing/forwarding.ts";
import {
  loadCapabilitiesFile,
  loadRoutesFile,
  saveCapabilitiesFile,
  saveRoutesFile,
} from "../lib/routing/persist.ts";
import { forwardRevocationMessage, RevocationFlood } from "../lib/routing/revocation_flood.ts";
import type { InboundMessage, OutboundMessage, Priority } from "../lib/wire/session.ts";
import {
  parseRouteUnreachable,
  revocationMessage,
  routeUnreachableMessage,
} from "../lib/wire/v09/control.ts";
import { type Ed25519Signer, nodeSigner, nodeVerifier } from "../lib/wire/v09/frame.ts";
import { verifyInnerSourceSignature } from "../lib/wire/v09/inner_source.ts";
import { versionAtLeast } from "../lib/wire/v09/version.ts";
import { ACK_TYPE, ackMessage, type AckRoute, APP_TYPES, parseAck } from "./inbound.ts";
import {
  buildKeyedCapabilityAnnounce,
  type CarriedKeys,
  carriedKeys,
  keyForNode,
  type NodeKeys,
} from "./mesh_keys.ts";
import type { CapabilityInfo, MeshNode, MeshView, RouteInfo } from "./node.ts";
import type { MeshQueued, Submitted } from "./outbox.ts";
import type { FrameError } from "../lib/wire/v09/errors.ts";
import type { PeerLink } from "./peer_link.ts";

/** Oldest protocol version that takes part in mesh routing (§5.6). */
export const MESH_MIN_VERSION = "ironmesh/0.4";
/** How often destinations held after a ROUTE_UNREACHABLE are retried (ms). */
const REROUTE_INTERVAL_MS = 2000;
/** Debounce of routes.json / capabilities.json writes (ms). */
const PERSIST_DEBOUNCE_MS = 1000;
/** Keys learned from announces kept (oldest forgotten first). */
const LEARNED_KEYS_MAX = 4096;
/** Audit events that also go to the bus as security events (dashboard). */
const SECURITY_EVENTS = new Set([
  "E2E_DECRYPT_FAILURE",
  "INNER_SOURCE_SIG_DROP",
  "CAPABILITY_ANNOUNCE_BAD_SIG",
  "ROUTE_LOOP",
  "MSG_REPLAY_CROSS_TRANSPORT",
  "CIRCUIT_BREAKER_TRIPPED",
  "REVOCATION_REFUSED",
]);

/** Mesh settings (`ironmesh run` flags). */
export interface MeshOptions {
  /** `--mesh-routing` (default `relay`). */
  mode?: RoutingMode;
  /** `--max-hops` (default 5): ttl of what we originate, and our relay bound. */
  maxHops?: number;
  /** `--route-announce-interval` in seconds (default 30). */
  announceIntervalS?: number;
  /** `--route-ttl` in seconds (default 90). */
  routeTtlS?: number;
  /** Minimum spacing of triggered announcements per neighbour (default 1 s). */
  triggeredMinIntervalS?: number;
  /** `--capability` values (replace the persisted local set); undefined keeps the persisted one. */
  capabilities?: string[];
  /** `--capability-announce-interval` in seconds (default 60). */
  capabilityAnnounceIntervalS?: number;
  /** First capability round after start, seconds (default 10; new links get ours at once). */
  capabilityFirstDelayS?: number;
  /** `strict` (default) or `plaintext` (`--e2e-plaintext-compat`: the reference's form). */
  confidentiality?: Confidentiality;
  /** Read and write routes.json / capabilities.json (default true). */
  persist?: boolean;
}

/** One `caps` row. */
export interface CapabilityRow {
  node_id: string;
  name: string;
  capability: string;
  /** This node's own capability. */
  local: boolean;
  /** Direct neighbour, routed (with hops), or unreachable now. */
  reachable: boolean;
  hops: number | null;
  via: string | null;
}

/** Where a node is reachable now. */
interface Reach {
  hops: number;
  via: string;
}

function refuseNoCapability(pattern: string): IronMeshError {
  return new IronMeshError(
    "NO_CAPABILITY",
    `no known node offers a capability matching "${pattern}"`,
    "see 'ironmesh caps' (capabilities are announced every 60 s and when links come up)",
    ExitCode.NOT_FOUND,
  );
}

/** The mesh router of one node. */
export class MeshRouter {
  readonly table: RoutingTable;
  readonly forwarder: Forwarder;
  readonly registry: CapabilityRegistry;
  readonly flood: RevocationFlood;
  readonly mode: RoutingMode;
  readonly maxHops: number;
  readonly confidentiality: Confidentiality;
  /**
   * Test hook: sees (and may alter) every frame this node relays, just before it is sealed for
   * the next hop. Never set in production.
   */
  relayTap: ((received: InboundMessage, out: OutboundMessage, nextHop: string) => void) | null =
    null;

  readonly #node: MeshNode;
  readonly #rng: Rng;
  readonly #signer: Ed25519Signer;
  readonly #capFirstMs: number;
  readonly #capIntervalMs: number;
  readonly #expireIntervalMs: number;
  readonly #persist: boolean;
  readonly #routesPath: string;
  readonly #capsPath: string;
  readonly #localCaps: string[] | undefined;
  readonly #learned = new Map<string, CarriedKeys>();
  readonly #ackRoutes = new Map<string, AckRoute>();
  /** The announce being checked, and its carried keys once parsed (only when needed). */
  #candidate: { payload: Uint8Array; keys?: CarriedKeys | null } | null = null;
  #legacyKeys: E2eOpenKeys | null | undefined;
  #ownAnnounce: { payload: Uint8Array; atMs: number } | null = null;
  #nextCapMs = 0;
  #nextExpireMs = 0;
  #nextRerouteMs = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #timerAt = Infinity;
  #kicked = false;
  #rerouteWanted = false;
  #persistTimer: ReturnType<typeof setTimeout> | null = null;
  #capsDirty = false;
  #persisting: Promise<void> = Promise.resolve();
  #started = false;
  #closed = false;

  constructor(node: MeshNode, opts: MeshOptions, rng: Rng, stateDir: string) {
    this.#node = node;
    this.#rng = rng;
    this.mode = opts.mode ?? "relay";
    this.maxHops = opts.maxHops ?? DEFAULT_MAX_HOPS;
    this.confidentiality = opts.confidentiality ?? "strict";
    this.#signer = nodeSigner(node.identity.secretKey);
    this.#persist = opts.persist ?? true;
    this.#routesPath = join(stateDir, "routes.json");
    this.#capsPath = join(stateDir, "capabilities.json");
    this.#localCaps = opts.capabilities;
    const clock = node.clock;
    const routeTtlS = opts.routeTtlS ?? DEFAULT_ROUTE_TTL_S;
    this.table = new RoutingTable({
      selfId: node.nodeId,
      clock,
      routeTtlS,
      announceIntervalS: opts.announceIntervalS ?? DEFAULT_ANNOUNCE_INTERVAL_S,
      triggeredMinIntervalS: opts.triggeredMinIntervalS,
      // §18.6: routes only from trusted peers, never to revoked nodes.
      acceptFrom: (peer) => node.trust.trustState(peer) === "trusted",
      learnFilter: (dst) => !node.trust.isRevoked(dst),
    });
    this.forwarder = new Forwarder({
      selfId: node.nodeId,
      clock,
      routes: this.table,
      mode: this.mode,
      maxHops: this.maxHops,
    });
    this.registry = new CapabilityRegistry({
      selfId: node.nodeId,
      clock,
      keyLookup: (id) => this.#announceKey(id),
    });
    this.flood = new RevocationFlood({
      selfId: node.nodeId,
      clock,
      view: node.trust,
      // Pass on what we cannot check (we may not pin the revoker) so it reaches nodes that do.
      forwardUnverifiable: true,
    });
    this.#capFirstMs = (opts.capabilityFirstDelayS ?? CAPABILITY_ANNOUNCE_FIRST_DELAY_S) * 1000;
    this.#capIntervalMs = Math.max(
      1000,
      (opts.capabilityAnnounceIntervalS ?? CAPABILITY_ANNOUNCE_INTERVAL_S) * 1000,
    );
    this.#expireIntervalMs = Math.max(
      1000,
      Math.min(ROUTE_CLEANUP_INTERVAL_S, routeTtlS / 3) * 1000,
    );
  }

  /** True when routes are announced and frames relayed (mode ≠ off). */
  get routingEnabled(): boolean {
    return this.mode !== "off";
  }

  get #self(): string {
    return this.#node.nodeId;
  }

  // -------------------------------------------------------------------------------------------
  // Life cycle

  /** Load routes.json and capabilities.json, apply `--capability`, start the timer. */
  async start(): Promise<void> {
    const node = this.#node;
    const seed = node.identity.seed;
    if (this.#persist) {
      try {
        const caps = await loadCapabilitiesFile(
          this.#capsPath,
          capabilitiesKey(seed),
          this.registry,
          {
            keepLocal: this.#localCaps !== undefined,
          },
        );
        if (caps.loaded) node.log.debug("capabilities loaded", { remote_nodes: caps.count });
        else if (caps.reason !== "missing") {
          node.log.warn("capabilities.json ignored", { reason: caps.reason });
        }
        if (this.mode !== "off") {
          const routes = await loadRoutesFile(
            this.#routesPath,
            routesKey(seed),
            this.table,
            node.clock.now(),
          );
          if (routes.loaded) node.log.debug("routes loaded", { routes: routes.count });
          else if (routes.reason !== "missing") {
            node.log.warn("routes.json ignored", {
              reason: routes.reason,
              deleted: routes.deleted,
            });
          }
        }
      } catch (e) {
        node.log.warn("cannot load the mesh state files", { error: String(e) });
      }
    }
    if (this.#localCaps !== undefined && this.registry.setLocal(this.#localCaps)) {
      this.#capsDirty = true;
      this.#persistSoon();
    }
    const now = node.clock.monotonicMs();
    this.#nextCapMs = now + this.#capFirstMs;
    this.#nextExpireMs = now + this.#expireIntervalMs;
    this.#nextRerouteMs = now + REROUTE_INTERVAL_MS;
    this.#started = true;
    this.#schedule();
  }

  /** Stop the timer and write pending state. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#persistTimer !== null) clearTimeout(this.#persistTimer);
    this.#persistTimer = null;
    await this.#save();
  }

  // -------------------------------------------------------------------------------------------
  // Links

  /** A link is up: it joins the routing table (mesh-capable peers) and gets our announces now. */
  linkUp(link: PeerLink): void {
    if (this.#closed) return;
    if (this.routingEnabled && versionAtLeast(link.peer.protocolVersion, MESH_MIN_VERSION)) {
      this.#routeUpdate(this.table.linkUp(link.nodeId));
    }
    this.#sendCapabilitiesTo(link);
    this.#rerouteWanted = true;
    this.#kick();
  }

  /** A link is gone: its routes are withdrawn and the neighbours told at once. */
  linkDown(nodeId: string): void {
    if (this.#closed) return;
    if (this.table.isLinked(nodeId)) this.#routeUpdate(this.table.linkDown(nodeId));
    this.#kick();
  }

  // -------------------------------------------------------------------------------------------
  // Timer

  /** Run everything due now by the node's clock (announces, expiry, capability round). */
  tick(): void {
    this.#kicked = false;
    if (this.#closed || !this.#started) return;
    const node = this.#node;
    const now = node.clock.monotonicMs();
    if (this.routingEnabled) {
      for (const peer of this.table.dueAnnouncements(now)) {
        const payload = this.table.announceFor(peer);
        const link = node.peers.get(peer);
        if (!link) continue;
        try {
          link.send({
            type: "ROUTE_ANNOUNCE",
            payload,
            destination: peer,
            ttl: 3,
            priority: "NORMAL",
          });
        } catch (e) {
          node.log.debug("cannot send ROUTE_ANNOUNCE", { peer, error: String(e) });
        }
      }
      if (now >= this.#nextExpireMs) {
        this.#nextExpireMs = now + this.#expireIntervalMs;
        this.#routeUpdate(this.table.expire());
      }
    }
    if (now >= this.#nextCapMs) {
      this.#nextCapMs = now + this.#capIntervalMs;
      this.#capabilityRound();
    }
    if (this.#rerouteWanted || now >= this.#nextRerouteMs) {
      this.#nextRerouteMs = now + REROUTE_INTERVAL_MS;
      const clear = this.#rerouteWanted;
      this.#rerouteWanted = false;
      node.outbox.reroute(clear);
    }
    this.#schedule();
  }

  /** Run `tick` soon (coalesced). */
  #kick(): void {
    if (this.#kicked || this.#closed) return;
    this.#kicked = true;
    setTimeout(() => this.tick(), 0);
  }

  #schedule(): void {
    if (this.#closed) return;
    const now = this.#node.clock.monotonicMs();
    let next = Math.min(this.#nextCapMs, this.#nextRerouteMs);
    if (this.routingEnabled) {
      next = Math.min(next, this.#nextExpireMs, this.table.nextAnnounceAt() ?? Infinity);
    }
    // The clock may be a test's fake: never spin, and look again at least every 5 s.
    const delay = Math.max(20, Math.min(5000, next - now));
    const at = Date.now() + delay;
    if (this.#timer !== null) {
      if (at >= this.#timerAt - 5) return;
      clearTimeout(this.#timer);
    }
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#timerAt = Infinity;
      this.tick();
    }, delay);
  }

  // -------------------------------------------------------------------------------------------
  // Frames

  /**
   * A frame from `link` the mesh may own: returns true when it was handled here (mesh control,
   * a frame to relay, a sealed or relayed message for us, a mesh ACK), false to let the node
   * handle it as a direct message.
   */
  onFrame(m: InboundMessage, link: PeerLink): boolean {
    if (this.#closed) return false;
    switch (m.type) {
      case "ROUTE_ANNOUNCE":
        this.#onRouteAnnounce(m, link);
        return true;
      case "CAPABILITY_ANNOUNCE":
        this.#onCapabilityAnnounce(m, link);
        return true;
      case "REVOCATION":
        this.#onRevocation(m, link).catch((e) =>
          this.#node.log.error("cannot apply a revocation", { error: String(e) })
        );
        return true;
      case "ROUTE_UNREACHABLE":
        this.#onRouteUnreachable(m, link);
        return true;
    }
    if (!m.terminal) {
      this.#relay(m, link);
      return true;
    }
    if (m.type === ACK_TYPE) {
      if (m.source === link.nodeId) return false;
      this.#onMeshAck(m, link);
      return true;
    }
    if (m.e2ePending) {
      this.#openSealed(m, link);
      return true;
    }
    if (APP_TYPES.has(m.type) && m.source !== link.nodeId) {
      // A relayed plaintext message (a reference originator that had no key to seal with):
      // the session verified the originator's inner signature with `keysOf`.
      if (m.sourceAuthenticated) this.#deliver(m, link);
      else {
        this.#audit([meshEvent("INNER_SOURCE_SIG_DROP", {
          peer: link.nodeId,
          source: m.source,
          msg_type: m.type,
          reason: "unknown-source",
        })]);
      }
      return true;
    }
    return false;
  }

  /** The session dropped a frame whose inner signature failed (FR_INNER_SIGNATURE): audit it. */
  onInnerSignatureReject(link: PeerLink, error?: FrameError): void {
    this.#audit([meshEvent("INNER_SOURCE_SIG_DROP", {
      peer: link.nodeId,
      source: error?.frame?.source ?? null,
      msg_type: error?.frame?.type ?? null,
      reason: error?.detail ?? "verification-failed",
    })]);
  }

  #onRouteAnnounce(m: InboundMessage, link: PeerLink): void {
    if (!this.routingEnabled) return;
    if (!this.table.isLinked(link.nodeId)) {
      // A peer below the mesh floor, or one whose link is not registered (yet): not a neighbour.
      this.#node.log.debug("ROUTE_ANNOUNCE from a non-neighbour ignored", { peer: link.nodeId });
      return;
    }
    const r = this.table.onAnnounce(link.nodeId, m.payload);
    if (!r.accepted) {
      this.#node.log.debug("ROUTE_ANNOUNCE refused", {
        peer: link.nodeId,
        reason: r.reason,
        detail: r.detail,
      });
    }
    this.#routeUpdate(r);
  }

  #routeUpdate(u: RouteUpdate): void {
    this.#audit(u.events);
    if (!u.changed) return;
    this.#rerouteWanted = true;
    this.#persistSoon();
    this.#kick();
  }

  // ----- relaying -----

  /**
   * The forwarder's decision. A re-send through the mesh carries `retries` > 0: it is
   * deduplicated as a distinct copy (the originator re-sends with the same msg_id so the final
   * receiver's history keeps delivery exactly once; relays must not drop the retry).
   */
  #decide(m: InboundMessage, fromPeer: string, transport: string): ForwardDecision {
    if (!(m.retries > 0)) return this.forwarder.decide(m, fromPeer, transport);
    const d = this.forwarder.decide(
      { ...m, msgId: `${m.msgId}~r${m.retries}` },
      fromPeer,
      transport,
    );
    if (d.outbound) d.outbound.msgId = m.msgId;
    if (d.unreachable) {
      d.unreachable.message = routeUnreachableMessage(m.source, m.destination, m.msgId);
    }
    for (const e of d.auditEvents) if ("msg_id" in e.details) e.details.msg_id = m.msgId;
    return d;
  }

  #relay(m: InboundMessage, link: PeerLink): void {
    const node = this.#node;
    const d = this.#decide(m, link.nodeId, link.conn.kind);
    this.#audit(d.auditEvents);
    if (d.action === "relay" && d.nextHop && d.outbound) {
      const hop = node.peers.get(d.nextHop);
      if (!hop) {
        this.#audit(this.forwarder.sendFailed(d.nextHop));
        return;
      }
      this.relayTap?.(m, d.outbound, d.nextHop);
      try {
        hop.send(d.outbound);
        this.forwarder.sendSucceeded(d.nextHop);
      } catch (e) {
        node.log.debug("relay send failed", { next_hop: d.nextHop, error: String(e) });
        this.#audit(this.forwarder.sendFailed(d.nextHop));
      }
      return;
    }
    if (d.action === "unreachable" && d.unreachable) {
      try {
        node.peers.get(d.unreachable.nextHop)?.send(d.unreachable.message);
      } catch { /* closed */ }
      return;
    }
    if (d.action === "drop") {
      node.log.debug("frame for another node dropped", {
        peer: link.nodeId,
        destination: m.destination,
        reason: d.reason,
      });
    }
  }

  #onRouteUnreachable(m: InboundMessage, link: PeerLink): void {
    let u;
    try {
      u = parseRouteUnreachable(m.payload);
    } catch {
      return;
    }
    const d = m.destination;
    if (d === this.#self || d === "*" || d === "") {
      this.#node.recordAudit("ROUTE_UNREACHABLE", {
        peer: link.nodeId,
        reporter: m.source,
        destination: u.destination,
        original_msg_id: u.originalMsgId,
        reason: u.reason,
      });
      this.#node.outbox.unreachable(u.destination);
      return;
    }
    // Ours: the report travels on toward the originator (the reference stops after one hop).
    if (this.mode !== "relay" || m.ttl <= 0 || m.hops.includes(this.#self)) return;
    const nowMs = this.#node.clock.monotonicMs();
    const hop = this.table.nextHop(
      d,
      (h) => h === link.nodeId || !this.forwarder.breaker.allows(h, nowMs),
    );
    const out = hop ? this.#node.peers.get(hop) : undefined;
    if (!out) return;
    const fwd: OutboundMessage = {
      type: m.type,
      payload: m.payload,
      msgId: m.msgId,
      source: m.source,
      sourceDisplay: m.sourceDisplay,
      destination: d,
      timestamp: m.timestamp,
      ttl: m.ttl - 1,
      hops: [...m.hops, this.#self],
      priority: "NORMAL",
    };
    if (m.sourceSignature) fwd.sourceSignature = m.sourceSignature;
    if (m.sourceSigScheme) fwd.sourceSigScheme = m.sourceSigScheme;
    try {
      out.send(fwd);
    } catch { /* closed */ }
  }

  // ----- end to end, inbound -----

  #openSealed(m: InboundMessage, link: PeerLink): void {
    const identity = this.#node.identity;
    const ctx = {
      peerNodeId: link.nodeId,
      keys: identity.e2e,
      sourceKeyLookup: (id: string) => this.keysOf(id)?.ed25519 ?? null,
    };
    let r = openE2eInbound(m, ctx);
    if (!r.ok && r.reason === "e2e-decrypt") {
      // A sender that only knew our identity key sealed to its X25519 conversion.
      const legacy = this.#legacy();
      if (legacy) r = openE2eInbound(m, { ...ctx, keys: legacy });
    }
    if (!r.ok) {
      this.#audit(r.auditEvents);
      return;
    }
    this.#deliver(r.message, link);
  }

  #legacy(): E2eOpenKeys | null {
    if (this.#legacyKeys === undefined) {
      const id = this.#node.identity;
      this.#legacyKeys = id.e2e.kind === "legacy" ? null : {
        publicKey: ed25519PkToCurve25519(id.publicKey),
        secretKey: ed25519SkToCurve25519(id.secretKey),
      };
    }
    return this.#legacyKeys;
  }

  /** Deliver an authenticated message for us: direct ones as before, relayed ones by originator. */
  #deliver(m: InboundMessage, link: PeerLink): void {
    if (!APP_TYPES.has(m.type)) return;
    const node = this.#node;
    if (m.source === link.nodeId) {
      node.inbound.accept(m, link);
      return;
    }
    node.inbound.acceptRelayed(
      m,
      { nodeId: m.source, name: this.nameOf(m.source) },
      this.#ackRoute(m.source),
    );
  }

  #ackRoute(origin: string): AckRoute {
    let r = this.#ackRoutes.get(origin);
    if (!r) {
      r = { send: (ids) => this.sendAck(origin, ids) };
      this.#ackRoutes.set(origin, r);
      if (this.#ackRoutes.size > 4096) {
        this.#ackRoutes.delete(this.#ackRoutes.keys().next().value!);
      }
    }
    return r;
  }

  /**
   * Acknowledge `msgIds` to their originator: over the direct link when there is one, else as
   * a mesh frame addressed to it (inner-signed by our session, verified by the originator).
   * Without a route nothing is sent: the originator re-sends and our history acknowledges again.
   */
  sendAck(origin: string, msgIds: string[]): void {
    const node = this.#node;
    const ack = ackMessage(this.#self, msgIds);
    const direct = node.peers.get(origin);
    if (direct) {
      direct.send(ack);
      return;
    }
    const hop = this.forwarder.nextHopFor(origin);
    const link = hop ? node.peers.get(hop) : undefined;
    if (!link) {
      node.log.debug("no route to acknowledge a relayed message", { origin });
      return;
    }
    link.send({ ...ack, destination: origin, ttl: this.maxHops, hops: [] });
  }

  /** A delivery acknowledgement from a far node: accepted only with its valid inner signature. */
  #onMeshAck(m: InboundMessage, link: PeerLink): void {
    const key = this.keysOf(m.source)?.ed25519 ?? null;
    let reason: string | null = null;
    if (key === null) reason = "unknown-source";
    else if (m.sourceSignature === undefined) reason = "missing-on-relayed";
    else {
      let ok = false;
      try {
        ok = verifyInnerSourceSignature(
          {
            source: m.source,
            destination: m.destination,
            msgId: m.msgId,
            payload: m.payload,
            signature: m.sourceSignature,
            scheme: m.sourceSigScheme,
          },
          nodeVerifier(key),
          false,
        );
      } catch { /* unusable key */ }
      if (!ok) reason = "verification-failed";
    }
    if (reason !== null) {
      this.#audit([meshEvent("INNER_SOURCE_SIG_DROP", {
        peer: link.nodeId,
        source: m.source,
        msg_type: m.type,
        reason,
      })]);
      return;
    }
    this.#node.outbox.ack(m.source, parseAck(m.payload));
  }

  // ----- end to end, outbound (used by the outbox) -----

  /** The link a far destination is reached through now (a route and its keys known), or null. */
  via(dest: string): PeerLink | null {
    if (!this.routingEnabled || dest === this.#self) return null;
    const hop = this.forwarder.nextHopFor(dest);
    if (hop === null || hop === dest) return null;
    if (this.keysOf(dest) === null) return null;
    return this.#node.peers.get(hop) ?? null;
  }

  /** The sealed frame of a queued message for a far destination. Throws without its keys. */
  frame(dest: string, m: MeshQueued, attempt: number): OutboundMessage {
    const keys = this.keysOf(dest);
    if (!keys) throw new Error(`no key for ${dest}`);
    const out = buildE2eMessage({
      destination: dest,
      payload: m.payload,
      recipient: keys.x25519 ?? ed25519PkToCurve25519(keys.ed25519),
      type: m.msgType,
      msgId: m.msgId,
      ttl: this.maxHops,
      priority: m.priority,
      confidentiality: this.confidentiality,
      rng: this.#rng,
    });
    out.retries = attempt;
    return out;
  }

  /** Whether a far destination acknowledges (ours: it announced its keys), null when unknown. */
  acking(dest: string): boolean | null {
    return this.#learned.has(dest) ? true : null;
  }

  // -------------------------------------------------------------------------------------------
  // Keys and names

  /**
   * A node's keys: a live link, a trust-store pin, keys carried by a verified capability
   * announce, an earlier sighting. Null for unknown and revoked nodes.
   */
  keysOf(nodeId: string): NodeKeys | null {
    const node = this.#node;
    if (node.trust.isRevoked(nodeId)) return null;
    const link = node.peers.get(nodeId);
    if (link) {
      const p = link.peer;
      return {
        ed25519: p.identityPublic,
        x25519: p.x25519BindingValid ? p.x25519Public : null,
        source: "link",
      };
    }
    const learned = this.#learned.get(nodeId);
    const pin = keyForNode(nodeId, node.trust.getPeer(nodeId)?.pubkey);
    if (pin) return { ed25519: pin, x25519: learned?.x25519 ?? null, source: "pin" };
    if (learned) return { ed25519: learned.ed25519, x25519: learned.x25519, source: "announce" };
    let seen: string | null | undefined;
    try {
      seen = node.store.peers.get(nodeId)?.identityPublicB64;
    } catch { /* store closed */ }
    const k = keyForNode(nodeId, seen);
    return k ? { ed25519: k, x25519: null, source: "sighting" } : null;
  }

  /** A display name: a trust-store name, a live link's, else "". */
  nameOf(nodeId: string): string {
    const node = this.#node;
    return node.trust.namesOf(nodeId)[0] ?? node.peers.get(nodeId)?.peer.name ?? "";
  }

  /** The key the registry verifies an announce with: known keys, else the one it carries. */
  #announceKey(id: string): Uint8Array | null {
    const k = this.keysOf(id);
    if (k) return k.ed25519;
    const cand = this.#candidate;
    if (!cand) return null;
    // Parsed (and its X25519 binding verified) only for an origin we have no key for yet.
    if (cand.keys === undefined) cand.keys = carriedKeys(cand.payload);
    const c = cand.keys;
    return c && c.origin === id && !this.#node.trust.isRevoked(id) ? c.ed25519 : null;
  }

  #learn(c: CarriedKeys): void {
    const old = this.#learned.get(c.origin);
    const same = old && old.x25519?.toHex() === c.x25519?.toHex();
    this.#learned.delete(c.origin);
    this.#learned.set(c.origin, c);
    while (this.#learned.size > LEARNED_KEYS_MAX) {
      this.#learned.delete(this.#learned.keys().next().value!);
    }
    if (!same) {
      this.#rerouteWanted = true;
      this.#kick();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Capabilities

  #onCapabilityAnnounce(m: InboundMessage, link: PeerLink): void {
    const node = this.#node;
    // Its carried keys are parsed lazily: a duplicate (most announces a node receives) or one
    // from an origin whose key we hold needs no parse and no binding check.
    const cand: { payload: Uint8Array; keys?: CarriedKeys | null } = { payload: m.payload };
    this.#candidate = cand;
    let r;
    try {
      r = this.registry.onAnnounce(link.nodeId, m.payload);
    } finally {
      this.#candidate = null;
    }
    this.#audit(r.auditEvents);
    if (!r.accepted || r.origin === undefined) {
      if (r.reason !== "duplicate" && r.reason !== "own-origin" && r.reason !== "superseded") {
        node.log.debug("CAPABILITY_ANNOUNCE not applied", { peer: link.nodeId, reason: r.reason });
      }
      return;
    }
    const origin = r.origin;
    if (r.relay) {
      const c = cand.keys === undefined ? carriedKeys(m.payload) : cand.keys;
      if (c && c.origin === origin) this.#learn(c);
    }
    if (r.changed) {
      this.#capsDirty = true;
      this.#persistSoon();
    }
    const caps = r.capabilities ?? [];
    // §9.2 binding for pinned origins. An empty set is never bound: reference nodes never
    // announce one, ours do only to spread their keys.
    const rec = node.trust.getPeer(origin);
    if (rec && caps.length > 0 && (r.changed || rec.capabilityHash === undefined)) {
      node.observeCapabilities(origin, caps).catch((e) =>
        node.log.warn("cannot bind the peer's capabilities", { peer: origin, error: String(e) })
      );
    }
    if (r.relay && this.routingEnabled) {
      const targets = this.registry.relayTargets(origin, this.#neighbours(), link.nodeId);
      for (const t of targets) this.#sendCapability(t, m.payload);
    }
  }

  /** Our own signed announce (with our keys), rebuilt when older than half an interval. */
  #ownAnnouncePayload(fresh = false): Uint8Array {
    const nowMs = this.#node.clock.monotonicMs();
    const a = this.#ownAnnounce;
    if (!fresh && a && nowMs - a.atMs < this.#capIntervalMs / 2) return a.payload;
    const id = this.#node.identity;
    const payload = buildKeyedCapabilityAnnounce({
      signer: this.#signer,
      origin: this.#self,
      capabilities: this.registry.localCapabilities(),
      announcedAt: this.#node.clock.now(),
      x25519: id.e2e.kind === "master-seed-v1" && id.e2e.bindingSignature
        ? { publicKey: id.e2e.publicKey, bindingSignature: id.e2e.bindingSignature }
        : null,
    });
    this.#ownAnnounce = { payload, atMs: nowMs };
    return payload;
  }

  #sendCapability(peer: string, payload: Uint8Array): void {
    const link = this.#node.peers.get(peer);
    if (!link) return;
    try {
      link.send({
        type: "CAPABILITY_ANNOUNCE",
        payload,
        destination: peer,
        ttl: 3,
        priority: "NORMAL",
      });
    } catch (e) {
      this.#node.log.debug("cannot send CAPABILITY_ANNOUNCE", { peer, error: String(e) });
    }
  }

  /** A new neighbour gets our announce and the cached envelopes of others at once (ours). */
  #sendCapabilitiesTo(link: PeerLink): void {
    this.#sendCapability(link.nodeId, this.#ownAnnouncePayload());
    if (!this.routingEnabled) return;
    for (const e of this.registry.cachedEnvelopes()) {
      if (e.origin !== link.nodeId) this.#sendCapability(link.nodeId, e.payload);
    }
  }

  /** The periodic round: a fresh own announce and the cached envelopes, to every neighbour. */
  #capabilityRound(): void {
    const neighbours = this.#neighbours();
    if (neighbours.length === 0) return;
    const own = this.#ownAnnouncePayload(true);
    const cached = this.routingEnabled ? this.registry.cachedEnvelopes() : [];
    for (const n of neighbours) {
      this.#sendCapability(n, own);
      for (const e of cached) if (e.origin !== n) this.#sendCapability(n, e.payload);
    }
  }

  /** Replace the local capability set and announce it now. */
  setLocalCapabilities(caps: string[]): boolean {
    const changed = this.registry.setLocal(caps);
    if (changed) {
      this.#capsDirty = true;
      this.#persistSoon();
      const own = this.#ownAnnouncePayload(true);
      for (const n of this.#neighbours()) this.#sendCapability(n, own);
    }
    return changed;
  }

  #neighbours(): string[] {
    return this.#node.peers.entries().filter((e) => e.link.open).map((e) => e.link.nodeId);
  }

  /** Where `nodeId` is reachable now: a direct link (1 hop) or a route. */
  reach(nodeId: string): Reach | null {
    if (this.#node.peers.get(nodeId)) return { hops: 1, via: nodeId };
    if (!this.routingEnabled) return null;
    const hop = this.forwarder.nextHopFor(nodeId);
    if (hop === null) return null;
    return { hops: this.table.route(nodeId)?.cost ?? 1, via: hop };
  }

  /** `caps [pattern]`: matching capabilities, local first, with reachability. */
  findCapabilities(pattern = "*"): CapabilityRow[] {
    return this.registry.find(pattern).map((m) => {
      const local = m.nodeId === this.#self;
      const r = local ? null : this.reach(m.nodeId);
      return {
        node_id: m.nodeId,
        name: local ? this.#node.name : this.nameOf(m.nodeId),
        capability: m.capability,
        local,
        reachable: local || r !== null,
        hops: local ? 0 : r?.hops ?? null,
        via: r?.via ?? null,
      };
    });
  }

  /**
   * `send_to_capability`: the nodes offering a capability matching `pattern` (never this one).
   * `first`: the nearest reachable (fewest hops, then RTT); `random`: one at random among the
   * reachable ones (all known when none is); `all`: every known node (unreachable ones queued).
   */
  selectCapability(pattern: string, strategy: CapabilityStrategy): string[] {
    if (!["first", "random", "all"].includes(strategy)) {
      throw new IronMeshError(
        "BAD_PARAMS",
        `strategy must be first, random or all, got '${strategy}'`,
        "pass --strategy first|random|all",
        ExitCode.USAGE,
      );
    }
    const rank = (id: string) => {
      const r = this.reach(id);
      if (!r) return undefined;
      const rtt = r.hops === 1 ? this.#node.peers.get(id)?.stats.rttMs ?? 0 : 0;
      return r.hops + Math.min(rtt, 60_000) / 100_000;
    };
    const anyReachable = this.registry.select(pattern, "all", {})
      .some((id) => this.reach(id) !== null);
    const ids = this.registry.select(pattern, strategy, {
      rng: this.#rng,
      rank,
      isCandidate: strategy !== "all" && anyReachable ? (id) => this.reach(id) !== null : undefined,
    });
    if (ids.length === 0) throw refuseNoCapability(pattern);
    return ids;
  }

  /** `send_to_capability`: send `payload` to the node(s) `selectCapability` picks. */
  async sendToCapability(
    pattern: string,
    payload: Uint8Array,
    strategy: CapabilityStrategy = "first",
    opts: { msgType?: string; priority?: Priority } = {},
  ): Promise<Submitted[]> {
    const ids = this.selectCapability(pattern, strategy);
    const out: Submitted[] = [];
    for (const id of ids) out.push(await this.#node.send(id, payload, opts));
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Revocation

  async #onRevocation(m: InboundMessage, link: PeerLink): Promise<void> {
    const node = this.#node;
    const d = this.flood.onRevocation(link.nodeId, m.payload);
    if (d.forward && this.routingEnabled) {
      const targets = this.flood.forwardTargets(
        this.#neighbours(),
        link.nodeId,
        d.target,
        d.revoker,
      );
      const fwd = forwardRevocationMessage(m.payload);
      for (const t of targets) {
        try {
          node.peers.get(t)?.send(fwd);
        } catch { /* closed */ }
      }
    }
    if (d.apply && d.target && d.revocation) {
      const change = d.advisory
        ? await node.trust.recordAdvisoryRevocation(d.target, d.revocation)
        : await node.trust.recordRevocation(d.target, d.revocation);
      for (const e of change.events) {
        await node.recordAudit(e.event, e.details);
        node.bus.publish({
          type: "trust-change",
          nodeId: d.target,
          event: e.event,
          details: e.details,
        });
      }
      if (!d.advisory) {
        node.peers.get(d.target)?.close("revoked");
        this.registry.forgetRemote(d.target);
        this.#learned.delete(d.target);
        this.#capsDirty = true;
        this.#persistSoon();
      }
      return;
    }
    if (d.reason && !["duplicate", "unverifiable", "already-revoked"].includes(d.reason)) {
      this.#audit([{
        event: "REVOCATION_REFUSED",
        details: {
          peer: link.nodeId,
          target_node_id: d.target ?? null,
          revoker_node_id: d.revoker ?? null,
          reason: d.reason,
          ...(d.detail ? { detail: d.detail } : {}),
        },
      }]);
    }
  }

  /**
   * Send a signed REVOCATION of `target` (already revoked here) to every neighbour but the
   * target; receivers that pin us apply it and pass it on. Returns how many peers got it.
   */
  sendRevocation(target: string, reason: string): number {
    const node = this.#node;
    const ts = Math.trunc(node.clock.now());
    const msg = revocationMessage(this.#signer, this.#self, target, ts, reason);
    this.flood.noteOriginated(target, this.#self, ts);
    let n = 0;
    for (const peer of this.#neighbours()) {
      if (peer === target) continue;
      try {
        node.peers.get(peer)?.send(msg);
        n++;
      } catch { /* closed */ }
    }
    node.recordAudit("REVOCATION_BROADCAST", {
      target_node_id: target,
      timestamp: ts,
      reason,
      peers: n,
    });
    return n;
  }

  /** Revoke `target` here (if not yet) and broadcast the signed revocation. */
  async revokeAndBroadcast(target: string, reason: string): Promise<number> {
    const node = this.#node;
    if (!node.trust.isRevoked(target)) {
      const change = await node.trust.revokeLocal(target, { reason, actor: "daemon" });
      for (const e of change.events) {
        await node.recordAudit(e.event, e.details);
        node.bus.publish({
          type: "trust-change",
          nodeId: target,
          event: e.event,
          details: e.details,
        });
      }
    }
    node.peers.get(target)?.close("revoked");
    return this.sendRevocation(target, reason);
  }

  // -------------------------------------------------------------------------------------------
  // Views

  /** Routes for the dashboard and API: live links (1 hop) and learned routes. */
  routes(): RouteInfo[] {
    const node = this.#node;
    const out = new Map<string, RouteInfo>();
    for (const e of node.peers.entries()) {
      if (!e.link.open) continue;
      out.set(e.link.nodeId, {
        destination: e.link.nodeId,
        name: e.link.peer.name,
        nextHop: e.link.nodeId,
        cost: 1,
        learnedFrom: e.link.nodeId,
        updated: e.link.stats.lastSeen / 1000,
      });
    }
    if (this.routingEnabled) {
      for (const r of this.table.routes()) {
        if (out.has(r.destination) || !node.peers.get(r.nextHop)) continue;
        out.set(r.destination, {
          destination: r.destination,
          name: this.nameOf(r.destination),
          nextHop: r.nextHop,
          cost: r.cost,
          learnedFrom: r.learnedFrom,
          updated: r.updated,
        });
      }
    }
    return [...out.values()];
  }

  /** Capabilities and the nodes offering them (this node's own included). */
  capabilities(): CapabilityInfo[] {
    const by = new Map<string, string[]>();
    for (const [id, caps] of Object.entries(this.registry.all())) {
      for (const c of caps) by.set(c, [...(by.get(c) ?? []), id]);
    }
    return [...by].map(([capability, nodeIds]) => ({ capability, nodeIds }));
  }

  /** The `MeshView` the dashboard and API read. */
  view(): MeshView {
    return {
      routingEnabled: this.routingEnabled,
      routes: () => this.routes(),
      capabilities: () => this.capabilities(),
      broadcastRevocation: async (nodeId, reason) => {
        await this.revokeAndBroadcast(nodeId, reason);
      },
    };
  }

  // -------------------------------------------------------------------------------------------
  // Audit and persistence

  #audit(events: readonly (MeshEvent | { event: string; details: Record<string, unknown> })[]) {
    const node = this.#node;
    for (const e of events) {
      node.recordAudit(e.event, e.details);
      if (SECURITY_EVENTS.has(e.event)) {
        node.bus.publish({ type: "security", event: e.event, details: e.details });
      }
    }
  }

  #persistSoon(): void {
    if (!this.#persist || this.#closed || this.#persistTimer !== null) return;
    this.#persistTimer = setTimeout(() => {
      this.#persistTimer = null;
      this.#save();
    }, PERSIST_DEBOUNCE_MS);
  }

  #save(): Promise<void> {
    if (!this.#persist) return Promise.resolve();
    this.#persisting = this.#persisting.then(async () => {
      const seed = this.#node.identity.seed;
      try {
        if (this.table.persistDirty && this.routingEnabled) {
          await saveRoutesFile(this.#routesPath, routesKey(seed), this.table);
        }
        if (this.#capsDirty) {
          this.#capsDirty = false;
          await saveCapabilitiesFile(this.#capsPath, capabilitiesKey(seed), this.registry);
        }
      } catch (e) {
        this.#node.log.warn("cannot write the mesh state files", { error: String(e) });
      }
    });
    return this.#persisting;
  }
}
