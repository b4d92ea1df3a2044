/**
 * Trust policies and the handshake admission decision (PROTOCOL-0.9 §5.6, §10,
 * §18.2, §18.12), as a pure function over the trust data plus a small helper
 * that applies it under the store lock.
 *
 * Modes: `tofu` (pin on first contact: trusted, or pending with
 * requireMessagePromotion), `allow_list` (only listed node ids/keys; new ones are
 * pinned trusted via "allow_list"), `allow_all` (accept anything not revoked;
 * `warning` is set so the caller warns loudly). In every mode: a revoked node is
 * refused (HS_REVOKED); a pinned node whose stored key decodes to other bytes is
 * refused (HS_TOFU_MISMATCH); keys are compared as decoded bytes and pinned as
 * canonical b64. A name owned by another node is refused as HS_TOFU_MISMATCH with
 * both fingerprints (allow_all instead accepts without binding the name).
 *
 * Blocked peers (ours, documented): accepted at the handshake — they are
 * authenticated and refusing them would only make them redial in a loop — but
 * the decision says `appFrames: "drop"`: the daemon MUST drop every application
 * frame (MSG/REQ/RESP/CONV) from them whatever the gate setting, and must not
 * learn routes from them. Revocation is the way to refuse a peer outright.
 */
import { constantTimeEqual } from "../crypto/sodium.ts";
import { ExitCode, IronMeshError } from "../errors.ts";
import { nodeIdOf } from "../identity/node_id.ts";
import { type AllowList, allowListMatch } from "./allow_list.ts";
import { nameStatus } from "./name_binding.ts";
import {
  canonicalKeyB64,
  decodePresentedKey,
  decodeStoredKey,
  recordState,
  type TrustChange,
  type TrustEvent,
  type TrustState,
} from "./records.ts";
import type { TrustData, TrustView } from "./state.ts";
import type { TrustStore } from "./store.ts";

/** The three admission policies. */
export type TrustPolicyMode = "tofu" | "allow_list" | "allow_all";

/** Every policy mode. */
export const TRUST_POLICY_MODES: readonly TrustPolicyMode[] = ["tofu", "allow_list", "allow_all"];

/** Admission configuration. */
export interface TrustPolicy {
  mode: TrustPolicyMode;
  /** Pin new TOFU/allow_all peers as `pending` (the reference's --require-message-promotion). */
  requireMessagePromotion?: boolean;
  /** Required in `allow_list` mode. */
  allowList?: AllowList;
}

/** What the handshake learned about the peer (node id recomputed from identity_public). */
export interface HandshakePeer {
  nodeId: string;
  name?: string;
  identityPublicB64: string;
  address?: string;
  /** A valid invite token of ours was presented (server side, already checked). */
  invite?: boolean;
}

/** Refusal codes (§17 HS_* family). */
export type RefusalCode = "HS_REVOKED" | "HS_TOFU_MISMATCH" | "HS_NOT_ALLOWED" | "HS_BAD_HELLO";

/** What a TOFU conflict was about, with both fingerprints (fingerprint = node id, §3.1). */
export interface TrustConflict {
  kind: "key" | "name";
  name?: string;
  pinnedNodeId: string;
  pinnedFingerprint: string;
  presentedFingerprint: string;
}

/** What happens to the peer's application frames after admission. */
export type AppFrameRule = "deliver" | "queue" | "drop";

/** An admitted peer. */
export interface AcceptDecision {
  outcome: "accept";
  kind: "new-pin" | "known";
  nodeId: string;
  /** The presented key, canonical b64. */
  pubkeyB64: string;
  /** The peer's state after admission. */
  trustState: TrustState;
  appFrames: AppFrameRule;
  /** For `new-pin`: what to pin (canonical b64 key). */
  pin?: { pubkeyB64: string; state: TrustState; pinnedVia?: string };
  /** A name to bind to this node (first sight of the name). */
  bindName?: string;
  /** allow_all only: the presented name belongs to another node (not bound, never resolved). */
  nameConflict?: TrustConflict;
  /** allow_all: the caller must log this loudly. */
  warning?: string;
}

