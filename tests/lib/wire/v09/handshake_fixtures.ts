/** Shared fixtures for the handshake tests: the recorded transcripts, identities, an in-memory pump. */
import { FakeClock, ScriptedRng } from "../../../../lib/clock.ts";
import { fromHex } from "../../../../lib/crypto/sodium.ts";
import { Identity } from "../../../../lib/identity/identity.ts";
import { ClientHandshake } from "../../../../lib/wire/v09/handshake_client.ts";
import { ServerHandshake } from "../../../../lib/wire/v09/handshake_server.ts";
import {
  type HandshakeOutcome,
  type HandshakeStep,
  type LocalIdentity,
  localIdentityOf,
  type TofuDecision,
  type TofuPeer,
  wireTexts,
} from "../../../../lib/wire/v09/handshake_types.ts";
import { loadVector } from "../../../support/vectors.ts";

/** One identity as recorded in the vectors. */
export interface VecIdentity {
  agent_name: string;
  ed25519_seed_hex: string;
  ed25519_public_hex: string;
  ed25519_public_b64: string;
  node_id: string;
  hkdf_salt_hex: string;
  x25519_public_hex: string;
}

/** A registered peer as the reference recorded it. */
export interface VecPeer {
  peer_id: string;
  session_key_hex: string;
  hello_sig_scheme: string;
  protocol_version: string;
  agent_name: string;
  x25519_identity_public_hex: string | null;
  ephemeral_public_hex: string;
}

/** One recorded transcript of handshake_v09.json. */
export interface Transcript {
  name: string;
  passphrase: string;
  client_passphrase?: string;
  server: { name: string; identity: VecIdentity; advertised_version: string };
  client: { name: string; identity: VecIdentity; advertised_version: string };
  random_draws: { purpose: string; hex: string; role: string; x25519_public_hex?: string }[];
  messages: { direction: "server->client" | "client->server"; text: string; utf8_hex: string }[];
  derived: {
    server_nonce_hex: string;
    client_proof: string;
    server_proof: string;
    session_key_hex?: string;
    client_hello?: { canonical_text: string; signature_b64: string; scheme: string };
    server_hello?: { canonical_text: string; signature_b64: string; scheme: string };
  };
  result: {
    server_registered_peers: Record<string, VecPeer>;
    client_registered_peers?: Record<string, VecPeer>;
  };
}

/** All seven transcripts. */
export const TRANSCRIPTS: Transcript[] = loadVector<{ transcripts: Transcript[] }>(
  "handshake_v09.json",
).transcripts;

/** The transcript with this name. */
export function transcript(name: string): Transcript {
  const t = TRANSCRIPTS.find((x) => x.name === name);
  if (!t) throw new Error(`no transcript ${name}`);
  return t;
}

/** A handshake identity from a vector identity (with or without the X25519 advertisement). */
export function localIdentity(
  v: VecIdentity,
  advertiseX25519 = true,
  name = v.agent_name,
): LocalIdentity {
  const id = localIdentityOf(
    new Identity(fromHex(v.ed25519_seed_hex), name, fromHex(v.hkdf_salt_hex)),
  );
  return advertiseX25519 ? id : { ...id, x25519: null };
}

/** The recorded random draws one role consumed, in order, as fresh arrays. */
export function drawsOf(t: Transcript, role: "server" | "client"): Uint8Array[] {
  return t.random_draws.filter((d) => d.role.startsWith(role)).map((d) => fromHex(d.hex));
}

/** A ScriptedRng replaying one role's draws. */
export function rngOf(t: Transcript, role: "server" | "client"): ScriptedRng {
  return new ScriptedRng(drawsOf(t, role));
}

/** Recorded texts in one direction. */
export function textsFrom(t: Transcript, direction: "server->client" | "client->server"): string[] {
  return t.messages.filter((m) => m.direction === direction).map((m) => m.text);
}

/** A TOFU hook that accepts everyone and records what it saw. */
export function acceptAll(seen: TofuPeer[] = []): (p: TofuPeer) => TofuDecision {
  return (p) => {
    seen.push(p);
    return { ok: true };
  };
}

/** The mesh passphrase of the vectors. */
export const PASSPHRASE = "correct-horse-battery-staple-42";

/** Alice, Bob and Dave from the v09 transcript vectors. */
export const ALICE = transcript("v09_alice_server_bob_client").server.identity;
/** Bob. */
export const BOB = transcript("v09_alice_server_bob_client").client.identity;
/** Dave (the scripted legacy client). */
export const DAVE = transcript("legacy_client_v06").client.identity;

/** Everything an in-memory run produced. */
export interface PumpResult {
  /** Every text on the wire, in order, with its direction. */
  wire: { dir: "s2c" | "c2s"; text: string }[];
  server?: HandshakeOutcome;
  client?: HandshakeOutcome;
}

/**
 * Run a client and a server against each other in memory until both have an
 * outcome or nothing is left to deliver (a side whose peer closed is aborted).
 * `tamper` may rewrite any text in flight.
 */
export function pump(
  client: ClientHandshake,
  server: ServerHandshake,
  tamper: (dir: "s2c" | "c2s", text: string, index: number) => string = (_d, t) => t,
): PumpResult {
  const res: PumpResult = { wire: [] };
  const toClient: string[] = [], toServer: string[] = [];
  let n = 0;
  const take = (step: HandshakeStep, dir: "s2c" | "c2s") => {
    for (const raw of wireTexts(step)) {
      const text = tamper(dir, raw, n++);
      res.wire.push({ dir, text });
      (dir === "s2c" ? toClient : toServer).push(text);
    }
    if (step.outcome) {
      if (dir === "s2c") res.server = step.outcome;
      else res.client = step.outcome;
    }
  };
  client.start();
  take(server.start(), "s2c");
  for (let guard = 0; guard < 20; guard++) {
    if (toClient.length && !res.client) take(client.receive(toClient.shift()!), "c2s");
    else if (toServer.length && !res.server) take(server.receive(toServer.shift()!), "s2c");
    else break;
  }
  return res;
}

/** A fake clock at the vectors' time. */
export function fakeClock(): FakeClock {
  return new FakeClock(1736812800);
}
