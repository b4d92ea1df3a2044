import { assert, assertEquals } from "../../../support/assert.ts";
import { loadVector } from "../../../support/vectors.ts";
import {
  fromB64,
  fromHex,
  signKeyPairFromSeed,
  toB64,
  toHex,
  utf8,
  x25519Base,
} from "../../../../lib/crypto/sodium.ts";
import { nodeIdOf } from "../../../../lib/identity/node_id.ts";
import { defaultJson } from "../../../../lib/json/canonical.ts";
import {
  buildHello,
  canonicalHelloBytes,
  canonicalHelloText,
  type HelloBody,
  helloSchemeFor,
  signHello,
  verifyHello,
  verifyHelloSignature,
  verifyX25519Advertisement,
} from "../../../../lib/wire/v09/hello.ts";
import { ALICE, BOB, localIdentity, transcript } from "./handshake_fixtures.ts";

interface HelloCase {
  name: string;
  inputs: HelloBody;
  text: string;
  bytes_hex: string;
  signature_v09_detached_ctx_hex: string;
  signature_v09_detached_ctx_b64: string;
  signature_legacy_attached_b64: string;
}
const CASES = loadVector<{ cases: HelloCase[] }>("canonical_json.json").cases
  .filter((c) => c.name.startsWith("hello"));
const alice = localIdentity(ALICE);
const NONCE = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

Deno.test("canonical HELLO bytes and both signatures match every canonical_json.json HELLO case", () => {
  assertEquals(CASES.length, 5);
  for (const c of CASES) {
    assertEquals(canonicalHelloText(c.inputs), c.text, c.name);
    assertEquals(toHex(canonicalHelloBytes(c.inputs)), c.bytes_hex, c.name);
    const canon = canonicalHelloBytes(c.inputs);
    const ctx = signHello(canon, alice.secretKey, "context-v1");
    assertEquals(toHex(ctx), c.signature_v09_detached_ctx_hex, c.name);
    assertEquals(toB64(ctx), c.signature_v09_detached_ctx_b64, c.name);
    assertEquals(
      toB64(signHello(canon, alice.secretKey, "legacy")),
      c.signature_legacy_attached_b64,
    );
    assert(verifyHelloSignature(canon, ctx, alice.publicKey, "context-v1"));
    assert(
      verifyHelloSignature(
        canon,
        fromB64(c.signature_legacy_attached_b64),
        alice.publicKey,
        "legacy",
      ),
    );
    // A context signature is not a legacy one and vice versa.
    assert(!verifyHelloSignature(canon, ctx, alice.publicKey, "legacy"), c.name);
  }
});

Deno.test("C-HS-10/11: the §3.4 zero-seed HELLO canonical form and context signature", () => {
  const kp = signKeyPairFromSeed(new Uint8Array(32));
  const body: HelloBody = {
    channel_binding: NONCE,
    ephemeral_public: toB64(x25519Base(new Uint8Array(32).fill(1))),
    identity_public: toB64(kp.publicKey),
    name: "alice",
    protocol_version: "ironmesh/0.9",
  };
  assertEquals(body.ephemeral_public, "pOCSkrZRwni5dyxWn1+puxPZBrRqtoyd+dwrRAn4ogk=");
  assertEquals(
    canonicalHelloText(body),
    `{"channel_binding":"${NONCE}","ephemeral_public":"pOCSkrZRwni5dyxWn1+puxPZBrRqtoyd+dwrRAn4ogk=",` +
      `"identity_public":"O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=","name":"alice","protocol_version":"ironmesh/0.9"}`,
  );
  assertEquals(
    toB64(signHello(canonicalHelloBytes(body), kp.secretKey, "context-v1")),
    "eNHAlo/+lsTfUYGhIYOgjbB+jeMUJiXB8yeX8rp+aoMU+kBndJ2v2PrTXTnT6eQ7I2UQwKUDW9rd5sQ38lA7Cg==",
  );
});

Deno.test("C-HS-12: legacy attached signature is sig(64) ‖ canonical and must open to the rebuilt body", () => {
  const body = CASES[0].inputs;
  const canon = canonicalHelloBytes(body);
  const sig = signHello(canon, alice.secretKey, "legacy");
  assertEquals(sig.length, 64 + canon.length);
  assertEquals(toHex(sig.subarray(64)), toHex(canon));
  const other = canonicalHelloBytes({ ...body, name: "mallory" });
  assert(!verifyHelloSignature(other, sig, alice.publicKey, "legacy"));
});