/** A refused peer. */
export interface RefuseDecision {
  outcome: "refuse";
  code: RefusalCode;
  nodeId: string;
  reason: string;
  hint: string;
  conflict?: TrustConflict;
  /** Audit events for the refusal (TOFU_MISMATCH). */
  events: TrustEvent[];
}

/** The admission decision. */
export type HandshakeDecision = AcceptDecision | RefuseDecision;

/** The rule for application frames from a peer in `state` (§10.2 + §18.12). */
export function appFrameRule(state: TrustState, requireMessagePromotion = false): AppFrameRule {
  if (state === "blocked") return "drop";
  if (state === "trusted") return "deliver";
  // Ours: a changed capability set holds the peer's messages until an operator decides,
  // whether or not the pending-trust gate is on (the reference only holds them with it).
  if (state === "pending-cap-change") return "queue";
  return requireMessagePromotion ? "queue" : "deliver";
}

function refuse(
  code: RefusalCode,
  nodeId: string,
  reason: string,
  hint: string,
  extra: { conflict?: TrustConflict; events?: TrustEvent[] } = {},
): RefuseDecision {
  return {
    outcome: "refuse",
    code,
    nodeId,
    reason,
    hint,
    events: extra.events ?? [],
    ...(extra.conflict ? { conflict: extra.conflict } : {}),
  };
}

/** Decide whether to admit `peer` (pure: reads `view`, changes nothing). */
export function decideHandshake(
  view: TrustView,
  policy: TrustPolicy,
  peer: HandshakePeer,
): HandshakeDecision {
  const { nodeId } = peer;
  const key = decodePresentedKey(peer.identityPublicB64);
  if (!key) {
    return refuse(
      "HS_BAD_HELLO",
      nodeId,
      "identity_public is not a 32-byte padded base64 key",
      "the peer sent a malformed HELLO; check its version",
    );
  }
  if (nodeIdOf(key) !== nodeId) {
    return refuse(
      "HS_BAD_HELLO",
      nodeId,
      `node id ${nodeId} does not match identity_public (${nodeIdOf(key)})`,
      "the peer's `from` must be the node id of its key",
    );
  }
  const rev = view.revocation(nodeId);
  if (rev) {
    return refuse(
      "HS_REVOKED",
      nodeId,
      `peer ${nodeId} is revoked (by ${rev.revoker}${rev.reason ? `: ${rev.reason}` : ""})`,
      `if this is wrong, run \`ironmesh trust clear-revocation ${nodeId}\``,
    );
  }
  const allowEntry = policy.mode === "allow_list"
    ? allowListMatch(policy.allowList ?? { entries: [] }, nodeId, key)
    : undefined;
  if (policy.mode === "allow_list" && !allowEntry && !peer.invite) {
    return refuse(
      "HS_NOT_ALLOWED",
      nodeId,
      `peer ${nodeId}${peer.name ? ` (${peer.name})` : ""} is not on the allow list`,
      `add its node id or public key (${canonicalKeyB64(key)}) to the allow list`,
    );
  }

  const rec = view.rawPeer(nodeId);
  if (rec) {
    const stored = decodeStoredKey(rec.pubkey);
    if (!stored || !constantTimeEqual(stored, key)) {
      const pinnedFp = stored && stored.length === 32 ? nodeIdOf(stored) : "(undecodable pin)";
      return refuse(
        "HS_TOFU_MISMATCH",
        nodeId,
        `identity key of ${nodeId} differs from the pinned key (${pinnedFp} vs ${nodeId})`,
        `possible impersonation; if the change is legitimate run \`ironmesh trust forget ${nodeId}\``,
        {
          conflict: {
            kind: "key",
            pinnedNodeId: nodeId,
            pinnedFingerprint: pinnedFp,
            presentedFingerprint: nodeId,
          },
          events: [{ event: "TOFU_MISMATCH", details: { peer_id: nodeId } }],
        },
      );
    }
  }

  const ns = nameStatus(view, peer.name, nodeId);
  let nameConflict: TrustConflict | undefined;
  if (ns.status === "conflict") {
    nameConflict = {
      kind: "name",
      name: ns.name,
      pinnedNodeId: ns.owner,
      pinnedFingerprint: ns.owner,
      presentedFingerprint: nodeId,
    };
    if (policy.mode !== "allow_all") {
      return refuse(
        "HS_TOFU_MISMATCH",
        nodeId,
        `name ${JSON.stringify(ns.name)} is pinned to ${ns.owner}, but ${nodeId} presented it`,
        `if ${JSON.stringify(ns.name)} really moved to a new key, run \`ironmesh trust forget ` +
          `${ns.owner}\` or \`ironmesh trust pin ${nodeId} <key> --name ${ns.name}\`; ` +
          "otherwise treat it as an impersonation attempt",
        {
          conflict: nameConflict,
          events: [{
            event: "TOFU_MISMATCH",
            details: {
              peer_id: nodeId,
              reason: "name-conflict",
              name: ns.name,
              pinned_node_id: ns.owner,
              presented_node_id: nodeId,
            },
          }],
        },
      );
    }
  }
  const bindName = ns.status === "unbound" ? ns.name : undefined;
  const warning = policy.mode === "allow_all"
    ? `allow_all trust policy: admitting ${nodeId}${
      peer.name ? ` (${peer.name})` : ""
    } without verification`
    : undefined;
  const gate = policy.requireMessagePromotion ?? false;
  const common = {
    outcome: "accept" as const,
    nodeId,
    pubkeyB64: canonicalKeyB64(key),
    ...(bindName !== undefined ? { bindName } : {}),
    ...(nameConflict ? { nameConflict } : {}),
    ...(warning ? { warning } : {}),
  };

  if (rec) {
    const state = recordState(rec.trust_state);
    return { ...common, kind: "known", trustState: state, appFrames: appFrameRule(state, gate) };
  }
  let state: TrustState = gate ? "pending" : "trusted";
  let pinnedVia: string | undefined;
  if (peer.invite) {
    state = "pending";
    pinnedVia = "invite";
  } else if (allowEntry) {
    state = "trusted";
    pinnedVia = "allow_list";
  }
  return {
    ...common,
    kind: "new-pin",
    trustState: state,
    appFrames: appFrameRule(state, gate),
    pin: { pubkeyB64: canonicalKeyB64(key), state, ...(pinnedVia ? { pinnedVia } : {}) },
  };
}

