/**
 * A running ironmesh node: identity, trust, audit, message store, transports and
 * peers composed into one object. `cli/commands/run.ts` and the SDK start one; tests
 * start several in one process over the in-memory transport.
 */
import { join } from "node:path";
import { type Clock, type Rng, systemClock, systemRng } from "../lib/clock.ts";
import { auditKey } from "../lib/crypto/kdf.ts";
import { signDetached } from "../lib/crypto/sodium.ts";
import { ExitCode, IronMeshError } from "../lib/errors.ts";
import { FrameError } from "../lib/wire/v09/errors.ts";
import { ensureStateDir } from "../lib/fs/atomic_write.ts";
import { lockStateDir, type StateLock } from "../lib/fs/lock.ts";
import type { Identity } from "../lib/identity/identity.ts";
import { AuditLog } from "../lib/audit/log.ts";
import { Logger } from "../lib/log.ts";
import { type MessageStore, openStore, type StoreCredential } from "../lib/store/db.ts";
import type { TrustPolicy } from "../lib/trust/policy.ts";
import { TrustStore } from "../lib/trust/store.ts";
import { AuthFailureLimiter, ConnectionAdmission } from "../lib/wire/auth_limiter.ts";
import { KeyedTokenBuckets, TokenBucket } from "../lib/wire/token_bucket.ts";
import { admissionRefusal } from "../lib/wire/v09/handshake_server.ts";
import type { PeerInfo } from "../lib/wire/v09/handshake_types.ts";
import type { InboundMessage, Priority } from "../lib/wire/session.ts";
import { rateLimitedMessage } from "../lib/wire/v09/control.ts";
import { backoffSeconds } from "./backoff.ts";
import { dialPeer, type DialPolicy } from "./dialer.ts";
import { EventBus, type PeerRef } from "./events.ts";
import {
  clientHandshake,
  HandshakeError,
  type Handshaken,
  type HandshakeSetup,
  serverHandshake,
} from "./handshake_driver.ts";
import { ACK_TYPE, ackMessage, APP_TYPES, Inbound, parseAck } from "./inbound.ts";
import { type MeshOptions, MeshRouter } from "./mesh.ts";
import { Outbox, type Submitted } from "./outbox.ts";
import { PeerLink } from "./peer_link.ts";
import { PeerTable, type Role } from "./peers.ts";
import { TrustGate } from "./trust_gate.ts";
import type { Conn, Listener, Transport } from "./transport/transport.ts";
import { type ServerTls, WebSocketTransport } from "./transport/websocket.ts";

/** Rate limits and caps (PROTOCOL-0.9 §13; ours are more generous where the reference throttles streaming). */
export interface NodeLimits {
  /** Inbound frames per second per peer, before decryption (default 1000; the reference's 20 is too low for streaming). */
  peerRate: number;
  /** Burst of the per-peer bucket (default 2000). */
  peerBurst: number;
  /** Global inbound frames per second over all peers (default 0 = off, as the reference). */
  globalRate: number;
  /** New inbound connections per second, all addresses (default 2, burst 30). */
  connRate: number;
  connBurst: number;
  /** New inbound connections per second per address (default 0.5, burst 10). */
  ipRate: number;
  ipBurst: number;
  /** Auth failures within 300 s that ban an address for 300 s (default 3). */
  authFailures: number;
  /** Outbound bytes per second per peer (default 64 MiB/s; 0 = unlimited). */
  peerBandwidth: number;
}

/**
 * Largest application payload: its base64 inside the inner JSON, sealed and signed, must
 * fit the 1 MiB WebSocket message (PROTOCOL-0.9 §6.3), with room for the envelope fields.
 */
export const MAX_PAYLOAD_BYTES = 768_000;

/** Default limits. */
export const DEFAULT_LIMITS: NodeLimits = {
  peerRate: 1000,
  peerBurst: 2000,
  globalRate: 0,
  connRate: 2,
  connBurst: 30,
  ipRate: 0.5,
  ipBurst: 10,
  authFailures: 3,
  peerBandwidth: 64 * 1024 * 1024,
};

