/**
 * The offline queue (`pending_messages`, PROTOCOL-0.9 §11.6, §13): messages waiting for a
 * peer to come online. At most 1000 undelivered per peer; when full, the oldest message of
 * the lowest queued priority is evicted if that priority is equal to or lower than the new
 * one's, otherwise the new message is refused.
 *
 * Exactly-once delivery across crashes is split between the two ends:
 * - Sender: `enqueue` commits (synchronous=FULL) before it returns. The flush loop does
 *   `takeBatch` (peek, FIFO, nothing removed) → send each frame → `markDelivered`. A crash
 *   after sending but before `markDelivered` re-sends those messages on restart, so the
 *   sender side is at-least-once; `markAttempt` counts the tries (`retries`).
 * - Receiver: before handing a message on, it calls `History.recordInbound`, which commits
 *   the msg_id into `messages` (PRIMARY KEY) and reports `duplicate` for an id it already
 *   holds, also after a restart. Dropping duplicates there makes the pair exactly-once.
 */
import { ExitCode, IronMeshError } from "../errors.ts";
import { num, type Row, type StoreContext, str } from "./context.ts";
import { type Priority, PRIORITY_RANK_SQL, priorityRank, requirePriority } from "./priority.ts";
import type { PayloadStatus } from "./storage_key.ts";

/** Undelivered messages kept per peer (reference `DEFAULT_MAX_PENDING_PER_PEER`). */
export const DEFAULT_MAX_PENDING_PER_PEER = 1000;

/** A message to queue for a peer. */
export interface OutboundMessage {
  msgId: string;
  /** Originator node_id (normally this node). */
  source: string;
  msgType: string;
  payload: Uint8Array;
  /** Default NORMAL. */
  priority?: Priority;
}

/** The queued message an admission displaced. */
export interface EvictedMessage {
  msgId: string;
  priority: string;
}

/** What `enqueue` did; count `evicted` and `refused` as pending_queue_evicted / _dropped. */
export type EnqueueResult =
  | { status: "queued"; evicted: EvictedMessage | null }
  | { status: "refused" }
  | { status: "duplicate" };

/** An undelivered message read back from the queue (payload decrypted). */
export interface QueuedMessage {
  id: number;
  peerNodeId: string;
  msgId: string;
  source: string;
  msgType: string;
  payload: Uint8Array;
  payloadStatus: PayloadStatus;
  priority: string;
  createdAt: number;
  retries: number;
}

function badArg(what: string): IronMeshError {
  return new IronMeshError(
    "STORE_BAD_INPUT",
    `offline queue: ${what}`,
    "this is a bug in the caller; report it",
    ExitCode.BAD_INPUT,
  );
}

function requireId(name: string, v: unknown): string {
  if (typeof v !== "string" || v.length === 0) throw badArg(`${name} must be a non-empty string`);
  return v;
}

const SELECT_COLS =
  "id, peer_node_id, msg_id, source, msg_type, payload, priority, created_at, retries";

/** The per-peer offline queue over `pending_messages`. */
export class OfflineQueue {
  #ctx: StoreContext;
  #cap: number;

  /** `maxPerPeer` 0 disables the cap (reference behaviour). */
  constructor(ctx: StoreContext, maxPerPeer = DEFAULT_MAX_PENDING_PER_PEER) {
    if (!Number.isSafeInteger(maxPerPeer) || maxPerPeer < 0) {
      throw badArg("maxPerPeer must be a non-negative integer");
    }
    this.#ctx = ctx;
    this.#cap = maxPerPeer;
  }

  /** The per-peer cap in force. */
  get maxPerPeer(): number {
    return this.#cap;
  }

  /** Queue one message for `peer` (committed before it returns). Same (peer, msgId) twice → duplicate. */
  enqueue(peer: string, msg: OutboundMessage): EnqueueResult {
    return this.#ctx.tx(() => this.#admit(peer, msg));
  }

  /** Queue several messages in one transaction (one fsync); results in input order. */
  enqueueMany(peer: string, msgs: readonly OutboundMessage[]): EnqueueResult[] {
    return this.#ctx.tx(() => msgs.map((m) => this.#admit(peer, m)));
  }

