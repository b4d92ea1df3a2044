/**
 * End-to-end sealing of mesh messages (PROTOCOL-0.9 §8.2, §8.4, §18.8; `mesh_crypto.py`).
 *
 * - `e2e_payload` = libsodium `crypto_box_seal(plaintext, recipient X25519)`: `epk(32) ‖ tag(16)
 *   ‖ ct`, nonce = BLAKE2b-24(`epk ‖ recipient_pk`). The recipient key is the peer's advertised
 *   master-seed X25519 key when its binding signature verified, else the Ed25519 → X25519
 *   conversion of its identity key.
 * - Strict confidentiality is our default: `payload` is empty, the body travels only sealed,
 *   and the originator's v2 inner signature covers the plaintext (`e2ePlaintext`, signed by
 *   `V09Session.seal`). The reference's form (plaintext `payload` beside the sealed copy) is
 *   kept for destinations older than 0.9.
 * - Receiving: `makeUnsealer` plugs into `V09SessionOptions.unsealE2e`; or leave that unset and
 *   call `openE2eInbound` on `e2ePending` messages, which unseals, checks a plaintext copy
 *   against the sealed one, runs the reference's inner-source policy and returns the audit event
 *   (`E2E_DECRYPT_FAILURE` / `INNER_SOURCE_SIG_DROP`) with the source and msg_id on failure.
 */
import { type Rng, systemRng } from "../clock.ts";
import {
  concatBytes,
  constantTimeEqual,
  ed25519PkToCurve25519,
  sealedBoxOpen,
  sealedBoxSeal,
  sodium,
  x25519Base,
} from "../crypto/sodium.ts";
import { InvalidKeyError } from "../errors.ts";
import { verifyX25519Binding } from "../identity/identity.ts";
import type { DedupCache } from "../wire/dedup.ts";
import { uuid4FromBytes } from "../wire/v09/control.ts";
import { type Ed25519Verifier, nodeVerifier } from "../wire/v09/frame.ts";
import { evaluateInnerSource, type InnerSourceDropReason } from "../wire/v09/inner_source.ts";
import { versionAtLeast } from "../wire/v09/version.ts";
import type { InboundMessage, OutboundMessage, Priority } from "../wire/session.ts";
import { type MeshEvent, meshEvent } from "./events.ts";
import { DEFAULT_MAX_HOPS } from "./forwarding.ts";

/** Bytes a SealedBox adds: ephemeral public key (32) + Poly1305 tag (16). */
export const E2E_OVERHEAD = 48;
/** Destinations at or above this version get strict confidentiality by default (§18.8). */
export const STRICT_CONFIDENTIALITY_MIN_VERSION = "ironmesh/0.9";

/** `strict`: body only sealed (our default). `plaintext`: the reference's default form. */
export type Confidentiality = "strict" | "plaintext";

/** What is known about a destination's keys (a handshake `PeerInfo` fits). */
export interface E2eRecipient {
  /** Ed25519 identity key (32 bytes). */
  identityPublic: Uint8Array;
  /** Advertised master-seed X25519 key, if any. */
  x25519Public?: Uint8Array | null;
  /** The advertisement's binding verified (as `PeerInfo.x25519BindingValid` reports). */
  x25519BindingValid?: boolean;
  /** A binding signature to verify here instead of trusting `x25519BindingValid`. */
  x25519BindingSignature?: Uint8Array;
}

