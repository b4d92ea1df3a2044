/**
 * Shared types of the ironmesh/0.9 handshake state machines: configuration,
 * the TOFU hook, step results, and the stable HS_* failure codes with an
 * operator-actionable reason and hint each (PROTOCOL-0.9 §17 "Ours").
 */
import type { Clock, Rng } from "../../clock.ts";
import { ExitCode, IronMeshError } from "../../errors.ts";
import type { Identity } from "../../identity/identity.ts";

/** Default per-receive timeout (the reference's 30 s). */
export const HANDSHAKE_RECEIVE_TIMEOUT_MS = 30_000;

/** Stable handshake failure codes. */
export const HS_CODES = [
  "HS_RATE_LIMITED",
  "HS_AUTH_BLOCKED",
  "HS_WRONG_PASSPHRASE",
  "HS_SERVER_PROOF",
  "HS_CHANNEL_BINDING",
  "HS_BAD_HELLO",
  "HS_BAD_SIGNATURE",
  "HS_UNSIGNED_PEER",
  "HS_REVOKED",
  "HS_TOFU_MISMATCH",
  "HS_NOT_ALLOWED",
  "HS_VERSION_TOO_OLD",
  "HS_DUPLICATE",
  "HS_TIMEOUT",
  "HS_MALFORMED",
  "HS_SMALL_ORDER_KEY",
  "HS_SKIP_OFFER",
] as const;

/** One of the stable handshake failure codes. */
export type HandshakeFailureCode = typeof HS_CODES[number];

/** Default reason and hint for each failure code. */
export const HS_FAILURES: Readonly<Record<HandshakeFailureCode, { reason: string; hint: string }>> =
  {
    HS_RATE_LIMITED: {
      reason: "too many connection attempts",
      hint: "the peer is rate-limiting connections; wait a few seconds before reconnecting",
    },
    HS_AUTH_BLOCKED: {
      reason: "address blocked after repeated authentication failures",
      hint:
        "3 wrong passphrases within 5 minutes block an address for 5 minutes; fix the passphrase and retry later",
    },
    HS_WRONG_PASSPHRASE: {
      reason: "wrong passphrase",
      hint: "the mesh passphrase differs from the peer's; check --passphrase-file on both nodes",
    },
    HS_SERVER_PROOF: {
      reason: "the server did not prove it knows the mesh passphrase",
      hint:
        "the node you dialed does not share the mesh passphrase (or is an impostor); check the address and --passphrase-file on both nodes",
    },
    HS_CHANNEL_BINDING: {
      reason: "HELLO channel binding does not match this connection's nonce",
      hint:
        "the HELLO was made for another connection (replay or interception); check the network path and use wss:// with a pinned certificate",
    },
    HS_BAD_HELLO: {
      reason: "malformed HELLO",
      hint: "the peer runs an incompatible or faulty IronMesh build; upgrade it to ironmesh/0.9",
    },
    HS_BAD_SIGNATURE: {
      reason: "HELLO signature verification failed",
      hint:
        "the peer's HELLO is not signed by its identity key (tampering or a broken client); check the network path",
    },
    HS_UNSIGNED_PEER: {
      reason: "unsigned HELLO refused",
      hint:
        "the peer must send identity_public and a signature; upgrade it to a current IronMesh build",
    },
    HS_REVOKED: {
      reason: "peer identity is revoked",
      hint:
        "this node_id was revoked; clear the revocation with `ironmesh trust` if that was a mistake",
    },
    HS_TOFU_MISMATCH: {
      reason: "peer identity does not match the pinned key",
      hint:
        "possible impersonation; verify the peer's fingerprint out of band before re-pinning with `ironmesh trust`",
    },
    HS_NOT_ALLOWED: {
      reason: "peer is not on the allow list",
      hint:
        "this node runs --trust-mode allow_list; add the peer's node id or public key to the allow list",
    },
    HS_VERSION_TOO_OLD: {
      reason: "peer protocol version is below the configured minimum",
      hint: "upgrade the peer, or lower --min-protocol-version to admit legacy peers",
    },
    HS_DUPLICATE: {
      reason: "peer is already connected",
      hint: "a live connection to this node already exists; the new one was closed",
    },
    HS_TIMEOUT: {
      reason: "handshake timed out",
      hint:
        "the peer did not answer within the handshake timeout; check that it is running and reachable",
    },
    HS_MALFORMED: {
      reason: "malformed handshake message",
      hint: "the peer is not speaking ironmesh/0.9 (wrong port or another service?)",
    },
    HS_SMALL_ORDER_KEY: {
      reason: "peer sent a small-order ephemeral key",
      hint:
        "the peer's ephemeral X25519 key is invalid (faulty or malicious peer); connection refused",
    },
    HS_SKIP_OFFER: {
      reason: "handshake skip offered over WebSocket",
      hint:
        "SKIP_OFFER is only valid on Reticulum links; the peer tried to bypass the passphrase stage",
    },
  };

/** The HELLO signature scheme a peer used. */
export type HelloScheme = "context-v1" | "legacy";

/** Our identity as the handshake needs it. */
export interface LocalIdentity {
  /** 32-byte Ed25519 public key. */
  publicKey: Uint8Array;
  /** 64-byte libsodium Ed25519 secret key (seed ‖ public). */
  secretKey: Uint8Array;
  /** node_id of `publicKey` (checked at construction). */
  nodeId: string;
  /** Agent name announced in HELLO. */
  name: string;
  /** keys.json v3 X25519 advertisement; omitted for v1/v2 identities. */
  x25519?: { publicKey: Uint8Array; bindingSignature: Uint8Array } | null;
}

