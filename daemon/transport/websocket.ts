/**
 * WebSocket transport: server on `Deno.serve` (ws://, or wss:// with a cert and key); client by
 * default on our TCP_NODELAY dialer (`ws_client.ts`, both ws:// and wss://, trusting a pinned
 * CA/cert when given), or on Deno's built-in `WebSocket` (`client: "web"`), which stalls ~44 ms
 * per request/response once a message exceeds ~1.3 KB (Nagle + delayed ACK).
 * Peer identity never comes from TLS: it comes from the Ed25519 handshake.
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
} from "./transport.ts";
import { dialNoDelay } from "./ws_client.ts";

/** TLS material for the server side. */
export interface ServerTls {
  cert: string;
  key: string;
}

/** Options for the WebSocket transport. */
export interface WebSocketTransportOptions {
  /** Serve wss:// with this certificate and key. */
  tls?: ServerTls;
  /** PEM CA certificates (or a pinned self-signed cert) trusted for outbound wss://. */
  caCerts?: string[];
  /**
   * Outbound client: `nodelay` (default; TCP_NODELAY socket, see ws_client.ts) or `web` (Deno's
   * built-in WebSocket: kept as the benchmark baseline and as a fallback).
   */
  client?: "nodelay" | "web";
}

class WsConn implements Conn {
  readonly inbox = new Inbox();
  #resolveClosed!: (r: string) => void;
  readonly closed = new Promise<string>((r) => this.#resolveClosed = r);
  #open = true;

  constructor(
    readonly socket: WebSocket,
    readonly remoteAddress: string,
    readonly kind: string,
    onClose?: () => void,
  ) {
    socket.binaryType = "arraybuffer";
    socket.onmessage = (ev) => {
      const d = ev.data;
      const msg = typeof d === "string" ? d : new Uint8Array(d as ArrayBuffer);
      const size = typeof msg === "string" ? msg.length : msg.byteLength;
      if (size > MAX_MESSAGE_BYTES) {
        this.close(1009, "message too big");
        return;
      }
      this.inbox.push(msg);
    };
    socket.onclose = (ev) => this.#finish(ev.reason || `closed (${ev.code})`, onClose);
    socket.onerror = () => this.#finish("socket error", onClose);
  }

  #finish(reason: string, onClose?: () => void) {
    if (!this.#open) return;
    this.#open = false;
    this.inbox.end();
    this.#resolveClosed(reason);
    onClose?.();
  }

  send(msg: WireMessage): void {
    if (!this.#open || this.socket.readyState !== WebSocket.OPEN) {
      throw new Error("connection closed");
    }
    const size = typeof msg === "string" ? msg.length : msg.byteLength;
    if (size > MAX_MESSAGE_BYTES) {
      throw new RangeError(`message of ${size} bytes exceeds ${MAX_MESSAGE_BYTES}`);
    }
    this.socket.send(msg);
  }
  recv(timeoutMs?: number) {
    return this.inbox.recv(timeoutMs);
  }
  close(code = 1000, reason = "closed"): void {
    try {
      if (
        this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING
      ) this.socket.close(code, reason.slice(0, 120));
    } catch { /* already closing */ }
    this.#finish(reason);
  }
  bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }
}

function addrOf(a: Deno.Addr): string {
  return a.transport === "tcp" || a.transport === "udp"
    ? `${a.hostname}:${a.port}`
    : String(a.transport);
}

/** The WebSocket transport. */
export class WebSocketTransport implements Transport {
  readonly name = "websocket";
  #client?: Deno.HttpClient;

  constructor(readonly opts: WebSocketTransportOptions = {}) {
    if (opts.caCerts?.length && opts.client === "web") {
      this.#client = Deno.createHttpClient({ caCerts: opts.caCerts });
    }
  }

  listen(lo: ListenOptions): Promise<Listener> {
    const kind = this.opts.tls ? "wss" : "ws";
    return new Promise((resolve, reject) => {
      let server: Deno.HttpServer<Deno.NetAddr>;
      try {
        const handler = (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => {
          if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
            if (lo.onHttp) return lo.onHttp(req);
            return new Response("ironmesh: WebSocket endpoint\n", { status: 400 });
          }
          const remote = addrOf(info.remoteAddr); // must be read before the upgrade
          const { socket, response } = Deno.upgradeWebSocket(req);
          socket.onopen = () => lo.onConn(new WsConn(socket, remote, kind));
          return response;
        };
        const common = {
          hostname: lo.hostname,
          port: lo.port,
          onListen: (addr: Deno.NetAddr) =>
            resolve({ hostname: addr.hostname, port: addr.port, close: () => server.shutdown() }),
          onError: () => new Response("bad request", { status: 400 }),
        };
        server = this.opts.tls
          ? Deno.serve({ ...common, cert: this.opts.tls.cert, key: this.opts.tls.key }, handler)
          : Deno.serve(common, handler);
        server.finished.catch(() => {});
      } catch (e) {
        reject(e);
      }
    });
  }

  dial(address: string, opts: DialOptions = {}): Promise<Conn> {
    const url = /^wss?:\/\//.test(address) ? address : `ws://${address}/`;
    const kind = url.startsWith("wss:") ? "wss" : "ws";
    if (this.opts.client !== "web") {
      return dialNoDelay(url, {
        timeoutMs: opts.timeoutMs,
        caCerts: kind === "wss" && this.opts.caCerts?.length ? this.opts.caCerts : undefined,
      });
    }
    return new Promise((resolve, reject) => {
      let ws: WebSocket;
      try {
        ws = this.#client && kind === "wss"
          ? new WebSocket(url, { client: this.#client })
          : new WebSocket(url);
      } catch (e) {
        reject(e);
        return;
      }
      const timer = setTimeout(() => {
        ws.onopen = ws.onerror = ws.onclose = null;
        try {
          ws.close();
        } catch { /* not open */ }
        reject(
          new Deno.errors.TimedOut(
            `no WebSocket connection to ${url} within ${opts.timeoutMs ?? 10_000} ms`,
          ),
        );
      }, opts.timeoutMs ?? 10_000);
      ws.onopen = () => {
        clearTimeout(timer);
        resolve(new WsConn(ws, new URL(url).host, kind));
      };
      ws.onerror = (ev) => {
        clearTimeout(timer);
        ws.onopen = ws.onerror = ws.onclose = null;
        reject(
          new Deno.errors.ConnectionRefused(
            `cannot open ${url}: ${(ev as ErrorEvent).message ?? "connection failed"}`,
          ),
        );
      };
    });
  }

  /** Release the outbound TLS client. */
  close(): void {
    this.#client?.close();
  }
}
