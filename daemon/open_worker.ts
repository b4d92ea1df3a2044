/**
 * Worker of `OpenPool`: runs `preOpenFrame` (outer signature, decryption, envelope, inner
 * signature of peer-originated frames) for batches of frames, off the event-loop thread.
 * Stateless apart from a cache of verifier KeyObjects; wipes the session keys it is sent.
 */
/// <reference lib="deno.worker" />
import { toHex } from "../lib/crypto/sodium.ts";
import { type Ed25519Verifier, nodeVerifier } from "../lib/wire/v09/frame.ts";
import { type PreOpenContext, type PreOpened, preOpenFrame } from "../lib/wire/v09/session.ts";

/** A batch from the pool. */
export interface PreOpenRequest {
  id: number;
  ctx: PreOpenContext;
  frames: Uint8Array[];
}

/** The answer: one result per frame, in order (`id` 0 with no results: the worker is ready). */
export interface PreOpenReply {
  id: number;
  results: PreOpened[];
}

const verifiers = new Map<string, Ed25519Verifier | null>();

function verifierFor(publicKey: Uint8Array): Ed25519Verifier | null {
  const id = toHex(publicKey);
  let v = verifiers.get(id);
  if (v === undefined) {
    try {
      v = nodeVerifier(publicKey);
    } catch {
      v = null; // refused key: every frame falls back to `open`, which reports it
    }
    if (verifiers.size >= 256) verifiers.delete(verifiers.keys().next().value!);
    verifiers.set(id, v);
  }
  return v;
}

self.onmessage = (ev: MessageEvent<PreOpenRequest>) => {
  const { id, ctx, frames } = ev.data;
  const results: PreOpened[] = [];
  const transfer: ArrayBuffer[] = [];
  try {
    const peer = verifierFor(ctx.peerPublicKey);
    for (const f of frames) {
      const r: PreOpened = peer ? preOpenFrame(f, ctx, peer) : { ok: false };
      results.push(r);
      if (r.ok) {
        const p = r.envelope.payload;
        if (p.byteOffset === 0 && p.byteLength === p.buffer.byteLength && p.byteLength > 0) {
          transfer.push(p.buffer as ArrayBuffer);
        }
      }
    }
  } finally {
    for (const k of ctx.keys) k.key.fill(0);
  }
  self.postMessage({ id, results } satisfies PreOpenReply, { transfer });
};
// Messages that arrive before the handler exists (while libsodium's wasm loads) would be lost:
// the pool waits for this.
self.postMessage({ id: 0, results: [] } satisfies PreOpenReply);
