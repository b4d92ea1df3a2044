import { assert, assertEquals, assertThrows } from "../../../support/assert.ts";
import { ScriptedRng } from "../../../../lib/clock.ts";
import { fromB64, fromHex, toB64, toHex } from "../../../../lib/crypto/sodium.ts";
import { defaultJson } from "../../../../lib/json/canonical.ts";
import { ClientHandshake } from "../../../../lib/wire/v09/handshake_client.ts";
import {
  challengeText,
  serverPassphraseProof,
  verifiedText,
} from "../../../../lib/wire/v09/handshake_stage1.ts";
import {
  type ClientHandshakeConfig,
  type Established,
  type Failed,
  failureError,
  type HandshakeStep,
  type LocalIdentity,
  type TofuPeer,
  wireTexts,
} from "../../../../lib/wire/v09/handshake_types.ts";
import { buildHello, type HelloInput } from "../../../../lib/wire/v09/hello.ts";
import {
  acceptAll,
  ALICE,
  BOB,
  DAVE,
  fakeClock,
  localIdentity,
  rngOf,
  textsFrom,
  type Transcript,
  transcript,
} from "./handshake_fixtures.ts";

/** Our client as the transcript's client, replaying its recorded draws. */
function clientFor(t: Transcript, over: Partial<ClientHandshakeConfig> = {}): ClientHandshake {
  const legacy = t.client.advertised_version !== "ironmesh/0.9";
  return new ClientHandshake({
    // The scripted legacy client advertises no X25519 key.
    identity: localIdentity(t.client.identity, t.name !== "legacy_client_v06", t.client.name),
    passphrase: t.client_passphrase ?? t.passphrase,
    advertisedVersion: t.client.advertised_version,
    minProtocolVersion: legacy ? "ironmesh/0.6" : undefined,
    rng: rngOf(t, "client"),
    clock: fakeClock(),
    tofu: acceptAll(),
    ...over,
  });
}

/** Drive our client with the recorded server messages; returns every text it sent. */
function replay(t: Transcript, c: ClientHandshake): { sent: string[]; last: HandshakeStep } {
  let last = c.start();
  const sent: string[] = [];
  for (const text of textsFrom(t, "server->client")) {
    last = c.receive(text);
    sent.push(...wireTexts(last));
    if (last.outcome) break;
  }
  return { sent, last };
}

function established(step: HandshakeStep): Established {
  assertEquals(step.outcome?.kind, "established", JSON.stringify(step.outcome));
  return step.outcome as Established;
}

function failed(step: HandshakeStep, code: string): Failed {
  assertEquals(step.outcome?.kind, "failed");
  const f = step.outcome as Failed;
  assertEquals(f.code, code, f.reason);
  assertEquals(wireTexts(step), [], "the client never sends error messages");
  return f;
}

Deno.test("transcripts with a reproducible client: exact texts, session key and peer as recorded", () => {
  const names = [
    "v09_alice_server_bob_client",
    "v09_non_ascii_client_name",
    "legacy_both_v06",
    "legacy_client_v06",
  ];
  for (const name of names) {
    const t = transcript(name);
    const { sent, last } = replay(t, clientFor(t));
    assertEquals(sent, textsFrom(t, "client->server"), name);
    const e = established(last);
    assertEquals(toHex(e.sessionKey), t.derived.session_key_hex, name);
    const rec = t.result.client_registered_peers
      ? Object.values(t.result.client_registered_peers)[0]
      : undefined;
    assertEquals(e.peer.nodeId, t.server.identity.node_id);
    assertEquals(e.peer.name, "alice");
    assertEquals(e.peer.identityPublicB64, t.server.identity.ed25519_public_b64);
    assertEquals(toHex(e.peer.x25519Public!), t.server.identity.x25519_public_hex, name);
    assertEquals(e.peer.x25519BindingValid, true);
    if (rec) {
      assertEquals(toHex(e.sessionKey), rec.session_key_hex);
      assertEquals(e.peer.helloScheme, rec.hello_sig_scheme);
      assertEquals(e.peer.protocolVersion, rec.protocol_version);
      assertEquals(toHex(e.peer.ephemeralPublic), rec.ephemeral_public_hex);
    } else {
      // The scripted 0.6 client: the 0.9 server answered with the legacy scheme.
      assertEquals(e.peer.helloScheme, "legacy");
      assertEquals(e.peer.protocolVersion, "ironmesh/0.9");
    }
  }
});

