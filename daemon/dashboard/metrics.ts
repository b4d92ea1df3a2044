/**
 * Metrics (PROTOCOL-0.9 §15): a collector that subscribes to the node's event bus and tails
 * the audit log (so trust actions taken by other processes count too, as the reference does),
 * and renderers for the Prometheus text exposition format and JSON.
 *
 * Names are the reference's where we measure the same thing; our own are `ironmesh_ext_*`.
 * Reference metrics we do not measure (relaying, LoRa, RNS, group broadcast, retries, …) are
 * left out rather than reported as a made-up zero. Per-peer series carry the labels
 * `{peer="<node_id>",name="<agent name>"}` and are capped (online peers first, then the most
 * recently seen) so a large mesh cannot blow up a scraper.
 */
import type { MeshNode } from "../node.ts";
import type { PeerLink } from "../peer_link.ts";
import type { NodeEvent } from "../events.ts";
import type { Logger } from "../../lib/log.ts";
import { follow, type QueryEntry } from "../../lib/audit/query.ts";
import { pyFloatRepr } from "../../lib/json/py_float.ts";

/** Prometheus text exposition content type (format 0.0.4). */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
/** Default cap on peers with per-peer series. */
export const DEFAULT_MAX_PEER_SERIES = 256;
/** Message-lifetime samples kept (reference: the last 512 in 0–300 s). */
export const LIFETIME_WINDOW = 512;
/** Points kept for the page's sparklines. */
export const SERIES_POINTS = 90;

/** Audit events mirrored as counters (reference: bumped by tailing audit.log). */
export const AUDIT_COUNTERS: Readonly<Record<string, string>> = {
  PEER_CAP_SET_CHANGED: "ironmesh_peer_cap_set_changed_total",
  PEER_CAP_BASELINE: "ironmesh_peer_cap_baseline_total",
  PEER_CAP_ACCEPTED: "ironmesh_peer_cap_accepted_total",
  PEER_CAP_BINDING_PARTIAL: "ironmesh_peer_cap_binding_partial_total",
  MSG_REPLAY_CROSS_TRANSPORT: "ironmesh_msg_replay_cross_transport_total",
  PEER_REVOKED_LOCAL: "ironmesh_peer_revoked_local_total",
  PEER_STATE_CHANGED: "ironmesh_peer_state_changed_total",
  PEER_PROMOTED: "ironmesh_peer_promoted_total",
  PEER_BLOCKED: "ironmesh_peer_blocked_total",
};

/** One sample: optional labels and an optional name suffix (`_sum`, `_count`). */
export interface Sample {
  labels?: Record<string, string>;
  suffix?: string;
  value: number;
}

/** A metric family as rendered. */
export interface MetricFamily {
  name: string;
  help: string;
  type: "counter" | "gauge" | "summary";
  samples: Sample[];
}

/** Counters of one peer, cumulative over its links. */
interface PeerCounters {
  nodeId: string;
  name: string;
  messagesSent: number;
  messagesReceived: number;
  /** Counters of this peer's closed links. */
  closed: { bytesSent: number; bytesReceived: number; rekeys: number; rejected: number };
  link: PeerLink | null;
  onlineSince: number | null;
  offlineSince: number | null;
}

/** Per-peer numbers for the API. */
export interface PeerMetrics {
  messagesSent: number;
  messagesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  rekeys: number;
  /** Seconds since the link came up (null when offline). */
  uptime: number | null;
  /** Epoch seconds the link went down (null when online or never seen). */
  offlineSince: number | null;
}

