/**
 * The dashboard's HTTP API (PROTOCOL-0.9 §14): `/api/state`, `/api/mesh_stats`, `/api/peers`,
 * `/api/routes`, `/api/capabilities`, `/api/audit?since=&event=&limit=`, and ours,
 * `POST /api/action` (the WebSocket actions for scripts). Every answer is JSON; a bad request
 * gets `{error, code, hint}` with a 4xx status. Auth is checked by the server before these run.
 */
import { IronMeshError } from "../../lib/errors.ts";
import { parseSince, tail } from "../../lib/audit/query.ts";
import { JsonError, parseJsonObject } from "../../lib/json/parse.ts";
import type { Logger } from "../../lib/log.ts";
import { VERSION } from "../../lib/version.ts";
import type { MeshNode, PeerStatus } from "../node.ts";
import { auditView, type EventFeed } from "./feed.ts";
import type { MetricsCollector } from "./metrics.ts";
import type { TrustOps } from "./trust_ops.ts";

/** Largest request body (`POST /api/action`): a maximal message plus room for JSON. */
export const MAX_BODY_BYTES = 1_048_576;
/** Audit entries one `/api/audit` call returns at most. */
export const MAX_AUDIT_LIMIT = 1000;

/** What the API and the WebSocket work on. */
export interface DashboardContext {
  node: MeshNode;
  metrics: MetricsCollector;
  feed: EventFeed;
  trust: TrustOps;
  log: Logger;
}

/** A refused request: HTTP status, stable code, message and hint. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint = "",
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** Security headers on every response (the page's CSP among them). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; " +
    "img-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; " +
    "form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=(), usb=(), payment=()",
};

/**
 * False when a browser says the request comes from another origin (an absent Origin is a
 * non-browser client, which must hold the token anyway). Behind a TLS proxy the page's origin
 * is https:// on the same host.
 */
export function sameOrigin(req: Request): boolean {
  const origin = req.headers.get("origin");
  if (origin === null) return true;
  const host = req.headers.get("host");
  return host !== null && (origin === `http://${host}` || origin === `https://${host}`);
}

/** A JSON response with the security headers and no caching. */
export function jsonResponse(
  body: unknown,
  status = 200,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      ...SECURITY_HEADERS,
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      ...headers,
    },
  });
}

/** The JSON body of an error. */
export function errorBody(e: ApiError | IronMeshError): Record<string, string> {
  return { error: e.message, code: e.code, hint: e.hint };
}

/** An error as a response (IronMeshErrors from the node map to 400/404/409). */
export function errorResponse(e: unknown): Response {
  if (e instanceof ApiError) return jsonResponse(errorBody(e), e.status);
  if (e instanceof IronMeshError) return jsonResponse(errorBody(e), statusOfError(e));
  return jsonResponse(
    { error: "internal error", code: "INTERNAL", hint: "see the daemon log" },
    500,
  );
}

/** HTTP status for a node error code. */
export function statusOfError(e: IronMeshError): number {
  if (/UNKNOWN|NOT_FOUND|NO_CAPABILITY/.test(e.code)) return 404;
  if (/AMBIGUOUS|CONFLICT|READ_ONLY|REVOKED|LOCKED|RUNNING/.test(e.code)) return 409;
  if (e.code === "MESH_DISABLED") return 501;
  return 400;
}

// ---------------------------------------------------------------------------------------
// Views

