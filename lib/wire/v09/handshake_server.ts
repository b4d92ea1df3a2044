/**
 * The server side of the ironmesh/0.9 handshake as a sans-I/O state machine
 * (PROTOCOL-0.9 §5.2–§5.7). `start()` emits the challenge; each `receive()`
 * consumes one client message and returns the exact texts to send and, at the
 * end, the outcome. Admission (§5.1) is the caller's: see `admissionRefusal`.
 */
import { boxBeforeNm, toHex, x25519Base } from "../../crypto/sodium.ts";
import { InvalidKeyError } from "../../errors.ts";
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
  type HandshakeConfig,
  handshakeFailure,
  type HandshakeFailureCode,
  type HandshakeStep,
} from "./handshake_types.ts";
import { completeHandshake } from "./handshake_complete.ts";
import { HandshakeMachine } from "./handshake_machine.ts";

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
export class ServerHandshake extends HandshakeMachine<ServerHandshakeState> {
  readonly #cfg: HandshakeConfig;
  #nonce: Uint8Array | null = null;
  #nonceHex = "";
  #ephPublic: Uint8Array | null = null;

  /** Validate the config; nothing is drawn or sent until `start()`. */
  constructor(config: HandshakeConfig) {
    super(config, "new");
    this.#cfg = config;
  }

  /** Our nonce as lowercase hex ("" before `start()`). */
  get nonceHex(): string {
    return this.#nonceHex;
  }

  /** Draw the nonce and emit PASSPHRASE_CHALLENGE; arms the receive deadline. */
  start(): HandshakeStep {
    if (this.current !== "new") throw new Error("ServerHandshake.start() called twice");
    this.#nonce = this.rng.bytes(SERVER_NONCE_BYTES);
    this.#nonceHex = toHex(this.#nonce);
    this.current = "await-proof";
    this.arm();
    return { send: [challengeText(this.#cfg.identity.nodeId, this.#nonceHex, this.version)] };
  }

  /** Consume one received message (text; binary is refused as malformed). */
  receive(raw: string | Uint8Array): HandshakeStep {
    if (this.current === "new" || this.current === "done") {
      throw new Error(`ServerHandshake.receive() in state ${this.current}`);
    }
    const late = this.checkTimeout();
    if (late) return late;
    const msg = parseHandshakeMessage(raw);
    if (!msg) {
      return this.fail(
        handshakeFailure("HS_MALFORMED", "client sent binary, non-JSON or oversized data"),
      );
    }
    return this.current === "await-proof" ? this.#onProof(msg) : this.#onHello(msg);
  }

  /** What the pending receive waits for. */
  protected awaiting(): string {
    return `${this.current === "await-proof" ? "passphrase proof" : "HELLO"} from the client`;
  }

  #onProof(msg: Record<string, unknown>): HandshakeStep {
    const nodeId = this.#cfg.identity.nodeId;
    if (msg.type !== "PASSPHRASE_CHALLENGE") {
      return this.fail(handshakeFailure(
        "HS_MALFORMED",
        `client answered the challenge with ${quoteForLog(msg.type)}`,
        { closeWith: rejectedText(nodeId, unexpectedTypeError(msg.type)) },
      ));
    }
    const expected = passphraseProof(this.#cfg.passphrase, this.#nonce!);
    if (!proofMatches(msg.proof, expected)) {
      return this.fail(handshakeFailure("HS_WRONG_PASSPHRASE", undefined, {
        closeWith: rejectedText(nodeId, "Wrong passphrase"),
        authFailure: true,
      }));
    }
    const verified = verifiedText(
      nodeId,
      serverPassphraseProof(this.#cfg.passphrase, this.#nonce!),
    );
    // The reference draws its ephemeral key right after PASSPHRASE_VERIFIED.
    this.ephSecret = this.rng.bytes(32);
    this.#ephPublic = x25519Base(this.ephSecret);
    this.current = "await-hello";
    this.arm();
    return { send: [verified] };
  }

  #onHello(msg: Record<string, unknown>): HandshakeStep {
    if (msg.type !== "HELLO") {
      return this.fail(
        handshakeFailure("HS_BAD_HELLO", `expected HELLO, got ${quoteForLog(msg.type)}`),
      );
    }
    const v = verifyHello(msg, { channelBinding: this.#nonceHex, localVersion: this.version });
    if (!v.ok) {
      const wire = HELLO_REJECTION_WIRE[v.rejection];
      return this.fail(handshakeFailure(HELLO_REJECTION_CODES[v.rejection], v.detail, {
        closeWith: wire ? errorText(wire[0], wire[1]) : undefined,
      }));
    }
    const hello = v.hello;
    let sessionKey: Uint8Array;
    try {
      sessionKey = boxBeforeNm(hello.ephemeralPublic, this.ephSecret!);
    } catch (e) {
      if (!(e instanceof InvalidKeyError)) throw e;
      return this.fail(
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
      protocolVersion: this.version,
      channelBinding: this.#nonceHex,
      scheme: hello.scheme,
      x25519: id.x25519,
    }).text;
    this.wipeEphemeral();
    let outcome;
    try {
      outcome = completeHandshake(this.#cfg, "server", hello, sessionKey, this.floor);
    } finally {
      this.done();
    }
    return { send: [reply], outcome };
  }
}
