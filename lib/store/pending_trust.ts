/**
 * The pending-trust queue (`pending_trust_messages`, PROTOCOL-0.9 §10.2, §13): inbound
 * MSG/REQ/RESP from a peer that is not yet trusted, held until the operator promotes
 * (drain in arrival order) or blocks (discard) it. At most 100 per peer, oldest evicted.
 */
import { ExitCode, IronMeshError } from "../errors.ts";
import { num, type Row, type StoreContext, str } from "./context.ts";
import type { History, RecordResult } from "./history.ts";
import { normalizePriority } from "./priority.ts";
import type { PayloadStatus } from "./storage_key.ts";

/** Messages held per peer (reference `queue_pending_trust(cap=100)`). */
export const DEFAULT_PENDING_TRUST_CAP = 100;

/** An inbound message held for trust promotion. */
export interface PendingTrustInput {
  msgId: string;
  msgType: string;
  payload: Uint8Array;
  /** Peer-supplied; unknown values are stored as NORMAL. */
  priority?: string;
}

/** What `enqueue` did; `evicted` = how many old messages made room (count pending_trust_evicted). */
export type PendingTrustResult =
  | { status: "queued"; evicted: number; queuedCount: number }
  | { status: "duplicate" };

/** A held message read back (payload decrypted). */
export interface PendingTrustItem {
  id: number;
  sourceNodeId: string;
  msgId: string;
  msgType: string;
  payload: Uint8Array;
  payloadStatus: PayloadStatus;
  priority: string;
  queuedAt: number;
}

/** One row per peer with held messages. */
export interface PendingTrustSummary {
  sourceNodeId: string;
  queuedCount: number;
  oldestQueuedAt: number;
  newestQueuedAt: number;
}

/** A drained item plus what re-storing it in history did (when asked to). */
export interface DrainedItem extends PendingTrustItem {
  /** Set when `drain` was given a history target (unset for an undecryptable payload). */
  recorded?: RecordResult;
}

/** Where `drain` re-stores promoted messages, inside the same transaction. */
export interface DrainToHistory {
  history: History;
  /** This node's id (the messages' destination). */
  destination: string;
}

function badArg(what: string): IronMeshError {
  return new IronMeshError(
    "STORE_BAD_INPUT",
    `pending-trust queue: ${what}`,
    "this is a bug in the caller; report it",
    ExitCode.BAD_INPUT,
  );
}

function requireId(name: string, v: unknown): void {
  if (typeof v !== "string" || v.length === 0) throw badArg(`${name} must be a non-empty string`);
}

/** The per-peer pending-trust queue. */
export class PendingTrustQueue {
  #ctx: StoreContext;
  #cap: number;

  /** `cap` 0 disables the cap. */
  constructor(ctx: StoreContext, cap = DEFAULT_PENDING_TRUST_CAP) {
    if (!Number.isSafeInteger(cap) || cap < 0) throw badArg("cap must be a non-negative integer");
    this.#ctx = ctx;
    this.#cap = cap;
  }

  /** Hold a message from `sourceNodeId`; evicts the oldest while at the cap. */
  enqueue(sourceNodeId: string, msg: PendingTrustInput): PendingTrustResult {
    requireId("sourceNodeId", sourceNodeId);
    requireId("msgId", msg.msgId);
    requireId("msgType", msg.msgType);
    if (!(msg.payload instanceof Uint8Array)) throw badArg("payload must be a Uint8Array");
    const ctx = this.#ctx;
    return ctx.tx(() => {
      if (
        ctx.get(
          "SELECT 1 AS x FROM pending_trust_messages WHERE source_node_id = ? AND msg_id = ?",
          sourceNodeId,
          msg.msgId,
        )
      ) return { status: "duplicate" };
      let evicted = 0;
      if (this.#cap > 0) {
        while (this.count(sourceNodeId) >= this.#cap) {
          evicted += ctx.run(
            `DELETE FROM pending_trust_messages WHERE id = (
               SELECT id FROM pending_trust_messages WHERE source_node_id = ?
               ORDER BY id ASC LIMIT 1)`,
            sourceNodeId,
          );
        }
      }
      ctx.run(
        `INSERT INTO pending_trust_messages
         (source_node_id, msg_id, msg_type, payload, priority, queued_at)
         VALUES (?, ?, ?, ?, ?, ?)`,
        sourceNodeId,
        msg.msgId,
        msg.msgType,
        ctx.cipher.seal(msg.payload),
        normalizePriority(msg.priority ?? "NORMAL"),
        ctx.clock.now(),
      );
      return { status: "queued", evicted, queuedCount: this.count(sourceNodeId) };
    });
  }

  /** The held messages of a peer in arrival order, without removing them. */
  list(sourceNodeId: string): PendingTrustItem[] {
    return this.#ctx.all(
      `SELECT id, source_node_id, msg_id, msg_type, payload, priority, queued_at
       FROM pending_trust_messages WHERE source_node_id = ? ORDER BY id ASC`,
      sourceNodeId,
    ).map((r) => this.#row(r));
  }

  /**
   * Promote: return the held messages in arrival order and delete them in one transaction.
   * With `to`, each is also recorded as inbound history in that same transaction, so a
   * crash can neither lose nor duplicate a promoted message.
   */
  drain(sourceNodeId: string, to?: DrainToHistory): DrainedItem[] {
    return this.#ctx.tx(() => {
      const items: DrainedItem[] = this.list(sourceNodeId);
      if (to) {
        for (const it of items) {
          if (it.payloadStatus === "undecryptable") continue; // never re-store ciphertext as text
          it.recorded = to.history.insert({
            msgId: it.msgId,
            source: sourceNodeId,
            sourceDisplay: sourceNodeId,
            destination: to.destination,
            msgType: it.msgType,
            payload: it.payload,
            priority: it.priority,
          }, "inbound");
        }
      }
      this.#ctx.run("DELETE FROM pending_trust_messages WHERE source_node_id = ?", sourceNodeId);
      return items;
    });
  }

  /** Block: delete every held message of a peer; returns how many were discarded. */
  discard(sourceNodeId: string): number {
    return this.#ctx.tx(() =>
      this.#ctx.run("DELETE FROM pending_trust_messages WHERE source_node_id = ?", sourceNodeId)
    );
  }

  /** Messages held for one peer. */
  count(sourceNodeId: string): number {
    return num(
      this.#ctx.get(
        "SELECT COUNT(*) AS n FROM pending_trust_messages WHERE source_node_id = ?",
        sourceNodeId,
      )?.n,
    ) ?? 0;
  }

  /** One row per peer with held messages, oldest first (reference `list_pending_trust_summary`). */
  summary(): PendingTrustSummary[] {
    return this.#ctx.all(
      `SELECT source_node_id, COUNT(*) AS n, MIN(queued_at) AS lo, MAX(queued_at) AS hi
       FROM pending_trust_messages GROUP BY source_node_id ORDER BY MIN(queued_at) ASC`,
    ).map((r) => ({
      sourceNodeId: String(r.source_node_id),
      queuedCount: num(r.n) ?? 0,
      oldestQueuedAt: num(r.lo)!,
      newestQueuedAt: num(r.hi)!,
    }));
  }

  #row(r: Row): PendingTrustItem {
    const opened = this.#ctx.cipher.open(r.payload);
    return {
      id: num(r.id)!,
      sourceNodeId: String(r.source_node_id),
      msgId: String(r.msg_id),
      msgType: String(r.msg_type),
      payload: opened.payload,
      payloadStatus: opened.status,
      priority: str(r.priority) ?? "NORMAL",
      queuedAt: num(r.queued_at)!,
    };
  }
}