/** A peer as `/api/state` and `/api/peers` show it (reference PeerState fields, then ours). */
export function peerView(ctx: DashboardContext, p: PeerStatus, held: Map<string, number>) {
  const m = ctx.metrics.peer(p.nodeId);
  const pinned = p.nodeId !== "" && ctx.node.trust.getPeer(p.nodeId) !== undefined;
  return {
    node_id: p.nodeId,
    name: p.name,
    address: p.address,
    status: p.online ? "online" : "offline",
    uptime: m.uptime,
    messages_sent: m.messagesSent,
    messages_received: m.messagesReceived,
    verified: p.online || pinned,
    pending_queue_size: p.queued,
    latency_ms: p.rttMs,
    last_seen: p.lastSeen,
    fingerprint: p.nodeId,
    transport_type: p.transport,
    bytes_sent_total: m.bytesSent,
    bytes_received_total: m.bytesReceived,
    session_rekey_count: m.rekeys,
    offline_since: m.offlineSince,
    trust_gate_state: p.trustState,
    // Ours.
    online: p.online,
    role: p.role,
    frames_rejected: p.rejected,
    held_messages: held.get(p.nodeId) ?? 0,
    protocol_version: p.protocolVersion ?? null,
    last_error: p.lastError ?? null,
  };
}

function heldCounts(node: MeshNode): Map<string, number> {
  return new Map(node.store.pendingTrust.summary().map((s) => [s.sourceNodeId, s.queuedCount]));
}

/** Every peer. */
export function peersView(ctx: DashboardContext) {
  const held = heldCounts(ctx.node);
  return ctx.node.peerStatus().map((p) => peerView(ctx, p, held));
}

/** `/api/routes`. */
export function routesView(ctx: DashboardContext) {
  const v = ctx.node.meshView;
  return {
    routing_enabled: v.routingEnabled,
    routes: v.routes().map((r) => ({
      destination: r.destination,
      name: r.name,
      next_hop: r.nextHop,
      cost: r.cost,
      learned_from: r.learnedFrom,
      updated: r.updated,
    })),
  };
}

/** `/api/capabilities`: capability → node ids. */
export function capabilitiesView(ctx: DashboardContext) {
  const caps: Record<string, string[]> = {};
  for (const c of ctx.node.meshView.capabilities()) {
    caps[c.capability] = [...new Set([...(caps[c.capability] ?? []), ...c.nodeIds])];
  }
  return { routing_enabled: ctx.node.meshView.routingEnabled, capabilities: caps };
}

/** Peers waiting for promotion (trust state `pending`), with their held messages. */
export function pendingTrustView(ctx: DashboardContext) {
  const node = ctx.node;
  const summary = new Map(node.store.pendingTrust.summary().map((s) => [s.sourceNodeId, s]));
  const ids = new Set(
    node.trust.listPeers().filter((p) => p.trustState === "pending").map((p) => p.nodeId),
  );
  for (const id of summary.keys()) {
    const st = node.trust.trustState(id);
    if (st === "pending") ids.add(id);
  }
  return [...ids].sort().map((id) => {
    const s = summary.get(id);
    const rec = node.trust.getPeer(id);
    const link = node.peers.get(id);
    return {
      node_id: id,
      name: link?.peer.name ?? rec?.names[0] ?? "",
      trust_state: node.trust.trustState(id),
      online: link !== undefined,
      first_seen: rec?.firstSeen ?? null,
      queued_count: s?.queuedCount ?? 0,
      oldest_queued_at: s?.oldestQueuedAt ?? null,
      newest_queued_at: s?.newestQueuedAt ?? null,
    };
  });
}

/** Peers with a capability change awaiting an operator, with the diff. */
export function pendingCapView(ctx: DashboardContext) {
  const node = ctx.node;
  const held = heldCounts(node);
  return node.trust.listPeers().filter((p) => p.capabilityHashPending !== undefined).map((p) => {
    const base = p.capabilitySet ?? [];
    const next = p.capabilitySetPending ?? [];
    return {
      node_id: p.nodeId,
      name: node.peers.get(p.nodeId)?.peer.name ?? p.names[0] ?? "",
      trust_state: p.trustState,
      baseline_hash: p.capabilityHash ?? null,
      pending_hash: p.capabilityHashPending ?? null,
      baseline_set: base,
      pending_set: next,
      added: next.filter((c) => !base.includes(c)),
      removed: base.filter((c) => !next.includes(c)),
      queued_count: held.get(p.nodeId) ?? 0,
    };
  });
}

