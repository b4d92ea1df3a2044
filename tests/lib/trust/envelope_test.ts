import { assert, assertEquals, assertNotEquals } from "../../support/assert.ts";
import { fromB64, fromHex, fromUtf8, secretBoxOpen, toHex } from "../../../lib/crypto/sodium.ts";
import { legacyTrustMacKey } from "../../../lib/crypto/kdf.ts";
import { canonicalJson } from "../../../lib/json/canonical.ts";
import { PyFloat } from "../../../lib/json/py_float.ts";
import { parseJsonObject } from "../../../lib/json/parse.ts";
import {
  decodeEnvelope,
  encodeEnvelope,
  encodeInner,
  macHex,
  trustKeys,
  v2MacInput,
} from "../../../lib/trust/envelope.ts";
import { ALICE_SEED, T, vectorText } from "./fixtures/trust_vectors.ts";

const KEYS = trustKeys(ALICE_SEED);

Deno.test("trust keys derive from the seed as recorded", () => {
  assertEquals(T.agent_key_hex, T.owner.ed25519_seed_hex);
  assertEquals(toHex(KEYS.mac), T.mac_key_hex);
  assertEquals(toHex(KEYS.box), T.box_key_hex);
});

Deno.test("C-ST-04: v2 MAC recomputes over 'v=2|c=' ‖ ciphertext", () => {
  const env = JSON.parse(vectorText("known_peers.json"));
  assertEquals(v2MacInput(env.ciphertext), T.envelope.mac_input_text);
  assertEquals(macHex(KEYS.mac, T.envelope.mac_input_text), env._mac);
  assertEquals(vectorText("known_peers.json"), T.envelope.file_text);
});

Deno.test("v2 decrypts to the recorded inner text; encodeInner re-creates it exactly", () => {
  const env = JSON.parse(vectorText("known_peers.json"));
  const pt = secretBoxOpen(fromB64(env.ciphertext), KEYS.box)!;
  assertEquals(fromUtf8(pt), T.inner_json_text);
  const res = decodeEnvelope(vectorText("known_peers.json"), KEYS);
  assert(res.ok);
  assertEquals(res.format, "v2");
  assertEquals(Object.keys(res.plain.peers).length, 6);
  assertEquals(Object.keys(res.plain.revoked).length, 2);
  assertEquals(encodeInner(res.plain), T.inner_json_text);
  // Python float-ness is kept: 1736812800.0 stays a float, the int revocation stays an int.
  const bob = res.plain.peers["a5f14a936d289f5d15e90fcaff39a373"];
  assert(bob.first_seen instanceof PyFloat);
  assertEquals(res.plain.revoked["0123456789abcdef0123456789abcdef"].timestamp, 1736812901);
});

Deno.test("encodeEnvelope with the recorded final nonce reproduces known_peers.json byte for byte", () => {
  const last = T.history[T.history.length - 1].random_draws[0];
  const text = encodeEnvelope(T.inner_json_text, KEYS, fromHex(last.hex));
  assertEquals(text, T.envelope.file_text);
  assert(!text.endsWith("\n"));
});

Deno.test("C-ST-06: tampered ciphertext and a wrong key both fail the MAC", () => {
  const tampered = decodeEnvelope(vectorText("known_peers.tampered.json"), KEYS);
  assert(!tampered.ok);
  assertEquals(tampered.failure, "mac");
  const wrong = decodeEnvelope(
    vectorText("known_peers.json"),
    trustKeys(fromHex(T.wrong_agent_key.agent_key_hex)),
  );
  assert(!wrong.ok);
  assertEquals(wrong.failure, "mac");
});

Deno.test("C-ST-05: v1 plaintext loads with its MAC over CANON without _mac", () => {
  const text = vectorText("known_peers.v1.json");
  const { _mac: _ignored, ...raw } = JSON.parse(text);
  const res = decodeEnvelope(text, KEYS);
  assert(res.ok);
  assertEquals(res.format, "v1");
  assertEquals(
    Object.keys(res.plain.peers).length,
    T.v1_legacy.reference_loader_result.peers_loaded,
  );
  assertEquals(
    Object.keys(res.plain.revoked).length,
    T.v1_legacy.reference_loader_result.revoked_loaded,
  );
  assertEquals(encodeInner(res.plain), T.inner_json_text);
  // The MAC covers CANON of the parsed object without _mac, floats kept as Python floats.
  const { _mac, ...body } = parseJsonObject(text, { preserveNumbers: true });
  assertEquals(macHex(KEYS.mac, canonicalJson(body)), _mac);
  assertEquals(canonicalJson(body), T.inner_json_text);
  assertNotEquals(canonicalJson(raw), T.inner_json_text); // plain JSON.parse loses "….0"
});

Deno.test("v1: legacy home-dir MAC accepted only when that key is offered; MAC-less accepted", () => {
  const body = { peers: T.inner.peers, revoked: {} };
  const legacy = legacyTrustMacKey("/home/op");
  const parsed = decodeEnvelope(JSON.stringify({ ...body, _mac: "00" }), KEYS);
  assert(!parsed.ok);
  const res0 = decodeEnvelope(vectorText("known_peers.v1.json"), KEYS);
  assert(res0.ok);
  const canon = encodeInner({ peers: res0.plain.peers, revoked: {}, extras: {} });
  const text = canon.slice(0, -1) + `,"_mac":"${macHex(legacy, canon)}"}`;
  assertEquals(decodeEnvelope(text, KEYS).ok, false);
  const res = decodeEnvelope(text, KEYS, { legacyMacKey: legacy });
  assert(res.ok);
  assertEquals(res.format, "v1-legacy-key");
  const bare = decodeEnvelope(JSON.stringify(body), KEYS);
  assert(bare.ok);
  assertEquals(bare.format, "v1-unauthenticated");
});

Deno.test("malformed files fail closed: bad JSON, wrong structure, unknown version", () => {
  for (
    const [text, failure] of [
      ["{not json", "json"],
      ["[1,2]", "structure"],
      ['{"peers": [1], "revoked": {}}', "structure"],
      ['{"version": 3, "ciphertext": "", "_mac": ""}', "version"],
      ['{"version": 2, "ciphertext": 5, "_mac": ""}', "structure"],
    ] as const
  ) {
    const res = decodeEnvelope(text, KEYS);
    assert(!res.ok, text);
    assertEquals(res.failure, failure, text);
  }
});

Deno.test("extra plaintext keys survive a decode/encode round trip", () => {
  const nonce = new Uint8Array(24);
  const inner = canonicalJson({
    names: { bob: "a5f14a936d289f5d15e90fcaff39a373" },
    peers: {},
    revoked: {},
  });
  const res = decodeEnvelope(encodeEnvelope(inner, KEYS, nonce), KEYS);
  assert(res.ok);
  assertEquals(res.plain.extras, { names: { bob: "a5f14a936d289f5d15e90fcaff39a373" } });
  assertEquals(encodeInner(res.plain), inner);
});
