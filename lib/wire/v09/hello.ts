/**
 * The ironmesh/0.9 HELLO (PROTOCOL-0.9 §5.4): canonical signed bytes, the two
 * signature schemes (context-v1 detached over SIG_CTX_HELLO ‖ canonical, and
 * the legacy attached form), the X25519 advertisement, and one strict
 * verifier both handshake roles share.
 */
import { SIG_CTX_HELLO } from "../../crypto/contexts.ts";
import {
  constantTimeEqual,
  fromB64,
  openAttached,
  signAttached,
  signDetached,
  toB64,
  utf8,
  verifyDetached,
} from "../../crypto/sodium.ts";
import { verifyX25519Binding } from "../../identity/identity.ts";
import { nodeIdOf } from "../../identity/node_id.ts";
import { canonicalJson, defaultJson } from "../../json/canonical.ts";
import { PyFloat } from "../../json/py_float.ts";
import { quoteForLog } from "./handshake_stage1.ts";
import type { HandshakeFailureCode, HelloScheme } from "./handshake_types.ts";
import { ABSENT_PEER_VERSION, supportsHelloContext } from "./version.ts";

/** The signed fields of a HELLO, as the strings that travel on the wire. */
export interface HelloBody {
  channel_binding: string;
  ephemeral_public: string;
  identity_public: string;
  name: string;
  protocol_version: string;
  /** Reticulum links only; never on WebSocket. */
  rns_link_id?: string;
}

/** CANON of exactly the signed keys (`rns_link_id` only when given). */
export function canonicalHelloText(body: HelloBody): string {
  const o: Record<string, string> = {
    channel_binding: body.channel_binding,
    ephemeral_public: body.ephemeral_public,
    identity_public: body.identity_public,
    name: body.name,
    protocol_version: body.protocol_version,
  };
  if (body.rns_link_id !== undefined) o.rns_link_id = body.rns_link_id;
  return canonicalJson(o);
}

/** UTF-8 bytes of the canonical HELLO body. */
export function canonicalHelloBytes(body: HelloBody): Uint8Array {
  return utf8(canonicalHelloText(body));
}

/**
 * The scheme a HELLO is signed or verified with, given the version that
 * selects it (§5.4) and our own advertised version: context-v1 only when both
 * are ≥ 0.9 (Ours: a node advertising < 0.9 behaves like a legacy node).
 */
export function helloSchemeFor(selectingVersion: unknown, localVersion: unknown): HelloScheme {
  return supportsHelloContext(selectingVersion) && supportsHelloContext(localVersion)
    ? "context-v1"
    : "legacy";
}

/** Sign canonical HELLO bytes: 64-byte detached (context-v1) or `sig ‖ canonical` (legacy). */
export function signHello(
  canonical: Uint8Array,
  secretKey: Uint8Array,
  scheme: HelloScheme,
): Uint8Array {
  return scheme === "context-v1"
    ? signDetached(canonical, secretKey, SIG_CTX_HELLO)
    : signAttached(canonical, secretKey);
}

/** Verify a HELLO signature under `scheme`; legacy requires the opened message to equal `canonical`. */
export function verifyHelloSignature(
  canonical: Uint8Array,
  signature: Uint8Array,
  identityPublic: Uint8Array,
  scheme: HelloScheme,
): boolean {
  if (scheme === "context-v1") {
    return signature.length === 64 &&
      verifyDetached(signature, canonical, identityPublic, SIG_CTX_HELLO);
  }
  const opened = openAttached(signature, identityPublic);
  return opened !== null && constantTimeEqual(opened, canonical);
}

/** What `buildHello` needs. */
export interface HelloInput {
  nodeId: string;
  name: string;
  ephemeralPublic: Uint8Array;
  identityPublic: Uint8Array;
  identitySecretKey: Uint8Array;
  protocolVersion: string;
  channelBinding: string;
  scheme: HelloScheme;
  /** keys.json v3 advertisement (outside the signed body). */
  x25519?: { publicKey: Uint8Array; bindingSignature: Uint8Array } | null;
  /** Client bootstrap only. */
  inviteToken?: string;
}

/** A built HELLO: the wire text plus its parts (for tests and logs). */
export interface BuiltHello {
  text: string;
  canonical: Uint8Array;
  signature: Uint8Array;
}