/** What the TOFU hook sees about a verified peer. */
export interface TofuPeer {
  nodeId: string;
  name: string;
  identityPublic: Uint8Array;
  /** `identity_public` exactly as received. */
  identityPublicB64: string;
  protocolVersion: string;
  /** Remote address as given in the config. */
  address: string;
  /** Our role in this handshake. */
  role: "server" | "client";
  /** `invite_token` from a client HELLO (server side only). */
  inviteToken?: string;
}

/** The TOFU hook's verdict. */
export type TofuDecision = { ok: true } | { ok: false; code: HandshakeFailureCode; reason: string };

/** Trust-on-first-use check (revocation, pin, invite); the trust store implements it. */
export type TofuHook = (peer: TofuPeer) => TofuDecision;

/** Configuration common to both roles. */
export interface HandshakeConfig {
  identity: LocalIdentity;
  /** The mesh passphrase. */
  passphrase: string;
  /** TOFU hook, called after the peer's HELLO is verified. */
  tofu: TofuHook;
  /** Version we advertise (default `ironmesh/0.9`). Below 0.9 we behave like a legacy node. */
  advertisedVersion?: string;
  /** Peers below this version are refused (default `ironmesh/0.9`). */
  minProtocolVersion?: string;
  /** Randomness: server nonce and ephemeral X25519 secrets (default: libsodium). */
  rng?: Rng;
  /** Clock for the receive deadline (default: system clock). */
  clock?: Clock;
  /** Remote address, passed to the TOFU hook. */
  address?: string;
  /** Per-receive timeout in milliseconds (default 30 000). */
  receiveTimeoutMs?: number;
}

/** Client-only configuration. */
export interface ClientHandshakeConfig extends HandshakeConfig {
  /** Invite token to present in our HELLO (bootstrap only). */
  inviteToken?: string;
  /** Require the server's identity key to equal this (invite pin / dialing a pinned peer). */
  pinnedPeerIdentity?: Uint8Array;
}

/** The peer as established by a successful handshake. */
export interface PeerInfo {
  /** node_id computed from `identityPublic` (never the claimed `from`). */
  nodeId: string;
  name: string;
  /** `identity_public` exactly as received. */
  identityPublicB64: string;
  identityPublic: Uint8Array;
  /** The HELLO `protocol_version` (or `ironmesh/0.3` when absent). */
  protocolVersion: string;
  helloScheme: HelloScheme;
  /** The peer's ephemeral X25519 public key. */
  ephemeralPublic: Uint8Array;
  /** Verified advertised X25519 key, or null (use the converted identity key). */
  x25519Public: Uint8Array | null;
  /** True when an advertisement was present and its binding signature verified. */
  x25519BindingValid: boolean;
  /** True when the HELLO carried an advertisement at all (valid or not). */
  x25519Advertised: boolean;
  /** `invite_token` of a client HELLO (server side only). */
  inviteToken?: string;
}

/** A completed handshake: the session key (caller owns and wipes it) and the peer. */
export interface Established {
  kind: "established";
  sessionKey: Uint8Array;
  peer: PeerInfo;
}

/** A failed handshake. */
export interface Failed {
  kind: "failed";
  code: HandshakeFailureCode;
  reason: string;
  hint: string;
  /** Text to send after `send` and before closing (refusals such as PASSPHRASE_REJECTED). */
  closeWith?: string;
  /** Server: a wrong or missing passphrase proof; count it against the address. */
  authFailure?: boolean;
  /** node_id of the peer when it was already verified (post-HELLO failures), for audits. */
  peerNodeId?: string;
}

/** Either outcome. */
export type HandshakeOutcome = Established | Failed;

/** The result of feeding one event to a handshake. */
export interface HandshakeStep {
  /** Exact texts to send, in order. */
  send: string[];
  /** Set once the handshake is over. */
  outcome?: HandshakeOutcome;
}

/** Build a Failed outcome with the code's default reason (or `reason`) and hint. */
export function handshakeFailure(
  code: HandshakeFailureCode,
  reason?: string,
  extra: Partial<Pick<Failed, "closeWith" | "authFailure" | "peerNodeId">> = {},
): Failed {
  const d = HS_FAILURES[code];
  return { kind: "failed", code, reason: reason ?? d.reason, hint: d.hint, ...extra };
}

/** True when `code` is one of the stable HS_* codes. */
export function isHandshakeFailureCode(code: unknown): code is HandshakeFailureCode {
  return typeof code === "string" && (HS_CODES as readonly string[]).includes(code);
}

/** The IronMeshError for a failed handshake (what the CLI and dashboard show). */
export function failureError(f: Failed): IronMeshError {
  return new IronMeshError(f.code, f.reason, f.hint, ExitCode.NETWORK);
}

/** All texts a step puts on the wire, in order: `send`, then a failure's `closeWith`. */
export function wireTexts(step: HandshakeStep): string[] {
  const out = [...step.send];
  if (step.outcome?.kind === "failed" && step.outcome.closeWith !== undefined) {
    out.push(step.outcome.closeWith);
  }
  return out;
}

/** Adapt a loaded `Identity` (lib/identity) to the handshake's `LocalIdentity`. */
export function localIdentityOf(identity: Identity): LocalIdentity {
  const e2e = identity.e2e;
  return {
    publicKey: identity.publicKey,
    secretKey: identity.secretKey,
    nodeId: identity.nodeId,
    name: identity.name,
    x25519: e2e.kind === "master-seed-v1" && e2e.bindingSignature
      ? { publicKey: e2e.publicKey, bindingSignature: e2e.bindingSignature }
      : null,
  };
}
