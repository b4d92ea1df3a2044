import { assert, assertEquals, assertThrows } from "../../support/assert.ts";
import { FakeClock, ScriptedRng } from "../../../lib/clock.ts";
import { fromHex, signKeyPairFromSeed, toB64, toHex } from "../../../lib/crypto/sodium.ts";
import {
  buildCapabilityAnnounce,
  buildLegacyCapabilityAnnounce,
  capabilityAnnounceCanonical,
  capabilityAnnounceSignedMessage,
  CapabilityRegistry,
  type CapabilityRegistryOptions,
  MAX_CAPABILITIES,
  normalizeCapabilities,
  parseCapabilityAnnounce,
  randomIndex,
} from "../../../lib/routing/capabilities.ts";
import { nodeSigner } from "../../../lib/wire/v09/frame.ts";
import { loadVector, type VectorFloat, vectorFloat } from "../../support/vectors.ts";
import { CONTROL, ident, TestRng } from "../wire/v09/fixtures.ts";
import { bytes, identity, json, text } from "./helpers.ts";

const alice = ident("alice"), bob = ident("bob"), carol = ident("carol");

interface CanonCase {
  name: string;
  inputs: {
    origin: string;
    capabilities: string[];
    announced_at: number | VectorFloat;
    version: number;
  };
  text: string;
  bytes_hex: string;
  signer_seed_hex?: string;
  signature_hex?: string;
}

const CANON = loadVector<{ cases: CanonCase[] }>("canonical_json.json").cases
  .filter((c) => c.name.startsWith("capability_announce"));

// ---------------------------------------------------------------------------------------------
// Golden vectors

Deno.test("capabilities vectors: canonical bytes and the 36-byte-context signature", () => {
  assertEquals(CANON.length, 2);
  for (const c of CANON) {
    const at = typeof c.inputs.announced_at === "number"
      ? c.inputs.announced_at
      : vectorFloat(c.inputs.announced_at);
    const canon = capabilityAnnounceCanonical(
      c.inputs.origin,
      c.inputs.capabilities,
      at,
      c.inputs.version,
    );
    assertEquals(text(canon), c.text, c.name);
    assertEquals(toHex(canon), c.bytes_hex);
    if (c.signature_hex) {
      const kp = signKeyPairFromSeed(fromHex(c.signer_seed_hex!));
      const msg = capabilityAnnounceSignedMessage(c.inputs.origin, c.inputs.capabilities, at);
      assertEquals(msg.length, 36 + canon.length);
      assertEquals(toHex(nodeSigner(kp.secretKey).sign(msg)), c.signature_hex);
    }
  }
});

Deno.test("capabilities vectors: alice's signed CAPABILITY_ANNOUNCE is reproduced byte for byte", () => {
  const c = CONTROL.payloads.find((x) => x.name === "CAPABILITY_ANNOUNCE")! as unknown as {
    payload_text: string;
    payload_json: { announced_at: number };
    signed_message_hex: string;
  };
  const payload = buildCapabilityAnnounce({
    signer: nodeSigner(alice.secretKey),
    origin: alice.nodeId,
    capabilities: ["llm:llama3", "chat", " chat "],
    announcedAt: c.payload_json.announced_at,
  });
  assertEquals(text(payload), c.payload_text);
  assertEquals(
    toHex(capabilityAnnounceSignedMessage(alice.nodeId, ["chat", "llm:llama3"], 1736812860)),
    c.signed_message_hex,
  );
  assertEquals(
    text(buildLegacyCapabilityAnnounce(alice.nodeId, ["llm:llama3", "chat"])),
    (CONTROL as unknown as { legacy_capability_announce_example: string })
      .legacy_capability_announce_example,
  );
});

// ---------------------------------------------------------------------------------------------
// Receiving

const NOW = 1736812870;
const keys: Record<string, Uint8Array> = {
  [alice.nodeId]: alice.publicKey,
  [bob.nodeId]: bob.publicKey,
};

function registry(self = carol.nodeId, opts: Partial<CapabilityRegistryOptions> = {}) {
  const clock = new FakeClock(NOW);
  return {
    clock,
    r: new CapabilityRegistry({
      selfId: self,
      clock,
      keyLookup: (id) => keys[id] ?? null,
      ...opts,
    }),
  };
}

function signed(caps: string[], at: number, signer = alice): Uint8Array {
  return buildCapabilityAnnounce({
    signer: nodeSigner(signer.secretKey),
    origin: signer.nodeId,
    capabilities: caps,
    announcedAt: at,
  });
}

