/**
 * A pool of workers that do the expensive, stateless half of opening frames — the outer
 * Ed25519 verify, the SecretBox, the envelope JSON and the inner signature verify
 * (`preOpenFrame`) — so a node uses more than one core for inbound traffic. The stateful half
 * (replay guard, rekey grace, inner-source policy, dedup, delivery order) stays on the event
 * loop: `V09Session.openPreOpened`, called in arrival order (see PeerLink). Any failure in a
 * worker just sends the frame through the ordinary `open`.
 *
 * Opt-in (`new PeerLink(..., { openPool })`): it pays off when a node has idle cores (many
 * peers, or a machine with more cores than its senders use); each worker loads its own
 * libsodium (~20 MB), and worker round trips add ~30 µs of CPU per 1 KiB frame. The worker is
 * a separate module file, so the single-file bundle (`deno task bundle`) cannot start it.
 */
import type { PreOpenContext, PreOpened } from "../lib/wire/v09/session.ts";
import type { PreOpenReply, PreOpenRequest } from "./open_worker.ts";

/** Options of an open pool. */
export interface OpenPoolOptions {
  /** Number of workers (default: cores − 1, at least 1, at most 4). */
  workers?: number;
}

interface Slot {
  worker: Worker;
  pending: Map<number, { resolve: (r: PreOpened[]) => void; reject: (e: Error) => void }>;
  /** Requests held until the worker has said it is ready. */
  early: PreOpenRequest[] | null;
  broken: boolean;
}

/** Workers pre-opening frames; share one per node. */
export class OpenPool {
  readonly size: number;
  #slots: Slot[] = [];
  #next = 0;
  #id = 0;
  #closed = false;

  constructor(opts: OpenPoolOptions = {}) {
    this.size = opts.workers ??
      Math.max(1, Math.min(4, (navigator.hardwareConcurrency || 2) - 1));
    for (let i = 0; i < this.size; i++) {
      const worker = new Worker(new URL("./open_worker.ts", import.meta.url).href, {
        type: "module",
        name: `ironmesh-open-${i}`,
      });
      const slot: Slot = { worker, pending: new Map(), early: [], broken: false };
      worker.onmessage = (ev: MessageEvent<PreOpenReply>) => {
        if (ev.data.id === 0) { // ready
          for (const req of slot.early ?? []) this.#post(slot, req);
          slot.early = null;
          return;
        }
        const p = slot.pending.get(ev.data.id);
        slot.pending.delete(ev.data.id);
        p?.resolve(ev.data.results);
      };
      worker.onerror = (ev) => {
        ev.preventDefault();
        slot.broken = true;
        for (const p of slot.pending.values()) {
          p.reject(new Error(`open worker failed: ${ev.message}`));
        }
        slot.pending.clear();
      };
      this.#slots.push(slot);
    }
  }

  /** Frames dispatched but not answered yet, over all workers. */
  get inFlight(): number {
    let n = 0;
    for (const s of this.#slots) n += s.pending.size;
    return n;
  }

  /**
   * Pre-open `frames` (copied to the worker) with `ctx`, whose key copies are wiped here once
   * sent. Resolves with one result per frame; rejects when the pool is closed or a worker died.
   */
  preOpen(ctx: PreOpenContext, frames: Uint8Array[]): Promise<PreOpened[]> {
    try {
      if (this.#closed) return Promise.reject(new Error("open pool is closed"));
      const slot = this.#pick();
      if (!slot) return Promise.reject(new Error("no working open worker"));
      const id = ++this.#id;
      // Structured cloning copies now, so the key copies can be wiped when this returns.
      const req: PreOpenRequest = { id, ctx: structuredClone(ctx), frames };
      return new Promise<PreOpened[]>((resolve, reject) => {
        slot.pending.set(id, { resolve, reject });
        if (slot.early) slot.early.push(req);
        else this.#post(slot, req);
      });
    } finally {
      for (const k of ctx.keys) k.key.fill(0);
    }
  }

  #post(slot: Slot, req: PreOpenRequest): void {
    try {
      slot.worker.postMessage(req);
    } catch (e) {
      slot.pending.get(req.id)?.reject(e as Error);
      slot.pending.delete(req.id);
    } finally {
      for (const k of req.ctx.keys) k.key.fill(0);
    }
  }

  /** The least busy working worker (round robin among equals). */
  #pick(): Slot | null {
    let best: Slot | null = null;
    for (let i = 0; i < this.#slots.length; i++) {
      const s = this.#slots[(this.#next + i) % this.#slots.length];
      if (!s.broken && (best === null || s.pending.size < best.pending.size)) best = s;
    }
    this.#next = (this.#next + 1) % this.#slots.length;
    return best;
  }

  /** Stop the workers; pending batches reject (their frames then go through `open`). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#slots) {
      s.worker.terminate();
      for (const p of s.pending.values()) p.reject(new Error("open pool is closed"));
      s.pending.clear();
    }
  }
}
