/**
 * Inner source signatures (PROTOCOL-0.9 §6.5): the originator signs its frame so the signature
 * survives per-hop re-encryption by relays.
 *
 * - v2: Ed25519 over `SIG_CTX_FRAME_INNER_SOURCE ‖ LP(source) ‖ LP(destination) ‖ LP(msg_id) ‖
 *   LP(payload)`, `LP(x) = u32be(len(x)) ‖ x`, strings as UTF-8; `ttl`/`hops` are not covered.
 * - v1 (legacy): Ed25519 over the payload bytes only, no context.
 *
 * `evaluateInnerSource` is the reference's receive policy (`_verify_inner_source`) as a pure
 * function: it returns accept (with whether the originator was authenticated) or drop with the
 * reference's audit reason.
 */
import { SIG_CTX_FRAME_INNER_SOURCE } from "../../crypto/contexts.ts";
import type { Ed25519Signer, Ed25519Verifier } from "./frame.ts";

/** Scheme tag of the legacy payload-only signature. */
export const SOURCE_SIG_SCHEME_V1 = "v1";
/** Scheme tag of the bound signature. */
export const SOURCE_SIG_SCHEME_V2 = "v2";
/** Types whose source attribution is enforced (`_SOURCE_SIG_REQUIRED_TYPES`). */
export const SOURCE_SIG_REQUIRED_TYPES: ReadonlySet<string> = new Set([
  "MSG",
  "REQ",
  "RESP",
  "CONV",
]);

/** The fields an inner source signature covers. */
export interface InnerSourceFields {
  source: string;
  destination: string;
  msgId: string;
  /** The plaintext payload (for e2e frames: the unsealed bytes). */
  payload: Uint8Array;
}

const encoder = new TextEncoder();
const CTX = SIG_CTX_FRAME_INNER_SOURCE;

/** `LP(source) ‖ LP(destination) ‖ LP(msg_id) ‖ LP(payload)` (`canonical_inner_source_bytes`). */
export function canonicalInnerSourceBytes(f: InnerSourceFields): Uint8Array {
  return lpConcat(0, f);
}

/** The exact v2 signed message: `SIG_CTX_FRAME_INNER_SOURCE ‖ canonicalInnerSourceBytes`. */
export function innerSourceSignedMessageV2(f: InnerSourceFields): Uint8Array {
  return lpConcat(CTX.length, f);
}

function lpConcat(prefix: number, f: InnerSourceFields): Uint8Array {
  const s = encoder.encode(f.source);
  const d = encoder.encode(f.destination);
  const m = encoder.encode(f.msgId);
  const out = new Uint8Array(prefix + 16 + s.length + d.length + m.length + f.payload.length);
  const view = new DataView(out.buffer);
  if (prefix) out.set(CTX, 0);
  let o = prefix;
  for (const part of [s, d, m, f.payload]) {
    view.setUint32(o, part.length, false);
    out.set(part, o + 4);
    o += 4 + part.length;
  }
  return out;
}

/** Produce a v2 inner source signature (64 bytes) with the originator's key. */
export function signInnerSourceV2(signer: Ed25519Signer, f: InnerSourceFields): Uint8Array {
  return signer.sign(innerSourceSignedMessageV2(f));
}

/** A received signature with its optional scheme tag. */
export interface InnerSourceSignature extends InnerSourceFields {
  signature: Uint8Array;
  scheme?: string;
}

/**
 * Cryptographic check only: tag `v2` → v2; tag `v1` → v1 when allowed; no tag → v2, then v1
 * when allowed; any other tag → false.
 */
export function verifyInnerSourceSignature(
  sig: InnerSourceSignature,
  verifier: Ed25519Verifier,
  allowV1: boolean,
): boolean {
  if (sig.signature.length !== 64) return false;
  const scheme = sig.scheme;
  const v2 = () => verifier.verify(sig.signature, innerSourceSignedMessageV2(sig));
  const v1 = () => allowV1 && verifier.verify(sig.signature, sig.payload);
  if (scheme === SOURCE_SIG_SCHEME_V2) return v2();
  if (scheme === SOURCE_SIG_SCHEME_V1) return v1();
  if (scheme === undefined) return v2() || v1();
  return false;
}

/** Audit reasons of `INNER_SOURCE_SIG_DROP`. */
export type InnerSourceDropReason = "unknown-source" | "verification-failed" | "missing-on-relayed";

/** Outcome of the inner source policy. */
export type InnerSourceDecision =
  | {
    accept: true;
    /** The originator's inner signature verified (the reference's `source_authenticated`). */
    authenticated: boolean;
    /** Ours (PROTOCOL-0.9 §19 U1): a direct frame kept despite a failing inner signature. */
    labelMismatch?: boolean;
  }
  | { accept: false; reason: InnerSourceDropReason };

/** A received frame, as far as the policy needs it. */
export interface InnerSourceFrame extends InnerSourceFields {
  type: string;
  signature?: Uint8Array;
  scheme?: string;
}

/** Options of the policy. */
export interface InnerSourcePolicyOptions {
  /** Accept legacy v1 signatures (only while the protocol floor is below 0.9; default false). */
  allowV1?: boolean;
  /**
   * Ours (§19 U1): keep a *direct* frame whose outer signature verified but whose inner
   * signature does not, flagged `labelMismatch` (default false: drop, as the reference does).
   */
  labelFallback?: boolean;
  /**
   * The signature was already checked against the key `lookup` returns for the source (e.g. in
   * a worker, `preOpenFrame`): use this result instead of verifying again.
   */
  precomputedValid?: boolean;
}

/**
 * The reference's receive policy. Only MSG/REQ/RESP/CONV are checked. Signature present: the
 * originator's key is looked up; unknown → accept when direct (`source == peer`), else drop
 * `unknown-source`; invalid → drop `verification-failed` (even when direct); absent → accept
 * when direct, else drop `missing-on-relayed`.
 */
export function evaluateInnerSource(
  frame: InnerSourceFrame,
  peerNodeId: string,
  lookup: (nodeId: string) => Ed25519Verifier | null,
  opts: InnerSourcePolicyOptions = {},
): InnerSourceDecision {
  if (!SOURCE_SIG_REQUIRED_TYPES.has(frame.type)) return { accept: true, authenticated: false };
  const direct = frame.source === peerNodeId;
  if (frame.signature !== undefined) {
    const verifier = lookup(frame.source);
    if (verifier === null) {
      return direct ? { accept: true, authenticated: false } : {
        accept: false,
        reason: "unknown-source",
      };
    }
    const valid = opts.precomputedValid ?? verifyInnerSourceSignature(
      { ...frame, signature: frame.signature, scheme: frame.scheme },
      verifier,
      opts.allowV1 ?? false,
    );
    if (valid) {
      return { accept: true, authenticated: true };
    }
    if (direct && opts.labelFallback) {
      return { accept: true, authenticated: false, labelMismatch: true };
    }
    return { accept: false, reason: "verification-failed" };
  }
  return direct ? { accept: true, authenticated: false } : {
    accept: false,
    reason: "missing-on-relayed",
  };
}
