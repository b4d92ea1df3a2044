/**
 * Inbound delivery: application messages from peers pass the trust gate, are
 * committed to history in batches (one transaction per event-loop turn), published
 * on the bus, and acknowledged with an `ACK` frame listing their msg_ids. A msg_id
 * already in history is a re-send: it is acknowledged again but not delivered twice.
 *
 * Messages relayed through the mesh (`acceptRelayed`) are keyed by their originator, whose
 * inner signature the mesh router verified: the trust gate applies the originator's state, the
 * history records the originator as the source, and the ACK travels back to it through the mesh.
 */
import type { Logger } from "../lib/log.ts";
import type { MessageStore } from "../lib/store/db.ts";
import type { AppFrameRule } from "../lib/trust/policy.ts";
import type { InboundMessage } from "../lib/wire/session.ts";
import { controlMessage } from "../lib/wire/v09/control.ts";
import type { EventBus } from "./events.ts";
import type { PeerLink } from "./peer_link.ts";

/** Control type of our delivery acknowledgements. */
export const ACK_TYPE = "ACK";
/** Most msg_ids in one ACK frame. */
export const MAX_ACK_IDS = 512;

/** Types that are application messages (delivered, stored, gated). */
export const APP_TYPES: ReadonlySet<string> = new Set(["MSG", "REQ", "RESP", "CONV"]);

/** The ACK frame for `msgIds` (an empty list announces that we acknowledge). */
export function ackMessage(from: string, msgIds: string[]) {
  return controlMessage(ACK_TYPE, from, { msg_ids: msgIds });
}

/** msg_ids of an ACK payload (invalid entries ignored). */
export function parseAck(payload: Uint8Array): string[] {
  try {
    const v = JSON.parse(new TextDecoder().decode(payload));
    const ids = v?.msg_ids;
    if (!Array.isArray(ids)) return [];
    return ids.filter((x): x is string => typeof x === "string" && x.length > 0 && x.length <= 128)
      .slice(0, MAX_ACK_IDS);
  } catch {
    return [];
  }
}

/** Where the acknowledgement of delivered messages goes (a link, or a mesh route back). */
export interface AckRoute {
  send(msgIds: string[]): void;
}

interface Arrived {
  msg: InboundMessage;
  /** Trust and history key: the direct peer, or the authenticated originator of a relayed message. */
  peer: string;
  fromName: string;
  /** Grouping key and sink of the ACKs. */
  ack: AckRoute;
}

/** Options of the inbound side. */
export interface InboundOptions {
  store: MessageStore;
  selfId: string;
  bus: EventBus;
  log: Logger;
  /** Trust rule for the sending peer right now. */
  rule: (nodeId: string) => AppFrameRule;
  /** Audit hook for gated messages (`MSG_GATED_QUEUE` / `MSG_GATED_DROP`). */
  audit: (event: string, details: Record<string, unknown>) => void;
}

/** The inbound side of message delivery. */
export class Inbound {
  #batch: Arrived[] = [];
  #scheduled = false;
  #lastDropAudit = new Map<string, number>();
  #linkAcks = new WeakMap<PeerLink, AckRoute>();

  constructor(readonly o: InboundOptions) {}

  /** An application message arrived on `link`. */
  accept(msg: InboundMessage, link: PeerLink): void {
    let ack = this.#linkAcks.get(link);
    if (!ack) {
      const selfId = this.o.selfId;
      ack = { send: (ids) => link.send(ackMessage(selfId, ids)) };
      this.#linkAcks.set(link, ack);
    }
    this.#push({ msg, peer: link.nodeId, fromName: link.peer.name, ack });
  }

  /**
   * A message relayed through the mesh from `origin` (its inner signature verified): gated and
   * stored under the originator, acknowledged through `ack` (one object per originator).
   */
  acceptRelayed(msg: InboundMessage, origin: { nodeId: string; name: string }, ack: AckRoute) {
    this.#push({ msg, peer: origin.nodeId, fromName: origin.name, ack });
  }

  #push(a: Arrived): void {
    this.#batch.push(a);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setTimeout(() => this.#commit(), 0);
    }
  }

  #commit(): void {
    this.#scheduled = false;
    const batch = this.#batch;
    this.#batch = [];
    const { store, selfId, bus, log } = this.o;
    const acks = new Map<AckRoute, string[]>();
    const out: (() => void)[] = [];
    try {
      store.transaction(() => {
        for (const a of batch) {
          const peer = a.peer;
          const rule = this.o.rule(peer);
          if (rule === "drop") {
            const now = Date.now();
            if ((this.#lastDropAudit.get(peer) ?? 0) + 1000 <= now) {
              this.#lastDropAudit.set(peer, now);
              out.push(() =>
                this.o.audit("MSG_GATED_DROP", {
                  peer_id: peer,
                  msg_id: a.msg.msgId,
                  reason: "blocked",
                })
              );
            }
            continue;
          }
          if (rule === "queue") {
            const r = store.pendingTrust.enqueue(peer, {
              msgId: a.msg.msgId,
              msgType: a.msg.type,
              payload: a.msg.payload,
              priority: a.msg.priority,
            });
            if (r.status === "queued") {
              out.push(() => {
                this.o.audit("MSG_GATED_QUEUE", {
                  peer_id: peer,
                  msg_id: a.msg.msgId,
                  queued_count: r.queuedCount,
                });
                bus.publish(this.#event(a, "held"));
              });
            }
          } else {
            const r = store.history.insert({
              msgId: a.msg.msgId,
              source: peer,
              sourceDisplay: a.fromName || peer,
              destination: selfId,
              msgType: a.msg.type,
              payload: a.msg.payload,
              priority: a.msg.priority,
            }, "inbound");
            if (r === "inserted") out.push(() => bus.publish(this.#event(a, "delivered")));
            else if (r === "conflict") {
              log.warn("msg_id clash with another source; message dropped", {
                peer,
                msg_id: a.msg.msgId,
              });
              continue;
            }
          }
          const list = acks.get(a.ack) ?? [];
          list.push(a.msg.msgId);
          acks.set(a.ack, list);
        }
      });
    } catch (e) {
      // Nothing was acknowledged: the sender keeps the messages and re-sends them.
      log.error("cannot store inbound messages; they will be re-sent", { error: String(e) });
      return;
    }
    for (const f of out) f();
    for (const [ack, ids] of acks) {
      for (let i = 0; i < ids.length; i += MAX_ACK_IDS) {
        try {
          ack.send(ids.slice(i, i + MAX_ACK_IDS));
        } catch { /* link closed: the sender re-sends, history deduplicates */ }
      }
    }
  }

  #event(a: Arrived, disposition: "delivered" | "held") {
    return {
      type: "message-in" as const,
      msgId: a.msg.msgId,
      from: a.peer,
      fromName: a.fromName,
      msgType: a.msg.type,
      payload: a.msg.payload,
      timestamp: a.msg.timestamp,
      disposition,
    };
  }
}
