/**
 * The handshake's TOFU hook backed by the trust store. The hook must answer
 * synchronously, so it decides on the store's current in-memory view; once the
 * handshake is established, `admit` re-decides under the store lock and applies the
 * pin/touch/name binding (a concurrent change that now refuses the peer wins).
 */
import { IronMeshError } from "../lib/errors.ts";
import {
  type AcceptDecision,
  admitPeer,
  type AppFrameRule,
  appFrameRule,
  decideHandshake,
  type HandshakePeer,
  refusalError,
  type TrustPolicy,
} from "../lib/trust/policy.ts";
import type { TrustEvent } from "../lib/trust/records.ts";
import type { TrustStore } from "../lib/trust/store.ts";
import type { PeerInfo, TofuHook } from "../lib/wire/v09/handshake_types.ts";

/** Where trust events go (the audit log and the event bus). */
export type TrustEventSink = (events: TrustEvent[]) => void;

function handshakePeer(
  p: { nodeId: string; name: string; identityPublicB64: string },
  address: string,
): HandshakePeer {
  return { nodeId: p.nodeId, name: p.name, identityPublicB64: p.identityPublicB64, address };
}

/** Trust decisions for one node. */
export class TrustGate {
  constructor(
    readonly store: TrustStore,
    readonly policy: TrustPolicy,
    readonly sink: TrustEventSink,
  ) {}

  /** The synchronous TOFU hook for the handshake state machines. */
  readonly hook: TofuHook = (p) => {
    if (this.store.readOnly) {
      return {
        ok: false,
        code: "HS_TOFU_MISMATCH",
        reason: `trust store is read-only (${this.store.readOnlyReason}); refusing every peer`,
      };
    }
    const d = decideHandshake(this.store.data, this.policy, handshakePeer(p, p.address));
    if (d.outcome === "accept") return { ok: true };
    this.sink(d.events);
    return { ok: false, code: d.code, reason: d.reason };
  };

  /** Apply admission after the handshake (pin new peers, touch known ones); throws on refusal. */
  async admit(peer: PeerInfo, address: string): Promise<AcceptDecision> {
    const r = await admitPeer(this.store, this.policy, handshakePeer(peer, address));
    this.sink(r.events);
    if (r.decision.outcome === "refuse") throw refusalError(r.decision);
    return r.decision;
  }

  /** What to do with an application frame from `nodeId` right now. */
  frameRule(nodeId: string): AppFrameRule {
    return appFrameRule(
      this.store.trustState(nodeId),
      this.policy.requireMessagePromotion ?? false,
    );
  }

  /** True when the store refuses writes (operators must know: every peer is refused). */
  get readOnlyError(): IronMeshError | null {
    return this.store.readOnly ? this.store.readOnlyError() : null;
  }
}
