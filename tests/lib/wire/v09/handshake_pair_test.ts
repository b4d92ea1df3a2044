import { assert, assertEquals } from "../../../support/assert.ts";
import { fromHex, toB64, toHex } from "../../../../lib/crypto/sodium.ts";
import { Identity } from "../../../../lib/identity/identity.ts";
import { ClientHandshake } from "../../../../lib/wire/v09/handshake_client.ts";
import { ServerHandshake } from "../../../../lib/wire/v09/handshake_server.ts";
import {
  type ClientHandshakeConfig,
  type Established,
  type Failed,
  type HandshakeConfig,
  type HandshakeOutcome,
  localIdentityOf,
} from "../../../../lib/wire/v09/handshake_types.ts";
import {
  acceptAll,
  ALICE,
  BOB,
  DAVE,
  localIdentity,
  PASSPHRASE,
  pump,
} from "./handshake_fixtures.ts";

function pair(
  s: Partial<HandshakeConfig> = {},
  c: Partial<ClientHandshakeConfig> = {},
): { server: ServerHandshake; client: ClientHandshake } {
  return {
    server: new ServerHandshake({
      identity: localIdentity(ALICE),
      passphrase: PASSPHRASE,
      tofu: acceptAll(),
      ...s,
    }),
    client: new ClientHandshake({
      identity: localIdentity(BOB),
      passphrase: PASSPHRASE,
      tofu: acceptAll(),
      ...c,
    }),
  };
}

function est(o: HandshakeOutcome | undefined): Established {
  assertEquals(o?.kind, "established", JSON.stringify(o));
  return o as Established;
}

function fail(o: HandshakeOutcome | undefined, code: string): Failed {
  assertEquals(o?.kind, "failed");
  assertEquals((o as Failed).code, code, (o as Failed).reason);
  return o as Failed;
}

Deno.test("0.9 ↔ 0.9: same session key, context-v1 both ways, X25519 advertisements verified", () => {
  const { server, client } = pair({}, { identity: localIdentity(BOB, true, "bøb ✓") });
  const r = pump(client, server);
  const se = est(r.server), ce = est(r.client);
  assertEquals(toHex(se.sessionKey), toHex(ce.sessionKey));
  assertEquals(se.sessionKey.length, 32);
  assertEquals(se.peer.name, "bøb ✓");
  assertEquals(ce.peer.name, "alice");
  assertEquals([se.peer.helloScheme, ce.peer.helloScheme], ["context-v1", "context-v1"]);
  assertEquals(toHex(se.peer.x25519Public!), BOB.x25519_public_hex);
  assertEquals(toHex(ce.peer.x25519Public!), ALICE.x25519_public_hex);
  assertEquals(se.peer.protocolVersion, "ironmesh/0.9");
  // Each side derived the key from the other's ephemeral key as sent.
  assertEquals(r.wire.length, 5);
  assertEquals(toB64(se.peer.ephemeralPublic), JSON.parse(r.wire[3].text).ephemeral_public);
  assertEquals(toB64(ce.peer.ephemeralPublic), JSON.parse(r.wire[4].text).ephemeral_public);
  assertEquals(server.state, "done");
  assertEquals(client.state, "done");
});

Deno.test("v2 identities advertise no X25519 key: the peer falls back to the converted identity key", () => {
  const v2 = localIdentityOf(new Identity(fromHex(BOB.ed25519_seed_hex), "bob", null));
  assertEquals(v2.x25519, null);
  const { server, client } = pair({}, { identity: v2 });
  const r = pump(client, server);
  const se = est(r.server);
  assertEquals(se.peer.x25519Public, null);
  assertEquals(se.peer.x25519BindingValid, false);
  assertEquals(se.peer.x25519Advertised, false);
  est(r.client);
});