/** The numbers on the page's metric cards. */
export function cardsView(ctx: DashboardContext) {
  const m = ctx.metrics;
  const t = m.totals();
  const live = ctx.node.peers.entries().filter((e) => e.link.open).length;
  return {
    uptime_seconds: (Date.now() - ctx.node.startedAt) / 1000,
    active_peers: live,
    messages_sent: m.counters.messagesSent,
    messages_received: m.counters.messagesReceived,
    messages_delivered: m.counters.messagesDelivered,
    messages_held: m.counters.messagesHeld,
    bytes_sent: t.bytesSent,
    bytes_received: t.bytesReceived,
    handshake_successes: m.counters.handshakeSuccesses,
    handshake_failures: m.counters.handshakeFailures,
    pending_trust_messages: m.pendingTrustMessages(),
    avg_rtt_ms: m.avgRttMs(),
  };
}

/** `/api/state`: everything the page shows. */
export function stateView(ctx: DashboardContext) {
  const node = ctx.node;
  return {
    node_id: node.nodeId,
    name: node.name,
    version: VERSION,
    port: node.listener?.port ?? null,
    listen: node.listener ? `${node.listener.hostname}:${node.listener.port}` : null,
    started_at: node.startedAt / 1000,
    uptime_seconds: (Date.now() - node.startedAt) / 1000,
    gate_enabled: node.gateEnabled,
    routing_enabled: node.meshView.routingEnabled,
    trust_read_only: node.trust.readOnly ? node.trust.readOnlyReason : null,
    metrics: ctx.metrics.json(),
    cards: cardsView(ctx),
    series: ctx.metrics.series(),
    peers: peersView(ctx),
    history: ctx.feed.history(),
    capabilities: capabilitiesView(ctx).capabilities,
    routes: routesView(ctx).routes,
    pending_trust: pendingTrustView(ctx),
    pending_cap: pendingCapView(ctx),
  };
}

/** `/api/mesh_stats` (the reference's stable JSON). */
export function meshStatsView(ctx: DashboardContext) {
  const node = ctx.node;
  const peers = node.peerStatus();
  const lt = ctx.metrics.lifetime();
  return {
    node_id: node.nodeId,
    name: node.name,
    ts: Date.now() / 1000,
    uptime_seconds: (Date.now() - node.startedAt) / 1000,
    active_peers: peers.filter((p) => p.online).length,
    total_peers: peers.length,
    message_lifetime: lt,
    peers: peers.filter((p) => p.nodeId).map((p) => {
      const m = ctx.metrics.peer(p.nodeId);
      return {
        node_id: p.nodeId,
        name: p.name,
        online: p.online,
        transport: p.transport,
        rtt_ms: p.rttMs,
        messages_sent: m.messagesSent,
        messages_received: m.messagesReceived,
        bytes_sent_total: m.bytesSent,
        bytes_received_total: m.bytesReceived,
        session_rekey_count: m.rekeys,
        last_seen: p.lastSeen,
      };
    }),
    gate_enabled: node.gateEnabled,
    messages_held_total: ctx.metrics.counters.messagesHeld,
    pending_trust_messages: ctx.metrics.pendingTrustMessages(),
  };
}

// ---------------------------------------------------------------------------------------
// Query and body validation

/** Refuse query parameters other than `allowed` (and `token`). */
export function onlyParams(url: URL, allowed: string[]): void {
  for (const k of url.searchParams.keys()) {
    if (k !== "token" && !allowed.includes(k)) {
      throw new ApiError(
        400,
        "BAD_QUERY",
        `unknown query parameter '${k}'`,
        allowed.length ? `this endpoint takes: ${allowed.join(", ")}` : "this endpoint takes none",
      );
    }
  }
  for (const k of new Set(url.searchParams.keys())) {
    if (url.searchParams.getAll(k).length > 1) {
      throw new ApiError(400, "BAD_QUERY", `query parameter '${k}' given twice`, "give it once");
    }
  }
}