/** How to start a node. */
export interface NodeOptions {
  stateDir: string;
  identity: Identity;
  /** The mesh passphrase (never logged). */
  passphrase: string;
  /** Where to listen for peers; null = dial only. */
  listen?: { hostname: string; port: number } | null;
  /** Default: WebSocket (wss:// when `tls` is given). */
  transport?: Transport;
  tls?: ServerTls;
  /** Trusted CA/pinned certificates for outbound wss://. */
  caCerts?: string[];
  dial?: Partial<DialPolicy>;
  /** Static peers (`host:port`), dialed now and re-dialed with backoff. */
  connect?: string[];
  trust?: TrustPolicy;
  minProtocolVersion?: string;
  handshakeTimeoutMs?: number;
  /** Automatic rekey interval in seconds (default 1800; 0 = never). */
  rekeyIntervalS?: number;
  /** Heartbeat PING interval in seconds (default 30); a peer silent for 3 intervals is dropped. */
  heartbeatS?: number;
  /** Reconnect loop tick in seconds (default 5). */
  reconnectTickS?: number;
  limits?: Partial<NodeLimits>;
  clock?: Clock;
  rng?: Rng;
  log?: Logger;
  /** Storage credential for data.db (default: the mesh passphrase). */
  storeCredential?: StoreCredential;
  /** Extra HTTP handler on the listening port (dashboard, metrics). */
  onHttp?: (req: Request) => Response | Promise<Response>;
  /** Mesh routing, capabilities, end-to-end sealing (default: relay mode, strict sealing). */
  mesh?: MeshOptions;
}

/** A dial target remembered for reconnects. */
export interface Target {
  address: string;
  nodeId?: string;
  /** Agent name when known (discovery). */
  name?: string;
  /** Dialed by the reconnect loop (false: only remembered, e.g. a peer that dials us). */
  autoDial: boolean;
  /** Where it came from. */
  source: "static" | "mdns";
  failures: number;
  nextAttemptMs: number;
  lastError?: string;
  dialing: boolean;
}

/** A peer as status/API output shows it. */
export interface PeerStatus {
  nodeId: string;
  name: string;
  address: string;
  transport: string;
  role: Role;
  online: boolean;
  trustState: string;
  rttMs: number | null;
  framesSent: number;
  framesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  rejected: number;
  lastSeen: number | null;
  queued: number;
  protocolVersion?: string;
  lastError?: string;
}

/** A route as the dashboard and API show it. */
export interface RouteInfo {
  destination: string;
  /** Agent name when known, else "". */
  name: string;
  nextHop: string;
  /** Hop count (1 = a direct neighbour). */
  cost: number;
  learnedFrom: string;
  /** Wall-clock seconds of the last refresh, or null. */
  updated: number | null;
}

/** A capability and the nodes that offer it (this node's id for its own). */
export interface CapabilityInfo {
  capability: string;
  nodeIds: string[];
}

/** What the node knows of the mesh beyond its links; mesh routing supplies it once wired. */
export interface MeshView {
  /** True once mesh routing runs (route announces, relaying, revocation broadcast). */
  readonly routingEnabled: boolean;
  routes(): RouteInfo[];
  capabilities(): CapabilityInfo[];
  /** Broadcast a signed revocation of `nodeId` to the mesh (only with routing). */
  broadcastRevocation?(nodeId: string, reason: string): Promise<void>;
}

/** Until mesh routing is wired: live links as 1-hop routes, and this node's own capabilities (none yet). */
export function directMeshView(node: MeshNode): MeshView {
  return {
    routingEnabled: false,
    routes: () =>
      node.peers.entries().filter((e) => e.link.open).map((e) => ({
        destination: e.link.nodeId,
        name: e.link.peer.name,
        nextHop: e.link.nodeId,
        cost: 1,
        learnedFrom: e.link.nodeId,
        updated: e.link.stats.lastSeen / 1000,
      })),
    capabilities: () => [],
  };
}

function ipOf(address: string): string {
  const m = address.match(/^\[?([^\]]*?)\]?:\d+$/);
  return m ? m[1] : address;
}

