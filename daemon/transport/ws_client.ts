/**
 * Outbound WebSocket with TCP_NODELAY: the RFC 6455 client protocol (upgrade, masking, framing,
 * ping/pong, close handshake, UTF-8 checks, size cap) is `npm:websocket-driver`; the socket is
 * Deno's own (`Deno.connect` + `setNoDelay(true)`, and `Deno.startTls` for wss://).
 *
 * Why: Deno's built-in `WebSocket` client leaves Nagle's algorithm on and writes a frame's header
 * and payload separately once the message exceeds ~1.3 KB, so every such request waits for the
 * peer's delayed ACK: ~44 ms per request/response on loopback. With TCP_NODELAY a 4 KiB round
 * trip takes ~0.15 ms. Everything this module writes for one frame leaves in one `write`.
 */
import { Buffer } from "node:buffer";
import websocketDriver from "websocket-driver";
import { type Conn, Inbox, MAX_MESSAGE_BYTES, type WireMessage } from "./transport.ts";

/** Options of `dialNoDelay`. */
export interface NoDelayDialOptions {
  /** Deadline for TCP connect + TLS + upgrade, in ms (default 10,000). */
  timeoutMs?: number;
  /** PEM CA certificates (or a pinned self-signed certificate) trusted for wss://. */
  caCerts?: string[];
  /** Largest message accepted or sent (default 1 MiB, PROTOCOL-0.9 §4). */
  maxMessageBytes?: number;
  /** How long `close()` waits for the server's close frame before dropping TCP (default 2,000). */
  closeTimeoutMs?: number;
}

// The subset of websocket-driver's client API used here (the package ships no types).
interface DriverEvent {
  code?: number | null;
  reason?: string | null;
  data?: string | Buffer;
}
interface Driver {
  readonly io: { on(event: "data", fn: (chunk: Buffer) => void): void };
  on(event: "open" | "close" | "message", fn: (ev: DriverEvent) => void): void;
  on(event: "error", fn: (err: Error) => void): void;
  start(): boolean;
  parse(chunk: Buffer): void;
  text(message: string): boolean;
  binary(message: Buffer): boolean;
  close(reason?: string, code?: number): boolean;
  readonly readyState: number;
}
const driverFactory = websocketDriver as unknown as {
  client(url: string, options: { maxLength: number }): Driver;
};

function byteLength(msg: WireMessage): number {
  // A string's UTF-8 length is at most 3 × its UTF-16 length; count exactly only near the cap.
  if (typeof msg !== "string") return msg.byteLength;
  return msg.length * 3 <= MAX_MESSAGE_BYTES ? msg.length : new TextEncoder().encode(msg).length;
}

class NoDelayConn implements Conn {
  readonly inbox = new Inbox();
  readonly closed: Promise<string>;
  #resolveClosed!: (reason: string) => void;
  #open = true; // until close() or the peer/socket ends it
  #socketClosed = false;
  #queue: Uint8Array[] = [];
  #buffered = 0;
  #writing = false;
  #closeTimer?: ReturnType<typeof setTimeout>;
  /** Told why the socket ended (used to fail a pending upgrade). */
  onSocketEnd?: (reason: string) => void;

