/**
 * The operator dashboard and metrics listener (PROTOCOL-0.9 §14, §15), one `Deno.serve` on
 * port + 1:
 *
 * - `gui` mode (`ironmesh run --gui`): the page (`/`, static assets: no token, no data), the
 *   API (`/api/*`), `/metrics` and `/ws`. Bound to 127.0.0.1 unless `--gui-bind` says
 *   otherwise, which logs a loud warning (plain HTTP: the token travels in clear).
 * - `metrics` mode (default without `--gui`): only `/metrics`, always on 127.0.0.1.
 *
 * Either way every data route needs the per-start token (auth.ts): 401 JSON without it. The
 * token is never logged; request URLs are never logged (they may carry `?token=`).
 */
import type { Logger } from "../../lib/log.ts";
import { ExitCode, IronMeshError } from "../../lib/errors.ts";
import type { MeshNode } from "../node.ts";
import { replyStatus, runAction } from "./actions.ts";
import {
  ApiError,
  type DashboardContext,
  errorResponse,
  GET_ROUTES,
  jsonResponse,
  onlyParams,
  readJsonBody,
  sameOrigin,
  SECURITY_HEADERS,
} from "./api.ts";
import { newToken, TokenAuth } from "./auth.ts";
import { EventFeed } from "./feed.ts";
import { MetricsCollector, PROMETHEUS_CONTENT_TYPE } from "./metrics.ts";
import { staticAsset } from "./static/assets.ts";
import { TrustOps } from "./trust_ops.ts";
import { WsHub } from "./ws.ts";

/** What the listener serves. */
export type DashboardMode = "gui" | "metrics";

/** How to start a dashboard. */
export interface DashboardOptions {
  node: MeshNode;
  mode?: DashboardMode;
  /** Default 127.0.0.1 (metrics mode always uses it). */
  hostname?: string;
  /** 0 = any free port. */
  port: number;
  /** Default: a fresh random token. */
  token?: string;
  /** `--strict-tls` (a metric). */
  strictTls?: boolean;
  log?: Logger;
  /** `state_update` interval (default 2000 ms). */
  statePushMs?: number;
  /** Audit-log poll interval for metrics and the live audit tail (default 1000 ms). */
  auditPollMs?: number;
  /** Token comparison (tests observe it; default constant-time digest comparison). */
  tokenEqual?: (a: string, b: string) => boolean;
}

const API_401 = {
  error: "401 Unauthorized - token required",
  code: "UNAUTHORIZED",
  hint: "use the URL printed at startup, or send 'Authorization: Bearer <token>'",
};

/** True for loopback addresses (the only binds without a warning). */
export function isLoopback(host: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === "::1" || host === "localhost";
}

/** A running dashboard (or metrics-only) listener. */
export class DashboardServer {
  readonly mode: DashboardMode;
  readonly hostname: string;
  readonly metrics: MetricsCollector;
  readonly #auth: TokenAuth;
  readonly #ctx: DashboardContext;
  readonly #hub: WsHub | null;
  readonly #feed: EventFeed;
  #server: Deno.HttpServer<Deno.NetAddr> | null = null;
  #lastAuthWarn = 0;

