/**
 * `/ws`: live dashboard updates and the reference's actions (PROTOCOL-0.9 §14). On connect the
 * client gets a `snapshot` (the `/api/state` object); then every feed push as it happens and
 * a `state_update` every 2 s (cards, peers, pending panels, routes). Client → server messages
 * are `{"action": …}` objects (see actions.ts), at most 1 MiB, at most 20 per second (burst 60).
 * A client that cannot keep up loses feed pushes (told by a `feed_gap` push), never the socket.
 */
import { TokenBucket } from "../../lib/wire/token_bucket.ts";
import { JsonError, parseJsonObject } from "../../lib/json/parse.ts";
import { runAction } from "./actions.ts";
import {
  capabilitiesView,
  cardsView,
  type DashboardContext,
  jsonResponse,
  peersView,
  pendingCapView,
  pendingTrustView,
  routesView,
  sameOrigin,
  stateView,
} from "./api.ts";
import { WS_PROTOCOL } from "./auth.ts";
import type { Push } from "./feed.ts";

/** Largest client message (bytes of its text). */
export const MAX_WS_MESSAGE = 1_048_576;
/** Most dashboard clients at once. */
export const MAX_WS_CLIENTS = 16;
/** Beyond this many buffered bytes a client's feed pushes are dropped. */
const MAX_BUFFERED = 4 * 1024 * 1024;

interface Client {
  socket: WebSocket;
  bucket: TokenBucket;
  dropped: number;
  open: boolean;
}

/** The WebSocket clients of one dashboard. */
export class WsHub {
  readonly #ctx: DashboardContext;
  readonly #clients = new Set<Client>();
  readonly #pushMs: number;
  #timer: ReturnType<typeof setInterval> | null = null;
  #unlisten: () => void;

  constructor(ctx: DashboardContext, opts: { statePushMs?: number } = {}) {
    this.#ctx = ctx;
    this.#pushMs = opts.statePushMs ?? 2000;
    this.#unlisten = ctx.feed.listen((p) => {
      for (const c of this.#clients) this.#push(c, p);
    });
  }

  /** Clients connected now. */
  get size(): number {
    return this.#clients.size;
  }

  /** Upgrade an authenticated request (the server checked the token). */
  accept(req: Request, remote: string): Response {
    if ((req.headers.get("upgrade") ?? "").toLowerCase() !== "websocket") {
      return jsonResponse(
        {
          error: "expected a WebSocket upgrade",
          code: "NOT_WEBSOCKET",
          hint: "connect with ws://",
        },
        400,
      );
    }
    if (!sameOrigin(req)) {
      return jsonResponse(
        {
          error: "cross-origin WebSocket refused",
          code: "BAD_ORIGIN",
          hint: "open the dashboard page itself",
        },
        403,
      );
    }
    if (this.#clients.size >= MAX_WS_CLIENTS) {
      return jsonResponse(
        {
          error: "too many dashboard clients",
          code: "TOO_MANY_CLIENTS",
          hint: "close another tab",
        },
        503,
      );
    }
    const offered = (req.headers.get("sec-websocket-protocol") ?? "").split(",").map((s) =>
      s.trim()
    );
    let upgraded: { socket: WebSocket; response: Response };
    try {
      upgraded = Deno.upgradeWebSocket(
        req,
        offered.includes(WS_PROTOCOL) ? { protocol: WS_PROTOCOL } : {},
      );
    } catch (e) {
      return jsonResponse(
        { error: `bad WebSocket upgrade: ${(e as Error).message}`, code: "BAD_UPGRADE", hint: "" },
        400,
      );
    }
    const { socket, response } = upgraded;
    const client: Client = {
      socket,
      bucket: new TokenBucket(20, 60, this.#ctx.node.clock),
      dropped: 0,
      open: false,
    };
    socket.onopen = () => {
      client.open = true;
      this.#clients.add(client);
      this.#ensureTimer();
      this.#ctx.node.recordAudit("GUI_ACCESS", { client: remote, path: "/ws" });
      this.#send(client, { type: "snapshot", data: stateView(this.#ctx) });
    };
    socket.onmessage = (ev) => this.#onMessage(client, ev.data);
    socket.onclose = () => this.#drop(client);
    socket.onerror = () => this.#drop(client);
    return response;
  }

  #drop(c: Client): void {
    c.open = false;
    this.#clients.delete(c);
    if (this.#clients.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  #ensureTimer(): void {
    if (this.#timer !== null || this.#pushMs <= 0) return;
    this.#timer = setInterval(() => this.#stateUpdate(), this.#pushMs);
  }

  #stateUpdate(): void {
    if (this.#clients.size === 0) return;
    let data;
    try {
      const ctx = this.#ctx;
      data = {
        uptime_seconds: (Date.now() - ctx.node.startedAt) / 1000,
        cards: cardsView(ctx),
        point: ctx.metrics.series().at(-1) ?? null,
        peers: peersView(ctx),
        pending_trust: pendingTrustView(ctx),
        pending_cap: pendingCapView(ctx),
        routes: routesView(ctx).routes,
        capabilities: capabilitiesView(ctx).capabilities,
        routing_enabled: ctx.node.meshView.routingEnabled,
      };
    } catch {
      return; // the node is stopping
    }
    for (const c of this.#clients) this.#send(c, { type: "state_update", data });
  }

  #send(c: Client, p: Push): boolean {
    if (!c.open || c.socket.readyState !== WebSocket.OPEN) return false;
    try {
      c.socket.send(JSON.stringify(p));
      return true;
    } catch {
      return false;
    }
  }

  /** A feed push: dropped (and counted) while the client is backed up. */
  #push(c: Client, p: Push): void {
    if (!c.open) return;
    if (c.socket.bufferedAmount > MAX_BUFFERED) {
      c.dropped++;
      return;
    }
    if (c.dropped) {
      this.#send(c, { type: "feed_gap", dropped: c.dropped });
      c.dropped = 0;
    }
    this.#send(c, p);
  }

  async #onMessage(c: Client, data: unknown): Promise<void> {
    if (typeof data !== "string") {
      this.#send(c, { type: "send_error", error: "send JSON text frames", code: "BAD_FRAME" });
      c.socket.close(1003, "text frames only");
      return;
    }
    if (data.length > MAX_WS_MESSAGE) {
      this.#send(c, { type: "send_error", error: "message too large", code: "TOO_LARGE" });
      c.socket.close(1009, "message too large");
      return;
    }
    if (!c.bucket.tryConsume()) {
      this.#send(c, {
        type: "send_error",
        error: "too many requests; slow down",
        code: "RATE_LIMITED",
      });
      return;
    }
    let msg: Record<string, unknown>;
    try {
      msg = parseJsonObject(data);
    } catch (e) {
      this.#send(c, {
        type: "send_error",
        error: "Invalid JSON",
        code: "BAD_JSON",
        hint: (e as JsonError).message,
      });
      return;
    }
    const reply = await runAction(this.#ctx, msg);
    this.#send(c, reply);
  }

  /** Close every client (shutdown). */
  close(): void {
    this.#unlisten();
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    for (const c of this.#clients) {
      try {
        c.socket.close(1001, "dashboard stopping");
      } catch { /* gone */ }
    }
    this.#clients.clear();
  }
}