/** Our own X25519 key pair for opening sealed payloads (an `Identity.e2e` fits). */
export interface E2eOpenKeys {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/**
 * The X25519 key to seal to: the advertised key when its binding to the identity key holds,
 * else `crypto_sign_ed25519_pk_to_curve25519(identity)`. Throws InvalidKeyError.
 */
export function recipientX25519(r: E2eRecipient): Uint8Array {
  const adv = r.x25519Public;
  if (adv && adv.length === 32) {
    const valid = r.x25519BindingSignature !== undefined
      ? verifyX25519Binding(adv, r.x25519BindingSignature, r.identityPublic)
      : r.x25519BindingValid === true;
    if (valid) return adv.slice();
  }
  return ed25519PkToCurve25519(r.identityPublic);
}

/** SealedBox to `recipientPublic` with a fresh ephemeral key (`crypto_box_seal`). */
export function sealE2e(plaintext: Uint8Array, recipientPublic: Uint8Array): Uint8Array {
  return sealedBoxSeal(plaintext, recipientPublic);
}

/**
 * `crypto_box_seal` with a chosen ephemeral secret, byte for byte what libsodium produces with
 * that secret: for golden vectors and tests only — production must use `sealE2e`.
 */
export function sealE2eWithEphemeral(
  plaintext: Uint8Array,
  recipientPublic: Uint8Array,
  ephemeralSecret: Uint8Array,
): Uint8Array {
  if (recipientPublic.length !== 32 || ephemeralSecret.length !== 32) {
    throw new InvalidKeyError("SealedBox keys must be 32 bytes");
  }
  const epk = x25519Base(ephemeralSecret);
  const nonce = sodium.crypto_generichash(24, concatBytes(epk, recipientPublic), null);
  try {
    return concatBytes(
      epk,
      sodium.crypto_box_easy(plaintext, nonce, recipientPublic, ephemeralSecret),
    );
  } catch {
    throw new InvalidKeyError("cannot seal to this X25519 public key");
  }
}

/** Open a SealedBox addressed to us; null when it does not open (wrong key, altered, short). */
export function openE2e(sealed: Uint8Array, keys: E2eOpenKeys): Uint8Array | null {
  return sealedBoxOpen(sealed, keys.publicKey, keys.secretKey);
}

/** An opener for `V09SessionOptions.unsealE2e`. */
export function makeUnsealer(keys: E2eOpenKeys): (sealed: Uint8Array) => Uint8Array | null {
  return (sealed) => openE2e(sealed, keys);
}

/** Strict for destinations whose HELLO advertised ≥ 0.9, the reference's form below (§18.8). */
export function confidentialityFor(peerProtocolVersion: string | undefined): Confidentiality {
  return versionAtLeast(peerProtocolVersion, STRICT_CONFIDENTIALITY_MIN_VERSION)
    ? "strict"
    : "plaintext";
}

/** A mesh message to seal. */
export interface E2eMessageOptions {
  /** Destination node id. */
  destination: string;
  /** The plaintext body. */
  payload: Uint8Array;
  /** The destination's keys, or directly the X25519 key to seal to. */
  recipient: E2eRecipient | Uint8Array;
  /** Default `MSG` (`GROUP_BROADCAST` is never sealed). */
  type?: string;
  /** Default `str(uuid4())` from `rng`. */
  msgId?: string;
  /** Source of the uuid4 when `msgId` is absent (default the system CSPRNG). */
  rng?: Rng;
  /** Default `--max-hops` (5). */
  ttl?: number;
  priority?: Priority;
  /** Default `strict`. */
  confidentiality?: Confidentiality;
  /** Extra routing flags; `compressed` is removed in strict mode (sealed bodies are never gzipped). */
  routing?: Record<string, unknown>;
  /** Originator timestamp (default: the session's clock at seal time). */
  timestamp?: number;
  /** Vectors/tests only: the SealedBox ephemeral secret. */
  ephemeralSecret?: Uint8Array;
}

/**
 * Build the OutboundMessage of an end-to-end sealed mesh message. Seal it with the session to
 * the next hop: `V09Session.seal` adds the v2 inner signature over the plaintext. Throws
 * InvalidKeyError when the recipient key is unusable, RangeError for a GROUP_BROADCAST.
 */
export function buildE2eMessage(opts: E2eMessageOptions): OutboundMessage {
  const type = opts.type ?? "MSG";
  if (type === "GROUP_BROADCAST") throw new RangeError("GROUP_BROADCAST is never sealed");
  const pk = opts.recipient instanceof Uint8Array
    ? opts.recipient
    : recipientX25519(opts.recipient);
  const sealed = opts.ephemeralSecret
    ? sealE2eWithEphemeral(opts.payload, pk, opts.ephemeralSecret)
    : sealE2e(opts.payload, pk);
  const strict = (opts.confidentiality ?? "strict") === "strict";
  const routing = { ...(opts.routing ?? {}) };
  if (strict) delete routing.compressed;
  const msg: OutboundMessage = {
    type,
    payload: strict ? new Uint8Array(0) : opts.payload,
    destination: opts.destination,
    msgId: opts.msgId ?? uuid4FromBytes((opts.rng ?? systemRng).bytes(16)),
    ttl: opts.ttl ?? DEFAULT_MAX_HOPS,
    priority: opts.priority ?? "NORMAL",
    routing,
    hops: [],
    e2ePayload: sealed,
  };
  if (strict) msg.e2ePlaintext = opts.payload;
  if (opts.timestamp !== undefined) msg.timestamp = opts.timestamp;
  return msg;
}

/** Why `openE2eInbound` dropped a message. */
export type E2eDropReason =
  | "e2e-decrypt"
  | "plaintext-mismatch"
  | "duplicate"
  | InnerSourceDropReason;

/** Result of `openE2eInbound`. */
export type E2eInboundResult =
  | { ok: true; message: InboundMessage }
  | { ok: false; reason: E2eDropReason; auditEvents: MeshEvent[] };

/** Context for `openE2eInbound`. */
export interface E2eInboundContext {
  /** The direct peer the frame came from. */
  peerNodeId: string;
  /** Our X25519 key pair. */
  keys: E2eOpenKeys;
  /** Identity key of an originator (live peers, then the trust store); null = unknown. */
  sourceKeyLookup: (nodeId: string) => Uint8Array | null;
  /** The node's terminal dedup cache (the session skipped it for pending frames). */
  dedup?: DedupCache | null;
  /** Monotonic ms for the dedup (required with `dedup`). */
  nowMs?: number;
  /** Accept legacy v1 inner signatures (default false). */
  allowInnerV1?: boolean;
}

/**
 * Finish a terminal message the session left `e2ePending`: unseal (`E2E_DECRYPT_FAILURE
 * {source, msg_id}`), refuse a plaintext copy that differs from the sealed body (ours, §18.8),
 * apply the inner-source policy to the unsealed bytes (`INNER_SOURCE_SIG_DROP {peer, source,
 * msg_type, reason}`), then the terminal dedup. Messages that are not pending pass unchanged.
 * Throws RangeError when `dedup` is given without `nowMs`.
 */
export function openE2eInbound(msg: InboundMessage, ctx: E2eInboundContext): E2eInboundResult {
  if (ctx.dedup && ctx.nowMs === undefined) throw new RangeError("nowMs is required with dedup");
  if (!msg.e2ePending || msg.e2ePayload === undefined) return { ok: true, message: msg };
  const ids = { source: msg.source, msg_id: msg.msgId };
  const plaintext = openE2e(msg.e2ePayload, ctx.keys);
  if (plaintext === null) {
    return {
      ok: false,
      reason: "e2e-decrypt",
      auditEvents: [meshEvent("E2E_DECRYPT_FAILURE", ids)],
    };
  }
  if (msg.payload.length > 0 && !constantTimeEqual(msg.payload, plaintext)) {
    return {
      ok: false,
      reason: "plaintext-mismatch",
      auditEvents: [meshEvent("E2E_DECRYPT_FAILURE", { ...ids, reason: "plaintext-mismatch" })],
    };
  }
  const decision = evaluateInnerSource(
    {
      type: msg.type,
      source: msg.source,
      destination: msg.destination,
      msgId: msg.msgId,
      payload: plaintext,
      signature: msg.sourceSignature,
      scheme: msg.sourceSigScheme,
    },
    ctx.peerNodeId,
    (id) => verifierOf(ctx.sourceKeyLookup(id)),
    { allowV1: ctx.allowInnerV1 ?? false },
  );
  if (!decision.accept) {
    return {
      ok: false,
      reason: decision.reason,
      auditEvents: [meshEvent("INNER_SOURCE_SIG_DROP", {
        peer: ctx.peerNodeId,
        source: msg.source,
        msg_type: msg.type,
        reason: decision.reason,
      })],
    };
  }
  if (ctx.dedup?.checkAndAdd(msg.source, msg.msgId, ctx.nowMs!)) {
    return { ok: false, reason: "duplicate", auditEvents: [] };
  }
  return {
    ok: true,
    message: {
      ...msg,
      payload: plaintext,
      e2ePending: false,
      sourceAuthenticated: decision.authenticated || msg.sourceAuthenticated,
    },
  };
}

function verifierOf(pk: Uint8Array | null): Ed25519Verifier | null {
  if (pk === null) return null;
  try {
    return nodeVerifier(pk);
  } catch {
    return null; // an unusable key counts as unknown
  }
}