  private constructor(o: DashboardOptions) {
    this.mode = o.mode ?? "gui";
    this.hostname = this.mode === "metrics" ? "127.0.0.1" : (o.hostname ?? "127.0.0.1");
    this.#auth = new TokenAuth(o.token ?? newToken(), o.tokenEqual);
    const log = (o.log ?? o.node.log).child({ component: "dashboard" });
    this.metrics = new MetricsCollector(o.node, {
      strictTls: o.strictTls,
      auditPollMs: o.auditPollMs,
      log,
      clients: () => this.#hub?.size ?? 0,
    });
    this.#feed = new EventFeed(o.node, this.metrics);
    this.#ctx = {
      node: o.node,
      metrics: this.metrics,
      feed: this.#feed,
      trust: new TrustOps(o.node),
      log,
    };
    this.#hub = this.mode === "gui" ? new WsHub(this.#ctx, { statePushMs: o.statePushMs }) : null;
  }

  /** Start listening (rejects with PORT_BUSY when the port is taken). */
  static start(o: DashboardOptions): Promise<DashboardServer> {
    try {
      return Promise.resolve(DashboardServer.#listen(o));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  static #listen(o: DashboardOptions): DashboardServer {
    const d = new DashboardServer(o);
    d.metrics.start();
    try {
      d.#server = Deno.serve({
        hostname: d.hostname,
        port: o.port,
        onListen: () => {},
        onError: (e) => {
          d.#ctx.log.error("dashboard request failed", { error: String(e) });
          return jsonResponse({ error: "internal error", code: "INTERNAL" }, 500);
        },
      }, (req, info) => d.#handle(req, info));
    } catch (e) {
      d.#stopParts();
      if (e instanceof Deno.errors.AddrInUse) {
        throw new IronMeshError(
          "PORT_BUSY",
          `dashboard port ${o.port} on ${d.hostname} is already in use`,
          "stop what uses it or run with another --port (the dashboard uses port + 1)",
          ExitCode.NETWORK,
        );
      }
      throw e;
    }
    if (d.mode === "gui" && !isLoopback(d.hostname)) {
      d.#ctx.log.warn(
        `INSECURE BIND: the dashboard listens on ${d.hostname}:${d.port} over plain HTTP. ` +
          "Anyone on that network can reach it, and the token crosses the wire in clear. " +
          "Prefer the default 127.0.0.1 (reach it remotely over an SSH tunnel) or put a TLS " +
          "reverse proxy with its own authentication in front.",
      );
    }
    return d;
  }

  /** The port it listens on. */
  get port(): number {
    return this.#server?.addr.port ?? 0;
  }

  /** The token (for the startup URL and the token file; never log it). */
  get token(): string {
    return this.#auth.token;
  }

  /** Host part for URLs (a wildcard bind is shown as 127.0.0.1). */
  get #urlHost(): string {
    const h = this.hostname === "0.0.0.0" || this.hostname === "::" ? "127.0.0.1" : this.hostname;
    return h.includes(":") ? `[${h}]` : h;
  }

  /** The ready-to-click page URL, token included (gui mode). */
  get url(): string {
    return `http://${this.#urlHost}:${this.port}/?token=${this.token}`;
  }

  /** The metrics URL without the token. */
  get metricsUrl(): string {
    return `http://${this.#urlHost}:${this.port}/metrics`;
  }

  /** WebSocket clients connected now. */
  get clients(): number {
    return this.#hub?.size ?? 0;
  }

  #stopParts(): void {
    this.#hub?.close();
    this.#feed.close();
    this.metrics.close();
  }

  /** Stop serving. */
  async close(): Promise<void> {
    this.#stopParts();
    const s = this.#server;
    this.#server = null;
    if (s) await s.shutdown().catch(() => {});
  }

  #unauthorized(path: string, remote: string): Response {
    const now = Date.now();
    if (now - this.#lastAuthWarn > 10_000) {
      this.#lastAuthWarn = now;
      this.#ctx.log.warn("dashboard request without a valid token refused", {
        path,
        client: remote,
      });
    }
    return jsonResponse(API_401, 401, { "www-authenticate": 'Bearer realm="ironmesh"' });
  }

  async #handle(req: Request, info: Deno.ServeHandlerInfo): Promise<Response> {
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      return jsonResponse({ error: "bad request", code: "BAD_REQUEST" }, 400);
    }
    const path = url.pathname;
    const remote = (info.remoteAddr as Deno.NetAddr).hostname ?? "";
    const isGet = req.method === "GET" || req.method === "HEAD";
    try {
      if (this.mode === "gui") {
        const asset = staticAsset(path);
        if (asset) {
          if (!isGet) return methodNotAllowed("GET, HEAD");
          return new Response(req.method === "HEAD" ? null : asset.body, {
            headers: {
              ...SECURITY_HEADERS,
              "content-type": asset.type,
              "cache-control": "no-cache",
            },
          });
        }
      }
      const protectedRoute = path === "/metrics" ||
        (this.mode === "gui" && (path === "/ws" || path === "/api/action" || path in GET_ROUTES));
      if (!protectedRoute) {
        return jsonResponse({ error: "404 Not Found", code: "NOT_FOUND", hint: "" }, 404);
      }
      if (!this.#auth.check(req, url, { ws: path === "/ws" })) {
        return this.#unauthorized(path, remote);
      }
      if (path === "/ws") {
        if (req.method !== "GET") return methodNotAllowed("GET");
        return this.#hub!.accept(req, remote);
      }
      if (path === "/api/action") {
        if (req.method !== "POST") return methodNotAllowed("POST");
        onlyParams(url, []);
        const body = await readJsonBody(req);
        if (!sameOrigin(req)) throw new ApiError(403, "BAD_ORIGIN", "cross-origin request refused");
        const reply = await runAction(this.#ctx, body);
        return jsonResponse(reply, replyStatus(reply));
      }
      if (!isGet) return methodNotAllowed("GET, HEAD");
      if (path === "/metrics") return this.#metrics(url);
      const route = GET_ROUTES[path];
      onlyParams(url, route.params);
      return jsonResponse(route.view(this.#ctx, url));
    } catch (e) {
      if (!(e instanceof ApiError) && !(e instanceof IronMeshError)) {
        this.#ctx.log.error("dashboard request failed", { path, error: String(e) });
      }
      return errorResponse(e);
    }
  }

  #metrics(url: URL): Response {
    onlyParams(url, ["format"]);
    const format = url.searchParams.get("format") ?? "prometheus";
    if (format === "json") return jsonResponse(this.metrics.json());
    if (format !== "prometheus") {
      throw new ApiError(
        400,
        "BAD_QUERY",
        `format must be prometheus or json, got '${format.slice(0, 20)}'`,
      );
    }
    return new Response(this.metrics.prometheus(), {
      headers: {
        ...SECURITY_HEADERS,
        "content-type": PROMETHEUS_CONTENT_TYPE,
        "cache-control": "no-store",
      },
    });
  }
}

function methodNotAllowed(allow: string): Response {
  return jsonResponse(
    { error: "method not allowed", code: "METHOD_NOT_ALLOWED", hint: `use ${allow}` },
    405,
    { allow },
  );
}