/** Quantiles of the message lifetime window. */
export interface LifetimeSummary {
  count: number;
  sum: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

/** One sparkline point. */
export interface SeriesPoint {
  t: number;
  active_peers: number;
  messages_sent: number;
  messages_received: number;
  bytes_sent: number;
  bytes_received: number;
  pending_trust: number;
  avg_rtt_ms: number | null;
}

/** Options of the collector. */
export interface MetricsOptions {
  /** `--strict-tls` (for `ironmesh_strict_tls_enabled`). */
  strictTls?: boolean;
  /** Audit-log poll interval (default 1000 ms, as the reference). */
  auditPollMs?: number;
  /** Sparkline sampling interval (default 2000 ms; 0 = off). */
  sampleMs?: number;
  maxPeerSeries?: number;
  /** Connected dashboard clients (for `ironmesh_ext_dashboard_clients`). */
  clients?: () => number;
  log?: Logger;
}

/** Collects the node's metrics from its bus, its links and its audit log. */
export class MetricsCollector {
  readonly counters = {
    messagesSent: 0,
    messagesReceived: 0,
    messagesDelivered: 0,
    messagesHeld: 0,
    handshakeSuccesses: 0,
    handshakeFailures: 0,
  };
  readonly audit = new Map<string, number>();
  readonly #node: MeshNode;
  readonly #o: MetricsOptions;
  readonly #peers = new Map<string, PeerCounters>();
  /** Closed-link counters of peers evicted from `#peers` (keeps the totals monotonic). */
  readonly #evicted = { bytesSent: 0, bytesReceived: 0, rekeys: 0, rejected: 0 };
  readonly #lifetimes: number[] = [];
  #lifetimeCount = 0;
  #lifetimeSum = 0;
  readonly #series: SeriesPoint[] = [];
  readonly #auditListeners = new Set<(e: QueryEntry) => void>();
  #unsub: (() => void) | null = null;
  #abort = new AbortController();
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(node: MeshNode, opts: MetricsOptions = {}) {
    this.#node = node;
    this.#o = opts;
    for (const name of Object.values(AUDIT_COUNTERS)) this.audit.set(name, 0);
  }

