/**
 * Message history (`messages`, PROTOCOL-0.9 §11.6): inbound and outbound messages with
 * encrypted payloads. `msg_id` is the primary key, which also makes it the receiver's
 * durable dedup set for exactly-once delivery (see queue.ts).
 */
import { ExitCode, IronMeshError } from "../errors.ts";
import { num, type Row, type StoreContext, str } from "./context.ts";
import { normalizePriority } from "./priority.ts";
import type { PayloadStatus } from "./storage_key.ts";

/** Default and bounds of a history query's `limit` (dashboard clamps to 1–5000). */
export const HISTORY_DEFAULT_LIMIT = 100;
/** Smallest accepted limit. */
export const HISTORY_MIN_LIMIT = 1;
/** Largest accepted limit. */
export const HISTORY_MAX_LIMIT = 5000;

/** Direction of a history entry. */
export type Direction = "inbound" | "outbound";

/** A message to record in history. */
export interface HistoryRecord {
  msgId: string;
  source: string;
  /** Display name; the reference stores the source node_id when there is none. */
  sourceDisplay?: string | null;
  destination: string;
  msgType: string;
  payload: Uint8Array;
  /** Default NORMAL; peer-supplied values outside LOW…CRITICAL are stored as NORMAL. */
  priority?: string;
}

/** What recording did: `duplicate` = same msg_id from the same source already stored. */
export type RecordResult = "inserted" | "duplicate" | "conflict";

/** A history row read back (payload decrypted). */
export interface HistoryMessage {
  /** SQLite rowid: increases with each insert; `follow()` pages on it. */
  rowid: number;
  msgId: string;
  source: string;
  sourceDisplay: string | null;
  destination: string;
  msgType: string;
  payload: Uint8Array;
  payloadStatus: PayloadStatus;
  timestamp: number;
  priority: string;
  direction: string;
  status: string;
  retries: number;
}

/** Filters shared by `query` and `follow`. */
export interface HistoryFilter {
  /** Messages from or to this node_id. */
  peer?: string;
  /** Messages from this node_id only. */
  source?: string;
  /** Only `timestamp > since` (seconds). */
  since?: number;
  msgType?: string;
  direction?: Direction;
  /** Clamped to 1–5000; default 100. */
  limit?: number;
}

/** A history query: filters plus order (`newest` = timestamp DESC, the reference order). */
export interface HistoryQuery extends HistoryFilter {
  order?: "newest" | "oldest";
}

/** Clamp a requested limit to 1–5000 (non-numbers → the default 100). */
export function clampLimit(limit: number | undefined): number {
  if (limit === undefined || typeof limit !== "number" || Number.isNaN(limit)) {
    return HISTORY_DEFAULT_LIMIT;
  }
  return Math.min(HISTORY_MAX_LIMIT, Math.max(HISTORY_MIN_LIMIT, Math.floor(limit)));
}

function badArg(what: string): IronMeshError {
  return new IronMeshError(
    "STORE_BAD_INPUT",
    `history: ${what}`,
    "this is a bug in the caller; report it",
    ExitCode.BAD_INPUT,
  );
}

const COLS = "rowid AS rid, msg_id, source, source_display, destination, msg_type, payload, " +
  "timestamp, priority, direction, status, retries";

/** Read/write access to `messages`. */
export class History {
  #ctx: StoreContext;

  /** Bind to a store. */
  constructor(ctx: StoreContext) {
    this.#ctx = ctx;
  }

  /** Record a received message; `duplicate`/`conflict` mean it was NOT stored (drop it). */
  recordInbound(rec: HistoryRecord): RecordResult {
    return this.#ctx.tx(() => this.insert(rec, "inbound"));
  }

  /** Record several received messages in one transaction (one fsync); results in input order. */
  recordInboundMany(recs: readonly HistoryRecord[]): RecordResult[] {
    return this.#ctx.tx(() => recs.map((r) => this.insert(r, "inbound")));
  }

  /** Record a sent message (same dedup rule as inbound). */
  recordOutbound(rec: HistoryRecord): RecordResult {
    return this.#ctx.tx(() => this.insert(rec, "outbound"));
  }

