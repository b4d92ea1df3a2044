/**
 * Acceptance rules for a received signed REVOCATION (PROTOCOL-0.9 §7.3 and ours,
 * §18.7), as a pure function. The wire format and signature stay the reference's
 * (Ed25519, no context, over UTF-8 of target ‖ revoker ‖ decimal(int(timestamp)));
 * on top we require: a trusted sender that is the revoker, |now − timestamp| ≤ 300 s,
 * no duplicate (target, revoker, timestamp), never our own node id, nothing older
 * than an operator's clear_revocation of the target; revocations of operator-,
 * invite- or allow-list-pinned peers are advisory (operator confirmation needed).
 */
import { fromB64, utf8, verifyDetached } from "../crypto/sodium.ts";
import { isNodeId } from "../identity/node_id.ts";
import type { RevocationInput } from "./state.ts";
import type { TrustView } from "./state.ts";

/** Largest accepted |now − timestamp| in seconds. */
export const REVOCATION_MAX_SKEW_SECONDS = 300;

/** Pin provenances whose revocation needs operator confirmation. */
export const OPERATOR_PINNED_VIA: readonly string[] = ["operator", "invite", "allow_list"];

/** Why a revocation was not accepted. */
export type RevocationRefusal =
  | "malformed"
  | "revoker-not-sender"
  | "self-target"
  | "sender-not-trusted"
  | "stale"
  | "future"
  | "bad-signature"
  | "duplicate"
  | "cleared-later"
  | "already-revoked";

/** The verdict. */
export type RevocationVerdict =
  | {
    accept: true;
    /** Record with `recordAdvisoryRevocation` instead of `recordRevocation`. */
    advisory: boolean;
    target: string;
    /** Remember this in the caller's dedup set. */
    dedupKey: string;
    revocation: RevocationInput;
  }
  | { accept: false; reason: RevocationRefusal; detail: string };

/** Context of the check. */
export interface RevocationContext {
  /** The authenticated node id of the peer that sent the frame. */
  senderNodeId: string;
  /** That peer's pinned Ed25519 public key (32 bytes). */
  senderPublicKey: Uint8Array;
  ownNodeId: string;
  /** Seconds (float). */
  now: number;
  view: TrustView;
  /** Dedup keys of revocations already seen (kept by the caller). */
  seen?: ReadonlySet<string>;
}

/** Python `str(int(timestamp))` for a finite number. */
export function revocationTimestampText(timestamp: number): string {
  return BigInt(Math.trunc(timestamp)).toString();
}

/** The signed bytes: UTF-8 of target ‖ revoker ‖ decimal(int(timestamp)). */
export function revocationSignedBytes(
  target: string,
  revoker: string,
  timestamp: number,
): Uint8Array {
  return utf8(target + revoker + revocationTimestampText(timestamp));
}

/** The dedup key of (target, revoker, timestamp). */
export function revocationDedupKey(target: string, revoker: string, timestamp: number): string {
  return `${target}|${revoker}|${timestamp}`;
}

function no(reason: RevocationRefusal, detail: string): RevocationVerdict {
  return { accept: false, reason, detail };
}

/** Decide whether to apply a REVOCATION payload (the parsed JSON object). */
export function acceptRevocation(
  payload: Record<string, unknown>,
  ctx: RevocationContext,
): RevocationVerdict {
  const { target_node_id: target, revoker_node_id: revoker, timestamp, signature } = payload;
  const reason = payload.reason ?? "";
  if (
    typeof target !== "string" || !isNodeId(target) || typeof revoker !== "string" ||
    !revoker || typeof timestamp !== "number" || !Number.isFinite(timestamp) || timestamp === 0 ||
    typeof signature !== "string" || !signature || typeof reason !== "string"
  ) {
    return no("malformed", "target_node_id, revoker_node_id, timestamp and signature are required");
  }
  if (revoker !== ctx.senderNodeId) {
    return no("revoker-not-sender", `signed by ${revoker} but sent by ${ctx.senderNodeId}`);
  }
  if (target === ctx.ownNodeId) return no("self-target", "a peer tried to revoke this node");
  const senderState = ctx.view.trustState(ctx.senderNodeId);
  if (senderState !== "trusted") {
    return no("sender-not-trusted", `sender ${ctx.senderNodeId} is ${senderState}`);
  }
  const age = ctx.now - timestamp;
  if (age > REVOCATION_MAX_SKEW_SECONDS) return no("stale", `issued ${age.toFixed(1)}s ago`);
  if (-age > REVOCATION_MAX_SKEW_SECONDS) {
    return no("future", `issued ${(-age).toFixed(1)}s in the future`);
  }
  let sig: Uint8Array;
  try {
    sig = fromB64(signature);
  } catch {
    return no("bad-signature", "signature is not base64");
  }
  const msg = revocationSignedBytes(target, revoker, timestamp);
  if (sig.length !== 64 || !verifyDetached(sig, msg, ctx.senderPublicKey)) {
    return no("bad-signature", "signature does not verify under the sender's key");
  }
  const dedupKey = revocationDedupKey(target, revoker, timestamp);
  if (ctx.seen?.has(dedupKey)) return no("duplicate", "this revocation was already processed");
  const clearedAt = ctx.view.revocationClearedAt(target);
  if (clearedAt !== undefined && timestamp <= clearedAt) {
    return no("cleared-later", "an operator cleared this target's revocation after it was issued");
  }
  if (ctx.view.isRevoked(target)) return no("already-revoked", `${target} is already revoked`);
  const via = ctx.view.rawPeer(target)?.pinned_via;
  const advisory = typeof via === "string" && OPERATOR_PINNED_VIA.includes(via);
  return {
    accept: true,
    advisory,
    target,
    dedupKey,
    revocation: { revoker, timestamp, reason, timestampKind: "float" },
  };
}
