/**
 * Mesh-wide spreading of signed REVOCATIONs (PROTOCOL-0.9 §7.3, §10.3, §18.7), sans-I/O.
 *
 * The reference applies a REVOCATION only from the revoker itself and never forwards it. Ours
 * keeps the wire format (the payload is forwarded byte for byte in a fresh control frame) and
 * lets it travel: a node applies a revocation when `acceptRevocation` (lib/trust/revocation.ts)
 * accepts it with the *revoker* as the authenticated signer — its key pinned here, its state
 * `trusted`, the signature valid, `|now − timestamp| ≤ 300 s`, not seen before, not older than
 * an operator's clear — whichever neighbour carried it. It forwards what it accepted (and valid
 * revocations of already revoked targets) once to every neighbour except the one it came from,
 * the target and the revoker; dedup on `(target, revoker, timestamp)` stops the flood.
 * A reference node receiving a forwarded copy ignores it (the revoker is not its sender).
 *
 * Optionally (`forwardUnverifiable`) a node that does not know the revoker still passes on a
 * well-formed, fresh, unseen revocation carried by a trusted neighbour, without applying it, so
 * it can reach nodes further away that do pin the revoker.
 */
import type { Clock } from "../clock.ts";
import { fromB64 } from "../crypto/sodium.ts";
import { isNodeId } from "../identity/node_id.ts";
import { PyFloat } from "../json/py_float.ts";
import {
  acceptRevocation,
  REVOCATION_MAX_SKEW_SECONDS,
  revocationDedupKey,
  type RevocationRefusal,
} from "../trust/revocation.ts";
import type { RevocationInput, TrustView } from "../trust/state.ts";
import { parseControlPayload } from "../wire/v09/control.ts";
import type { OutboundMessage } from "../wire/session.ts";

/** Dedup entries kept (oldest forgotten first). */
export const REVOCATION_SEEN_MAX = 4096;

/** Why a received revocation is neither applied nor forwarded. */
export type RevocationFloodRefusal =
  | RevocationRefusal
  | "unknown-revoker"
  | "carrier-not-trusted";

/** What to do with a received REVOCATION. */
export interface RevocationFloodDecision {
  /** Record it in the trust store (`recordAdvisoryRevocation` when `advisory`). */
  apply: boolean;
  advisory: boolean;
  /** Re-broadcast the payload (`forwardMessage`) to `forwardTargets(…)`. */
  forward: boolean;
  target?: string;
  revoker?: string;
  timestamp?: number;
  /** What to record (when `apply`). */
  revocation?: RevocationInput;
  /** Why it is not applied (a forwarded, already-revoked or unverifiable one has a reason too). */
  reason?: RevocationFloodRefusal | "unverifiable";
  detail?: string;
}

/** Options of the flood logic. */
export interface RevocationFloodOptions {
  selfId: string;
  clock: Clock;
  /** The trust store's view (read at every decision). */
  view: TrustView | (() => TrustView);
  /** The pinned Ed25519 key of a node; default: the view's pin (`pubkey`, base64). */
  keyLookup?: (nodeId: string) => Uint8Array | null;
  /** Pass on revocations whose revoker this node cannot verify (default false). */
  forwardUnverifiable?: boolean;
  /** Dedup entries kept (default 4096). */
  maxSeen?: number;
}

/** Decides, per received REVOCATION, whether to apply it and whether to spread it. */
export class RevocationFlood {
  readonly selfId: string;
  readonly #clock: Clock;
  readonly #view: () => TrustView;
  readonly #keyLookup: (nodeId: string) => Uint8Array | null;
  readonly #forwardUnverifiable: boolean;
  readonly #maxSeen: number;
  /** dedup key → revocation timestamp (insertion order = oldest first). */
  readonly #seenAt = new Map<string, number>();
  readonly #seen = new Set<string>();

  constructor(opts: RevocationFloodOptions) {
    this.selfId = opts.selfId;
    this.#clock = opts.clock;
    const v = opts.view;
    this.#view = typeof v === "function" ? v : () => v;
    this.#keyLookup = opts.keyLookup ?? ((id) => pinnedKey(this.#view(), id));
    this.#forwardUnverifiable = opts.forwardUnverifiable ?? false;
    this.#maxSeen = opts.maxSeen ?? REVOCATION_SEEN_MAX;
  }