Deno.test("C-HS-02/03: proof message fields; the proof matches each recorded transcript", () => {
  for (const name of ["wrong_passphrase", "bad_hello_signature", "hello_missing_from"]) {
    const t = transcript(name);
    const c = clientFor(t);
    const step = c.receive(t.messages[0].text);
    assertEquals(step.send, [t.messages[1].text], name);
    assertEquals(Object.keys(JSON.parse(step.send[0])), ["type", "from", "proof"]);
    assertEquals(JSON.parse(step.send[0]).proof, t.derived.client_proof);
  }
});

Deno.test("server refusals map to codes: wrong passphrase, ERROR after HELLO", () => {
  const wrong = transcript("wrong_passphrase");
  const f = failed(replay(wrong, clientFor(wrong)).last, "HS_WRONG_PASSPHRASE");
  assertEquals(
    failureError(f).oneLine(),
    'server rejected our passphrase proof: "Wrong passphrase" — the mesh passphrase differs from ' +
      "the peer's; check --passphrase-file on both nodes",
  );
  for (
    const [name, code] of [["bad_hello_signature", "HS_BAD_SIGNATURE"], [
      "hello_missing_from",
      "HS_BAD_HELLO",
    ]]
  ) {
    const t = transcript(name);
    const c = clientFor(t);
    c.receive(t.messages[0].text);
    c.receive(t.messages[2].text);
    failed(c.receive(t.messages[4].text), code);
  }
});

Deno.test("C-HS-09: SKIP_OFFER over WebSocket aborts; RATE_LIMITED and auth-blocked refusals map", () => {
  const t = transcript("v09_alice_server_bob_client");
  const skip = defaultJson({
    type: "SKIP_OFFER",
    from: ALICE.node_id,
    channel_binding: "d56294e40f47c8c7a524ec8c0fd83711968de30b951414088b82014b131d79ef",
    protocol_version: "ironmesh/0.9",
  });
  failed(clientFor(t).receive(skip), "HS_SKIP_OFFER");
  failed(
    clientFor(t).receive('{"type": "RATE_LIMITED", "error": "Too many connections"}'),
    "HS_RATE_LIMITED",
  );
  failed(
    clientFor(t).receive(
      '{"type": "PASSPHRASE_REJECTED", "error": "Too many authentication failures. Try again later."}',
    ),
    "HS_AUTH_BLOCKED",
  );
  failed(clientFor(t).receive('{"type": "HELLO"}'), "HS_MALFORMED");
});

Deno.test("garbage, binary junk, deep JSON and bad nonces are HS_MALFORMED", () => {
  const t = transcript("v09_alice_server_bob_client");
  const junk: (string | Uint8Array)[] = [
    "garbage",
    new Uint8Array([1, 2, 3]),
    new TextEncoder().encode(t.messages[0].text),
    "[]",
    "[".repeat(65) + "]".repeat(65),
    challengeText(ALICE.node_id, "abcd", "ironmesh/0.9"),
    challengeText(ALICE.node_id, "zz".repeat(32), "ironmesh/0.9"),
    defaultJson({ type: "PASSPHRASE_CHALLENGE", nonce: 5 }),
    defaultJson({ type: "PASSPHRASE_CHALLENGE", nonce: "00".repeat(32), protocol_version: 9 }),
    '{"type": 18446744073709551616}',
    '{"type": -1e400}',
  ];
  for (const j of junk) failed(clientFor(t).receive(j), "HS_MALFORMED");
  // Garbage at the second and third stage too.
  const c = clientFor(t);
  c.receive(t.messages[0].text);
  failed(c.receive("{{{"), "HS_MALFORMED");
  const c2 = clientFor(t);
  c2.receive(t.messages[0].text);
  c2.receive(t.messages[2].text);
  failed(c2.receive(new Uint8Array(64)), "HS_MALFORMED");
});

