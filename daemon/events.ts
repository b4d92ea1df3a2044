/**
 * The node's event bus (ARCHITECTURE.md idea 6): the daemon publishes typed events;
 * the audit writer, metrics, dashboard, SDK callbacks and control-socket streams
 * subscribe. A throwing subscriber is isolated from the others and from the publisher.
 */

/** A peer as events describe it. */
export interface PeerRef {
  nodeId: string;
  name: string;
  address: string;
}

/** Every event the node publishes. */
export type NodeEvent =
  | { type: "peer-up"; peer: PeerRef; transport: string; role: "client" | "server" }
  | { type: "peer-down"; peer: PeerRef; reason: string }
  | {
    type: "message-in";
    msgId: string;
    from: string;
    fromName: string;
    msgType: string;
    payload: Uint8Array;
    timestamp: number;
    /** "delivered", or "held" when it waits in the pending-trust queue. */
    disposition: "delivered" | "held";
  }
  | { type: "message-out"; msgId: string; to: string; msgType: string; queued: boolean }
  | { type: "delivered"; msgId: string; to: string }
  | { type: "trust-change"; nodeId: string; event: string; details: Record<string, unknown> }
  | { type: "security"; event: string; details: Record<string, unknown> }
  | { type: "handshake-failed"; address: string; code: string; reason: string; role: string };

/** The event names. */
export type NodeEventType = NodeEvent["type"];

/** A subscriber. */
export type Subscriber = (e: NodeEvent) => void;

/** A synchronous publish/subscribe bus. */
export class EventBus {
  #subs = new Set<Subscriber>();
  /** Called with a subscriber's exception (default: ignored). */
  onError: (e: unknown) => void = () => {};

  /** Subscribe; returns the unsubscribe function. */
  subscribe(fn: Subscriber): () => void {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  }

  /** Publish to every subscriber, in subscription order. */
  publish(e: NodeEvent): void {
    for (const fn of this.#subs) {
      try {
        fn(e);
      } catch (err) {
        this.onError(err);
      }
    }
  }

  /** Events as an async iterable (for streams); ends when `signal` aborts. Buffers at most `max`. */
  async *stream(
    filter: (e: NodeEvent) => boolean = () => true,
    signal?: AbortSignal,
    max = 10_000,
  ): AsyncGenerator<NodeEvent> {
    const queue: NodeEvent[] = [];
    let wake: (() => void) | null = null;
    const unsub = this.subscribe((e) => {
      if (!filter(e)) return;
      if (queue.length < max) queue.push(e);
      wake?.();
    });
    const onAbort = () => wake?.();
    signal?.addEventListener("abort", onAbort);
    try {
      while (!signal?.aborted) {
        if (queue.length === 0) {
          await new Promise<void>((r) => wake = r);
          wake = null;
          continue;
        }
        yield queue.shift()!;
      }
    } finally {
      unsub();
      signal?.removeEventListener("abort", onAbort);
    }
  }
}
