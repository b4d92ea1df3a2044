/**
 * The client side of the ironmesh/0.9 handshake as a sans-I/O state machine
 * (PROTOCOL-0.9 §5.2–§5.6) with our hardening (§18.3–§18.4, §5.3): the
 * server must prove the passphrase, its HELLO must be signed, bound to our
 * nonce, from the key's node_id, and context-v1 when it advertised ≥ 0.9;
 * SKIP_OFFER aborts. The reference client never sends error messages, and
 * neither do we: failures just close.
 */
import { boxBeforeNm, constantTimeEqual, fromHex, toHex, x25519Base } from "../../crypto/sodium.ts";
import { InvalidKeyError } from "../../errors.ts";
import { nodeIdOf } from "../../identity/node_id.ts";
import { buildHello, HELLO_REJECTION_CODES, helloSchemeFor, verifyHello } from "./hello.ts";
import { completeHandshake } from "./handshake_complete.ts";
import {
  AUTH_BLOCKED_ERROR,
  parseHandshakeMessage,
  passphraseProof,
  proofMatches,
  proofText,
  quoteForLog,
  SERVER_NONCE_BYTES,
  serverPassphraseProof,
} from "./handshake_stage1.ts";
import {
  type ClientHandshakeConfig,
  type Failed,
  handshakeFailure,
  type HandshakeStep,
} from "./handshake_types.ts";
import { HandshakeMachine } from "./handshake_machine.ts";
import { supportsHelloContext } from "./version.ts";

/** Where a client handshake stands. */
export type ClientHandshakeState = "await-challenge" | "await-verified" | "await-hello" | "done";

/** The client handshake. One instance per outbound connection; the deadline runs from construction. */
export class ClientHandshake extends HandshakeMachine<ClientHandshakeState> {
  readonly #cfg: ClientHandshakeConfig;
  #nonce: Uint8Array | null = null;
  #nonceHex = "";
  #serverVersion = "";

  /** Validate the config and arm the deadline for the server's first message. */
  constructor(config: ClientHandshakeConfig) {
    super(config, "await-challenge");
    this.#cfg = config;
    this.arm();
  }

  /** The client speaks second: nothing to send; re-arms the deadline (call when the socket opens). */
  start(): HandshakeStep {
    if (this.current !== "await-challenge") throw new Error("ClientHandshake.start() too late");
    this.arm();
    return { send: [] };
  }

  /** Consume one received message (text; binary is refused as malformed). */
  receive(raw: string | Uint8Array): HandshakeStep {
    if (this.current === "done") throw new Error("ClientHandshake.receive() after the outcome");
    const late = this.checkTimeout();
    if (late) return late;
    const msg = parseHandshakeMessage(raw);
    if (!msg) {
      return this.fail(
        handshakeFailure("HS_MALFORMED", "server sent binary, non-JSON or oversized data"),
      );
    }
    const refusal = this.#refusal(msg);
    if (refusal) return this.fail(refusal);
    switch (this.current) {
      case "await-challenge":
        return this.#onChallenge(msg);
      case "await-verified":
        return this.#onVerified(msg);
      default:
        return this.#onHello(msg);
    }
  }

  /** What the pending receive waits for. */
  protected awaiting(): string {
    const wanted = this.current === "await-challenge"
      ? "challenge"
      : this.current === "await-verified"
      ? "passphrase verdict"
      : "HELLO";
    return `${wanted} from the server`;
  }