Deno.test("capabilities: the reference's announce is verified, learned, cached and flagged for relay", () => {
  const c = CONTROL.payloads.find((x) => x.name === "CAPABILITY_ANNOUNCE")!;
  const { r, clock } = registry();
  const payload = fromHex(c.payload_hex!);
  const res = r.onAnnounce(bob.nodeId, payload); // relayed by bob: the signature is what counts
  assertEquals([res.accepted, res.changed, res.relay, res.origin], [
    true,
    true,
    true,
    alice.nodeId,
  ]);
  assertEquals(res.auditEvents, [{
    event: "CAPABILITY_LEARNED",
    details: { origin: alice.nodeId, capabilities: ["chat", "llm:llama3"] },
  }]);
  assertEquals(r.remoteCapabilities(alice.nodeId), ["chat", "llm:llama3"]);
  const again = r.onAnnounce(alice.nodeId, payload);
  assertEquals([again.accepted, again.reason, again.relay, again.auditEvents], [
    false,
    "duplicate",
    false,
    [],
  ]);
  assertEquals(r.cachedEnvelopes().map((e) => [e.origin, toHex(e.payload)]), [
    [alice.nodeId, c.payload_hex],
  ]);
  clock.set(1736812860 + 301);
  assertEquals(r.cachedEnvelopes(), []); // older than 300 s: no longer replayed
});

Deno.test("capabilities: the reference's drop reasons are audited", () => {
  const { r } = registry();
  const bad = (res: ReturnType<typeof r.onAnnounce>) => [
    res.accepted,
    res.reason,
    res.auditEvents[0]?.event,
    res.auditEvents[0]?.details.reason,
  ];
  // Relayed but unsigned.
  const unsigned = bytes(`{"origin":"${alice.nodeId}","capabilities":["x"]}`);
  assertEquals(bad(r.onAnnounce(bob.nodeId, unsigned)), [
    false,
    "missing-sig",
    "CAPABILITY_ANNOUNCE_BAD_SIG",
    "missing-sig",
  ]);
  // Signed by an origin whose key we do not know.
  const stranger = identity("stranger");
  const fromStranger = buildCapabilityAnnounce({
    signer: nodeSigner(stranger.secretKey),
    origin: stranger.nodeId,
    capabilities: ["x"],
    announcedAt: NOW,
  });
  assertEquals(bad(r.onAnnounce(bob.nodeId, fromStranger))[1], "unknown-origin");
  // Stale (with its age) and, ours, too far in the future.
  const stale = r.onAnnounce(bob.nodeId, signed(["x"], NOW - 300.5));
  assertEquals([stale.reason, stale.auditEvents[0].details.age], ["stale", 300.5]);
  assert(r.onAnnounce(bob.nodeId, signed(["x"], NOW - 300)).accepted);
  assertEquals(r.onAnnounce(bob.nodeId, signed(["x"], NOW + 31)).reason, "future");
  assert(r.onAnnounce(bob.nodeId, signed(["x"], NOW + 30)).accepted);
  // A signature that does not cover the body.
  const fresh = registry().r;
  const tampered = text(signed(["chat"], NOW - 1)).replace('"chat"', '"root"');
  assertEquals(bad(fresh.onAnnounce(bob.nodeId, bytes(tampered)))[1], "bad-sig");
  // Signed by someone else than the origin.
  const wrongSigner = json(signed(["chat"], NOW - 2, bob));
  wrongSigner.origin = alice.nodeId;
  assertEquals(fresh.onAnnounce(bob.nodeId, bytes(JSON.stringify(wrongSigner))).reason, "bad-sig");
  assertEquals(fresh.remoteNodes(), []);
});

Deno.test("capabilities: a forged copy does not suppress the genuine announce (ours)", () => {
  const { r } = registry();
  const genuine = signed(["llm:llama3"], NOW - 5);
  const forged = text(genuine).replace("llm:llama3", "llm:evil00");
  assertEquals(r.onAnnounce(bob.nodeId, bytes(forged)).reason, "bad-sig");
  assert(r.onAnnounce(bob.nodeId, genuine).accepted);
  assertEquals(r.remoteCapabilities(alice.nodeId), ["llm:llama3"]);
});