  #admit(peer: string, msg: OutboundMessage): EnqueueResult {
    requireId("peer", peer);
    requireId("msgId", msg.msgId);
    requireId("source", msg.source);
    requireId("msgType", msg.msgType);
    if (!(msg.payload instanceof Uint8Array)) throw badArg("payload must be a Uint8Array");
    const priority = requirePriority(msg.priority ?? "NORMAL");
    const ctx = this.#ctx;
    if (this.has(peer, msg.msgId)) return { status: "duplicate" };
    let evicted: EvictedMessage | null = null;
    if (this.#cap > 0 && this.pendingCount(peer) >= this.#cap) {
      const victim = ctx.get(
        `SELECT id, msg_id, priority FROM pending_messages
         WHERE peer_node_id = ? AND delivered = 0
         ORDER BY ${PRIORITY_RANK_SQL} DESC, id ASC LIMIT 1`,
        peer,
      );
      if (!victim || priorityRank(String(victim.priority)) < priorityRank(priority)) {
        return { status: "refused" };
      }
      ctx.run("DELETE FROM pending_messages WHERE id = ?", num(victim.id)!);
      evicted = { msgId: String(victim.msg_id), priority: String(victim.priority) };
    }
    ctx.run(
      `INSERT INTO pending_messages
       (peer_node_id, msg_id, source, msg_type, payload, priority, created_at, retries)
       VALUES (?, ?, ?, ?, ?, ?, ?, 0)`,
      peer,
      msg.msgId,
      msg.source,
      msg.msgType,
      ctx.cipher.seal(msg.payload),
      priority,
      ctx.clock.now(),
    );
    return { status: "queued", evicted };
  }

  /**
   * The first `n` undelivered messages for `peer` in FIFO (arrival) order, after row id
   * `afterId` (to page past messages already in flight); nothing is removed.
   */
  takeBatch(peer: string, n: number, afterId = 0): QueuedMessage[] {
    if (!Number.isSafeInteger(n) || n < 1) throw badArg("batch size must be a positive integer");
    return this.#ctx.all(
      `SELECT ${SELECT_COLS} FROM pending_messages
       WHERE peer_node_id = ? AND delivered = 0 AND id > ? ORDER BY id ASC LIMIT ?`,
      peer,
      afterId,
      n,
    ).map((r) => this.#row(r));
  }

  /** All undelivered messages for `peer` in the reference order: priority, then created_at. */
  getPendingForPeer(peer: string): QueuedMessage[] {
    return this.#ctx.all(
      `SELECT ${SELECT_COLS} FROM pending_messages
       WHERE peer_node_id = ? AND delivered = 0
       ORDER BY ${PRIORITY_RANK_SQL}, created_at ASC, id ASC`,
      peer,
    ).map((r) => this.#row(r));
  }

  /** Mark messages delivered (delivered=1, delivered_at=now) in one transaction; returns rows changed. */
  markDelivered(peer: string, msgIds: readonly string[]): number {
    const now = this.#ctx.clock.now();
    return this.#ctx.tx(() => {
      let n = 0;
      for (const id of msgIds) {
        n += this.#ctx.run(
          `UPDATE pending_messages SET delivered = 1, delivered_at = ?
           WHERE peer_node_id = ? AND msg_id = ? AND delivered = 0`,
          now,
          peer,
          id,
        );
      }
      return n;
    });
  }

  /** Count one more send attempt (`retries + 1`) for undelivered messages; returns rows changed. */
  markAttempt(peer: string, msgIds: readonly string[]): number {
    return this.#ctx.tx(() => {
      let n = 0;
      for (const id of msgIds) {
        n += this.#ctx.run(
          `UPDATE pending_messages SET retries = retries + 1
           WHERE peer_node_id = ? AND msg_id = ? AND delivered = 0`,
          peer,
          id,
        );
      }
      return n;
    });
  }

  /** Whether a (peer, msgId) row exists, delivered or not. */
  has(peer: string, msgId: string): boolean {
    return this.#ctx.get(
      "SELECT 1 AS x FROM pending_messages WHERE peer_node_id = ? AND msg_id = ?",
      peer,
      msgId,
    ) !== undefined;
  }

  /** Undelivered messages queued for `peer`. */
  pendingCount(peer: string): number {
    const r = this.#ctx.get(
      "SELECT COUNT(*) AS n FROM pending_messages WHERE peer_node_id = ? AND delivered = 0",
      peer,
    );
    return num(r?.n) ?? 0;
  }

  /** Undelivered counts of every peer that has any (for status output). */
  pendingCounts(): Map<string, number> {
    const out = new Map<string, number>();
    for (
      const r of this.#ctx.all(
        `SELECT peer_node_id, COUNT(*) AS n FROM pending_messages
         WHERE delivered = 0 GROUP BY peer_node_id ORDER BY peer_node_id`,
      )
    ) out.set(String(r.peer_node_id), num(r.n) ?? 0);
    return out;
  }

  #row(r: Row): QueuedMessage {
    const opened = this.#ctx.cipher.open(r.payload);
    return {
      id: num(r.id)!,
      peerNodeId: String(r.peer_node_id),
      msgId: String(r.msg_id),
      source: String(r.source),
      msgType: String(r.msg_type),
      payload: opened.payload,
      payloadStatus: opened.status,
      priority: str(r.priority) ?? "NORMAL",
      createdAt: num(r.created_at)!,
      retries: num(r.retries) ?? 0,
    };
  }
}
