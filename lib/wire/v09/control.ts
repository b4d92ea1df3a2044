/**
 * Control payloads (PROTOCOL-0.9 §7): builders that reproduce the reference's bytes exactly
 * (COMPACT JSON in insertion order, `{"type", "from", …extra}`, frame destination `"*"`,
 * ttl 3) and strict parsers for what peers send.
 */
import { compactJson } from "../../json/canonical.ts";
import { JsonError, parseJson } from "../../json/parse.ts";
import { PyFloat } from "../../json/py_float.ts";
import type { OutboundMessage } from "../session.ts";
import { b64DecodeStrict, b64Encode } from "./envelope.ts";
import { FrameError, FrameErrorCode } from "./errors.ts";
import type { Ed25519Signer, Ed25519Verifier } from "./frame.ts";

/** Message types of the session's control plane. */
export const ControlType = {
  PING: "PING",
  PONG: "PONG",
  GOODBYE: "GOODBYE",
  RATE_LIMITED: "RATE_LIMITED",
  REKEY_REQUEST: "REKEY_REQUEST",
  REKEY_RESPONSE: "REKEY_RESPONSE",
  REVOCATION: "REVOCATION",
  ROUTE_UNREACHABLE: "ROUTE_UNREACHABLE",
} as const;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function malformed(message: string): FrameError {
  return new FrameError(FrameErrorCode.MALFORMED, message);
}

/** `json.dumps({"type": T, "from": node_id, **extra}, separators=(",", ":"))` as bytes. */
export function controlPayload(
  type: string,
  from: string,
  extra: Record<string, unknown> = {},
): Uint8Array {
  return encoder.encode(compactJson({ type, from, ...extra }));
}

/** A `_send_encrypted_control` message: the payload above, destination `"*"`, ttl 3, NORMAL. */
export function controlMessage(
  type: string,
  from: string,
  extra: Record<string, unknown> = {},
): OutboundMessage {
  return {
    type,
    payload: controlPayload(type, from, extra),
    destination: "*",
    ttl: 3,
    priority: "NORMAL",
  };
}

/** PING (heartbeat). */
export const pingMessage = (from: string): OutboundMessage => controlMessage("PING", from);
/** PONG (answer to PING). */
export const pongMessage = (from: string): OutboundMessage => controlMessage("PONG", from);
/** GOODBYE (sent before closing on shutdown). */
export const goodbyeMessage = (from: string): OutboundMessage => controlMessage("GOODBYE", from);
/** RATE_LIMITED (at most one per peer per second; never in answer to a control frame, §18.13). */
export const rateLimitedMessage = (from: string): OutboundMessage =>
  controlMessage("RATE_LIMITED", from);

/** Parse a control payload: UTF-8, depth-guarded JSON, an object. Throws FrameError. */
export function parseControlPayload(payload: Uint8Array): Record<string, unknown> {
  let v: unknown;
  try {
    v = parseJson(decoder.decode(payload), { preserveNumbers: true });
  } catch (e) {
    throw malformed(`Invalid control payload: ${e instanceof JsonError ? e.message : "not UTF-8"}`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v) || v instanceof PyFloat) {
    throw malformed("Invalid control payload: not a JSON object");
  }
  return v as Record<string, unknown>;
}