/** A running node. */
export class MeshNode {
  readonly bus = new EventBus();
  readonly peers: PeerTable;
  readonly log: Logger;
  readonly identity: Identity;
  readonly clock: Clock;
  readonly startedAt = Date.now();
  listener: Listener | null = null;
  readonly targets = new Map<string, Target>();
  /** Routes and capabilities for the dashboard and API (the mesh router replaces it). */
  meshView: MeshView = directMeshView(this);
  #o: NodeOptions;
  #limits: NodeLimits;
  #transport: Transport;
  #lock: StateLock | null = null;
  #timers: ReturnType<typeof setInterval>[] = [];
  #authLimiter: AuthFailureLimiter;
  #admission: ConnectionAdmission;
  #peerBuckets: KeyedTokenBuckets;
  #globalBucket: TokenBucket | null;
  #lastRateLimitedSent = new Map<string, number>();
  #closing = false;
  #rng: Rng;
  #auditQueue: Promise<unknown> = Promise.resolve();
  #handshakes = new Set<Conn>();
  /** Set in `start`. */
  store!: MessageStore;
  trust!: TrustStore;
  audit!: AuditLog;
  gate!: TrustGate;
  outbox!: Outbox;
  inbound!: Inbound;
  /** Routing, relaying, capabilities, revocation broadcast (daemon/mesh.ts). */
  mesh!: MeshRouter;