  /** Handle a REVOCATION payload carried by the direct neighbour `fromPeer`. */
  onRevocation(fromPeer: string, payload: Uint8Array): RevocationFloodDecision {
    const now = this.#clock.now();
    this.#prune(now);
    let o: Record<string, unknown>;
    try {
      o = { ...parseControlPayload(payload) };
    } catch (e) {
      return refuse("malformed", (e as Error).message);
    }
    if (o.timestamp instanceof PyFloat) o.timestamp = o.timestamp.value;
    const target = typeof o.target_node_id === "string" ? o.target_node_id : undefined;
    const revoker = typeof o.revoker_node_id === "string" ? o.revoker_node_id : undefined;
    const timestamp = typeof o.timestamp === "number" ? o.timestamp : undefined;
    const base = { target, revoker, timestamp };
    if (target === undefined || revoker === undefined || revoker === "") {
      return { ...refuse("malformed", "target_node_id and revoker_node_id are required"), ...base };
    }
    const view = this.#view();
    const key = this.#keyLookup(revoker);
    if (key === null) return { ...this.#unverifiable(o, fromPeer, view, now), ...base };
    const verdict = acceptRevocation(o, {
      senderNodeId: revoker,
      senderPublicKey: key,
      ownNodeId: this.selfId,
      now,
      view,
      seen: this.#seen,
    });
    if (verdict.accept) {
      this.#remember(verdict.dedupKey, timestamp!);
      return {
        apply: true,
        advisory: verdict.advisory,
        forward: true,
        revocation: verdict.revocation,
        ...base,
      };
    }
    if (verdict.reason === "already-revoked") {
      // Valid, fresh and new to us: nothing to record here, but the rest of the mesh may not know.
      this.#remember(revocationDedupKey(target, revoker, timestamp!), timestamp!);
      return { apply: false, advisory: false, forward: true, reason: verdict.reason, ...base };
    }
    return { ...refuse(verdict.reason, verdict.detail), ...base };
  }

  #unverifiable(
    o: Record<string, unknown>,
    fromPeer: string,
    view: TrustView,
    now: number,
  ): RevocationFloodDecision {
    const { target_node_id: target, revoker_node_id: revoker, timestamp, signature } = o;
    if (!this.#forwardUnverifiable) {
      return refuse("unknown-revoker", `no pinned key for revoker ${revoker}`);
    }
    if (
      typeof target !== "string" || !isNodeId(target) || typeof revoker !== "string" ||
      typeof timestamp !== "number" || !Number.isFinite(timestamp) || timestamp === 0 ||
      typeof signature !== "string" || !signature
    ) {
      return refuse(
        "malformed",
        "target_node_id, revoker_node_id, timestamp and signature are required",
      );
    }
    if (target === this.selfId) return refuse("self-target", "a revocation of this node");
    if (Math.abs(now - timestamp) > REVOCATION_MAX_SKEW_SECONDS) {
      return refuse(now > timestamp ? "stale" : "future", "outside the 300 s window");
    }
    if (view.trustState(fromPeer) !== "trusted") {
      return refuse("carrier-not-trusted", `carrier ${fromPeer} is not trusted`);
    }
    const key = revocationDedupKey(target, revoker, timestamp);
    if (this.#seen.has(key)) return refuse("duplicate", "this revocation was already processed");
    this.#remember(key, timestamp);
    return { apply: false, advisory: false, forward: true, reason: "unverifiable" };
  }

  /** Record a revocation this node issued (so its echo is not processed again). */
  noteOriginated(target: string, revoker: string, timestamp: number): void {
    this.#remember(revocationDedupKey(target, revoker, Math.trunc(timestamp)), timestamp);
  }

  /** Whether `(target, revoker, timestamp)` was already handled. */
  hasSeen(target: string, revoker: string, timestamp: number): boolean {
    return this.#seen.has(revocationDedupKey(target, revoker, timestamp));
  }

  /** Neighbours to forward to: all but the carrier, the target, the revoker and this node. */
  forwardTargets(
    neighbors: Iterable<string>,
    fromPeer: string,
    target?: string,
    revoker?: string,
  ): string[] {
    return [...neighbors].filter((n) =>
      n !== fromPeer && n !== target && n !== revoker && n !== this.selfId
    );
  }

  #remember(key: string, timestamp: number): void {
    this.#seenAt.delete(key);
    this.#seenAt.set(key, timestamp);
    this.#seen.add(key);
    while (this.#seenAt.size > this.#maxSeen) {
      const oldest = this.#seenAt.keys().next().value!;
      this.#seenAt.delete(oldest);
      this.#seen.delete(oldest);
    }
  }

  #prune(now: number): void {
    // Past the freshness window a revocation is refused as stale anyway.
    for (const [key, ts] of this.#seenAt) {
      if (now - ts > REVOCATION_MAX_SKEW_SECONDS + 1) {
        this.#seenAt.delete(key);
        this.#seen.delete(key);
      }
    }
  }
}

/** The frame a forwarded revocation travels in: the payload verbatim, like a control frame. */
export function forwardRevocationMessage(payload: Uint8Array): OutboundMessage {
  return { type: "REVOCATION", payload, destination: "*", ttl: 3, priority: "NORMAL" };
}

function refuse(reason: RevocationFloodRefusal, detail?: string): RevocationFloodDecision {
  const d: RevocationFloodDecision = { apply: false, advisory: false, forward: false, reason };
  if (detail !== undefined) d.detail = detail;
  return d;
}

function pinnedKey(view: TrustView, nodeId: string): Uint8Array | null {
  const pub = view.getPeer(nodeId)?.pubkey;
  if (typeof pub !== "string") return null;
  try {
    const k = fromB64(pub);
    return k.length === 32 ? k : null;
  } catch {
    return null;
  }
}
