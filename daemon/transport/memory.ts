/** An in-memory transport for tests: listeners and dials on named addresses inside one process. */
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

class MemoryConn implements Conn {
  readonly kind = "memory";
  readonly inbox = new Inbox();
  peer!: MemoryConn;
  #open = true;
  #resolveClosed!: (r: string) => void;
  readonly closed = new Promise<string>((r) => this.#resolveClosed = r);
  constructor(readonly remoteAddress: string) {}

  send(msg: WireMessage): void {
    if (!this.#open) throw new Error("connection closed");
    const size = typeof msg === "string" ? new TextEncoder().encode(msg).length : msg.length;
    if (size > MAX_MESSAGE_BYTES) {
      this.close(1009, "message too big");
      return;
    }
    // Copy bytes so the sender can reuse its buffer; deliver asynchronously like a socket.
    const copy = typeof msg === "string" ? msg : msg.slice();
    queueMicrotask(() => this.peer.inbox.push(copy));
  }
  recv(timeoutMs?: number) {
    return this.inbox.recv(timeoutMs);
  }
  close(_code = 1000, reason = "closed"): void {
    if (!this.#open) return;
    this.#open = false;
    queueMicrotask(() => {
      this.inbox.end();
      this.#resolveClosed(reason);
      this.peer.close(_code, reason);
    });
  }
  bufferedAmount(): number {
    return 0;
  }
}

/** A registry of in-memory listeners shared by the transports of one test. */
export class MemoryNetwork {
  readonly listeners = new Map<string, ListenOptions>();
  #nextPort = 40000;
  /** A transport whose connections appear to come from `hostname`. */
  transport(hostname = "127.0.0.1"): Transport {
    return new MemoryTransport(this, hostname, () => this.#nextPort++);
  }
}

class MemoryTransport implements Transport {
  readonly name = "memory";
  constructor(
    readonly net: MemoryNetwork,
    readonly hostname: string,
    readonly ephemeralPort: () => number,
  ) {}

  listen(opts: ListenOptions): Promise<Listener> {
    const port = opts.port || this.ephemeralPort();
    const key = `${opts.hostname}:${port}`;
    if (this.net.listeners.has(key)) {
      return Promise.reject(new Deno.errors.AddrInUse(`${key} in use`));
    }
    this.net.listeners.set(key, opts);
    return Promise.resolve({
      hostname: opts.hostname,
      port,
      close: () => {
        this.net.listeners.delete(key);
        return Promise.resolve();
      },
    });
  }

  dial(address: string, _opts?: DialOptions): Promise<Conn> {
    const l = this.net.listeners.get(address.replace(/^wss?:\/\//, "").replace(/\/$/, ""));
    if (!l) {
      return Promise.reject(new Deno.errors.ConnectionRefused(`connection refused: ${address}`));
    }
    const local = new MemoryConn(address);
    const remote = new MemoryConn(`${this.hostname}:${this.ephemeralPort()}`);
    local.peer = remote;
    remote.peer = local;
    queueMicrotask(() => l.onConn(remote));
    return Promise.resolve(local);
  }
}