  /** Refusals a server may send at any point: rate limits, blocks, rejections, errors. */
  #refusal(msg: Record<string, unknown>): Failed | null {
    const err = quoteForLog(msg.error);
    switch (msg.type) {
      case "RATE_LIMITED":
        return handshakeFailure("HS_RATE_LIMITED", `server refused the connection: ${err}`);
      case "PASSPHRASE_REJECTED":
        return msg.error === AUTH_BLOCKED_ERROR
          ? handshakeFailure("HS_AUTH_BLOCKED")
          : handshakeFailure("HS_WRONG_PASSPHRASE", `server rejected our passphrase proof: ${err}`);
      case "SKIP_OFFER":
        return handshakeFailure("HS_SKIP_OFFER");
      case "ERROR": {
        const text = typeof msg.error === "string" ? msg.error : "";
        const code = text.includes("signature") ? "HS_BAD_SIGNATURE" : "HS_BAD_HELLO";
        return handshakeFailure(code, `server refused our HELLO: ${err}`);
      }
    }
    return null;
  }

  #onChallenge(msg: Record<string, unknown>): HandshakeStep {
    if (msg.type !== "PASSPHRASE_CHALLENGE") {
      return this.fail(handshakeFailure(
        "HS_MALFORMED",
        `expected PASSPHRASE_CHALLENGE from the server, got ${quoteForLog(msg.type)}`,
      ));
    }
    const version = msg.protocol_version ?? "";
    let nonce: Uint8Array | null = null;
    try {
      if (typeof msg.nonce === "string") nonce = fromHex(msg.nonce);
    } catch { /* refused below */ }
    if (!nonce || nonce.length !== SERVER_NONCE_BYTES || typeof version !== "string") {
      return this.fail(
        handshakeFailure("HS_MALFORMED", "PASSPHRASE_CHALLENGE without a 32-byte hex nonce"),
      );
    }
    this.#nonce = nonce;
    this.#nonceHex = toHex(nonce);
    this.#serverVersion = version;
    this.current = "await-verified";
    this.arm();
    const proof = passphraseProof(this.#cfg.passphrase, nonce);
    return { send: [proofText(this.#cfg.identity.nodeId, proof)] };
  }

  #onVerified(msg: Record<string, unknown>): HandshakeStep {
    if (msg.type !== "PASSPHRASE_VERIFIED") {
      return this.fail(handshakeFailure(
        "HS_MALFORMED",
        `expected PASSPHRASE_VERIFIED, got ${quoteForLog(msg.type)}`,
      ));
    }
    if (typeof msg.server_proof !== "string" || msg.server_proof === "") {
      return this.fail(
        handshakeFailure("HS_SERVER_PROOF", "PASSPHRASE_VERIFIED carries no server_proof"),
      );
    }
    const expected = serverPassphraseProof(this.#cfg.passphrase, this.#nonce!);
    if (!proofMatches(msg.server_proof, expected)) {
      return this.fail(handshakeFailure("HS_SERVER_PROOF", "server_proof is wrong"));
    }
    const id = this.#cfg.identity;
    this.ephSecret = this.rng.bytes(32);
    const hello = buildHello({
      nodeId: id.nodeId,
      name: id.name,
      ephemeralPublic: x25519Base(this.ephSecret),
      identityPublic: id.publicKey,
      identitySecretKey: id.secretKey,
      protocolVersion: this.version,
      channelBinding: this.#nonceHex,
      scheme: helloSchemeFor(this.#serverVersion, this.version),
      x25519: id.x25519,
      inviteToken: this.#cfg.inviteToken,
    });
    this.current = "await-hello";
    this.arm();
    return { send: [hello.text] };
  }

  #onHello(msg: Record<string, unknown>): HandshakeStep {
    if (msg.type !== "HELLO") {
      return this.fail(
        handshakeFailure("HS_BAD_HELLO", `expected HELLO, got ${quoteForLog(msg.type)}`),
      );
    }
    const v = verifyHello(msg, {
      channelBinding: this.#nonceHex,
      localVersion: this.version,
      requireContextScheme: supportsHelloContext(this.#serverVersion) &&
        supportsHelloContext(this.version),
    });
    if (!v.ok) return this.fail(handshakeFailure(HELLO_REJECTION_CODES[v.rejection], v.detail));
    const hello = v.hello;
    const pinned = this.#cfg.pinnedPeerIdentity;
    if (pinned && !constantTimeEqual(pinned, hello.identityPublic)) {
      return this.fail(handshakeFailure(
        "HS_TOFU_MISMATCH",
        `server identity ${hello.nodeId} is not the pinned ${nodeIdOf(pinned)}`,
        { peerNodeId: hello.nodeId },
      ));
    }
    let sessionKey: Uint8Array;
    try {
      sessionKey = boxBeforeNm(hello.ephemeralPublic, this.ephSecret!);
    } catch (e) {
      if (!(e instanceof InvalidKeyError)) throw e;
      return this.fail(
        handshakeFailure("HS_SMALL_ORDER_KEY", undefined, { peerNodeId: hello.nodeId }),
      );
    }
    this.wipeEphemeral();
    let outcome;
    try {
      outcome = completeHandshake(this.#cfg, "client", hello, sessionKey, this.floor);
    } finally {
      this.done();
    }
    return { send: [], outcome };
  }
}
