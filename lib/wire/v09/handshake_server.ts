/**
 * The server side of the ironmesh/0.9 handshake as a sans-I/O state machine
 * (PROTOCOL-0.9 §5.2–§5.7). `start()` emits the challenge; each `receive()`
 * consumes one client message and returns the exact texts to send and, at the
 * end, the outcome. Admission (§5.1) is the caller's: see `admissionRefusal`.
 */
import { boxBeforeNm, toHex, wipe, x25519Base } from "../../crypto/sodium.ts";
import { type Clock, type Rng, systemClock, systemRng } from "../../clock.ts";
import { InvalidKeyError } from "../../errors.ts";
import { nodeIdOf } from "../../identity/node_id.ts";
import { PROTOCOL_VERSION } from "../../version.ts";
import type { AdmissionVerdict } from "../auth_limiter.ts";
import { buildHello, HELLO_REJECTION_CODES, type HelloRejection, verifyHello } from "./hello.ts";
import {
  authBlockedText,
  challengeText,
  errorText,
  globalRateLimitedText,
  ipRateLimitedText,
  parseHandshakeMessage,
  passphraseProof,
  proofMatches,
  quoteForLog,
  rejectedText,
  SERVER_NONCE_BYTES,
  serverPassphraseProof,
  unexpectedTypeError,
  verifiedText,
} from "./handshake_stage1.ts";
import {
  type Failed,
  HANDSHAKE_RECEIVE_TIMEOUT_MS,
  type HandshakeConfig,
  handshakeFailure,
  type HandshakeFailureCode,
  type HandshakeStep,
} from "./handshake_types.ts";
import { completeHandshake } from "./handshake_complete.ts";
import { DEFAULT_MIN_PROTOCOL_VERSION } from "./version.ts";

/** Where a server handshake stands. */
export type ServerHandshakeState = "new" | "await-proof" | "await-hello" | "done";

/** The ERROR the server sends for each HELLO rejection (§5.7); "Ours" texts are not the reference's. */
const HELLO_REJECTION_WIRE: Record<
  HelloRejection,
  [string, "INVALID_FRAME" | "AUTH_FAILED"] | null
> = {
  "missing-fields": ["Invalid HELLO: missing ephemeral_public", "INVALID_FRAME"],
  "link-binding": [
    "HELLO link binding rejected: rns_link_id is only valid on the Reticulum transport",
    "AUTH_FAILED",
  ],
  // Ours: the reference accepts unsigned HELLOs (§18.3).
  "unsigned": ["HELLO identity_public and signature are required", "AUTH_FAILED"],
  "identity-without-signature": [
    "HELLO signature required when identity_public is provided",
    "AUTH_FAILED",
  ],
  "bad-field": ["HELLO signature verification failed", "AUTH_FAILED"],
  // Ours (§18.4).
  "channel-binding": ["HELLO channel binding does not match this connection", "AUTH_FAILED"],
  "bad-signature": ["HELLO signature verification failed", "AUTH_FAILED"],
  "downgrade": ["HELLO signature verification failed", "AUTH_FAILED"],
  // Ours (§18.3, C-HS-27).
  "from-mismatch": ["HELLO from does not match identity_public", "AUTH_FAILED"],
  // The reference drops the connection without a message.
  "bad-ephemeral": null,
};

/** The exact §5.1 refusal text (and our code) for an admission verdict, or null when admitted. */
export function admissionRefusal(
  verdict: AdmissionVerdict,
): { code: HandshakeFailureCode; text: string } | null {
  switch (verdict) {
    case "ok":
      return null;
    case "global-rate":
      return { code: "HS_RATE_LIMITED", text: globalRateLimitedText() };
    case "ip-rate":
      return { code: "HS_RATE_LIMITED", text: ipRateLimitedText() };
    case "auth-blocked":
      return { code: "HS_AUTH_BLOCKED", text: authBlockedText() };
  }
}

/** The server handshake. One instance per inbound connection. */
export class ServerHandshake {
  readonly #cfg: HandshakeConfig;
  readonly #rng: Rng;
  readonly #clock: Clock;
  readonly #version: string;
  readonly #floor: string;
  readonly #timeoutMs: number;
  #state: ServerHandshakeState = "new";
  #nonce: Uint8Array | null = null;
  #nonceHex = "";
  #ephSecret: Uint8Array | null = null;
  #ephPublic: Uint8Array | null = null;
  #deadline: number | null = null;

  /** Validate the config; nothing is drawn or sent until `start()`. */
  constructor(config: HandshakeConfig) {
    if (nodeIdOf(config.identity.publicKey) !== config.identity.nodeId) {
      throw new Error("handshake identity: nodeId is not the node_id of publicKey");
    }
    this.#cfg = config;
    this.#rng = config.rng ?? systemRng;
    this.#clock = config.clock ?? systemClock;
    this.#version = config.advertisedVersion ?? PROTOCOL_VERSION;
    this.#floor = config.minProtocolVersion ?? DEFAULT_MIN_PROTOCOL_VERSION;
    this.#timeoutMs = config.receiveTimeoutMs ?? HANDSHAKE_RECEIVE_TIMEOUT_MS;
  }

  /** Current state. */
  get state(): ServerHandshakeState {
    return this.#state;
  }

  /** Monotonic deadline (ms) of the pending receive, or null when none is pending. */
  get deadlineMs(): number | null {
    return this.#deadline;
  }