/**
 * Apply a decision to the data: a new pin (TOFU_NEW_PEER {peer_id, trust_state,
 * …, name}), or a `last_seen` touch (+ name binding) for a known peer; a refusal
 * changes nothing and returns its TOFU_MISMATCH event.
 */
export function applyHandshakeDecision(
  data: TrustData,
  decision: HandshakeDecision,
  now: number,
): TrustChange {
  if (decision.outcome === "refuse") return { changed: false, events: [...decision.events] };
  if (decision.kind === "new-pin" && decision.pin) {
    const { pubkeyB64, state, pinnedVia } = decision.pin;
    return data.pin(decision.nodeId, pubkeyB64, now, {
      state,
      ...(pinnedVia ? { pinnedVia } : {}),
      ...(decision.bindName !== undefined ? { name: decision.bindName } : {}),
    });
  }
  const key = decodePresentedKey(decision.pubkeyB64) ?? undefined;
  const touched = data.touch(decision.nodeId, now, key);
  const events = [...touched.events];
  if (decision.bindName !== undefined) {
    events.push(...data.bindName(decision.bindName, decision.nodeId).events);
  }
  return { changed: true, events };
}

/**
 * Decide and apply atomically under the store lock (reloading first). Throws
 * TRUST_STORE_READ_ONLY when the store is latched: admission fails closed rather
 * than trusting everyone on an empty store.
 */
export function admitPeer(
  store: TrustStore,
  policy: TrustPolicy,
  peer: HandshakePeer,
): Promise<TrustChange & { decision: HandshakeDecision }> {
  return store.mutate((data, now) => {
    const decision = decideHandshake(data, policy, peer);
    return { ...applyHandshakeDecision(data, decision, now), decision };
  });
}

/** The IronMeshError for a refusal (code, reason and hint as decided). */
export function refusalError(d: RefuseDecision): IronMeshError {
  return new IronMeshError(d.code, d.reason, d.hint, ExitCode.FAILURE);
}
