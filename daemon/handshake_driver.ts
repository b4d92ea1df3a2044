/**
 * Drives the sans-I/O handshake state machines over a transport connection:
 * sends what they say, feeds them what arrives, enforces their deadline, and
 * turns the outcome into a session or a typed error.
 */
import { type Clock, type Rng, systemClock, systemRng } from "../lib/clock.ts";
import { IronMeshError } from "../lib/errors.ts";
import { wipe } from "../lib/crypto/sodium.ts";
import type { Identity } from "../lib/identity/identity.ts";
import { ClientHandshake } from "../lib/wire/v09/handshake_client.ts";
import { ServerHandshake } from "../lib/wire/v09/handshake_server.ts";
import {
  type Failed,
  failureError,
  type HandshakeStep,
  localIdentityOf,
  type PeerInfo,
  type TofuHook,
  wireTexts,
} from "../lib/wire/v09/handshake_types.ts";
import { V09Session, type V09SessionOptions } from "../lib/wire/v09/session.ts";
import { type Conn, RecvTimeout } from "./transport/transport.ts";

/** Everything needed to run a handshake. */
export interface HandshakeSetup {
  identity: Identity;
  passphrase: string;
  tofu: TofuHook;
  minProtocolVersion?: string;
  timeoutMs?: number;
  clock?: Clock;
  rng?: Rng;
  sessionOptions?: V09SessionOptions;
  /** Called as stages complete — "auth" (passphrase proofs), "hello" (HELLO verified), "session" (key derived). */
  onStage?: (stage: string) => void;
}

/** A handshake error, carrying the failure for audit/limiter callers. */
export class HandshakeError extends IronMeshError {
  constructor(readonly failure: Failed) {
    const e = failureError(failure);
    super(e.code, e.message, e.hint, e.exitCode);
    this.name = "HandshakeError";
  }
}

/** The result: an open session with a verified peer. */
export interface Handshaken {
  conn: Conn;
  session: V09Session;
  peer: PeerInfo;
}

type Machine = ClientHandshake | ServerHandshake;

async function drive(
  conn: Conn,
  hs: Machine,
  first: HandshakeStep,
  setup: HandshakeSetup,
): Promise<Handshaken> {
  const clock = setup.clock ?? systemClock;
  let step = first;
  for (;;) {
    for (const text of wireTexts(step)) {
      try {
        conn.send(text);
      } catch { /* the peer went away; the outcome below says why */ }
    }
    const outcome = step.outcome;
    if (outcome?.kind === "failed") {
      conn.close(1008, outcome.reason);
      throw new HandshakeError(outcome);
    }
    if (outcome?.kind === "established") {
      try {
        const session = new V09Session({
          sessionKey: outcome.sessionKey,
          localSecretKey: setup.identity.secretKey,
          localNodeId: setup.identity.nodeId,
          peerPublicKey: outcome.peer.identityPublic,
          peerNodeId: outcome.peer.nodeId,
          clock,
          rng: setup.rng ?? systemRng,
          options: setup.sessionOptions,
        });
        setup.onStage?.("session");
        return { conn, session, peer: outcome.peer };
      } finally {
        wipe(outcome.sessionKey);
      }
    }
    const deadline = hs.deadlineMs;
    const wait = deadline === null
      ? undefined
      : Math.max(1, Math.ceil(deadline - clock.monotonicMs()));
    let msg;
    try {
      msg = await conn.recv(wait);
    } catch (e) {
      if (!(e instanceof RecvTimeout)) throw e;
      step = hs.checkTimeout(clock.monotonicMs() + 1) ?? hs.abort("HS_TIMEOUT");
      continue;
    }
    if (msg === null) {
      const why = await Promise.race([conn.closed, Promise.resolve("closed")]);
      step = hs.abort(
        "HS_MALFORMED",
        `the peer closed the connection during the handshake (${why})`,
      );
      continue;
    }
    const before = hs.state;
    step = hs.receive(msg);
    if (hs.state !== before && hs.state === "await-hello") setup.onStage?.("auth");
    if (hs.state !== before && hs.state === "done" && step.outcome?.kind === "established") {
      setup.onStage?.("hello");
    }
  }
}

function machineConfig(conn: Conn, setup: HandshakeSetup) {
  return {
    identity: localIdentityOf(setup.identity),
    passphrase: setup.passphrase,
    tofu: setup.tofu,
    minProtocolVersion: setup.minProtocolVersion,
    clock: setup.clock,
    rng: setup.rng,
    address: conn.remoteAddress,
    receiveTimeoutMs: setup.timeoutMs,
  };
}

/** Run the client side over `conn` (we dialed). */
export function clientHandshake(conn: Conn, setup: HandshakeSetup): Promise<Handshaken> {
  const hs = new ClientHandshake(machineConfig(conn, setup));
  return drive(conn, hs, hs.start(), setup);
}

/** Run the server side over `conn` (the peer dialed us). */
export function serverHandshake(conn: Conn, setup: HandshakeSetup): Promise<Handshaken> {
  const hs = new ServerHandshake(machineConfig(conn, setup));
  return drive(conn, hs, hs.start(), setup);
}