function stringField(o: Record<string, unknown>, key: string, what: string): string {
  const v = o[key];
  if (typeof v !== "string" || v === "") throw malformed(`Invalid ${what}: missing ${key}`);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Rekey (§7.4)

/** `str(uuid.UUID(bytes=b, version=4))`: 16 random bytes with the version and variant bits set. */
export function uuid4FromBytes(b: Uint8Array): string {
  if (b.length !== 16) throw new RangeError("uuid4 needs 16 bytes");
  const u = b.slice();
  u[6] = (u[6] & 0x0f) | 0x40;
  u[8] = (u[8] & 0x3f) | 0x80;
  const h = Array.from(u, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A parsed REKEY_REQUEST / REKEY_RESPONSE payload. */
export interface RekeyPayload {
  from?: string;
  /** The sender's new X25519 public key (32 bytes). */
  newEphemeralPublic: Uint8Array;
  /** `str(uuid4())` of the request (echoed by the response); `""` when absent, as the reference. */
  rekeyId: string;
}

/** REKEY_REQUEST: `{"type","from","new_ephemeral_public","rekey_id"}`. */
export function rekeyRequestMessage(
  from: string,
  newEphemeralPublic: Uint8Array,
  rekeyId: string,
): OutboundMessage {
  return controlMessage("REKEY_REQUEST", from, {
    new_ephemeral_public: b64Encode(newEphemeralPublic),
    rekey_id: rekeyId,
  });
}

/** REKEY_RESPONSE: same fields, `rekey_id` echoed. */
export function rekeyResponseMessage(
  from: string,
  newEphemeralPublic: Uint8Array,
  rekeyId: string,
): OutboundMessage {
  return controlMessage("REKEY_RESPONSE", from, {
    new_ephemeral_public: b64Encode(newEphemeralPublic),
    rekey_id: rekeyId,
  });
}

/** Parse a REKEY_* payload (strict base64, 32-byte key). Throws FrameError. */
export function parseRekeyPayload(payload: Uint8Array): RekeyPayload {
  const o = parseControlPayload(payload);
  const pubB64 = stringField(o, "new_ephemeral_public", "rekey payload");
  let pub: Uint8Array;
  try {
    pub = b64DecodeStrict(pubB64);
  } catch {
    throw malformed("Invalid rekey payload: new_ephemeral_public is not base64");
  }
  if (pub.length !== 32) {
    throw malformed("Invalid rekey payload: new_ephemeral_public is not 32 bytes");
  }
  const rekeyId = o.rekey_id ?? "";
  if (typeof rekeyId !== "string") {
    throw malformed("Invalid rekey payload: rekey_id is not a string");
  }
  const out: RekeyPayload = { newEphemeralPublic: pub, rekeyId };
  if (typeof o.from === "string") out.from = o.from;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Revocation (§7.3)

/** A revocation as carried in a REVOCATION payload. */
export interface Revocation {
  targetNodeId: string;
  revokerNodeId: string;
  /** Integer seconds (an int on the wire; a float is truncated as the reference's `int()`). */
  timestamp: number;
  reason: string;
  signature: Uint8Array;
}

function decimalInt(ts: number): string {
  const t = Math.trunc(ts);
  return Number.isSafeInteger(t) ? String(t) : BigInt(t).toString();
}

/** UTF-8 of `target ‖ revoker ‖ str(int(timestamp))` — signed with no context. */
export function revocationSignedMessage(
  targetNodeId: string,
  revokerNodeId: string,
  timestamp: number,
): Uint8Array {
  return encoder.encode(targetNodeId + revokerNodeId + decimalInt(timestamp));
}

/** Sign a revocation (context-free Ed25519, as the reference; §18.7). */
export function signRevocation(
  signer: Ed25519Signer,
  targetNodeId: string,
  revokerNodeId: string,
  timestamp: number,
): Uint8Array {
  return signer.sign(revocationSignedMessage(targetNodeId, revokerNodeId, timestamp));
}

/** The REVOCATION payload bytes, keys in the reference's order. */
export function revocationPayload(from: string, r: Revocation): Uint8Array {
  return controlPayload("REVOCATION", from, {
    target_node_id: r.targetNodeId,
    revoker_node_id: r.revokerNodeId,
    timestamp: Math.trunc(r.timestamp),
    reason: r.reason,
    signature: b64Encode(r.signature),
  });
}

/** Build and sign a REVOCATION control message; `timestamp` is truncated to whole seconds. */
export function revocationMessage(
  signer: Ed25519Signer,
  revokerNodeId: string,
  targetNodeId: string,
  timestamp: number,
  reason: string,
): OutboundMessage {
  const ts = Math.trunc(timestamp);
  const signature = signRevocation(signer, targetNodeId, revokerNodeId, ts);
  return {
    type: "REVOCATION",
    payload: revocationPayload(revokerNodeId, {
      targetNodeId,
      revokerNodeId,
      timestamp: ts,
      reason,
      signature,
    }),
    destination: "*",
    ttl: 3,
    priority: "NORMAL",
  };
}

/**
 * Parse a REVOCATION payload: target, revoker, a non-zero timestamp and a base64 signature are
 * required (as the reference); `reason` defaults to "". Throws FrameError.
 */
export function parseRevocation(payload: Uint8Array): Revocation {
  const o = parseControlPayload(payload);
  const targetNodeId = stringField(o, "target_node_id", "revocation");
  const revokerNodeId = stringField(o, "revoker_node_id", "revocation");
  const rawTs = o.timestamp instanceof PyFloat ? o.timestamp.value : o.timestamp;
  if (typeof rawTs !== "number" || !Number.isFinite(rawTs) || Math.trunc(rawTs) === 0) {
    throw malformed("Invalid revocation: missing timestamp");
  }
  const sigB64 = stringField(o, "signature", "revocation");
  let signature: Uint8Array;
  try {
    signature = b64DecodeStrict(sigB64);
  } catch {
    throw malformed("Invalid revocation: signature is not base64");
  }
  const reason = o.reason ?? "";
  if (typeof reason !== "string") throw malformed("Invalid revocation: reason is not a string");
  return { targetNodeId, revokerNodeId, timestamp: Math.trunc(rawTs), reason, signature };
}

/** Verify a revocation's signature with the revoker's identity key. */
export function verifyRevocation(r: Revocation, revoker: Ed25519Verifier): boolean {
  return revoker.verify(
    r.signature,
    revocationSignedMessage(r.targetNodeId, r.revokerNodeId, r.timestamp),
  );
}

// ---------------------------------------------------------------------------------------------
// ROUTE_UNREACHABLE (§7)

/** A parsed ROUTE_UNREACHABLE payload. */
export interface RouteUnreachable {
  destination: string;
  originalMsgId: string;
  reason: string;
}

/** `{"destination","original_msg_id","reason":"no_route"}` (no type/from keys). */
export function routeUnreachablePayload(destination: string, originalMsgId: string): Uint8Array {
  return encoder.encode(
    compactJson({ destination, original_msg_id: originalMsgId, reason: "no_route" }),
  );
}

/** ROUTE_UNREACHABLE sent by a relay back toward the original source `to`. */
export function routeUnreachableMessage(
  to: string,
  destination: string,
  originalMsgId: string,
): OutboundMessage {
  return {
    type: "ROUTE_UNREACHABLE",
    payload: routeUnreachablePayload(destination, originalMsgId),
    destination: to,
    ttl: 3,
    priority: "NORMAL",
  };
}

/** Parse a ROUTE_UNREACHABLE payload (destination and original_msg_id required). */
export function parseRouteUnreachable(payload: Uint8Array): RouteUnreachable {
  const o = parseControlPayload(payload);
  const destination = stringField(o, "destination", "ROUTE_UNREACHABLE");
  const originalMsgId = stringField(o, "original_msg_id", "ROUTE_UNREACHABLE");
  const reason = o.reason ?? "";
  if (typeof reason !== "string") {
    throw malformed("Invalid ROUTE_UNREACHABLE: reason is not a string");
  }
  return { destination, originalMsgId, reason };
}