Deno.test("capabilities: an older announce of the same origin does not overwrite a newer one", () => {
  const { r } = registry();
  assert(r.onAnnounce(alice.nodeId, signed(["new"], NOW - 10)).accepted);
  const old = r.onAnnounce(bob.nodeId, signed(["old"], NOW - 70));
  assertEquals([old.accepted, old.reason], [false, "superseded"]);
  assertEquals(r.remoteCapabilities(alice.nodeId), ["new"]);
  const newer = r.onAnnounce(alice.nodeId, signed(["newer"], NOW));
  assertEquals([newer.changed, r.remoteCapabilities(alice.nodeId)], [true, ["newer"]]);
});

Deno.test("capabilities: unsigned direct announces are accepted unless signatures are required", () => {
  const { r } = registry();
  const legacy = buildLegacyCapabilityAnnounce(bob.nodeId, ["embed", "chat"]);
  const res = r.onAnnounce(bob.nodeId, legacy);
  assertEquals([res.accepted, res.relay, res.changed], [true, false, true]);
  assertEquals(r.remoteCapabilities(bob.nodeId), ["chat", "embed"]);
  assertEquals(r.cachedEnvelopes(), []); // unsigned: never relayed
  assertEquals(r.onAnnounce(bob.nodeId, legacy).changed, false); // same set again
  const strict = registry(carol.nodeId, { requireSigned: true }).r;
  assertEquals(strict.onAnnounce(bob.nodeId, legacy).reason, "unsigned-refused");
  // origin defaults to the sender.
  assert(r.onAnnounce(bob.nodeId, bytes('{"capabilities":["z"]}')).accepted);
  assertEquals(r.remoteCapabilities(bob.nodeId), ["z"]);
});

Deno.test("capabilities: parsing filters, truncates and refuses malformed bodies", () => {
  const p = parseCapabilityAnnounce(
    bytes(`{"origin":"o","capabilities":["a",1,"",null,"b"],"announced_at":5,"version":1}`),
    "peer",
  );
  assertEquals([p.origin, p.capabilities, p.dropped, p.announcedAt, p.version], [
    "o",
    ["a", "b"],
    3,
    5,
    1,
  ]);
  const many = JSON.stringify({ capabilities: Array.from({ length: 1500 }, (_, i) => `c${i}`) });
  assertEquals(parseCapabilityAnnounce(bytes(many), "p").capabilities.length, MAX_CAPABILITIES);
  for (const body of ["[]", '{"origin":""}', '{"origin":3}', '{"capabilities":"x"}', "{"]) {
    assertThrows(() => parseCapabilityAnnounce(bytes(body), "p"));
  }
  const { r } = registry();
  assertEquals(r.onAnnounce(bob.nodeId, new Uint8Array(1_048_577)).reason, "too-large");
  // A signed body whose version is not an int is malformed, not a bad signature.
  const v = json(signed(["x"], NOW));
  v.version = "1";
  assertEquals(r.onAnnounce(bob.nodeId, bytes(JSON.stringify(v))).reason, "malformed");
});

Deno.test("capabilities: the signature covers the filtered list (non-strings dropped first)", () => {
  const { r } = registry();
  const o = json(signed(["chat"], NOW));
  o.capabilities = [7, "chat", ""];
  const res = r.onAnnounce(bob.nodeId, bytes(JSON.stringify(o)));
  assertEquals([res.accepted, r.remoteCapabilities(alice.nodeId)], [true, ["chat"]]);
});

Deno.test("capabilities: our own announce echoed back is ignored", () => {
  const { r } = registry(alice.nodeId);
  const res = r.onAnnounce(bob.nodeId, signed(["x"], NOW));
  assertEquals([res.accepted, res.reason, res.auditEvents], [false, "own-origin", []]);
  assertEquals(r.remoteNodes(), []);
});

// ---------------------------------------------------------------------------------------------
// Local set, lookup, selection

Deno.test("capabilities: the local set is stripped, deduplicated and sorted; empty is not announced", () => {
  const { r } = registry(alice.nodeId);
  assertEquals(r.buildLocalAnnounce(nodeSigner(alice.secretKey)), null);
  assertEquals(r.setLocal([" llm:llama3 ", "chat", "chat", "", "tool:web-search"]), true);
  assertEquals(r.setLocal(["tool:web-search", "llm:llama3", "chat"]), false);
  assertEquals(r.localCapabilities(), ["chat", "llm:llama3", "tool:web-search"]);
  const p = json(r.buildLocalAnnounce(nodeSigner(alice.secretKey), 1736812860)!);
  assertEquals([p.origin, p.capabilities, p.version], [
    alice.nodeId,
    ["chat", "llm:llama3", "tool:web-search"],
    1,
  ]);
  assertEquals(normalizeCapabilities(["b", "\u00a0a\u2003", 0, null, "é", "z"]), [
    "a",
    "b",
    "z",
    "é",
  ]);
});