Deno.test("helloSchemeFor: context-v1 only when both the selecting and our own version are ≥ 0.9", () => {
  assertEquals(helloSchemeFor("ironmesh/0.9", "ironmesh/0.9"), "context-v1");
  assertEquals(helloSchemeFor("ironmesh/0.10", "ironmesh/0.9"), "context-v1");
  assertEquals(helloSchemeFor("ironmesh/0.6", "ironmesh/0.9"), "legacy");
  assertEquals(helloSchemeFor("", "ironmesh/0.9"), "legacy");
  assertEquals(helloSchemeFor("ironmesh/0.9", "ironmesh/0.6"), "legacy");
});

Deno.test("buildHello reproduces the recorded client HELLO of v09_alice_server_bob_client", () => {
  const t = transcript("v09_alice_server_bob_client");
  const clientEph = fromHex(t.random_draws.find((d) => d.role === "client")!.hex);
  const hello = buildHello({
    nodeId: BOB.node_id,
    name: "bob",
    ephemeralPublic: x25519Base(clientEph),
    identityPublic: fromHex(BOB.ed25519_public_hex),
    identitySecretKey: localIdentity(BOB).secretKey,
    protocolVersion: "ironmesh/0.9",
    channelBinding: t.derived.server_nonce_hex,
    scheme: "context-v1",
    x25519: localIdentity(BOB).x25519,
  });
  assertEquals(hello.text, t.messages[3].text);
  assertEquals(new TextDecoder().decode(hello.canonical), t.derived.client_hello!.canonical_text);
  assertEquals(toB64(hello.signature), t.derived.client_hello!.signature_b64);
});

/** A valid signed HELLO object by `who`, for mutation tests. */
function helloObj(
  who = BOB,
  over: Partial<Record<string, unknown>> = {},
  version = "ironmesh/0.9",
): Record<string, unknown> {
  const id = localIdentity(who);
  const h = buildHello({
    nodeId: id.nodeId,
    name: id.name,
    ephemeralPublic: x25519Base(new Uint8Array(32).fill(7)),
    identityPublic: id.publicKey,
    identitySecretKey: id.secretKey,
    protocolVersion: version,
    channelBinding: NONCE,
    scheme: helloSchemeFor(version, "ironmesh/0.9"),
    x25519: id.x25519,
  });
  return { ...JSON.parse(h.text), ...over };
}

const OPTS = { channelBinding: NONCE, localVersion: "ironmesh/0.9" };

Deno.test("verifyHello accepts a valid HELLO and reports the verified peer", () => {
  const v = verifyHello(helloObj(), OPTS);
  assert(v.ok);
  assertEquals(v.hello.nodeId, BOB.node_id);
  assertEquals(v.hello.name, "bob");
  assertEquals(v.hello.scheme, "context-v1");
  assertEquals(v.hello.peerVersion, "ironmesh/0.9");
  assertEquals(toHex(v.hello.x25519Public!), BOB.x25519_public_hex);
  assertEquals(v.hello.x25519Advertised, true);
  assertEquals(toHex(v.hello.ephemeralPublic), toHex(x25519Base(new Uint8Array(32).fill(7))));
});

Deno.test("verifyHello refuses each defect with its own rejection, in the reference's order", () => {
  const cases: [Record<string, unknown>, string][] = [
    [helloObj(BOB, { from: undefined }), "missing-fields"],
    [helloObj(BOB, { ephemeral_public: "" }), "missing-fields"],
    [helloObj(BOB, { rns_link_id: "0f1e" }), "link-binding"],
    [helloObj(BOB, { identity_public: undefined, signature: undefined }), "unsigned"],
    [helloObj(BOB, { identity_public: undefined }), "unsigned"],
    [helloObj(BOB, { signature: undefined }), "identity-without-signature"],
    [helloObj(BOB, { name: 5 }), "bad-field"],
    [helloObj(BOB, { protocol_version: null }), "bad-field"],
    [helloObj(BOB, { channel_binding: "00".repeat(32) }), "channel-binding"],
    [helloObj(BOB, { channel_binding: undefined }), "channel-binding"],
    [helloObj(BOB, { identity_public: "not base64!" }), "bad-signature"],
    [helloObj(BOB, { signature: "AAAA" }), "bad-signature"],
    [helloObj(BOB, { name: "mallory" }), "bad-signature"],
    [helloObj(BOB, { ephemeral_public: toB64(new Uint8Array(32).fill(8)) }), "bad-signature"],
    [helloObj(BOB, { protocol_version: "ironmesh/0.6" }), "bad-signature"],
    [helloObj(BOB, { from: ALICE.node_id }), "from-mismatch"],
  ];
  for (const [msg, want] of cases) {
    const v = verifyHello(msg, OPTS);
    assert(!v.ok, want);
    assertEquals(v.rejection, want);
  }
});