  constructor(
    readonly socket: Deno.Conn,
    readonly driver: Driver,
    readonly remoteAddress: string,
    readonly kind: string,
    readonly maxMessageBytes: number,
    readonly closeTimeoutMs: number,
  ) {
    this.closed = new Promise((r) => this.#resolveClosed = r);
  }

  /** Queue bytes the driver produced; everything queued in one tick leaves in one write. */
  enqueue(chunk: Buffer): void {
    if (this.#socketClosed) return;
    this.#queue.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.#buffered += chunk.byteLength;
    if (!this.#writing) {
      this.#writing = true;
      queueMicrotask(() => this.#flush());
    }
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length && !this.#socketClosed) {
        const parts = this.#queue;
        this.#queue = [];
        let data = parts[0];
        if (parts.length > 1) {
          let total = 0;
          for (const p of parts) total += p.byteLength;
          data = new Uint8Array(total);
          let o = 0;
          for (const p of parts) {
            data.set(p, o);
            o += p.byteLength;
          }
        }
        for (let o = 0; o < data.byteLength;) o += await this.socket.write(data.subarray(o));
        this.#buffered -= data.byteLength;
      }
    } catch {
      this.finish("socket error");
      this.#dropSocket();
    } finally {
      this.#writing = false;
    }
    if (!this.#open && this.driver.readyState === 3) this.#dropSocket();
  }

  /** Feed bytes from the socket until it ends. */
  async pump(): Promise<void> {
    try {
      for await (const chunk of this.socket.readable) {
        this.driver.parse(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      }
      this.#ended("connection closed by peer");
    } catch (e) {
      this.#ended(this.#socketClosed ? "closed" : `socket error: ${(e as Error)?.message ?? e}`);
    }
    this.#dropSocket();
  }

  #ended(reason: string): void {
    this.onSocketEnd?.(reason);
    this.finish(reason);
  }

  /** The WebSocket is over (close handshake, error or socket end): deliver nothing more. */
  finish(reason: string): void {
    if (this.#open) {
      this.#open = false;
      this.inbox.end();
    }
    this.#resolveClosed(reason);
  }

  /** Close TCP once the pending writes (e.g. our close frame) are out. */
  closeSocketSoon(): void {
    if (!this.#writing) this.#dropSocket();
  }

  #dropSocket(): void {
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    if (this.#socketClosed) return;
    this.#socketClosed = true;
    this.#queue = [];
    try {
      this.socket.close();
    } catch { /* already closed */ }
  }

  send(msg: WireMessage): void {
    if (!this.#open || this.driver.readyState !== 1) throw new Error("connection closed");
    const size = byteLength(msg);
    if (size > this.maxMessageBytes) {
      throw new RangeError(`message of ${size} bytes exceeds ${this.maxMessageBytes}`);
    }
    if (typeof msg === "string") this.driver.text(msg);
    else this.driver.binary(Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength));
  }

  recv(timeoutMs?: number): Promise<WireMessage | null> {
    return this.inbox.recv(timeoutMs);
  }

  close(code = 1000, reason = "closed"): void {
    if (!this.#open) return;
    this.finish(reason);
    if (this.driver.close(reason.slice(0, 120), code)) {
      // Wait for the server's close frame (the driver then emits "close"), but not forever.
      this.#closeTimer = setTimeout(() => this.#dropSocket(), this.closeTimeoutMs);
    } else {
      this.#dropSocket();
    }
  }

  bufferedAmount(): number {
    return this.#buffered;
  }
}

/**
 * Open a WebSocket to `url` (`ws://` or `wss://`) over a TCP socket with TCP_NODELAY set.
 * wss:// validates the server certificate against `caCerts` when given, else the default roots.
 * Rejects with Deno.errors.TimedOut after `timeoutMs`, or with the connect/TLS/upgrade error.
 */
export async function dialNoDelay(url: string, opts: NoDelayDialOptions = {}): Promise<Conn> {
  const u = new URL(url);
  if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new TypeError(`not a WebSocket URL: ${url}`);
  }
  const tls = u.protocol === "wss:";
  const hostname = u.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = u.port ? Number(u.port) : tls ? 443 : 80;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const maxMessageBytes = opts.maxMessageBytes ?? MAX_MESSAGE_BYTES;

  let socket: Deno.Conn | null = null;
  let timedOut = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      try {
        socket?.close();
      } catch { /* closed */ }
      reject(new Deno.errors.TimedOut(`no WebSocket connection to ${url} within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  const connect = async (): Promise<Conn> => {
    const tcp = await Deno.connect({ hostname, port });
    if (timedOut) {
      tcp.close();
      throw new Deno.errors.TimedOut(`connection to ${url} timed out`);
    }
    socket = tcp;
    tcp.setNoDelay(true);
    if (tls) {
      const tlsConn = await Deno.startTls(tcp, { hostname, caCerts: opts.caCerts });
      socket = tlsConn;
      await tlsConn.handshake(); // surfaces certificate errors now, not on the first read
    }
    const driver = driverFactory.client(url, { maxLength: maxMessageBytes });
    const conn = new NoDelayConn(
      socket,
      driver,
      u.host,
      tls ? "wss" : "ws",
      maxMessageBytes,
      opts.closeTimeoutMs ?? 2_000,
    );
    const opened = new Promise<void>((resolve, reject) => {
      conn.onSocketEnd = (reason) => reject(new Error(reason));
      driver.on("open", () => resolve());
      driver.on("error", (e) => reject(e));
      driver.on("close", (ev) => {
        reject(new Error(ev.reason || "connection closed during the WebSocket upgrade"));
        conn.finish(ev.reason || `closed (${ev.code ?? 1005})`);
        conn.closeSocketSoon();
      });
    });
    driver.on("message", (ev) => {
      const d = ev.data!;
      conn.inbox.push(typeof d === "string" ? d : new Uint8Array(d.buffer, d.byteOffset, d.length));
    });
    driver.io.on("data", (chunk) => conn.enqueue(chunk));
    conn.pump();
    driver.start();
    try {
      await opened;
      conn.onSocketEnd = undefined;
    } catch (e) {
      conn.close();
      throw e;
    }
    return conn;
  };
  try {
    return await Promise.race([connect(), deadline]);
  } catch (e) {
    try {
      (socket as Deno.Conn | null)?.close();
    } catch { /* closed */ }
    if (e instanceof Deno.errors.TimedOut) throw e;
    // One error class for every refusal (TCP, TLS certificate, HTTP upgrade), like WebSocket's.
    throw new Deno.errors.ConnectionRefused(
      `cannot open ${url}: ${(e as Error)?.message ?? "connection failed"}`,
    );
  } finally {
    clearTimeout(timer);
  }
}