Deno.test("a legacy 0.6 client is admitted when the floor is lowered, refused otherwise", () => {
  const legacyClient = { identity: localIdentity(DAVE, false), advertisedVersion: "ironmesh/0.6" };
  const admitted = pump(...order(pair({ minProtocolVersion: "ironmesh/0.6" }, legacyClient)));
  const se = est(admitted.server), ce = est(admitted.client);
  assertEquals(toHex(se.sessionKey), toHex(ce.sessionKey));
  assertEquals(se.peer.helloScheme, "legacy");
  assertEquals(se.peer.protocolVersion, "ironmesh/0.6");
  // The 0.9 server answers a 0.6 client with the attached form, its body still saying 0.9.
  assertEquals(ce.peer.helloScheme, "legacy");
  assertEquals(ce.peer.protocolVersion, "ironmesh/0.9");

  const refused = pump(...order(pair({}, legacyClient)));
  const f = fail(refused.server, "HS_VERSION_TOO_OLD");
  assertEquals(f.peerNodeId, DAVE.node_id);
  assertEquals(f.closeWith, undefined);
  // Like the reference, the server HELLO went out before the floor check.
  assertEquals(refused.wire.filter((w) => w.dir === "s2c").length, 3);
});

Deno.test("both ends at 0.6 (floors lowered): attached signatures both ways", () => {
  const r = pump(...order(pair(
    { advertisedVersion: "ironmesh/0.6", minProtocolVersion: "ironmesh/0.6" },
    { advertisedVersion: "ironmesh/0.6", minProtocolVersion: "ironmesh/0.6" },
  )));
  assertEquals([est(r.server).peer.helloScheme, est(r.client).peer.helloScheme], [
    "legacy",
    "legacy",
  ]);
});

Deno.test("our 0.9 client to a server advertising 0.6 signs legacy and needs a lowered floor", () => {
  const old = { advertisedVersion: "ironmesh/0.6", minProtocolVersion: "ironmesh/0.6" };
  const ok = pump(...order(pair(old, { minProtocolVersion: "ironmesh/0.6" })));
  assertEquals(est(ok.server).peer.helloScheme, "legacy");
  assertEquals(est(ok.client).peer.protocolVersion, "ironmesh/0.6");
  const refused = pump(...order(pair(old)));
  fail(refused.client, "HS_VERSION_TOO_OLD");
});

Deno.test("wrong passphrase in memory: server counts an auth failure, client gets HS_WRONG_PASSPHRASE", () => {
  const r = pump(...order(pair({}, { passphrase: "not-the-mesh-passphrase" })));
  assertEquals(fail(r.server, "HS_WRONG_PASSPHRASE").authFailure, true);
  fail(r.client, "HS_WRONG_PASSPHRASE");
  assertEquals(r.wire.map((w) => JSON.parse(w.text).type), [
    "PASSPHRASE_CHALLENGE",
    "PASSPHRASE_CHALLENGE",
    "PASSPHRASE_REJECTED",
  ]);
});

Deno.test("tampering in flight: a rewritten client HELLO name, a forged server proof", () => {
  const renamed = pump(...order(pair()), (dir, text) => {
    const m = JSON.parse(text);
    return dir === "c2s" && m.type === "HELLO"
      ? text.replace('"name": "bob"', '"name": "alice"')
      : text;
  });
  fail(renamed.server, "HS_BAD_SIGNATURE");
  fail(renamed.client, "HS_BAD_SIGNATURE");

  const forged = pump(...order(pair()), (dir, text) => {
    const m = JSON.parse(text);
    return dir === "s2c" && m.type === "PASSPHRASE_VERIFIED"
      ? text.replace(/"server_proof": "[0-9a-f]+"/, `"server_proof": "${"0".repeat(64)}"`)
      : text;
  });
  fail(forged.client, "HS_SERVER_PROOF");
  // The client aborted before sending its HELLO; the server is still waiting for it.
  assertEquals(forged.server, undefined);
  assert(!forged.wire.some((w) => JSON.parse(w.text).type === "HELLO"));
});

Deno.test("a client with the wrong identity pin refuses the genuine server", () => {
  const r = pump(...order(pair({}, { pinnedPeerIdentity: fromHex(DAVE.ed25519_public_hex) })));
  fail(r.client, "HS_TOFU_MISMATCH");
  est(r.server);
});

/** pump() takes (client, server). */
function order(p: { server: ServerHandshake; client: ClientHandshake }) {
  return [p.client, p.server] as const;
}