Deno.test("verifyHello: a legacy HELLO is a downgrade when context-v1 is required", () => {
  const legacy = helloObj(BOB, {}, "ironmesh/0.6");
  const ok = verifyHello(legacy, OPTS);
  assert(ok.ok);
  assertEquals(ok.hello.scheme, "legacy");
  const v = verifyHello(legacy, { ...OPTS, requireContextScheme: true });
  assert(!v.ok);
  assertEquals(v.rejection, "downgrade");
});

Deno.test("verifyHello: a signed HELLO whose ephemeral key is not 32 bytes is refused after the signature", () => {
  const id = localIdentity(BOB);
  const eph = toB64(new Uint8Array(31));
  const canon = canonicalHelloBytes({
    channel_binding: NONCE,
    ephemeral_public: eph,
    identity_public: toB64(id.publicKey),
    name: "bob",
    protocol_version: "ironmesh/0.9",
  });
  const msg = helloObj(BOB, {
    ephemeral_public: eph,
    signature: toB64(signHello(canon, id.secretKey, "context-v1")),
  });
  const v = verifyHello(msg, OPTS);
  assert(!v.ok);
  assertEquals(v.rejection, "bad-ephemeral");
});

Deno.test("verifyHello: absent name falls back to `from`, absent version is ironmesh/0.3 and legacy", () => {
  const id = localIdentity(BOB);
  const eph = toB64(x25519Base(new Uint8Array(32).fill(9)));
  const canon = canonicalHelloBytes({
    channel_binding: NONCE,
    ephemeral_public: eph,
    identity_public: toB64(id.publicKey),
    name: id.nodeId,
    protocol_version: "",
  });
  const msg = {
    type: "HELLO",
    from: id.nodeId,
    ephemeral_public: eph,
    identity_public: toB64(id.publicKey),
    channel_binding: NONCE,
    signature: toB64(signHello(canon, id.secretKey, "legacy")),
  };
  const v = verifyHello(msg, OPTS);
  assert(v.ok);
  assertEquals(v.hello.name, id.nodeId);
  assertEquals(v.hello.peerVersion, "ironmesh/0.3");
  assertEquals(v.hello.scheme, "legacy");
  assertEquals(v.hello.x25519Advertised, false);
  assertEquals(v.hello.x25519Public, null);
});

Deno.test("C-HS-22: X25519 advertisement valid, invalid (other key's binding) and absent", () => {
  const bob = localIdentity(BOB), al = localIdentity(ALICE);
  const pub = toB64(bob.x25519!.publicKey), sig = toB64(bob.x25519!.bindingSignature);
  const ok = verifyX25519Advertisement(bob.publicKey, pub, sig);
  assertEquals(toHex(ok.publicKey!), BOB.x25519_public_hex);
  assertEquals(verifyX25519Advertisement(al.publicKey, pub, sig), {
    advertised: true,
    publicKey: null,
  });
  assertEquals(verifyX25519Advertisement(bob.publicKey, pub, toB64(new Uint8Array(64))), {
    advertised: true,
    publicKey: null,
  });
  assertEquals(verifyX25519Advertisement(bob.publicKey, pub, 7), {
    advertised: true,
    publicKey: null,
  });
  assertEquals(verifyX25519Advertisement(bob.publicKey, undefined, sig), {
    advertised: false,
    publicKey: null,
  });
  // In a HELLO, a bad binding does not fail the handshake; the key is just not used.
  const v = verifyHello(
    helloObj(BOB, { x25519_binding_signature_b64: toB64(new Uint8Array(64)) }),
    OPTS,
  );
  assert(v.ok);
  assertEquals(v.hello.x25519Public, null);
  assertEquals(v.hello.x25519Advertised, true);
});

Deno.test("C-HS-27: our HELLO `from` is the node_id of our identity key; non-ASCII names are escaped", () => {
  const t = transcript("v09_non_ascii_client_name");
  const msg = JSON.parse(t.messages[3].text);
  assertEquals(msg.from, nodeIdOf(fromB64(msg.identity_public)));
  assertEquals(msg.name, "alé-🚀");
  assert(t.messages[3].text.includes('"name": "al\\u00e9-\\ud83d\\ude80"'));
  assertEquals(defaultJson({ name: msg.name }), '{"name": "al\\u00e9-\\ud83d\\ude80"}');
  assertEquals(utf8(t.derived.client_hello!.canonical_text).length > 0, true);
});