  private constructor(o: NodeOptions) {
    this.#o = o;
    this.identity = o.identity;
    this.clock = o.clock ?? systemClock;
    this.#rng = o.rng ?? systemRng;
    this.log = (o.log ?? new Logger("info")).child({ node: o.identity.name });
    this.peers = new PeerTable(o.identity.nodeId);
    this.#limits = { ...DEFAULT_LIMITS, ...o.limits };
    const l = this.#limits;
    this.#authLimiter = new AuthFailureLimiter({ clock: this.clock, maxFailures: l.authFailures });
    this.#admission = new ConnectionAdmission({
      clock: this.clock,
      authLimiter: this.#authLimiter,
      globalRate: l.connRate,
      globalBurst: l.connBurst,
      perIpRate: l.ipRate,
      perIpBurst: l.ipBurst,
    });
    this.#peerBuckets = new KeyedTokenBuckets(l.peerRate, l.peerBurst, this.clock);
    this.#globalBucket = l.globalRate > 0
      ? new TokenBucket(l.globalRate, Math.max(1, Math.floor(l.globalRate)), this.clock)
      : null;
    this.#transport = o.transport ??
      new WebSocketTransport({ tls: o.tls, caCerts: o.caCerts });
    this.bus.onError = (e) => this.log.error("event subscriber failed", { error: String(e) });
  }

  /** Start a node: lock the state dir, open its files, listen, dial static peers. */
  static async start(o: NodeOptions): Promise<MeshNode> {
    const n = new MeshNode(o);
    try {
      await n.#open();
    } catch (e) {
      await n.#teardown();
      throw e;
    }
    return n;
  }

  get nodeId(): string {
    return this.identity.nodeId;
  }
  get name(): string {
    return this.identity.name;
  }
  get limits(): Readonly<NodeLimits> {
    return this.#limits;
  }
  /** Whether messages from new peers wait for an operator (`--require-message-promotion`). */
  get gateEnabled(): boolean {
    return this.gate.policy.requireMessagePromotion ?? false;
  }

  async #open(): Promise<void> {
    const o = this.#o;
    await ensureStateDir(o.stateDir);
    this.#lock = lockStateDir(o.stateDir, "ironmesh run");
    const seed = this.identity.seed;
    this.audit = new AuditLog(join(o.stateDir, "audit.log"), {
      key: auditKey(seed),
      clock: this.clock,
      signer: {
        publicKey: this.identity.publicKey,
        sign: (m: Uint8Array, ctx?: Uint8Array) => signDetached(m, this.identity.secretKey, ctx),
      },
      onCheckpointProblem: (problems) => {
        this.log.error("AUDIT LOG TRUNCATION DETECTED: the signed checkpoint no longer matches", {
          problems,
        });
      },
    });
    this.trust = await TrustStore.open(join(o.stateDir, "known_peers.json"), seed, {
      clock: this.clock,
    });
    if (this.trust.readOnly) {
      this.log.error("TRUST STORE IS READ-ONLY: every peer will be refused", {
        reason: this.trust.readOnlyReason,
      });
    }
    this.gate = new TrustGate(this.trust, o.trust ?? { mode: "tofu" }, (events) => {
      for (const ev of events) {
        this.recordAudit(ev.event, ev.details);
        const nodeId = String(ev.details.peer_id ?? ev.details.node_id ?? "");
        this.bus.publish({ type: "trust-change", nodeId, event: ev.event, details: ev.details });
      }
    });
    if (o.trust?.mode === "allow_all") {
      this.log.warn("TRUST MODE allow_all: every peer that knows the passphrase is admitted");
    }
    this.store = await openStore(join(o.stateDir, "data.db"), {
      credential: o.storeCredential ?? { passphrase: o.passphrase },
      clock: this.clock,
    });
    this.outbox = new Outbox({
      bandwidthBytesPerSec: this.#limits.peerBandwidth,
      store: this.store,
      selfId: this.nodeId,
      bus: this.bus,
      clock: this.clock,
      log: this.log,
      mesh: {
        via: (dest) => this.mesh?.via(dest) ?? null,
        frame: (dest, m, attempt) => this.mesh.frame(dest, m, attempt),
        acking: (dest) => this.mesh?.acking(dest) ?? null,
      },
    });
    this.inbound = new Inbound({
      store: this.store,
      selfId: this.nodeId,
      bus: this.bus,
      log: this.log,
      rule: (id) => this.gate.frameRule(id),
      audit: (e, d) => this.recordAudit(e, d),
    });
    this.mesh = new MeshRouter(this, o.mesh ?? {}, this.#rng, o.stateDir);
    await this.mesh.start();
    this.meshView = this.mesh.view();
    if (o.listen) {
      try {
        this.listener = await this.#transport.listen({
          hostname: o.listen.hostname,
          port: o.listen.port,
          onConn: (c) => this.#accept(c),
          onHttp: o.onHttp,
        });
      } catch (e) {
        if (e instanceof Deno.errors.AddrInUse) {
          throw new IronMeshError(
            "PORT_BUSY",
            `port ${o.listen.port} on ${o.listen.hostname} is already in use`,
            "stop what uses it or pass another --port",
            ExitCode.NETWORK,
          );
        }
        throw e;
      }
    }
    this.recordAudit("STARTUP", {
      node_id: this.nodeId,
      name: this.name,
      port: this.listener?.port ?? 0,
    });
    for (const a of o.connect ?? []) this.addTarget(a);
    const tick = (o.reconnectTickS ?? 5) * 1000;
    this.#timers.push(setInterval(() => this.#reconnectTick(), tick));
    const hb = (o.heartbeatS ?? 30) * 1000;
    this.#timers.push(setInterval(() => this.#heartbeat(hb), hb));
    const rekey = o.rekeyIntervalS ?? 1800;
    if (rekey > 0) this.#timers.push(setInterval(() => this.#rekeyAll(), rekey * 1000));
    this.#timers.push(setInterval(() => this.#cleanup(), 3_600_000));
    this.#reconnectTick();
  }

  /** Append an audit event (serialised, never throws; failures are logged). */
  recordAudit(event: string, details: Record<string, unknown>): Promise<void> {
    const p = this.#auditQueue.then(() => this.audit.append(event, details)).then(
      () => {},
      (e) => this.log.error("cannot write the audit log", { event, error: String(e) }),
    );
    this.#auditQueue = p;
    return p;
  }

  #setup(): HandshakeSetup {
    return {
      identity: this.identity,
      passphrase: this.#o.passphrase,
      tofu: this.gate.hook,
      minProtocolVersion: this.#o.minProtocolVersion,
      timeoutMs: this.#o.handshakeTimeoutMs,
      clock: this.clock,
      rng: this.#rng,
      sessionOptions: {
        // Originators of relayed frames: live links, pins, keys learned over the mesh.
        sourceKeyLookup: (id) => this.mesh?.keysOf(id)?.ed25519 ?? null,
      },
    };
  }

  /** An inbound connection: admission checks, then the server handshake. */
  async #accept(conn: Conn): Promise<void> {
    if (this.#closing) return conn.close(1001, "shutting down");
    const ip = ipOf(conn.remoteAddress);
    const refusal = admissionRefusal(this.#admission.check(ip));
    if (refusal) {
      try {
        conn.send(refusal.text);
      } catch { /* gone */ }
      conn.close(1008, refusal.code);
      this.log.info("connection refused", { address: conn.remoteAddress, code: refusal.code });
      return;
    }
    this.#handshakes.add(conn);
    let h: Handshaken;
    try {
      h = await serverHandshake(conn, this.#setup());
    } catch (e) {
      this.#handshakeFailed(conn.remoteAddress, "server", e, ip);
      return;
    } finally {
      this.#handshakes.delete(conn);
    }
    this.#authLimiter.clear(ip);
    await this.#established(h, "server", conn.remoteAddress);
  }

  #handshakeFailed(address: string, role: string, e: unknown, ip?: string): void {
    const code = e instanceof IronMeshError ? e.code : "HS_ERROR";
    const reason = e instanceof Error ? e.message : String(e);
    if (e instanceof HandshakeError && e.failure.authFailure && ip !== undefined) {
      const count = this.#authLimiter.recordFailure(ip);
      this.recordAudit("AUTH_FAILURE", { ip, failure_count: count });
      if (count >= this.#limits.authFailures) {
        this.recordAudit("AUTH_IP_BLOCKED", { ip, duration_seconds: 300 });
        this.log.warn("address blocked after repeated wrong passphrases", { ip });
      }
    }
    this.log.info("handshake failed", { address, role, code, reason });
    this.bus.publish({ type: "handshake-failed", address, code, reason, role });
  }

  /** Register a completed handshake as a link (trust admission, tie-break, queue flush). */
  async #established(h: Handshaken, role: Role, address: string): Promise<PeerLink | null> {
    try {
      await this.gate.admit(h.peer, address);
    } catch (e) {
      h.conn.close(1008, "refused");
      h.session.close();
      this.#handshakeFailed(address, role, e);
      return null;
    }
    if (this.#closing) {
      h.conn.close(1001, "shutting down");
      return null;
    }
    const link = new PeerLink(h.conn, h.session, h.peer, {
      onMessage: (m, l) => this.#onMessage(m, l),
      onClose: (reason, l) => this.#onClose(reason, l),
      onReject: (code, message, l, error) => {
        this.log.debug("frame rejected", { peer: l.nodeId, code, message });
        const frame = error instanceof FrameError ? error : undefined;
        if (code === "FR_INNER_SIGNATURE") this.mesh?.onInnerSignatureReject(l, frame);
        else if (code === "FR_DUPLICATE" && frame?.frame) this.#reacknowledge(l, frame.frame.msgId);
      },
      admitFrame: (l) => this.#admitFrame(l),
    }, this.log);
    const r = this.peers.register({ link, role, address });
    if (!r.kept) {
      this.log.debug("duplicate connection closed (tie-break)", { peer: h.peer.nodeId, role });
      link.close("duplicate connection");
      return null;
    }
    if (r.replaced) {
      this.log.debug("replaced a duplicate connection (tie-break)", { peer: h.peer.nodeId });
      r.replaced.link.close("duplicate connection");
    }
    const ref = this.#ref(h.peer, address);
    try {
      this.store.peers.upsert(h.peer.nodeId, {
        identityPublicB64: h.peer.identityPublicB64,
        fingerprint: h.peer.nodeId,
        address,
      });
    } catch (e) {
      this.log.warn("cannot record the peer sighting", { error: String(e) });
    }
    if (role === "server") {
      this.recordAudit("PEER_CONNECT", { peer_id: h.peer.nodeId, peer_name: h.peer.name, address });
    }
    for (const t of this.targets.values()) {
      if (t.nodeId === h.peer.nodeId || (role === "client" && t.address === address)) {
        t.nodeId = h.peer.nodeId;
        t.failures = 0;
        t.lastError = undefined;
      }
    }
    this.log.info("peer online", { peer: h.peer.name, id: h.peer.nodeId, address, role });
    this.bus.publish({ type: "peer-up", peer: ref, transport: h.conn.kind, role });
    try {
      link.send(ackMessage(this.nodeId, [])); // announces that we acknowledge deliveries
    } catch { /* closed */ }
    this.outbox.linkUp(link);
    this.mesh.linkUp(link);
    return link;
  }

  /**
   * The session dropped a re-sent message it had already delivered (its terminal dedup): the
   * sender re-sends only what we did not acknowledge, so our ACK was lost — acknowledge it again
   * when it is ours from that peer, or the sender would re-send it until the dedup forgets it.
   */
  #reacknowledge(link: PeerLink, msgId: string): void {
    try {
      const known = this.store.history.get(msgId)?.source === link.nodeId ||
        this.store.pendingTrust.list(link.nodeId).some((m) => m.msgId === msgId);
      if (known) link.send(ackMessage(this.nodeId, [msgId]));
    } catch { /* store or link closed */ }
  }

  #ref(p: PeerInfo, address: string): PeerRef {
    return { nodeId: p.nodeId, name: p.name, address };
  }

  /** Per-peer (and optional global) inbound rate limit, checked before decryption. */
  #admitFrame(link: PeerLink): boolean {
    if (this.#peerBuckets.tryConsume(link.nodeId) && (this.#globalBucket?.tryConsume() ?? true)) {
      return true;
    }
    const now = this.clock.monotonicMs();
    if ((this.#lastRateLimitedSent.get(link.nodeId) ?? -Infinity) + 1000 <= now) {
      this.#lastRateLimitedSent.set(link.nodeId, now);
      try {
        link.send(rateLimitedMessage(this.nodeId));
      } catch { /* closed */ }
      this.log.warn("peer is over its inbound rate limit; frames dropped", {
        peer: link.nodeId,
        rate: this.#limits.peerRate,
      });
    }
    return false;
  }

  #onMessage(m: InboundMessage, link: PeerLink): void {
    if (this.mesh.onFrame(m, link)) return;
    if (m.type === ACK_TYPE) {
      this.outbox.ack(link.nodeId, parseAck(m.payload));
      return;
    }
    if (!m.terminal) {
      this.log.debug("relaying is not enabled; frame for another node dropped", {
        peer: link.nodeId,
        destination: m.destination,
      });
      return;
    }
    if (APP_TYPES.has(m.type)) this.inbound.accept(m, link);
  }

  #onClose(reason: string, link: PeerLink): void {
    if (!this.peers.unregister(link)) return; // a replaced duplicate
    this.outbox.linkDown(link.nodeId);
    this.mesh.linkDown(link.nodeId);
    const address = this.peers.entry(link.nodeId)?.address ?? link.conn.remoteAddress;
    this.log.info("peer offline", { peer: link.peer.name, id: link.nodeId, reason });
    this.bus.publish({ type: "peer-down", peer: this.#ref(link.peer, address), reason });
    for (const t of this.targets.values()) {
      if (t.nodeId === link.nodeId) t.nextAttemptMs = this.clock.monotonicMs();
    }
  }

  /** Remember `address` as a peer to dial now (and again on failure, with backoff). */
  addTarget(
    address: string,
    opts: { name?: string; autoDial?: boolean; source?: "static" | "mdns" } = {},
  ): Target {
    let t = this.targets.get(address);
    if (!t) {
      t = {
        address,
        failures: 0,
        nextAttemptMs: 0,
        dialing: false,
        autoDial: opts.autoDial ?? true,
        source: opts.source ?? "static",
      };
      this.targets.set(address, t);
      if (t.autoDial) queueMicrotask(() => this.#reconnectTick());
    } else if (opts.autoDial) t.autoDial = true;
    if (opts.name) t.name = opts.name;
    return t;
  }

  #reconnectTick(): void {
    if (this.#closing) return;
    this.outbox.retransmit();
    const now = this.clock.monotonicMs();
    for (const t of this.targets.values()) {
      if (!t.autoDial || t.dialing || now < t.nextAttemptMs) continue;
      if (t.nodeId && this.peers.get(t.nodeId)) continue;
      this.#dialTarget(t).catch(() => {});
    }
  }

  async #dialTarget(t: Target): Promise<PeerLink | null> {
    t.dialing = true;
    try {
      const link = await this.connect(t.address);
      t.failures = 0;
      t.lastError = undefined;
      return link;
    } catch (e) {
      t.failures++;
      t.lastError = e instanceof Error ? e.message : String(e);
      const wait = backoffSeconds(t.failures - 1, Math.random());
      t.nextAttemptMs = this.clock.monotonicMs() + wait * 1000;
      this.log.info("cannot reach peer; will retry", {
        address: t.address,
        in_s: Math.round(wait),
        error: t.lastError,
      });
      return null;
    } finally {
      t.dialing = false;
    }
  }

  /** Dial `address` once and complete the handshake; resolves with the live link. */
  async connect(address: string): Promise<PeerLink> {
    const policy: DialPolicy = {
      allowPlaintextWs: this.#o.dial?.allowPlaintextWs ?? false,
      strictTls: this.#o.dial?.strictTls ?? false,
      timeoutMs: this.#o.dial?.timeoutMs,
    };
    const conn = await dialPeer(this.#transport, address, policy, this.log);
    let h: Handshaken;
    this.#handshakes.add(conn);
    try {
      h = await clientHandshake(conn, this.#setup());
    } catch (e) {
      this.#handshakeFailed(address, "client", e);
      throw e;
    } finally {
      this.#handshakes.delete(conn);
    }
    const link = await this.#established(h, "client", address);
    if (link) return link;
    const existing = this.peers.get(h.peer.nodeId);
    if (existing) return existing;
    throw new IronMeshError(
      "HS_REFUSED",
      `the connection to ${address} was refused after the handshake`,
      "see the log for the trust decision ('ironmesh trust list')",
      ExitCode.NETWORK,
    );
  }

  #heartbeat(intervalMs: number): void {
    const now = Date.now();
    for (const e of this.peers.entries()) {
      const link = e.link;
      if (!link.open) continue;
      if (now - link.stats.lastSeen > 3 * intervalMs) {
        this.log.warn("peer silent for 3 heartbeats; dropping the link", { peer: link.nodeId });
        link.close("heartbeat timeout");
        continue;
      }
      link.ping(intervalMs).catch(() => {});
    }
  }

  #rekeyAll(): void {
    for (const e of this.peers.entries()) {
      if (this.nodeId < e.link.nodeId) e.link.rekey();
    }
  }

  #cleanup(): void {
    try {
      this.store.cleanup();
    } catch (e) {
      this.log.warn("store cleanup failed", { error: String(e) });
    }
  }

  /**
   * A peer's capability set was observed (§9.2): the first set is its baseline; a changed
   * set demotes it to `pending-cap-change` (its messages are held) until an operator decides.
   */
  async observeCapabilities(nodeId: string, caps: string[]): Promise<void> {
    const r = await this.trust.bindCapabilities(nodeId, caps);
    for (const e of r.events) {
      await this.recordAudit(e.event, e.details);
      this.bus.publish({ type: "trust-change", nodeId, event: e.event, details: e.details });
    }
  }

  /** Deliver the messages `nodeId` sent while pending (after a promotion), in arrival order. */
  releaseHeld(nodeId: string): number {
    let drained;
    try {
      drained = this.store.promote(nodeId, this.nodeId);
    } catch (e) {
      this.log.error("cannot release held messages", { peer: nodeId, error: String(e) });
      return 0;
    }
    const name = this.peers.get(nodeId)?.peer.name ?? this.trust.namesOf(nodeId)[0] ?? "";
    let n = 0;
    for (const m of drained) {
      if (m.recorded !== "inserted") continue;
      n++;
      this.bus.publish({
        type: "message-in",
        msgId: m.msgId,
        from: nodeId,
        fromName: name,
        msgType: m.msgType,
        payload: m.payload,
        timestamp: m.queuedAt,
        disposition: "delivered",
      });
    }
    if (n) this.log.info("released held messages", { peer: nodeId, count: n });
    return n;
  }

  /** Send an application message to a node id; queued when the peer is offline. */
  send(
    to: string,
    payload: Uint8Array,
    opts: { msgType?: string; priority?: Priority; msgId?: string } = {},
  ): Promise<Submitted> {
    if (payload.length > MAX_PAYLOAD_BYTES) {
      return Promise.reject(
        new IronMeshError(
          "MESSAGE_TOO_LARGE",
          `message of ${payload.length} bytes exceeds the ${MAX_PAYLOAD_BYTES}-byte limit`,
          "split it into smaller messages (a frame is at most 1 MiB on the wire)",
          ExitCode.BAD_INPUT,
        ),
      );
    }
    if (to === this.nodeId) {
      return Promise.reject(
        new IronMeshError(
          "BAD_TARGET",
          "cannot send a message to this node itself",
          "name another peer",
          ExitCode.USAGE,
        ),
      );
    }
    return this.outbox.submit({
      to,
      msgType: opts.msgType ?? "MSG",
      payload,
      priority: opts.priority,
      msgId: opts.msgId,
    });
  }

  /** Every known peer: live links, then trusted peers and dial targets that are offline. */
  peerStatus(): PeerStatus[] {
    const queued = this.store.queue.pendingCounts();
    const out = new Map<string, PeerStatus>();
    for (const e of this.peers.entries()) {
      const l = e.link;
      out.set(l.nodeId, {
        nodeId: l.nodeId,
        name: l.peer.name,
        address: e.address,
        transport: l.conn.kind,
        role: e.role,
        online: l.open,
        trustState: this.trust.trustState(l.nodeId),
        rttMs: l.stats.rttMs,
        framesSent: l.stats.framesSent,
        framesReceived: l.stats.framesReceived,
        bytesSent: l.stats.bytesSent,
        bytesReceived: l.stats.bytesReceived,
        rejected: l.stats.rejected,
        lastSeen: l.stats.lastSeen / 1000,
        queued: queued.get(l.nodeId) ?? 0,
        protocolVersion: l.peer.protocolVersion,
      });
    }
    for (const p of this.trust.listPeers()) {
      if (out.has(p.nodeId)) continue;
      const t = [...this.targets.values()].find((t) => t.nodeId === p.nodeId);
      out.set(p.nodeId, {
        nodeId: p.nodeId,
        name: p.names[0] ?? "",
        address: t?.address ?? this.store.peers.get(p.nodeId)?.lastAddress ?? "",
        transport: "",
        role: "client",
        online: false,
        trustState: p.trustState,
        rttMs: null,
        framesSent: 0,
        framesReceived: 0,
        bytesSent: 0,
        bytesReceived: 0,
        rejected: 0,
        lastSeen: p.lastSeen ?? null,
        queued: queued.get(p.nodeId) ?? 0,
        ...(t?.lastError ? { lastError: t.lastError } : {}),
      });
    }
    for (const t of this.targets.values()) {
      if (t.nodeId && out.has(t.nodeId)) continue;
      out.set(`target:${t.address}`, {
        nodeId: t.nodeId ?? "",
        name: t.name ?? "",
        address: t.address,
        transport: "",
        role: "client",
        online: false,
        trustState: "unknown",
        rttMs: null,
        framesSent: 0,
        framesReceived: 0,
        bytesSent: 0,
        bytesReceived: 0,
        rejected: 0,
        lastSeen: null,
        queued: 0,
        ...(t.lastError ? { lastError: t.lastError } : {}),
      });
    }
    return [...out.values()];
  }

  /** Stop: GOODBYE to every peer, close the listener, flush files, release the lock. */
  async stop(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    for (const c of this.#handshakes) c.close(1001, "shutting down");
    const links = this.peers.entries().map((e) => e.link);
    for (const l of links) l.sendGoodbye();
    // Let the GOODBYE frames reach the wire before the sockets close (at most 500 ms).
    const t0 = Date.now();
    while (links.some((l) => l.open && l.conn.bufferedAmount() > 0) && Date.now() - t0 < 500) {
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const l of links) l.close("goodbye");
    await this.#teardown();
  }

  async #teardown(): Promise<void> {
    this.#closing = true;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    this.outbox?.close();
    await this.mesh?.close();
    if (this.listener) {
      await this.listener.close().catch(() => {});
      this.listener = null;
    }
    if (this.audit) {
      await this.recordAudit("SHUTDOWN", { node_id: this.nodeId });
      await this.audit.flushCheckpoint().catch(() => false);
    }
    try {
      this.store?.close();
    } catch { /* already closed */ }
    (this.#transport as { close?: () => void }).close?.();
    this.#lock?.release();
    this.#lock = null;
  }
}
