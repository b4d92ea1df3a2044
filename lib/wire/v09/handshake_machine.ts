/**
 * What the client and server handshakes share: config defaults, the state, the
 * receive deadline, the ephemeral secret's lifetime, timeouts and aborts.
 */
import { type Clock, type Rng, systemClock, systemRng } from "../../clock.ts";
import { wipe } from "../../crypto/sodium.ts";
import { nodeIdOf } from "../../identity/node_id.ts";
import { PROTOCOL_VERSION } from "../../version.ts";
import {
  type Failed,
  HANDSHAKE_RECEIVE_TIMEOUT_MS,
  type HandshakeConfig,
  handshakeFailure,
  type HandshakeFailureCode,
  type HandshakeStep,
} from "./handshake_types.ts";
import { DEFAULT_MIN_PROTOCOL_VERSION } from "./version.ts";

/** Base of `ClientHandshake` and `ServerHandshake`; `S` is the role's state type. */
export abstract class HandshakeMachine<S extends string> {
  protected readonly rng: Rng;
  protected readonly clock: Clock;
  protected readonly version: string;
  protected readonly floor: string;
  protected readonly timeoutMs: number;
  protected current: S;
  protected ephSecret: Uint8Array | null = null;
  protected deadline: number | null = null;

  /** Validate the identity and apply the config defaults. */
  protected constructor(config: HandshakeConfig, initial: S) {
    if (nodeIdOf(config.identity.publicKey) !== config.identity.nodeId) {
      throw new Error("handshake identity: nodeId is not the node_id of publicKey");
    }
    this.rng = config.rng ?? systemRng;
    this.clock = config.clock ?? systemClock;
    this.version = config.advertisedVersion ?? PROTOCOL_VERSION;
    this.floor = config.minProtocolVersion ?? DEFAULT_MIN_PROTOCOL_VERSION;
    this.timeoutMs = config.receiveTimeoutMs ?? HANDSHAKE_RECEIVE_TIMEOUT_MS;
    this.current = initial;
  }

  /** Current state. */
  get state(): S {
    return this.current;
  }

  /** Monotonic deadline (ms) of the pending receive, or null when none is pending. */
  get deadlineMs(): number | null {
    return this.deadline;
  }

  /** What the pending receive waits for, e.g. "HELLO from the server" (for timeout reasons). */
  protected abstract awaiting(): string;

  /** Fail with HS_TIMEOUT once the deadline has passed; null while still in time. */
  checkTimeout(nowMs: number = this.clock.monotonicMs()): HandshakeStep | null {
    if (this.deadline === null || nowMs < this.deadline) return null;
    return this.fail(
      handshakeFailure("HS_TIMEOUT", `no ${this.awaiting()} within ${this.timeoutMs} ms`),
    );
  }

  /** End the handshake from outside (connection closed, shutdown); wipes secrets. */
  abort(code: HandshakeFailureCode, reason?: string): HandshakeStep {
    if (this.current === "done") return { send: [] };
    return this.fail(handshakeFailure(code, reason));
  }

  /** Start the receive deadline. */
  protected arm(): void {
    this.deadline = this.clock.monotonicMs() + this.timeoutMs;
  }

  /** Wipe the ephemeral X25519 secret. */
  protected wipeEphemeral(): void {
    wipe(this.ephSecret);
    this.ephSecret = null;
  }

  /** Finish: wipe secrets, stop the deadline. */
  protected done(): void {
    this.wipeEphemeral();
    this.current = "done" as S;
    this.deadline = null;
  }

  /** Finish with a failure. */
  protected fail(f: Failed): HandshakeStep {
    this.done();
    return { send: [], outcome: f };
  }
}