function populated() {
  const { r, clock } = registry(alice.nodeId);
  r.setLocal(["llm:local", "chat"]);
  r.restore({
    remote: {
      [bob.nodeId]: ["llm:llama3", "embed"],
      [carol.nodeId]: ["llm:mistral", "tool:web"],
      dave: ["chat"],
    },
  });
  return { r, clock };
}

Deno.test("capabilities: find() globs over the local and remote sets, case-sensitively", () => {
  const { r } = populated();
  assertEquals(r.find("llm:*"), [
    { nodeId: alice.nodeId, capability: "llm:local" },
    { nodeId: bob.nodeId, capability: "llm:llama3" },
    { nodeId: carol.nodeId, capability: "llm:mistral" },
  ]);
  assertEquals(r.find("LLM:*"), []);
  assertEquals(r.find("llm:[lm]?????").map((m) => m.capability), ["llm:llama3"]);
  assertEquals(r.find("chat").map((m) => m.nodeId), [alice.nodeId, "dave"]);
  assertEquals(r.all()[alice.nodeId], ["chat", "llm:local"]);
});

Deno.test("capabilities: select() never picks this node; first/random/all strategies", () => {
  const { r } = populated();
  assertEquals(r.select("llm:*", "all"), [bob.nodeId, carol.nodeId]);
  assertEquals(r.select("llm:*", "first"), [bob.nodeId]);
  const rtt: Record<string, number> = { [carol.nodeId]: 12, [bob.nodeId]: 40 };
  assertEquals(r.select("llm:*", "first", { rank: (id) => rtt[id] }), [carol.nodeId]);
  assertEquals(r.select("llm:*", "all", { rank: (id) => rtt[id] }), [carol.nodeId, bob.nodeId]);
  assertEquals(r.select("llm:*", "all", { isCandidate: (id) => id !== bob.nodeId }), [
    carol.nodeId,
  ]);
  assertEquals(r.select("nothing:*", "first"), []);
  assertEquals(r.select("chat", "all"), ["dave"]);
  // random: index = 32-bit draw mod 2 (0 → first, 0xffffffff → second).
  const pick = (b: number[]) =>
    r.select("llm:*", "random", { rng: new ScriptedRng([new Uint8Array(b)]) });
  assertEquals(pick([0, 0, 0, 0]), [bob.nodeId]);
  assertEquals(pick([0xff, 0xff, 0xff, 0xff]), [carol.nodeId]);
  assertThrows(() => r.select("llm:*", "random"), RangeError);
  assertThrows(() => r.select("llm:*", "bogus" as "all"), RangeError);
});

Deno.test("capabilities: randomIndex is unbiased (rejects the top partial range)", () => {
  // n = 3: 2^32 mod 3 = 1, so 0xffffffff is rejected and the next draw is used.
  const rng = new ScriptedRng([
    new Uint8Array([0xff, 0xff, 0xff, 0xff]),
    new Uint8Array([0, 0, 0, 5]),
  ]);
  assertEquals(randomIndex(rng, 3), 2);
  const counts = [0, 0, 0];
  const t = new TestRng("uniform");
  for (let i = 0; i < 3000; i++) counts[randomIndex(t, 3)]++;
  assert(counts.every((c) => c > 900 && c < 1100), `counts ${counts}`);
  assertThrows(() => randomIndex(t, 0), RangeError);
});

Deno.test("capabilities: relay targets exclude the origin and the sender; forget drops a node", () => {
  const { r } = registry();
  assertEquals(
    r.relayTargets(alice.nodeId, [alice.nodeId, bob.nodeId, "x", carol.nodeId], bob.nodeId),
    ["x"],
  );
  r.onAnnounce(alice.nodeId, signed(["a"], NOW));
  assertEquals(r.cachedEnvelopes().length, 1);
  r.forgetRemote(alice.nodeId);
  assertEquals([r.remoteNodes(), r.cachedEnvelopes()], [[], []]);
  assertEquals(toB64(alice.publicKey).length, 44);
});