Deno.test("C-HS-08: missing, empty or wrong server_proof aborts with HS_SERVER_PROOF", () => {
  const t = transcript("v09_alice_server_bob_client");
  const nonce = fromHex(t.derived.server_nonce_hex);
  const variants = [
    defaultJson({ type: "PASSPHRASE_VERIFIED", from: ALICE.node_id, status: "verified" }),
    verifiedText(ALICE.node_id, ""),
    verifiedText(ALICE.node_id, serverPassphraseProof("another-passphrase-123", nonce)),
    // The client proof (not reversed) is not the server proof.
    verifiedText(ALICE.node_id, t.derived.client_proof),
    verifiedText(ALICE.node_id, t.derived.server_proof.toUpperCase()),
    defaultJson({ type: "PASSPHRASE_VERIFIED", server_proof: 12 }),
  ];
  const reasons = variants.map((v) => {
    const c = clientFor(t);
    c.receive(t.messages[0].text);
    return failed(c.receive(v), "HS_SERVER_PROOF").reason;
  });
  assertEquals(reasons[0], "PASSPHRASE_VERIFIED carries no server_proof");
  assertEquals(reasons[2], "server_proof is wrong");
  const c = clientFor(t);
  c.receive(t.messages[0].text);
  failed(c.receive('{"type": "HELLO"}'), "HS_MALFORMED");
});

/** A client that has sent its HELLO in the v09 transcript. */
function atServerHello(over: Partial<ClientHandshakeConfig> = {}) {
  const t = transcript("v09_alice_server_bob_client");
  const c = clientFor(t, over);
  c.receive(t.messages[0].text);
  c.receive(t.messages[2].text);
  return { c, t, hello: JSON.parse(t.messages[4].text) as Record<string, unknown> };
}

/** A server HELLO signed by `who` (default Alice) for the v09 transcript's nonce. */
function serverHello(
  over: Partial<HelloInput> = {},
  fields: Record<string, unknown> = {},
  who: LocalIdentity = localIdentity(ALICE),
): string {
  const t = transcript("v09_alice_server_bob_client");
  const h = buildHello({
    nodeId: who.nodeId,
    name: who.name,
    ephemeralPublic: new Uint8Array(32).fill(5),
    identityPublic: who.publicKey,
    identitySecretKey: who.secretKey,
    protocolVersion: "ironmesh/0.9",
    channelBinding: t.derived.server_nonce_hex,
    scheme: "context-v1",
    x25519: who.x25519,
    ...over,
  });
  return defaultJson({ ...JSON.parse(h.text), ...fields });
}

Deno.test("the recorded server HELLO is accepted and a fresh Alice-signed one too", () => {
  established(
    atServerHello().c.receive(transcript("v09_alice_server_bob_client").messages[4].text),
  );
  const e = established(atServerHello().c.receive(serverHello()));
  assertEquals(e.peer.nodeId, ALICE.node_id);
});

Deno.test("C-HS-14/19/27, §18.4: server HELLO defects each abort with their code", () => {
  const cases: [string, string][] = [
    // Replay of a genuine server HELLO from another connection.
    [transcript("legacy_both_v06").messages[4].text, "HS_CHANNEL_BINDING"],
    [serverHello({ channelBinding: "ab".repeat(32) }), "HS_CHANNEL_BINDING"],
    [serverHello({}, { channel_binding: undefined }), "HS_CHANNEL_BINDING"],
    [serverHello({}, { name: "mallory" }), "HS_BAD_SIGNATURE"],
    [serverHello({}, { ephemeral_public: toB64(new Uint8Array(32).fill(6)) }), "HS_BAD_SIGNATURE"],
    [serverHello({}, { identity_public: undefined, signature: undefined }), "HS_UNSIGNED_PEER"],
    [serverHello({}, { identity_public: undefined }), "HS_UNSIGNED_PEER"],
    [serverHello({}, { signature: undefined }), "HS_UNSIGNED_PEER"],
    [serverHello({ nodeId: BOB.node_id }), "HS_BAD_HELLO"],
    [serverHello({}, { from: undefined }), "HS_BAD_HELLO"],
    [serverHello({}, { rns_link_id: "0f1e2d3c4b5a69788796a5b4c3d2e1f0" }), "HS_BAD_HELLO"],
    [serverHello({}, { type: "PONG" }), "HS_BAD_HELLO"],
    // Downgrade: the server advertised 0.9 in stage 1 but signs a 0.6 HELLO (legacy scheme).
    [serverHello({ protocolVersion: "ironmesh/0.6", scheme: "legacy" }), "HS_BAD_SIGNATURE"],
    // A 0.9 HELLO must carry the context signature, not the attached one.
    [serverHello({ scheme: "legacy" }), "HS_BAD_SIGNATURE"],
    [
      '{"type": "ERROR", "error": "Invalid HELLO: missing ephemeral_public", "code": "INVALID_FRAME"}',
      "HS_BAD_HELLO",
    ],
  ];
  for (const [text, code] of cases) {
    const { c } = atServerHello();
    failed(c.receive(text), code);
    assertEquals(c.state, "done");
  }
});

