/**
 * The dashboard's live feed: node events (and appended audit entries) as the JSON pushes the
 * WebSocket sends (PROTOCOL-0.9 §14: `message_event`, `pending_trust`, `cap_change_detected`,
 * `peer_event`, plus our `delivered`, `trust_event`, `security_event`, `handshake_failed` and
 * `audit_event`), and the last 50 of them for `/api/state`'s `history`.
 */
import type { NodeEvent } from "../events.ts";
import type { MeshNode } from "../node.ts";
import type { QueryEntry } from "../../lib/audit/query.ts";
import type { MetricsCollector } from "./metrics.ts";

/** One push to dashboard clients. */
export type Push = { type: string } & Record<string, unknown>;

/** Pushes kept for `/api/state` (reference: the last 50 bus events). */
export const HISTORY_EVENTS = 50;
/** Longest payload text a push carries (longer text is cut and flagged `truncated`). */
export const PREVIEW_CHARS = 4000;
/** Outbound payload look-ups per second for the feed (beyond: pushed without the text). */
const LOOKUPS_PER_SECOND = 200;

const strict = new TextDecoder("utf-8", { fatal: true });

/** A payload as the feed shows it: text when it is UTF-8 (cut to PREVIEW_CHARS), else null. */
export function preview(b: Uint8Array | null | undefined): {
  payload: string | null;
  size: number;
  truncated: boolean;
} {
  if (!b) return { payload: null, size: 0, truncated: false };
  let text: string | null;
  try {
    text = strict.decode(b);
  } catch {
    text = null;
  }
  const truncated = text !== null && text.length > PREVIEW_CHARS;
  return {
    payload: truncated ? text!.slice(0, PREVIEW_CHARS) : text,
    size: b.length,
    truncated,
  };
}

/** The feed of one node. */
export class EventFeed {
  readonly #node: MeshNode;
  readonly #ring: Push[] = [];
  readonly #listeners = new Set<(p: Push) => void>();
  readonly #unsubs: (() => void)[] = [];
  #lookupWindow = 0;
  #lookups = 0;

  constructor(node: MeshNode, metrics: MetricsCollector) {
    this.#node = node;
    this.#unsubs.push(node.bus.subscribe((e) => this.#onEvent(e)));
    this.#unsubs.push(metrics.onAudit((e) => this.#emit(auditPush(e), false)));
  }

  /** Stop listening. */
  close(): void {
    for (const u of this.#unsubs) u();
    this.#unsubs.length = 0;
    this.#listeners.clear();
  }

  /** The last pushes, oldest first. */
  history(): Push[] {
    return [...this.#ring];
  }

  /** Receive every push; returns the unsubscribe function. */
  listen(fn: (p: Push) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #emit(p: Push, keep = true): void {
    if (keep) {
      this.#ring.push(p);
      if (this.#ring.length > HISTORY_EVENTS) this.#ring.shift();
    }
    for (const fn of this.#listeners) {
      try {
        fn(p);
      } catch { /* one client's problem */ }
    }
  }

  /** An outbound message's payload from history, rate-limited and only with someone watching. */
  #outboundPayload(msgId: string): Uint8Array | null {
    if (this.#listeners.size === 0) return null;
    const sec = Math.floor(Date.now() / 1000);
    if (sec !== this.#lookupWindow) {
      this.#lookupWindow = sec;
      this.#lookups = 0;
    }
    if (++this.#lookups > LOOKUPS_PER_SECOND) return null;
    try {
      return this.#node.store.history.get(msgId)?.payload ?? null;
    } catch {
      return null;
    }
  }

  #onEvent(e: NodeEvent): void {
    const now = Date.now() / 1000;
    switch (e.type) {
      case "peer-up":
        return this.#emit({
          type: "peer_event",
          event: "connected",
          peer_id: e.peer.nodeId,
          name: e.peer.name,
          address: e.peer.address,
          transport: e.transport,
          timestamp: now,
        });
      case "peer-down":
        return this.#emit({
          type: "peer_event",
          event: "disconnected",
          peer_id: e.peer.nodeId,
          name: e.peer.name,
          address: e.peer.address,
          reason: e.reason,
          timestamp: now,
        });
      case "message-in": {
        this.#emit({
          type: "message_event",
          direction: "in",
          msg_type: e.msgType,
          peer_id: e.from,
          peer_name: e.fromName,
          msg_id: e.msgId,
          ...preview(e.payload),
          timestamp: e.timestamp,
          disposition: e.disposition,
        });
        if (e.disposition === "held") {
          let queued = 0;
          try {
            queued = this.#node.store.pendingTrust.count(e.from);
          } catch { /* closing */ }
          this.#emit({
            type: "pending_trust",
            source_node_id: e.from,
            name: e.fromName,
            queued_count: queued,
            msg_id: e.msgId,
          });
        }
        return;
      }
      case "message-out":
        return this.#emit({
          type: "message_event",
          direction: "out",
          msg_type: e.msgType,
          peer_id: e.to,
          peer_name: this.#node.peers.get(e.to)?.peer.name ?? this.#node.trust.namesOf(e.to)[0] ??
            "",
          msg_id: e.msgId,
          ...preview(this.#outboundPayload(e.msgId)),
          timestamp: now,
          disposition: e.queued ? "queued" : "sent",
        });
      case "delivered":
        return this.#emit({ type: "delivered", msg_id: e.msgId, peer_id: e.to, timestamp: now });
      case "trust-change":
        this.#emit({
          type: "trust_event",
          node_id: e.nodeId,
          event: e.event,
          details: e.details,
          timestamp: now,
        });
        if (e.event === "PEER_CAP_SET_CHANGED") {
          this.#emit({
            type: "cap_change_detected",
            peer: e.nodeId,
            added: e.details.added ?? [],
            removed: e.details.removed ?? [],
            old_hash: e.details.old_hash ?? null,
            new_hash: e.details.new_hash ?? null,
          });
        }
        return;
      case "security":
        return this.#emit({
          type: "security_event",
          event: e.event,
          details: e.details,
          timestamp: now,
        });
      case "handshake-failed":
        return this.#emit({
          type: "handshake_failed",
          address: e.address,
          code: e.code,
          reason: e.reason,
          role: e.role,
          timestamp: now,
        });
    }
  }
}

/** An audit entry as pushed (and as `/api/audit` lists it). */
export function auditView(e: { event: string; timestamp: number; details: unknown }) {
  return { event: e.event, timestamp: e.timestamp, details: e.details };
}

function auditPush(e: QueryEntry): Push {
  return { type: "audit_event", entry: auditView(e) };
}