  /** Our nonce as lowercase hex ("" before `start()`). */
  get nonceHex(): string {
    return this.#nonceHex;
  }

  /** Draw the nonce and emit PASSPHRASE_CHALLENGE; arms the receive deadline. */
  start(): HandshakeStep {
    if (this.#state !== "new") throw new Error("ServerHandshake.start() called twice");
    this.#nonce = this.#rng.bytes(SERVER_NONCE_BYTES);
    this.#nonceHex = toHex(this.#nonce);
    this.#state = "await-proof";
    this.#arm();
    return { send: [challengeText(this.#cfg.identity.nodeId, this.#nonceHex, this.#version)] };
  }

  /** Consume one received message (text; binary is refused as malformed). */
  receive(raw: string | Uint8Array): HandshakeStep {
    if (this.#state === "new" || this.#state === "done") {
      throw new Error(`ServerHandshake.receive() in state ${this.#state}`);
    }
    const late = this.checkTimeout();
    if (late) return late;
    const msg = parseHandshakeMessage(raw);
    if (!msg) {
      return this.#fail(
        handshakeFailure("HS_MALFORMED", "client sent binary, non-JSON or oversized data"),
      );
    }
    return this.#state === "await-proof" ? this.#onProof(msg) : this.#onHello(msg);
  }

  /** Fail with HS_TIMEOUT once the deadline has passed; null while still in time. */
  checkTimeout(nowMs: number = this.#clock.monotonicMs()): HandshakeStep | null {
    if (this.#deadline === null || nowMs < this.#deadline) return null;
    const wanted = this.#state === "await-proof" ? "passphrase proof" : "HELLO";
    return this.#fail(
      handshakeFailure("HS_TIMEOUT", `no ${wanted} from the client within ${this.#timeoutMs} ms`),
    );
  }

  /** End the handshake from outside (connection closed, shutdown); wipes secrets. */
  abort(code: HandshakeFailureCode, reason?: string): HandshakeStep {
    if (this.#state === "done") return { send: [] };
    return this.#fail(handshakeFailure(code, reason));
  }

  #onProof(msg: Record<string, unknown>): HandshakeStep {
    const nodeId = this.#cfg.identity.nodeId;
    if (msg.type !== "PASSPHRASE_CHALLENGE") {
      return this.#fail(handshakeFailure(
        "HS_MALFORMED",
        `client answered the challenge with ${quoteForLog(msg.type)}`,
        { closeWith: rejectedText(nodeId, unexpectedTypeError(msg.type)) },
      ));
    }
    const expected = passphraseProof(this.#cfg.passphrase, this.#nonce!);
    if (!proofMatches(msg.proof, expected)) {
      return this.#fail(handshakeFailure("HS_WRONG_PASSPHRASE", undefined, {
        closeWith: rejectedText(nodeId, "Wrong passphrase"),
        authFailure: true,
      }));
    }
    const verified = verifiedText(
      nodeId,
      serverPassphraseProof(this.#cfg.passphrase, this.#nonce!),
    );
    // The reference draws its ephemeral key right after PASSPHRASE_VERIFIED.
    this.#ephSecret = this.#rng.bytes(32);
    this.#ephPublic = x25519Base(this.#ephSecret);
    this.#state = "await-hello";
    this.#arm();
    return { send: [verified] };
  }

  #onHello(msg: Record<string, unknown>): HandshakeStep {
    if (msg.type !== "HELLO") {
      return this.#fail(
        handshakeFailure("HS_BAD_HELLO", `expected HELLO, got ${quoteForLog(msg.type)}`),
      );
    }
    const v = verifyHello(msg, { channelBinding: this.#nonceHex, localVersion: this.#version });
    if (!v.ok) {
      const wire = HELLO_REJECTION_WIRE[v.rejection];
      return this.#fail(handshakeFailure(HELLO_REJECTION_CODES[v.rejection], v.detail, {
        closeWith: wire ? errorText(wire[0], wire[1]) : undefined,
      }));
    }
    const hello = v.hello;
    let sessionKey: Uint8Array;
    try {
      sessionKey = boxBeforeNm(hello.ephemeralPublic, this.#ephSecret!);
    } catch (e) {
      if (!(e instanceof InvalidKeyError)) throw e;
      return this.#fail(
        handshakeFailure("HS_SMALL_ORDER_KEY", undefined, { peerNodeId: hello.nodeId }),
      );
    }
    const id = this.#cfg.identity;
    const reply = buildHello({
      nodeId: id.nodeId,
      name: id.name,
      ephemeralPublic: this.#ephPublic!,
      identityPublic: id.publicKey,
      identitySecretKey: id.secretKey,
      protocolVersion: this.#version,
      channelBinding: this.#nonceHex,
      scheme: hello.scheme,
      x25519: id.x25519,
    }).text;
    this.#wipeEphemeral();
    let outcome;
    try {
      outcome = completeHandshake(this.#cfg, "server", hello, sessionKey, this.#floor);
    } finally {
      this.#done();
    }
    return { send: [reply], outcome };
  }

  #arm(): void {
    this.#deadline = this.#clock.monotonicMs() + this.#timeoutMs;
  }

  #wipeEphemeral(): void {
    wipe(this.#ephSecret);
    this.#ephSecret = null;
  }

  #done(): void {
    this.#wipeEphemeral();
    this.#state = "done";
    this.#deadline = null;
  }

  #fail(f: Failed): HandshakeStep {
    this.#done();
    return { send: [], outcome: f };
  }
}