Deno.test("small-order server ephemeral key: HS_SMALL_ORDER_KEY", () => {
  for (
    const hex of [
      "00".repeat(32),
      "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    ]
  ) {
    const { c } = atServerHello();
    const f = failed(
      c.receive(serverHello({ ephemeralPublic: fromHex(hex) })),
      "HS_SMALL_ORDER_KEY",
    );
    assertEquals(f.peerNodeId, ALICE.node_id);
  }
});

Deno.test("pinned server identity (invite pin): another key is HS_TOFU_MISMATCH", () => {
  const pinnedAlice = atServerHello({ pinnedPeerIdentity: fromB64(ALICE.ed25519_public_b64) });
  established(pinnedAlice.c.receive(pinnedAlice.t.messages[4].text));
  const pinnedDave = atServerHello({ pinnedPeerIdentity: fromB64(DAVE.ed25519_public_b64) });
  failed(pinnedDave.c.receive(pinnedDave.t.messages[4].text), "HS_TOFU_MISMATCH");
});

Deno.test("TOFU hook refusal and version floor on the client side", () => {
  const seen: TofuPeer[] = [];
  const ok = atServerHello({ tofu: acceptAll(seen), address: "198.51.100.1:8765" });
  established(ok.c.receive(ok.t.messages[4].text));
  assertEquals(seen[0].role, "client");
  assertEquals(seen[0].nodeId, ALICE.node_id);
  assertEquals(seen[0].address, "198.51.100.1:8765");

  const revoked = atServerHello({
    tofu: () => ({ ok: false, code: "HS_REVOKED", reason: "alice is revoked" }),
  });
  assertEquals(
    failed(revoked.c.receive(revoked.t.messages[4].text), "HS_REVOKED").reason,
    "alice is revoked",
  );

  const tooNew = atServerHello({ minProtocolVersion: "ironmesh/0.10" });
  failed(tooNew.c.receive(tooNew.t.messages[4].text), "HS_VERSION_TOO_OLD");
});

Deno.test("client timeouts: from construction, re-armed after each message we send", () => {
  const t = transcript("v09_alice_server_bob_client");
  const clock = fakeClock();
  const c = clientFor(t, { clock });
  assertEquals(c.deadlineMs, 30_000);
  clock.advance(10);
  c.start();
  assertEquals(c.deadlineMs, 40_000);
  c.receive(t.messages[0].text);
  clock.advance(29.999);
  assertEquals(c.checkTimeout(), null);
  clock.advance(0.001);
  failed(c.checkTimeout()!, "HS_TIMEOUT");
  assertThrows(() => c.receive(t.messages[2].text));

  const clock2 = fakeClock();
  const late = clientFor(t, { clock: clock2 });
  clock2.advance(31);
  failed(late.receive(t.messages[0].text), "HS_TIMEOUT");
});

Deno.test("the ephemeral secret comes from the rng and is wiped after the key is derived", () => {
  const t = transcript("v09_alice_server_bob_client");
  const secret = fromHex(t.random_draws.find((d) => d.role === "client")!.hex);
  const c = clientFor(t, { rng: new ScriptedRng([secret]) });
  const { last } = replay(t, c);
  assertEquals(toHex(established(last).sessionKey), t.derived.session_key_hex);
  assertEquals(toHex(secret), "00".repeat(32));
  // Also wiped when the handshake fails after drawing it.
  const secret2 = fromHex(t.random_draws.find((d) => d.role === "client")!.hex);
  const c2 = clientFor(t, { rng: new ScriptedRng([secret2]) });
  c2.receive(t.messages[0].text);
  c2.receive(t.messages[2].text);
  assert(toHex(secret2) !== "00".repeat(32));
  c2.abort("HS_MALFORMED", "connection closed");
  assertEquals(toHex(secret2), "00".repeat(32));
});

Deno.test("invite token is carried in our HELLO outside the signed body", () => {
  const t = transcript("v09_alice_server_bob_client");
  const c = clientFor(t, { inviteToken: "imv1.token" });
  c.receive(t.messages[0].text);
  const hello = JSON.parse(c.receive(t.messages[2].text).send[0]);
  assertEquals(hello.invite_token, "imv1.token");
  const recorded = JSON.parse(t.messages[3].text);
  assertEquals(hello.signature, recorded.signature);
});