/** Build and sign a HELLO; fields in the reference's order, DEFAULT JSON profile. */
export function buildHello(h: HelloInput): BuiltHello {
  const body: HelloBody = {
    channel_binding: h.channelBinding,
    ephemeral_public: toB64(h.ephemeralPublic),
    identity_public: toB64(h.identityPublic),
    name: h.name,
    protocol_version: h.protocolVersion,
  };
  const canonical = canonicalHelloBytes(body);
  const signature = signHello(canonical, h.identitySecretKey, h.scheme);
  const msg: Record<string, string> = {
    type: "HELLO",
    from: h.nodeId,
    name: h.name,
    ephemeral_public: body.ephemeral_public,
    identity_public: body.identity_public,
    protocol_version: h.protocolVersion,
    channel_binding: h.channelBinding,
    signature: toB64(signature),
  };
  if (h.x25519) {
    msg.x25519_public_b64 = toB64(h.x25519.publicKey);
    msg.x25519_binding_signature_b64 = toB64(h.x25519.bindingSignature);
  }
  if (h.inviteToken !== undefined) msg.invite_token = h.inviteToken;
  return { text: defaultJson(msg), canonical, signature };
}

/** A HELLO that passed `verifyHello`. */
export interface VerifiedHello {
  /** node_id of `identityPublic`. */
  nodeId: string;
  /** `name`, or `from` when absent (as the reference does). */
  name: string;
  identityPublic: Uint8Array;
  identityPublicB64: string;
  ephemeralPublic: Uint8Array;
  /** The HELLO `protocol_version` or `ironmesh/0.3` when absent. */
  peerVersion: string;
  scheme: HelloScheme;
  x25519Public: Uint8Array | null;
  x25519Advertised: boolean;
  inviteToken?: string;
}

/** Why `verifyHello` refused a HELLO, in check order. */
export type HelloRejection =
  | "missing-fields"
  | "link-binding"
  | "unsigned"
  | "identity-without-signature"
  | "bad-field"
  | "channel-binding"
  | "bad-signature"
  | "downgrade"
  | "from-mismatch"
  | "bad-ephemeral";

/** The failure code of each rejection (the same in both roles). */
export const HELLO_REJECTION_CODES: Readonly<Record<HelloRejection, HandshakeFailureCode>> = {
  "missing-fields": "HS_BAD_HELLO",
  "link-binding": "HS_BAD_HELLO",
  "unsigned": "HS_UNSIGNED_PEER",
  "identity-without-signature": "HS_UNSIGNED_PEER",
  "bad-field": "HS_BAD_HELLO",
  "channel-binding": "HS_CHANNEL_BINDING",
  "bad-signature": "HS_BAD_SIGNATURE",
  "downgrade": "HS_BAD_SIGNATURE",
  "from-mismatch": "HS_BAD_HELLO",
  "bad-ephemeral": "HS_BAD_HELLO",
};

/** Result of `verifyHello`. */
export type HelloVerification =
  | { ok: true; hello: VerifiedHello }
  | { ok: false; rejection: HelloRejection; detail: string };

/** Options of `verifyHello`. */
export interface VerifyHelloOptions {
  /** Our nonce hex: the canonical body is rebuilt with it, and the field must equal it. */
  channelBinding: string;
  /** Our advertised version (selects legacy when < 0.9). */
  localVersion: string;
  /** Refuse a legacy-scheme HELLO (client, when the server advertised ≥ 0.9). */
  requireContextScheme?: boolean;
}

/** Python truthiness of a parsed JSON value. */
function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === "") return false;
  if (typeof v === "bigint") return v !== 0n;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof PyFloat) return v.value !== 0;
  if (typeof v === "object") return Object.keys(v).length > 0;
  return true;
}

function decodeB64(s: string, length?: number): Uint8Array | null {
  try {
    const b = fromB64(s);
    return length === undefined || b.length === length ? b : null;
  } catch {
    return null;
  }
}

function reject(rejection: HelloRejection, detail: string): HelloVerification {
  return { ok: false, rejection, detail };
}

/**
 * Verify a parsed HELLO in the reference's order (§5.4) plus our hardening
 * (§18.3–18.4): identity and signature required, channel binding equal to our
 * nonce, `from` equal to node_id(identity_public), strict base64.
 */