  /**
   * Insert within the caller's transaction. An existing msg_id is never overwritten:
   * same source → `duplicate`, another source → `conflict` (a clash or a forged id).
   */
  insert(rec: HistoryRecord, direction: Direction): RecordResult {
    for (const k of ["msgId", "source", "destination", "msgType"] as const) {
      if (typeof rec[k] !== "string" || rec[k].length === 0) {
        throw badArg(`${k} must be a non-empty string`);
      }
    }
    if (!(rec.payload instanceof Uint8Array)) throw badArg("payload must be a Uint8Array");
    const priority = normalizePriority(rec.priority ?? "NORMAL");
    const ctx = this.#ctx;
    const existing = ctx.get("SELECT source FROM messages WHERE msg_id = ?", rec.msgId);
    if (existing) return String(existing.source) === rec.source ? "duplicate" : "conflict";
    ctx.run(
      `INSERT INTO messages
       (msg_id, source, source_display, destination, msg_type, payload, timestamp, priority, direction)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      rec.msgId,
      rec.source,
      rec.sourceDisplay ?? rec.source,
      rec.destination,
      rec.msgType,
      ctx.cipher.seal(rec.payload),
      ctx.clock.now(),
      priority,
      direction,
    );
    return "inserted";
  }

  /** Whether a message with this msg_id is in history (the receiver's dedup check). */
  hasMessage(msgId: string): boolean {
    return this.#ctx.get("SELECT 1 AS x FROM messages WHERE msg_id = ?", msgId) !== undefined;
  }

  /** One message by msg_id, or null. */
  get(msgId: string): HistoryMessage | null {
    const r = this.#ctx.get(`SELECT ${COLS} FROM messages WHERE msg_id = ?`, msgId);
    return r ? this.#row(r) : null;
  }

  /** Filtered history, newest first by default (the reference `get_messages` order). */
  query(q: HistoryQuery = {}): HistoryMessage[] {
    const { where, params } = this.#where(q);
    const order = q.order === "oldest" ? "timestamp ASC, rowid ASC" : "timestamp DESC, rowid DESC";
    return this.#ctx.all(
      `SELECT ${COLS} FROM messages${where} ORDER BY ${order} LIMIT ?`,
      ...params,
      clampLimit(q.limit),
    ).map((r) => this.#row(r));
  }

  /**
   * Messages inserted after `afterRowid`, in insertion order (for `inbox --follow`: pass the
   * last rowid seen). If `maxRowid()` drops below your cursor, the table was emptied: restart at 0.
   */
  follow(afterRowid: number, f: HistoryFilter = {}): HistoryMessage[] {
    if (!Number.isSafeInteger(afterRowid) || afterRowid < 0) {
      throw badArg("afterRowid must be a non-negative integer");
    }
    const { where, params } = this.#where(f, afterRowid);
    return this.#ctx.all(
      `SELECT ${COLS} FROM messages${where} ORDER BY rowid ASC LIMIT ?`,
      ...params,
      clampLimit(f.limit),
    ).map((r) => this.#row(r));
  }

  /** The largest rowid in history (0 when empty). */
  maxRowid(): number {
    return num(this.#ctx.get("SELECT MAX(rowid) AS m FROM messages")?.m) ?? 0;
  }

  /** Number of messages in history. */
  count(): number {
    return num(this.#ctx.get("SELECT COUNT(*) AS n FROM messages")?.n) ?? 0;
  }

  #where(f: HistoryFilter, afterRowid?: number): { where: string; params: (string | number)[] } {
    const conds: string[] = [];
    const params: (string | number)[] = [];
    if (afterRowid !== undefined) {
      conds.push("rowid > ?");
      params.push(afterRowid);
    }
    if (f.peer !== undefined) {
      conds.push("(source = ? OR destination = ?)");
      params.push(f.peer, f.peer);
    }
    if (f.source !== undefined) {
      conds.push("source = ?");
      params.push(f.source);
    }
    if (f.since !== undefined) {
      if (typeof f.since !== "number" || Number.isNaN(f.since)) {
        throw badArg("since must be a number");
      }
      conds.push("timestamp > ?");
      params.push(f.since);
    }
    if (f.msgType !== undefined) {
      conds.push("msg_type = ?");
      params.push(f.msgType);
    }
    if (f.direction !== undefined) {
      conds.push("direction = ?");
      params.push(f.direction);
    }
    return { where: conds.length ? ` WHERE ${conds.join(" AND ")}` : "", params };
  }

  #row(r: Row): HistoryMessage {
    const opened = this.#ctx.cipher.open(r.payload);
    return {
      rowid: num(r.rid)!,
      msgId: String(r.msg_id),
      source: String(r.source),
      sourceDisplay: str(r.source_display),
      destination: String(r.destination),
      msgType: String(r.msg_type),
      payload: opened.payload,
      payloadStatus: opened.status,
      timestamp: num(r.timestamp)!,
      priority: str(r.priority) ?? "NORMAL",
      direction: String(r.direction),
      status: str(r.status) ?? "delivered",
      retries: num(r.retries) ?? 0,
    };
  }
}
