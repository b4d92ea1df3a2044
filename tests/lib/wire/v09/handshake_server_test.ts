import { assert, assertEquals, assertThrows } from "../../../support/assert.ts";
import { loadVector } from "../../../support/vectors.ts";
import { ScriptedRng } from "../../../../lib/clock.ts";
import { fromB64, fromHex, toB64, toHex } from "../../../../lib/crypto/sodium.ts";
import { defaultJson } from "../../../../lib/json/canonical.ts";
import { ClientHandshake } from "../../../../lib/wire/v09/handshake_client.ts";
import { admissionRefusal, ServerHandshake } from "../../../../lib/wire/v09/handshake_server.ts";
import {
  type Established,
  type Failed,
  type HandshakeConfig,
  type HandshakeStep,
  wireTexts,
} from "../../../../lib/wire/v09/handshake_types.ts";
import { buildHello } from "../../../../lib/wire/v09/hello.ts";
import {
  acceptAll,
  ALICE,
  BOB,
  fakeClock,
  localIdentity,
  PASSPHRASE,
  pump,
  rngOf,
  textsFrom,
  type Transcript,
  transcript,
  TRANSCRIPTS,
} from "./handshake_fixtures.ts";

/** Our server as the transcript's server, replaying its recorded draws. */
function serverFor(t: Transcript, over: Partial<HandshakeConfig> = {}): ServerHandshake {
  return new ServerHandshake({
    identity: localIdentity(t.server.identity, true, t.server.name),
    passphrase: t.passphrase,
    advertisedVersion: t.server.advertised_version,
    rng: rngOf(t, "server"),
    clock: fakeClock(),
    tofu: acceptAll(),
    address: "192.0.2.7",
    ...over,
  });
}

