/**
 * One live, encrypted link to a directly connected peer: the session plus its
 * connection. Sends are sealed and written in one serialized step (sequence
 * numbers must reach the wire in order); received frames are opened, session
 * control (PING/PONG/GOODBYE/REKEY) is handled here, everything else goes up.
 */
import type { IronMeshError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { InboundMessage, OpenResult, OutboundMessage } from "../lib/wire/session.ts";
import { goodbyeMessage, pingMessage, pongMessage } from "../lib/wire/v09/control.ts";
import type { PeerInfo } from "../lib/wire/v09/handshake_types.ts";
import type { PreOpened, V09Session } from "../lib/wire/v09/session.ts";
import type { OpenPool } from "./open_pool.ts";
import type { Conn } from "./transport/transport.ts";

/** Callbacks of a link. */
export interface PeerLinkHandlers {
  /** An application (or mesh) message from the peer. */
  onMessage?: (msg: InboundMessage, link: PeerLink) => void;
  /** The link closed (GOODBYE, socket closed, or `close()`). */
  onClose?: (reason: string, link: PeerLink) => void;
  /** A frame was rejected (code, message) — for counters and audit. */
  onReject?: (code: string, message: string, link: PeerLink, error: IronMeshError) => void;
  /** Inbound rate limit, asked before each frame is decrypted; false drops the frame. */
  admitFrame?: (link: PeerLink) => boolean;
}

/** Optional machinery of a link. */
export interface PeerLinkOptions {
  /**
   * Workers that verify and decrypt inbound frames off the event loop (one pool per node).
   * Delivery order, the replay guard and every check stay exactly as without it.
   */
  openPool?: OpenPool;
}

/** Most frames sent to a worker in one message. */
const MAX_BATCH = 64;

/** Per-link counters for the API. */
export interface LinkStats {
  framesSent: number;
  framesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  rejected: number;
  rttMs: number | null;
  lastSeen: number;
}

/** A connected peer. */
export class PeerLink {
  readonly stats: LinkStats = {
    framesSent: 0,
    framesReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    rejected: 0,
    rttMs: null,
    lastSeen: Date.now(),
  };
  #pings = new Map<string, { t0: number; resolve: (ms: number) => void }>();
  #closed = false;
  readonly done: Promise<string>;

  constructor(
    readonly conn: Conn,
    readonly session: V09Session,
    readonly peer: PeerInfo,
    readonly handlers: PeerLinkHandlers = {},
    readonly log?: Logger,
    readonly options: PeerLinkOptions = {},
  ) {
    this.done = options.openPool ? this.#pooledLoop(options.openPool) : this.#loop();
  }

  get nodeId(): string {
    return this.peer.nodeId;
  }
  get open(): boolean {
    return !this.#closed;
  }

  /** Seal and send one message; returns its msg_id. Throws when the link is closed or the message is invalid. */
  send(msg: OutboundMessage): string {
    if (this.#closed) throw new Error(`link to ${this.peer.nodeId} is closed`);
    const frame = this.session.seal(msg);
    this.conn.send(frame);
    this.stats.framesSent++;
    this.stats.bytesSent += frame.length;
    return msg.msgId ?? "";
  }

  /** Send PING and resolve with the round-trip time in ms (rejects after `timeoutMs`). */
  ping(timeoutMs = 10_000): Promise<number> {
    const m = pingMessage(this.session.localNodeId);
    const msgId = crypto.randomUUID().replaceAll("-", "");
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pings.delete(msgId);
        reject(
          new Error(`no PONG from ${this.peer.name || this.peer.nodeId} within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.#pings.set(msgId, {
        t0: performance.now(),
        resolve: (ms) => {
          clearTimeout(timer);
          resolve(ms);
        },
      });
      try {
        this.send({ ...m, msgId });
      } catch (e) {
        clearTimeout(timer);
        this.#pings.delete(msgId);
        reject(e);
      }
    });
  }

  /** Start a rekey (no-op while one is in progress); returns whether a request was sent. */
  rekey(): boolean {
    if (this.#closed) return false;
    const frame = this.session.startRekey();
    if (!frame) return false;
    try {
      this.conn.send(frame);
    } catch {
      return false;
    }
    return true;
  }

  /** Say GOODBYE (best effort) and close. */
  goodbye(): void {
    this.sendGoodbye();
    this.close("goodbye");
  }

  /** Send GOODBYE without closing (the caller closes once it is flushed). */
  sendGoodbye(): void {
    if (this.#closed) return;
    try {
      this.send(goodbyeMessage(this.session.localNodeId));
    } catch { /* closing anyway */ }
  }

  /** Close the link. */
  close(reason = "closed"): void {
    if (this.#closed) return;
    this.#closed = true;
    this.conn.close(1000, reason);
  }

  async #loop(): Promise<string> {
    let reason = "closed";
    for (;;) {
      const raw = await this.conn.recv();
      if (raw === null) {
        reason = await this.conn.closed;
        break;
      }
      if (!this.#admit(raw)) continue;
      if (this.#deliver(this.session.open(raw))) {
        reason = "peer said goodbye";
        break;
      }
    }
    return this.#finish(reason);
  }

  /**
   * The receive loop with an open pool: frames are admitted in arrival order and sent to the
   * workers in batches (a batch leaves as soon as a worker slot is free, so an idle link adds
   * no batching delay); results complete strictly in arrival order through
   * `session.openPreOpened`, which keeps every stateful check on this thread.
   */
  async #pooledLoop(pool: OpenPool): Promise<string> {
    const maxInFlight = 2 * pool.size;
    let waiting: Uint8Array[] = [];
    const batches: { frames: Uint8Array[]; results: Promise<PreOpened[] | null> }[] = [];
    const signal: { wake: (() => void) | null } = { wake: null };
    let readerDone = false;
    let stop = false;
    const dispatch = () => {
      while (!stop && waiting.length && batches.length < maxInFlight) {
        const frames = waiting.length > MAX_BATCH ? waiting.splice(0, MAX_BATCH) : waiting;
        if (frames === waiting) waiting = [];
        let results: Promise<PreOpened[] | null>;
        try {
          results = pool.preOpen(this.session.preOpenContext(), frames).catch(() => null);
        } catch {
          results = Promise.resolve(null); // session closed: `open` reports it per frame
        }
        batches.push({ frames, results });
      }
      signal.wake?.();
    };
    const reader = (async () => {
      let reason = "closed";
      while (!stop) {
        const raw = await this.conn.recv();
        if (raw === null) {
          reason = await this.conn.closed;
          break;
        }
        if (!this.#admit(raw)) continue;
        waiting.push(raw);
        if (batches.length < maxInFlight) dispatch();
      }
      readerDone = true;
      signal.wake?.();
      return reason;
    })();
    let goodbye = false;
    while (!goodbye) {
      if (!batches.length) {
        if (readerDone) break;
        await new Promise<void>((r) => signal.wake = r);
        signal.wake = null;
        continue;
      }
      const { frames, results } = batches[0];
      const pre = await results;
      batches.shift();
      dispatch();
      for (let i = 0; i < frames.length && !goodbye; i++) {
        const r = pre
          ? this.session.openPreOpened(frames[i], pre[i])
          : this.session.open(frames[i]);
        goodbye = this.#deliver(r);
      }
    }
    stop = true;
    const reason = goodbye ? "peer said goodbye" : await reader;
    return this.#finish(reason);
  }

  /** Count a received message; false when it is not a frame to open (text, or over the rate limit). */
  #admit(raw: string | Uint8Array): raw is Uint8Array {
    if (typeof raw === "string") {
      this.log?.debug("text message after the handshake ignored", { peer: this.peer.nodeId });
      return false;
    }
    this.stats.bytesReceived += raw.length;
    if (this.handlers.admitFrame && !this.handlers.admitFrame(this)) {
      this.stats.rejected++;
      return false;
    }
    return true;
  }

  /** Act on one opened frame; returns true when the peer said GOODBYE (the link is closed). */
  #deliver(r: OpenResult): boolean {
    if (!r.ok) {
      this.stats.rejected++;
      this.handlers.onReject?.(r.error.code, r.error.message, this, r.error);
      return false;
    }
    for (const f of r.send) {
      try {
        this.conn.send(f);
      } catch { /* closed meanwhile */ }
    }
    this.stats.framesReceived++;
    this.stats.lastSeen = Date.now();
    const m = r.message;
    if (m.type === "PING") {
      try {
        this.send({ ...pongMessage(this.session.localNodeId), msgId: m.msgId });
      } catch { /* closed */ }
    } else if (m.type === "PONG") {
      const p = this.#pings.get(m.msgId);
      if (p) {
        this.#pings.delete(m.msgId);
        this.stats.rttMs = performance.now() - p.t0;
        p.resolve(this.stats.rttMs);
      }
    } else if (m.type === "GOODBYE") {
      this.close("peer said goodbye");
      return true;
    } else if (m.type === "REKEY_REQUEST" || m.type === "REKEY_RESPONSE") {
      // handled inside the session (its reply, if any, was in r.send)
    } else {
      this.handlers.onMessage?.(m, this);
    }
    return false;
  }

  #finish(reason: string): string {
    this.#closed = true;
    this.session.close();
    this.handlers.onClose?.(reason, this);
    return reason;
  }
}