/** An integer query parameter in [min, max], or `def`. */
export function intParam(url: URL, name: string, def: number, min: number, max: number): number {
  const v = url.searchParams.get(name);
  if (v === null || v === "") return def;
  if (!/^\d{1,9}$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new ApiError(
      400,
      "BAD_QUERY",
      `${name} must be a whole number from ${min} to ${max}, got '${v.slice(0, 40)}'`,
      `e.g. ${name}=${def}`,
    );
  }
  return Number(v);
}

/** `/api/audit?since=&event=&limit=`. */
export function auditQuery(ctx: DashboardContext, url: URL) {
  onlyParams(url, ["since", "event", "limit"]);
  const limit = intParam(url, "limit", 50, 1, MAX_AUDIT_LIMIT);
  const sinceText = url.searchParams.get("since");
  let since: number | undefined;
  if (sinceText !== null && sinceText !== "") {
    if (sinceText.length > 64) throw new ApiError(400, "BAD_QUERY", "since is too long");
    if (/^\d{1,12}(\.\d{1,9})?$/.test(sinceText)) since = Number(sinceText); // epoch seconds
    else {
      try {
        since = parseSince(sinceText, Date.now() / 1000);
      } catch (e) {
        const ie = e as IronMeshError;
        throw new ApiError(400, "BAD_QUERY", `since: ${ie.message}`, ie.hint);
      }
    }
  }
  const eventText = url.searchParams.get("event");
  let events: string[] | undefined;
  if (eventText !== null && eventText !== "") {
    events = eventText.split(",").map((e) => e.trim()).filter(Boolean);
    if (events.length > 32 || events.some((e) => !/^[A-Za-z_]{1,64}$/.test(e))) {
      throw new ApiError(
        400,
        "BAD_QUERY",
        "event must be a comma list of at most 32 audit event names",
        "e.g. event=PEER_PROMOTED,PEER_BLOCKED",
      );
    }
  }
  const entries = tail(ctx.node.audit.path, { since, events, limit }).map(auditView);
  return { entries, count: entries.length };
}

/** Read a JSON object body: application/json, at most `limit` bytes, valid JSON. */
export async function readJsonBody(
  req: Request,
  limit = MAX_BODY_BYTES,
): Promise<Record<string, unknown>> {
  const type = (req.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (type !== "application/json") {
    throw new ApiError(
      415,
      "BAD_CONTENT_TYPE",
      "the body must be JSON (Content-Type: application/json)",
      "send a JSON object",
    );
  }
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    throw new ApiError(413, "BODY_TOO_LARGE", `the body exceeds ${limit} bytes`, "send less");
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (req.body) {
    const reader = req.body.getReader();
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      size += r.value.length;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        throw new ApiError(413, "BODY_TOO_LARGE", `the body exceeds ${limit} bytes`, "send less");
      }
      chunks.push(r.value);
    }
  }
  const buf = new Uint8Array(size);
  let o = 0;
  for (const c of chunks) {
    buf.set(c, o);
    o += c.length;
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(buf);
  } catch {
    throw new ApiError(400, "BAD_JSON", "the body is not valid UTF-8", "send UTF-8 JSON");
  }
  try {
    return parseJsonObject(text);
  } catch (e) {
    throw new ApiError(
      400,
      "BAD_JSON",
      `the body is not a JSON object: ${(e as JsonError).message}`,
      'e.g. {"action": "list_pending_trust"}',
    );
  }
}

/** The GET endpoints: path → view (query parameters they accept). */
export const GET_ROUTES: Readonly<
  Record<string, { params: string[]; view: (ctx: DashboardContext, url: URL) => unknown }>
> = {
  "/api/state": { params: [], view: (ctx) => stateView(ctx) },
  "/api/mesh_stats": { params: [], view: (ctx) => meshStatsView(ctx) },
  "/api/peers": { params: [], view: (ctx) => ({ peers: peersView(ctx) }) },
  "/api/routes": { params: [], view: (ctx) => routesView(ctx) },
  "/api/capabilities": { params: [], view: (ctx) => capabilitiesView(ctx) },
  "/api/audit": { params: ["since", "event", "limit"], view: (ctx, url) => auditQuery(ctx, url) },
};