/** Drive our server with the recorded client messages; returns every text it put on the wire. */
function replay(t: Transcript, s: ServerHandshake): { sent: string[]; last: HandshakeStep } {
  let last = s.start();
  const sent = wireTexts(last);
  for (const text of textsFrom(t, "client->server")) {
    last = s.receive(text);
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
  assert(f.hint.length > 10);
  return f;
}

/** The recorded peer the reference server registered, checked against our Established. */
function assertRegistered(t: Transcript, e: Established): void {
  const rec = Object.values(t.result.server_registered_peers)[0];
  assertEquals(e.peer.nodeId, rec.peer_id);
  assertEquals(toHex(e.sessionKey), rec.session_key_hex);
  assertEquals(toHex(e.sessionKey), t.derived.session_key_hex);
  assertEquals(e.peer.helloScheme, rec.hello_sig_scheme);
  assertEquals(e.peer.protocolVersion, rec.protocol_version);
  assertEquals(e.peer.name, rec.agent_name);
  assertEquals(toHex(e.peer.ephemeralPublic), rec.ephemeral_public_hex);
  assertEquals(
    e.peer.x25519Public ? toHex(e.peer.x25519Public) : null,
    rec.x25519_identity_public_hex,
  );
  assertEquals(e.peer.x25519BindingValid, rec.x25519_identity_public_hex !== null);
}

Deno.test("every transcript: our server emits the exact recorded texts and ends as recorded", () => {
  assertEquals(TRANSCRIPTS.length, 7);
  for (const t of TRANSCRIPTS) {
    // Legacy peers are admitted only with a lowered floor (Ours: default ironmesh/0.9).
    const floor = t.name.startsWith("legacy") ? "ironmesh/0.6" : undefined;
    const { sent, last } = replay(t, serverFor(t, { minProtocolVersion: floor }));
    assertEquals(sent, textsFrom(t, "server->client"), t.name);
    const registered = Object.keys(t.result.server_registered_peers).length === 1;
    if (registered) assertRegistered(t, established(last));
    else assertEquals(last.outcome?.kind, "failed", t.name);
  }
});

Deno.test("C-HS-01/04: challenge fields and nonce; server proof over the reversed nonce", () => {
  const t = transcript("v09_alice_server_bob_client");
  const s = serverFor(t);
  const first = JSON.parse(s.start().send[0]);
  assertEquals(Object.keys(first), ["type", "from", "nonce", "protocol_version"]);
  assertEquals(first.from, ALICE.node_id);
  assertEquals(first.nonce, t.derived.server_nonce_hex);
  assertEquals(s.nonceHex, t.derived.server_nonce_hex);
  const verified = JSON.parse(s.receive(t.messages[1].text).send[0]);
  assertEquals(verified.server_proof, t.derived.server_proof);
  assertEquals(s.state, "await-hello");
});

Deno.test("C-HS-05: wrong passphrase → PASSPHRASE_REJECTED, HS_WRONG_PASSPHRASE, auth failure", () => {
  const t = transcript("wrong_passphrase");
  const { sent, last } = replay(t, serverFor(t));
  assertEquals(
    sent[1],
    '{"type": "PASSPHRASE_REJECTED", "from": "f55eae1a043e0fc95d8694706070202b", "error": "Wrong passphrase"}',
  );
  const f = failed(last, "HS_WRONG_PASSPHRASE");
  assertEquals(f.authFailure, true);
  assertEquals(last.send, []);
  assertEquals(
    f.hint,
    "the mesh passphrase differs from the peer's; check --passphrase-file on both nodes",
  );
});

Deno.test("missing, empty, non-string or upper-case proofs count as wrong passphrases", () => {
  const t = transcript("v09_alice_server_bob_client");
  const proofs: unknown[] = [undefined, "", 5, null, t.derived.client_proof.toUpperCase()];
  for (const proof of proofs) {
    const s = serverFor(t);
    s.start();
    const f = failed(
      s.receive(defaultJson({ type: "PASSPHRASE_CHALLENGE", from: BOB.node_id, proof })),
      "HS_WRONG_PASSPHRASE",
    );
    assertEquals(f.authFailure, true, String(proof));
    assertEquals(JSON.parse(f.closeWith!).error, "Wrong passphrase");
  }
});

Deno.test("C-HS-06: wrong stage-1 type gets the reference's refusal text (control_payloads vector)", () => {
  const refusals =
    loadVector<{ handshake_text_refusals: { name: string; messages: { text: string }[] }[] }>(
      "control_payloads.json",
    ).handshake_text_refusals;
  const r = refusals.find((x) => x.name === "wrong_stage1_message_type")!;
  const nonce = JSON.parse(r.messages[0].text).nonce;
  const s = new ServerHandshake({
    identity: localIdentity(ALICE),
    passphrase: PASSPHRASE,
    rng: new ScriptedRng([fromHex(nonce)]),
    clock: fakeClock(),
    tofu: acceptAll(),
  });
  assertEquals(s.start().send, [r.messages[0].text]);
  const step = s.receive(r.messages[1].text);
  assertEquals(wireTexts(step), [r.messages[2].text]);
  assertEquals(failed(step, "HS_MALFORMED").authFailure, undefined);
  // Python's str() of the missing and non-string types.
  const typeText = (type: unknown) => {
    const s2 = serverFor(transcript("v09_alice_server_bob_client"));
    s2.start();
    return JSON.parse(wireTexts(s2.receive(defaultJson({ type })))[0]).error;
  };
  assertEquals(typeText(undefined), "Expected PASSPHRASE_CHALLENGE, got None");
  assertEquals(typeText(true), "Expected PASSPHRASE_CHALLENGE, got True");
  assertEquals(typeText(["a", 1]), "Expected PASSPHRASE_CHALLENGE, got ['a', 1]");
  // Numbers JavaScript cannot hold exactly are still rendered, never thrown on.
  const big = serverFor(transcript("v09_alice_server_bob_client"));
  big.start();
  assertEquals(
    JSON.parse(wireTexts(big.receive('{"type": 18446744073709551616}'))[0]).error,
    "Expected PASSPHRASE_CHALLENGE, got 18446744073709551616",
  );
  const inf = serverFor(transcript("v09_alice_server_bob_client"));
  inf.start();
  assertEquals(
    JSON.parse(wireTexts(inf.receive('{"type": 1e400}'))[0]).error,
    "Expected PASSPHRASE_CHALLENGE, got inf",
  );
});

Deno.test("garbage, binary junk, non-objects and deep JSON are HS_MALFORMED with nothing sent", () => {
  const t = transcript("v09_alice_server_bob_client");
  const deep = "[".repeat(65) + "]".repeat(65);
  const junk: (string | Uint8Array)[] = [
    "not json",
    "",
    '{"type": "PASSPHRASE_CHALLENGE"',
    new Uint8Array([0xe7, 0xf6, 4, 0, 1]),
    new TextEncoder().encode(t.messages[1].text),
    "[1, 2]",
    '"PASSPHRASE_CHALLENGE"',
    "NaN",
    deep,
    `{"a": ${deep}}`,
    " ".repeat(1_048_577),
  ];
  for (const j of junk) {
    for (const stage of [1, 2]) {
      const s = serverFor(t);
      s.start();
      if (stage === 2) s.receive(t.messages[1].text);
      const step = s.receive(j);
      assertEquals(wireTexts(step), [], String(j).slice(0, 20));
      failed(step, "HS_MALFORMED");
      assertEquals(s.state, "done");
    }
  }
  // 64 nested arrays are within the depth limit: parsed, then refused for its shape, not its depth.
  const s = serverFor(t);
  s.start();
  const ok64 = s.receive(`{"type": ${"[".repeat(63)}1${"]".repeat(63)}}`);
  assertEquals(failed(ok64, "HS_MALFORMED").closeWith !== undefined, true);
});

/** A server that has verified Bob's proof, and Bob's genuine HELLO for it (as an object). */
function atHello(over: Partial<HandshakeConfig> = {}) {
  const t = transcript("v09_alice_server_bob_client");
  const s = serverFor(t, over);
  s.start();
  s.receive(t.messages[1].text);
  return { s, t, hello: JSON.parse(t.messages[3].text) as Record<string, unknown> };
}

/** Re-sign a mutated HELLO as Bob (so only the field under test is wrong). */
function bobHello(channelBinding: string, over: Record<string, unknown> = {}, eph?: Uint8Array) {
  const bob = localIdentity(BOB);
  const h = buildHello({
    nodeId: bob.nodeId,
    name: bob.name,
    ephemeralPublic: eph ?? new Uint8Array(32).fill(9),
    identityPublic: bob.publicKey,
    identitySecretKey: bob.secretKey,
    protocolVersion: "ironmesh/0.9",
    channelBinding,
    scheme: "context-v1",
    x25519: bob.x25519,
  });
  return defaultJson({ ...JSON.parse(h.text), ...over });
}

function helloRejection(
  mutate: (h: Record<string, unknown>, nonce: string) => string,
  code: string,
  wire: string | null,
): Failed {
  const { s, hello, t } = atHello();
  const step = s.receive(mutate(hello, t.derived.server_nonce_hex));
  const f = failed(step, code);
  assertEquals(step.send, [], "C-HS-20: no server HELLO before the client HELLO is verified");
  assertEquals(f.closeWith ? JSON.parse(f.closeWith) : null, wire ? JSON.parse(wire) : null);
  return f;
}

const AUTH = (e: string) => defaultJson({ type: "ERROR", error: e, code: "AUTH_FAILED" });

Deno.test("C-HS-15/16/17/18/19/27 and channel binding: each HELLO defect with its code and text", () => {
  helloRejection(
    (h) => defaultJson({ ...h, from: undefined }),
    "HS_BAD_HELLO",
    '{"type": "ERROR", "error": "Invalid HELLO: missing ephemeral_public", "code": "INVALID_FRAME"}',
  );
  helloRejection(
    (h) => defaultJson({ ...h, ephemeral_public: undefined }),
    "HS_BAD_HELLO",
    '{"type": "ERROR", "error": "Invalid HELLO: missing ephemeral_public", "code": "INVALID_FRAME"}',
  );
  helloRejection(
    (h) => defaultJson({ ...h, rns_link_id: "0f1e2d3c4b5a69788796a5b4c3d2e1f0" }),
    "HS_BAD_HELLO",
    AUTH("HELLO link binding rejected: rns_link_id is only valid on the Reticulum transport"),
  );
  helloRejection(
    (h) => defaultJson({ ...h, signature: undefined }),
    "HS_UNSIGNED_PEER",
    AUTH("HELLO signature required when identity_public is provided"),
  );
  helloRejection(
    (h) => defaultJson({ ...h, identity_public: undefined, signature: undefined }),
    "HS_UNSIGNED_PEER",
    AUTH("HELLO identity_public and signature are required"),
  );
  helloRejection(
    (h) => defaultJson({ ...h, identity_public: undefined }),
    "HS_UNSIGNED_PEER",
    AUTH("HELLO identity_public and signature are required"),
  );
  helloRejection(
    (h) => defaultJson({ ...h, name: "mallory" }),
    "HS_BAD_SIGNATURE",
    AUTH("HELLO signature verification failed"),
  );
  helloRejection(
    (h) => defaultJson({ ...h, ephemeral_public: toB64(new Uint8Array(32).fill(3)) }),
    "HS_BAD_SIGNATURE",
    AUTH("HELLO signature verification failed"),
  );
  helloRejection(
    (h) => {
      const sig = fromB64(h.signature as string);
      sig[10] ^= 1;
      return defaultJson({ ...h, signature: toB64(sig) });
    },
    "HS_BAD_SIGNATURE",
    AUTH("HELLO signature verification failed"),
  );
  // Signed over our nonce, but the field claims another connection.
  helloRejection(
    (_h, nonce) => bobHello(nonce, { channel_binding: "ab".repeat(32) }),
    "HS_CHANNEL_BINDING",
    AUTH("HELLO channel binding does not match this connection"),
  );
  // A genuine HELLO from another connection (replay).
  helloRejection(
    () => transcript("legacy_both_v06").messages[3].text,
    "HS_CHANNEL_BINDING",
    AUTH("HELLO channel binding does not match this connection"),
  );
  // Correctly signed by Bob, but `from` claims Alice.
  helloRejection(
    (_h, nonce) => bobHello(nonce, { from: ALICE.node_id }),
    "HS_BAD_HELLO",
    AUTH("HELLO from does not match identity_public"),
  );
  helloRejection(
    (h) => defaultJson({ ...h, type: "PING" }),
    "HS_BAD_HELLO",
    null,
  );
});

Deno.test("small-order ephemeral keys: HS_SMALL_ORDER_KEY, no message, no server HELLO", () => {
  const smallOrder = [
    new Uint8Array(32),
    fromHex("0100000000000000000000000000000000000000000000000000000000000000"),
    fromHex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    fromHex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    fromHex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
  ];
  for (const eph of smallOrder) {
    const { s, t } = atHello();
    const step = s.receive(bobHello(t.derived.server_nonce_hex, {}, eph));
    const f = failed(step, "HS_SMALL_ORDER_KEY");
    assertEquals(wireTexts(step), [], toHex(eph));
    assertEquals(f.peerNodeId, BOB.node_id);
  }
});

Deno.test("post-HELLO refusals come after our HELLO was sent: TOFU hook, version floor", () => {
  const t = transcript("v09_alice_server_bob_client");
  const revoked = replay(
    t,
    serverFor(t, { tofu: () => ({ ok: false, code: "HS_REVOKED", reason: "node revoked" }) }),
  );
  assertEquals(revoked.sent, textsFrom(t, "server->client"));
  const f = failed(revoked.last, "HS_REVOKED");
  assertEquals(f.reason, "node revoked");
  assertEquals(f.peerNodeId, BOB.node_id);
  assertEquals(f.closeWith, undefined);

  const mismatch = replay(
    t,
    serverFor(t, { tofu: () => ({ ok: false, code: "HS_TOFU_MISMATCH", reason: "pin differs" }) }),
  );
  failed(mismatch.last, "HS_TOFU_MISMATCH");

  // C-HS-23: legacy 0.6 client with the default floor: HELLO sent, then closed without a message.
  const legacy = transcript("legacy_client_v06");
  const old = replay(legacy, serverFor(legacy));
  assertEquals(old.sent, textsFrom(legacy, "server->client"));
  const v = failed(old.last, "HS_VERSION_TOO_OLD");
  assertEquals(v.closeWith, undefined);
  assertEquals(v.peerNodeId, legacy.client.identity.node_id);
});

Deno.test("the TOFU hook sees the verified peer: node_id from the key, name, version, address", () => {
  const t = transcript("v09_non_ascii_client_name");
  const seen: Parameters<HandshakeConfig["tofu"]>[0][] = [];
  const { last } = replay(t, serverFor(t, { tofu: acceptAll(seen) }));
  established(last);
  assertEquals(seen.length, 1);
  assertEquals(seen[0].nodeId, t.client.identity.node_id);
  assertEquals(seen[0].name, "alé-🚀");
  assertEquals(seen[0].identityPublicB64, t.client.identity.ed25519_public_b64);
  assertEquals(toHex(seen[0].identityPublic), t.client.identity.ed25519_public_hex);
  assertEquals(seen[0].protocolVersion, "ironmesh/0.9");
  assertEquals(seen[0].address, "192.0.2.7");
  assertEquals(seen[0].role, "server");
});

Deno.test("timeouts: 30 s per receive on the injected clock, re-armed after each stage", () => {
  const t = transcript("v09_alice_server_bob_client");
  const clock = fakeClock();
  const s = serverFor(t, { clock });
  s.start();
  assertEquals(s.deadlineMs, 30_000);
  clock.advance(29.9);
  assertEquals(s.checkTimeout(), null);
  s.receive(t.messages[1].text);
  assertEquals(s.deadlineMs, 59_900);
  clock.advance(29.9);
  assertEquals(s.checkTimeout(), null);
  clock.advance(0.1);
  const step = s.checkTimeout()!;
  failed(step, "HS_TIMEOUT");
  assertEquals(wireTexts(step), []);
  assertEquals(s.deadlineMs, null);
  assertEquals(s.checkTimeout(), null);

  // A message that arrives after the deadline is refused as a timeout.
  const clock2 = fakeClock();
  const s2 = serverFor(t, { clock: clock2, receiveTimeoutMs: 5000 });
  s2.start();
  clock2.advance(5);
  failed(s2.receive(t.messages[1].text), "HS_TIMEOUT");
});

Deno.test("state misuse throws; abort ends the handshake and later aborts are no-ops", () => {
  const t = transcript("v09_alice_server_bob_client");
  const s = serverFor(t);
  assertThrows(() => s.receive("{}"));
  s.start();
  assertThrows(() => s.start());
  failed(s.abort("HS_MALFORMED", "peer closed the connection"), "HS_MALFORMED");
  assertEquals(s.abort("HS_TIMEOUT"), { send: [] });
  assertThrows(() => s.receive(t.messages[1].text));
  assertThrows(
    () =>
      new ServerHandshake({
        identity: { ...localIdentity(ALICE), nodeId: BOB.node_id },
        passphrase: PASSPHRASE,
        tofu: acceptAll(),
      }),
  );
});

Deno.test("§5.1 admission refusal texts equal the control_payloads vectors", () => {
  const refusals =
    loadVector<{ handshake_text_refusals: { name: string; messages: { text: string }[] }[] }>(
      "control_payloads.json",
    ).handshake_text_refusals;
  const text = (name: string) => refusals.find((r) => r.name === name)!.messages[0].text;
  assertEquals(admissionRefusal("ok"), null);
  assertEquals(admissionRefusal("global-rate"), {
    code: "HS_RATE_LIMITED",
    text: text("global_connection_rate_limit"),
  });
  assertEquals(admissionRefusal("ip-rate"), {
    code: "HS_RATE_LIMITED",
    text: text("per_ip_rate_limit"),
  });
  assertEquals(admissionRefusal("auth-blocked"), {
    code: "HS_AUTH_BLOCKED",
    text: text("ip_blocked_after_auth_failures"),
  });
});

Deno.test("the server HELLO scheme follows the client's HELLO version (legacy client → attached)", () => {
  const t = transcript("legacy_client_v06");
  const { sent, last } = replay(t, serverFor(t, { minProtocolVersion: "ironmesh/0.6" }));
  const reply = JSON.parse(sent[2]);
  assertEquals(reply.protocol_version, "ironmesh/0.9");
  assertEquals(reply.signature, t.derived.server_hello!.signature_b64);
  assertEquals(fromB64(reply.signature).length, 64 + t.derived.server_hello!.canonical_text.length);
  assertEquals(established(last).peer.helloScheme, "legacy");
});

Deno.test("in memory: our client against our server with fresh randomness", () => {
  const seen: Parameters<HandshakeConfig["tofu"]>[0][] = [];
  const server = new ServerHandshake({
    identity: localIdentity(ALICE),
    passphrase: PASSPHRASE,
    tofu: acceptAll(seen),
  });
  const client = new ClientHandshake({
    identity: localIdentity(BOB),
    passphrase: PASSPHRASE,
    tofu: acceptAll(seen),
  });
  const r = pump(client, server);
  const se = r.server as Established, ce = r.client as Established;
  assertEquals(se.kind, "established");
  assertEquals(ce.kind, "established");
  assertEquals(toHex(se.sessionKey), toHex(ce.sessionKey));
  assertEquals(se.peer.nodeId, BOB.node_id);
  assertEquals(ce.peer.nodeId, ALICE.node_id);
  assertEquals([se.peer.helloScheme, ce.peer.helloScheme], ["context-v1", "context-v1"]);
  assertEquals(toHex(ce.peer.x25519Public!), ALICE.x25519_public_hex);
  assertEquals(seen.map((p) => p.role), ["server", "client"]);
  assertEquals(r.wire.map((w) => JSON.parse(w.text).type), [
    "PASSPHRASE_CHALLENGE",
    "PASSPHRASE_CHALLENGE",
    "PASSPHRASE_VERIFIED",
    "HELLO",
    "HELLO",
  ]);
});