  /** Subscribe to the bus, start tailing the audit log and sampling the sparklines. */
  start(): this {
    if (this.#unsub) return this;
    this.#unsub = this.#node.bus.subscribe((e) => this.#onEvent(e));
    for (const e of this.#node.peers.entries()) {
      if (e.link.open) this.#linkUp(e.link.nodeId, e.link.peer.name);
    }
    this.#tailAudit();
    const every = this.#o.sampleMs ?? 2000;
    if (every > 0) {
      this.#sample();
      this.#timer = setInterval(() => this.#sample(), every);
    }
    return this;
  }

  /** Stop collecting. */
  close(): void {
    this.#unsub?.();
    this.#unsub = null;
    this.#abort.abort();
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Be told of every audit entry appended (the live audit tail). */
  onAudit(fn: (e: QueryEntry) => void): () => void {
    this.#auditListeners.add(fn);
    return () => this.#auditListeners.delete(fn);
  }

  async #tailAudit(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      try {
        for await (
          const e of follow(this.#node.audit.path, {
            signal,
            pollMs: this.#o.auditPollMs ?? 1000,
          })
        ) {
          const name = AUDIT_COUNTERS[e.event];
          if (name) this.audit.set(name, (this.audit.get(name) ?? 0) + 1);
          for (const fn of this.#auditListeners) {
            try {
              fn(e);
            } catch { /* a listener's problem */ }
          }
        }
      } catch (e) {
        this.#o.log?.warn("cannot follow the audit log for metrics; retrying", {
          error: String(e),
        });
        await new Promise((r) => setTimeout(r, 5000));
      }
    }
  }

  #peer(nodeId: string, name = ""): PeerCounters {
    let p = this.#peers.get(nodeId);
    if (!p) {
      p = {
        nodeId,
        name,
        messagesSent: 0,
        messagesReceived: 0,
        closed: { bytesSent: 0, bytesReceived: 0, rekeys: 0, rejected: 0 },
        link: null,
        onlineSince: null,
        offlineSince: null,
      };
      this.#peers.set(nodeId, p);
      this.#evict();
    }
    if (name) p.name = name;
    return p;
  }

  /** Keep the per-peer map bounded: forget the longest-offline peers beyond 4096. */
  #evict(): void {
    if (this.#peers.size <= 4096) return;
    const offline = [...this.#peers.values()].filter((p) => !p.link).sort((a, b) =>
      (a.offlineSince ?? 0) - (b.offlineSince ?? 0)
    );
    for (const p of offline.slice(0, this.#peers.size - 4096)) {
      for (const k of ["bytesSent", "bytesReceived", "rekeys", "rejected"] as const) {
        this.#evicted[k] += p.closed[k];
      }
      this.#peers.delete(p.nodeId);
    }
  }

  #fold(p: PeerCounters): void {
    const l = p.link;
    if (!l) return;
    p.closed.bytesSent += l.stats.bytesSent;
    p.closed.bytesReceived += l.stats.bytesReceived;
    p.closed.rejected += l.stats.rejected;
    p.closed.rekeys += l.session.rekeyCount;
    p.link = null;
  }

  /** The peer's current link (re-synchronised with the peer table). */
  #current(p: PeerCounters): PeerLink | null {
    const live = this.#node.peers.entry(p.nodeId)?.link ?? null;
    if (live !== p.link) {
      this.#fold(p);
      p.link = live;
    }
    return p.link;
  }

  #linkUp(nodeId: string, name: string): void {
    const p = this.#peer(nodeId, name);
    this.#current(p);
    p.onlineSince = Date.now() / 1000;
    p.offlineSince = null;
  }

  #onEvent(e: NodeEvent): void {
    const c = this.counters;
    switch (e.type) {
      case "peer-up":
        c.handshakeSuccesses++;
        this.#linkUp(e.peer.nodeId, e.peer.name);
        break;
      case "peer-down": {
        const p = this.#peer(e.peer.nodeId, e.peer.name);
        this.#fold(p);
        p.onlineSince = null;
        p.offlineSince = Date.now() / 1000;
        break;
      }
      case "handshake-failed":
        c.handshakeFailures++;
        break;
      case "message-out":
        c.messagesSent++;
        this.#peer(e.to).messagesSent++;
        break;
      case "message-in":
        if (e.disposition === "held") {
          c.messagesHeld++;
          break;
        }
        c.messagesReceived++;
        this.#peer(e.from, e.fromName).messagesReceived++;
        this.#lifetime(Date.now() / 1000 - e.timestamp);
        break;
      case "delivered":
        c.messagesDelivered++;
        break;
    }
  }

  #lifetime(s: number): void {
    if (!Number.isFinite(s) || s < 0 || s > 300) return;
    this.#lifetimes.push(s);
    if (this.#lifetimes.length > LIFETIME_WINDOW) this.#lifetimes.shift();
    this.#lifetimeCount++;
    this.#lifetimeSum += s;
  }

  /** Message lifetime: cumulative count and sum, quantiles over the last 512 samples. */
  lifetime(): LifetimeSummary {
    const sorted = [...this.#lifetimes].sort((a, b) => a - b);
    const q = (p: number) =>
      sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] : null;
    return {
      count: this.#lifetimeCount,
      sum: this.#lifetimeSum,
      p50: q(0.5),
      p90: q(0.9),
      p99: q(0.99),
    };
  }

  /** Cumulative numbers of one peer. */
  peer(nodeId: string): PeerMetrics {
    const p = this.#peers.get(nodeId);
    if (!p) {
      return {
        messagesSent: 0,
        messagesReceived: 0,
        bytesSent: 0,
        bytesReceived: 0,
        rekeys: 0,
        uptime: null,
        offlineSince: null,
      };
    }
    const l = this.#current(p);
    const since = this.#node.peers.entry(nodeId)?.since;
    return {
      messagesSent: p.messagesSent,
      messagesReceived: p.messagesReceived,
      bytesSent: p.closed.bytesSent + (l?.stats.bytesSent ?? 0),
      bytesReceived: p.closed.bytesReceived + (l?.stats.bytesReceived ?? 0),
      rekeys: p.closed.rekeys + (l?.session.rekeyCount ?? 0),
      uptime: l?.open && since !== undefined ? Math.max(0, (Date.now() - since) / 1000) : null,
      offlineSince: l?.open ? null : p.offlineSince,
    };
  }

  /** Totals over every link, open or closed. */
  totals(): { bytesSent: number; bytesReceived: number; rekeys: number; rejected: number } {
    const t = { ...this.#evicted };
    for (const p of this.#peers.values()) {
      const l = this.#current(p);
      t.bytesSent += p.closed.bytesSent + (l?.stats.bytesSent ?? 0);
      t.bytesReceived += p.closed.bytesReceived + (l?.stats.bytesReceived ?? 0);
      t.rekeys += p.closed.rekeys + (l?.session.rekeyCount ?? 0);
      t.rejected += p.closed.rejected + (l?.stats.rejected ?? 0);
    }
    // Links that came up before the collector saw them.
    for (const e of this.#node.peers.entries()) {
      if (this.#peers.has(e.link.nodeId)) continue;
      t.bytesSent += e.link.stats.bytesSent;
      t.bytesReceived += e.link.stats.bytesReceived;
      t.rekeys += e.link.session.rekeyCount;
      t.rejected += e.link.stats.rejected;
    }
    return t;
  }

  /** Mean RTT of the live links that have one (ms), or null. */
  avgRttMs(): number | null {
    const rtts = this.#node.peers.entries().filter((e) =>
      e.link.open && e.link.stats.rttMs !== null
    )
      .map((e) => e.link.stats.rttMs!);
    return rtts.length ? rtts.reduce((a, b) => a + b, 0) / rtts.length : null;
  }

  /** Messages held for trust promotion right now. */
  pendingTrustMessages(): number {
    return this.#node.store.pendingTrust.summary().reduce((a, s) => a + s.queuedCount, 0);
  }

  #sample(): void {
    try {
      const t = this.totals();
      this.#series.push({
        t: Date.now() / 1000,
        active_peers: this.#node.peers.entries().filter((e) => e.link.open).length,
        messages_sent: this.counters.messagesSent,
        messages_received: this.counters.messagesReceived,
        bytes_sent: t.bytesSent,
        bytes_received: t.bytesReceived,
        pending_trust: this.pendingTrustMessages(),
        avg_rtt_ms: this.avgRttMs(),
      });
      if (this.#series.length > SERIES_POINTS) this.#series.shift();
    } catch { /* the store is closing */ }
  }

  /** Sparkline points, oldest first. */
  series(): SeriesPoint[] {
    return [...this.#series];
  }

  /** Every metric family, in exposition order. */
  families(): MetricFamily[] {
    const node = this.#node;
    const c = this.counters;
    const t = this.totals();
    const peers = node.peerStatus();
    const online = peers.filter((p) => p.online);
    const caps = node.meshView.capabilities();
    const capNodes = new Set(caps.flatMap((x) => x.nodeIds).filter((id) => id !== node.nodeId));
    const trustPeers = node.trust.listPeers();
    const fmt = node.trust.loadedFormat;
    const out: MetricFamily[] = [];
    const one = (name: string, type: "counter" | "gauge", help: string, value: number) =>
      out.push({ name, type, help, samples: [{ value }] });
    one(
      "ironmesh_uptime_seconds",
      "gauge",
      "Seconds since this daemon started.",
      (Date.now() - node.startedAt) / 1000,
    );
    one(
      "ironmesh_messages_sent_total",
      "counter",
      "Application messages accepted for sending.",
      c.messagesSent,
    );
    one(
      "ironmesh_messages_received_total",
      "counter",
      "Application messages received and delivered.",
      c.messagesReceived,
    );
    one(
      "ironmesh_messages_delivered_total",
      "counter",
      "Sent messages acknowledged by their recipient.",
      c.messagesDelivered,
    );
    one("ironmesh_bytes_sent_total", "counter", "Frame bytes written to peers.", t.bytesSent);
    one(
      "ironmesh_bytes_received_total",
      "counter",
      "Frame bytes read from peers.",
      t.bytesReceived,
    );
    one(
      "ironmesh_handshake_successes_total",
      "counter",
      "Completed handshakes that became a link.",
      c.handshakeSuccesses,
    );
    one(
      "ironmesh_handshake_failures_total",
      "counter",
      "Handshakes that failed or were refused.",
      c.handshakeFailures,
    );
    one(
      "ironmesh_connections_total",
      "counter",
      "Peer links established (inbound and outbound).",
      c.handshakeSuccesses,
    );
    one("ironmesh_active_peers", "gauge", "Peers with a live link.", online.length);
    one(
      "ironmesh_total_peers",
      "gauge",
      "Known peers (live, pinned or dial targets).",
      peers.length,
    );
    one(
      "ironmesh_routes_known",
      "gauge",
      "Routes in the routing view (direct links until mesh routing is on).",
      node.meshView.routes().length,
    );
    one(
      "ironmesh_capabilities_known",
      "gauge",
      "Distinct capabilities known.",
      new Set(caps.map((x) => x.capability)).size,
    );
    one(
      "ironmesh_capability_remote_nodes",
      "gauge",
      "Other nodes advertising capabilities.",
      capNodes.size,
    );
    one(
      "ironmesh_avg_rtt_ms",
      "gauge",
      "Mean round-trip time of live links with a measurement (ms).",
      this.avgRttMs() ?? 0,
    );
    one(
      "ironmesh_session_rekeys_total",
      "counter",
      "Completed session rekeys over all links.",
      t.rekeys,
    );
    for (const [event, name] of Object.entries(AUDIT_COUNTERS)) {
      one(name, "counter", `${event} audit events since start.`, this.audit.get(name) ?? 0);
    }
    one(
      "ironmesh_trust_store_version",
      "gauge",
      "Trust store format: 0 none, 1 legacy, 2 encrypted.",
      fmt === "v2" ? 2 : fmt === "missing" || fmt === "failed" ? 0 : 1,
    );
    one(
      "ironmesh_strict_tls_enabled",
      "gauge",
      "1 when --strict-tls is set.",
      this.#o.strictTls ? 1 : 0,
    );
    // Per peer (bounded).
    const max = this.#o.maxPeerSeries ?? DEFAULT_MAX_PEER_SERIES;
    const ranked = peers.filter((p) => p.nodeId).sort((a, b) =>
      Number(b.online) - Number(a.online) || (b.lastSeen ?? 0) - (a.lastSeen ?? 0)
    );
    const shown = ranked.slice(0, max);
    const lbl = (p: { nodeId: string; name: string }) => ({
      peer: p.nodeId,
      name: labelText(p.name),
    });
    const per = shown.map((p) => ({ p, m: this.peer(p.nodeId) }));
    out.push({
      name: "ironmesh_peer_online",
      type: "gauge",
      help: "1 when the peer has a live link.",
      samples: shown.map((p) => ({ labels: lbl(p), value: p.online ? 1 : 0 })),
    });
    out.push({
      name: "ironmesh_peer_rtt_ms",
      type: "gauge",
      help: "Last measured round-trip time to the peer (ms).",
      samples: shown.filter((p) => p.rttMs !== null).map((p) => ({
        labels: lbl(p),
        value: p.rttMs!,
      })),
    });
    out.push({
      name: "ironmesh_peer_bytes_sent_total",
      type: "counter",
      help: "Frame bytes written to the peer.",
      samples: per.filter((x) => x.m.bytesSent > 0).map((x) => ({
        labels: lbl(x.p),
        value: x.m.bytesSent,
      })),
    });
    out.push({
      name: "ironmesh_peer_bytes_received_total",
      type: "counter",
      help: "Frame bytes read from the peer.",
      samples: per.filter((x) => x.m.bytesReceived > 0).map((x) => ({
        labels: lbl(x.p),
        value: x.m.bytesReceived,
      })),
    });
    const lt = this.lifetime();
    out.push({
      name: "ironmesh_message_lifetime_seconds",
      type: "summary",
      help: "Receive time minus the sender's timestamp (last 512 samples in 0-300 s).",
      samples: [
        { labels: { quantile: "0.5" }, value: lt.p50 ?? NaN },
        { labels: { quantile: "0.9" }, value: lt.p90 ?? NaN },
        { labels: { quantile: "0.99" }, value: lt.p99 ?? NaN },
        { suffix: "_sum", value: lt.sum },
        { suffix: "_count", value: lt.count },
      ],
    });
    // Ours.
    const queued = [...node.store.queue.pendingCounts().values()].reduce((a, b) => a + b, 0);
    one(
      "ironmesh_ext_queued_messages",
      "gauge",
      "Outbound messages waiting for delivery.",
      queued,
    );
    one(
      "ironmesh_ext_pending_trust_messages",
      "gauge",
      "Inbound messages held until their sender is promoted.",
      this.pendingTrustMessages(),
    );
    one(
      "ironmesh_ext_pending_trust_peers",
      "gauge",
      "Peers in trust state pending.",
      trustPeers.filter((p) => p.trustState === "pending").length,
    );
    one(
      "ironmesh_ext_pending_cap_change_peers",
      "gauge",
      "Peers whose capability change awaits an operator.",
      trustPeers.filter((p) => p.capabilityHashPending !== undefined).length,
    );
    one(
      "ironmesh_ext_messages_held_total",
      "counter",
      "Inbound messages held for trust promotion.",
      c.messagesHeld,
    );
    one(
      "ironmesh_ext_frames_rejected_total",
      "counter",
      "Inbound frames dropped (rate limit, decryption, replay, signature).",
      t.rejected,
    );
    one(
      "ironmesh_ext_trust_read_only",
      "gauge",
      "1 when the trust store failed its integrity check (every peer is refused).",
      node.trust.readOnly ? 1 : 0,
    );
    one(
      "ironmesh_ext_peer_series_omitted",
      "gauge",
      "Peers left out of the per-peer series by the cap.",
      ranked.length - shown.length,
    );
    one(
      "ironmesh_ext_dashboard_clients",
      "gauge",
      "Dashboard WebSocket clients connected.",
      this.#o.clients?.() ?? 0,
    );
    return out;
  }

  /** The Prometheus text exposition. */
  prometheus(): string {
    return renderPrometheus(this.families());
  }

  /** The JSON form (`?format=json`). */
  json(): Record<string, unknown> {
    const fams = this.families();
    const out: Record<string, unknown> = {};
    const peers = new Map<string, Record<string, unknown>>();
    for (const f of fams) {
      const key = f.name.replace(/^ironmesh_/, "");
      if (f.name.startsWith("ironmesh_peer_") && f.samples.some((s) => s.labels?.peer)) {
        for (const s of f.samples) {
          const id = s.labels!.peer;
          const row = peers.get(id) ?? { node_id: id, name: s.labels!.name };
          row[key.replace(/^peer_/, "")] = s.value;
          peers.set(id, row);
        }
        continue;
      }
      if (f.type === "summary") {
        const lt = this.lifetime();
        out[key] = { count: lt.count, sum: lt.sum, p50: lt.p50, p90: lt.p90, p99: lt.p99 };
        continue;
      }
      if (f.samples.length === 1 && !f.samples[0].labels) out[key] = f.samples[0].value;
    }
    out.peers = [...peers.values()];
    out.gate_enabled = this.#node.gateEnabled;
    return out;
  }
}

/** A label value as the agent name may be anything: control characters dropped, 64 chars max. */
export function labelText(s: string): string {
  // deno-lint-ignore no-control-regex
  return [...s.replace(/[\u0000-\u001f\u007f]/g, "")].slice(0, 64).join("");
}

/** Escape a label value (backslash, double quote, newline). */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Escape HELP text (backslash, newline). */
function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** A sample value as Python prints a float (`2.0`), NaN and infinities as Prometheus spells them. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return pyFloatRepr(v);
}

/** Render families in the text exposition format (HELP and TYPE before each family's samples). */
export function renderPrometheus(families: MetricFamily[]): string {
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`);
    lines.push(`# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = s.labels && Object.keys(s.labels).length
        ? `{${Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`
        : "";
      lines.push(`${f.name}${s.suffix ?? ""}${labels} ${formatValue(s.value)}`);
    }
  }
  return lines.join("\n") + "\n";
}
