/**
 * Transports are plug-ins (ARCHITECTURE.md idea 3): something that listens, dials,
 * and gives a duplex of text (handshake) and binary (frames) messages.
 */

/** One message: text during the handshake, bytes afterwards. */
export type WireMessage = string | Uint8Array;

/** The largest WebSocket message either side sends or accepts (PROTOCOL-0.9 §4). */
export const MAX_MESSAGE_BYTES = 1_048_576;

/** A live connection. */
export interface Conn {
  /** "ip:port" of the other end. */
  readonly remoteAddress: string;
  /** "ws", "wss" or "memory". */
  readonly kind: string;
  /** Queue a message; throws when the connection is closed. */
  send(msg: WireMessage): void;
  /** Next message, or null once the connection is closed. Rejects after `timeoutMs`. */
  recv(timeoutMs?: number): Promise<WireMessage | null>;
  /** Close (idempotent). */
  close(code?: number, reason?: string): void;
  /** Resolves when the connection is closed, with the close reason. */
  readonly closed: Promise<string>;
  /** Bytes queued but not yet handed to the network (for backpressure). */
  bufferedAmount(): number;
}

/** A listening endpoint. */
export interface Listener {
  readonly hostname: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Listen options. */
export interface ListenOptions {
  hostname: string;
  port: number;
  onConn: (conn: Conn) => void;
  /** Optional plain HTTP handler for non-WebSocket requests (dashboard, metrics). */
  onHttp?: (req: Request) => Response | Promise<Response>;
}

/** Dial options. */
export interface DialOptions {
  timeoutMs?: number;
}

/** A transport: listen and dial. */
export interface Transport {
  readonly name: string;
  listen(opts: ListenOptions): Promise<Listener>;
  dial(address: string, opts?: DialOptions): Promise<Conn>;
}

/** Raised when a receive waits longer than its timeout. */
export class RecvTimeout extends Error {
  constructor(ms: number) {
    super(`no message within ${ms} ms`);
    this.name = "RecvTimeout";
  }
}

/** An inbox that turns push-style events into `recv()` pulls; shared by every transport. */
export class Inbox {
  #queue: WireMessage[] = [];
  #head = 0;
  #waiters: {
    resolve: (m: WireMessage | null) => void;
    reject: (e: Error) => void;
    timer?: ReturnType<typeof setTimeout>;
  }[] = [];
  #closed = false;

  push(m: WireMessage): void {
    if (this.#closed) return;
    const w = this.#waiters.shift();
    if (w) {
      if (w.timer !== undefined) clearTimeout(w.timer);
      w.resolve(m);
    } else this.#queue.push(m);
  }

  end(): void {
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) {
      if (w.timer !== undefined) clearTimeout(w.timer);
      w.resolve(null);
    }
  }

  get size(): number {
    return this.#queue.length - this.#head;
  }

  recv(timeoutMs?: number): Promise<WireMessage | null> {
    if (this.#head < this.#queue.length) {
      const m = this.#queue[this.#head];
      this.#queue[this.#head++] = "";
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      return Promise.resolve(m);
    }
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const w: {
        resolve: (m: WireMessage | null) => void;
        reject: (e: Error) => void;
        timer?: ReturnType<typeof setTimeout>;
      } = { resolve, reject };
      if (timeoutMs !== undefined) {
        w.timer = setTimeout(() => {
          const i = this.#waiters.indexOf(w);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(new RecvTimeout(timeoutMs));
        }, timeoutMs);
      }
      this.#waiters.push(w);
    });
  }
}