export function verifyHello(
  msg: Record<string, unknown>,
  opts: VerifyHelloOptions,
): HelloVerification {
  const from = msg.from, eph = msg.ephemeral_public;
  const identity = msg.identity_public, sig = msg.signature;
  if (!truthy(from) || !truthy(eph)) {
    return reject("missing-fields", "HELLO lacks `from` or `ephemeral_public`");
  }
  if (msg.rns_link_id !== undefined && msg.rns_link_id !== null) {
    return reject("link-binding", "rns_link_id is only valid on the Reticulum transport");
  }
  if (!truthy(identity)) return reject("unsigned", "HELLO carries no identity_public");
  if (!truthy(sig)) return reject("identity-without-signature", "HELLO carries no signature");
  const name = msg.name === undefined ? from : msg.name;
  const version = msg.protocol_version === undefined ? "" : msg.protocol_version;
  if (
    typeof from !== "string" || typeof eph !== "string" || typeof identity !== "string" ||
    typeof sig !== "string" || typeof name !== "string" || typeof version !== "string"
  ) {
    return reject("bad-field", "a HELLO field has the wrong JSON type");
  }
  if (msg.channel_binding !== opts.channelBinding) {
    return reject("channel-binding", "HELLO channel_binding differs from this connection's nonce");
  }
  const identityPublic = decodeB64(identity, 32);
  const signature = decodeB64(sig);
  if (!identityPublic || !signature) {
    return reject(
      "bad-signature",
      "identity_public or signature is not valid base64 of the right size",
    );
  }
  const scheme = helloSchemeFor(version, opts.localVersion);
  if (opts.requireContextScheme && scheme !== "context-v1") {
    return reject(
      "downgrade",
      `the peer advertised ironmesh/0.9 in stage 1 but its HELLO says ${quoteForLog(version)}`,
    );
  }
  const canonical = canonicalHelloBytes({
    channel_binding: opts.channelBinding,
    ephemeral_public: eph,
    identity_public: identity,
    name,
    protocol_version: version,
  });
  if (!verifyHelloSignature(canonical, signature, identityPublic, scheme)) {
    return reject("bad-signature", `HELLO ${scheme} signature does not verify`);
  }
  const nodeId = nodeIdOf(identityPublic);
  if (from !== nodeId) {
    return reject(
      "from-mismatch",
      `HELLO from ${quoteForLog(from)} is not node_id ${nodeId} of its key`,
    );
  }
  const ephemeralPublic = decodeB64(eph, 32);
  if (!ephemeralPublic) return reject("bad-ephemeral", "ephemeral_public is not a 32-byte key");
  const x = verifyX25519Advertisement(
    identityPublic,
    msg.x25519_public_b64,
    msg.x25519_binding_signature_b64,
  );
  return {
    ok: true,
    hello: {
      nodeId,
      name,
      identityPublic,
      identityPublicB64: identity,
      ephemeralPublic,
      peerVersion: msg.protocol_version === undefined ? ABSENT_PEER_VERSION : version,
      scheme,
      x25519Public: x.publicKey,
      x25519Advertised: x.advertised,
      inviteToken: typeof msg.invite_token === "string" ? msg.invite_token : undefined,
    },
  };
}

/**
 * Check a HELLO's X25519 advertisement: both fields present (truthy), a 32-byte
 * key and a 64-byte binding signature under SIG_CTX_X25519_BINDING. A bad
 * binding is not a handshake failure; the key is just not used.
 */
export function verifyX25519Advertisement(
  identityPublic: Uint8Array,
  publicB64: unknown,
  bindingB64: unknown,
): { advertised: boolean; publicKey: Uint8Array | null } {
  if (!truthy(publicB64) || !truthy(bindingB64)) return { advertised: false, publicKey: null };
  if (typeof publicB64 !== "string" || typeof bindingB64 !== "string") {
    return { advertised: true, publicKey: null };
  }
  const pub = decodeB64(publicB64, 32), sig = decodeB64(bindingB64, 64);
  const ok = pub !== null && sig !== null && verifyX25519Binding(pub, sig, identityPublic);
  return { advertised: true, publicKey: ok ? pub : null };
}
