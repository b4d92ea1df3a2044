import { assert, assertEquals, assertThrows } from "../../support/assert.ts";
import { IronMeshError } from "../../../lib/errors.ts";
import { PyFloat } from "../../../lib/json/py_float.ts";
import { decodeEnvelope, trustKeys } from "../../../lib/trust/envelope.ts";
import { TrustData } from "../../../lib/trust/state.ts";
import { recordState } from "../../../lib/trust/records.ts";
import { ALICE_SEED, freshPeer, ID_BY_NAME, T, vectorText } from "./fixtures/trust_vectors.ts";

const NOW = 1736812800;

function vectorData(): TrustData {
  const res = decodeEnvelope(vectorText("known_peers.json"), trustKeys(ALICE_SEED));
  if (!res.ok) throw new Error(res.reason);
  return TrustData.fromPlain(res.plain);
}

Deno.test("states: missing trust_state → trusted, unrecognised → pending, unknown node → pending", () => {
  assertEquals(recordState(undefined), "trusted");
  assertEquals(recordState("weird"), "pending");
  assertEquals(recordState("blocked"), "blocked");
  const p = freshPeer();
  const d = TrustData.fromPlain({
    peers: { [p.nodeId]: { pubkey: p.b64, fingerprint: p.nodeId } },
    revoked: {},
    extras: {},
  });
  assertEquals(d.trustState(p.nodeId), "trusted");
  assertEquals(d.trustState("0".repeat(32)), "pending");
});

Deno.test("pin writes a reference-shaped record with float times and canonical key", () => {
  const d = new TrustData();
  const p = freshPeer();
  const res = d.pin(p.nodeId, p.b64, NOW, { state: "pending", pinnedVia: "invite", name: "zed" });
  const raw = d.rawPeer(p.nodeId)!;
  assertEquals(Object.keys(raw), [
    "pubkey",
    "fingerprint",
    "first_seen",
    "last_seen",
    "trust_state",
    "pinned_via",
  ]);
  assert(raw.first_seen instanceof PyFloat);
  assertEquals(raw.fingerprint, p.nodeId);
  assertEquals(res.events, [{
    event: "TOFU_NEW_PEER",
    details: { peer_id: p.nodeId, trust_state: "pending", pinned_via: "invite", name: "zed" },
  }]);
  assertEquals(d.nameOwner("zed"), p.nodeId);
  assertEquals(res.record.names, ["zed"]);
  assertThrows(
    () => d.pin(p.nodeId, p.b64, NOW, { state: "bogus" as never }),
    IronMeshError,
    "invalid trust state",
  );
  assertThrows(() => d.pin(p.nodeId, "not-b64", NOW), IronMeshError, "base64");
});

Deno.test("setState emits the reference CLI's events", () => {
  const d = vectorData();
  const carol = ID_BY_NAME.carol;
  const promote = d.setState(carol, "trusted", { actor: "cli" });
  assertEquals(promote.events, [{
    event: "PEER_PROMOTED",
    details: { peer_id: carol, old_state: "pending", new_state: "trusted", actor: "cli" },
  }]);
  assertEquals(d.setState(carol, "blocked").events[0].event, "PEER_BLOCKED");
  assertEquals(d.setState(carol, "pending-cap-change").events[0].event, "PEER_STATE_CHANGED");
  assertEquals(d.setState(carol, "pending-cap-change").changed, false);
  assertThrows(
    () => d.setState("e".repeat(32), "trusted"),
    IronMeshError,
    "not in the trust store",
  );
});

Deno.test("touch updates last_seen and canonicalises a non-canonical stored key", () => {
  const p = freshPeer();
  // Same bytes, but with a line break and whitespace that Python's lenient b64decode skips.
  const odd = p.b64.slice(0, 10) + "\n " + p.b64.slice(10);
  const d = TrustData.fromPlain({
    peers: { [p.nodeId]: { pubkey: odd, fingerprint: p.nodeId, first_seen: new PyFloat(1) } },
    revoked: {},
    extras: {},
  });
  d.touch(p.nodeId, NOW + 5, p.key);
  assertEquals(d.getPeer(p.nodeId)!.pubkey, p.b64);
  assertEquals(d.getPeer(p.nodeId)!.lastSeen, NOW + 5);
  const other = freshPeer();
  d.touch(p.nodeId, NOW + 6, other.key); // different bytes: the pin is left alone
  assertEquals(d.getPeer(p.nodeId)!.pubkey, p.b64);
});

Deno.test("forget deletes the pin and releases its names", () => {
  const d = new TrustData();
  const p = freshPeer();
  d.pin(p.nodeId, p.b64, NOW, { name: "zed" });
  const res = d.forget(p.nodeId, { actor: "cli" });
  assertEquals(res.events, [{
    event: "PEER_STATE_CHANGED",
    details: {
      peer_id: p.nodeId,
      old_state: "trusted",
      new_state: "forgotten",
      released_names: ["zed"],
      actor: "cli",
    },
  }]);
  assertEquals(d.getPeer(p.nodeId), undefined);
  assertEquals(d.nameOwner("zed"), undefined);
});

Deno.test("revocations: record, refuse re-pin, clear (recorded), advisory confirm", () => {
  const d = new TrustData();
  const p = freshPeer();
  d.pin(p.nodeId, p.b64, NOW, { name: "zed" });
  const rev = d.recordRevocation(p.nodeId, {
    revoker: "b".repeat(32),
    timestamp: NOW,
    reason: "r",
  });
  assertEquals(rev.events[0].details, {
    peer_id: p.nodeId,
    old_state: "trusted",
    new_state: "blocked",
    reason: "revocation",
    revoker: "b".repeat(32),
    revocation_reason: "r",
  });
  assertEquals(d.trustState(p.nodeId), "blocked");
  assertEquals(d.getPeer(p.nodeId), undefined);
  assertEquals(d.nameOwner("zed"), p.nodeId); // the name stays with the revoked node
  assertThrows(() => d.pin(p.nodeId, p.b64, NOW), IronMeshError, "revoked");
  const cleared = d.clearRevocation(p.nodeId, NOW + 10);
  assertEquals(cleared.events[0].details.new_state, "pending");
  assertEquals(d.revocationClearedAt(p.nodeId), NOW + 10);
  assertThrows(() => d.clearRevocation(p.nodeId, NOW), IronMeshError, "not revoked");
  const plain = d.toPlain();
  assertEquals(Object.keys(plain.extras).sort(), ["names", "revocations_cleared"]);

  const q = freshPeer();
  d.pin(q.nodeId, q.b64, NOW, { pinnedVia: "operator" });
  d.recordAdvisoryRevocation(q.nodeId, { revoker: "b".repeat(32), timestamp: NOW, reason: "x" });
  assertEquals(d.trustState(q.nodeId), "trusted");
  assertEquals(d.advisoryRevocation(q.nodeId)?.reason, "x");
  d.confirmAdvisoryRevocation(q.nodeId);
  assertEquals(d.trustState(q.nodeId), "blocked");
  assertEquals(d.advisoryRevocation(q.nodeId), undefined);
  assert(d.toPlain().revoked[q.nodeId].timestamp instanceof PyFloat);
});

Deno.test("clone is deep: changing the copy leaves the original untouched", () => {
  const d = vectorData();
  const c = d.clone();
  c.setState(ID_BY_NAME.bob, "blocked");
  c.forget(ID_BY_NAME.carol);
  assertEquals(d.trustState(ID_BY_NAME.bob), "trusted");
  assert(d.getPeer(ID_BY_NAME.carol) !== undefined);
  assertEquals(Object.keys(d.toPlain().peers).length, Object.keys(T.inner.peers).length);
});

Deno.test("names: bind, move, release, and unbindable names", () => {
  const d = new TrustData();
  const [a, b] = [freshPeer(), freshPeer()];
  assertEquals(d.bindName("bob", a.nodeId).events[0].details.previous_owner, null);
  assertEquals(d.bindName("bob", a.nodeId).changed, false);
  const moved = d.bindName("bob", b.nodeId, { actor: "cli" });
  assertEquals(moved.events[0].details, {
    peer_id: b.nodeId,
    reason: "name-bound",
    name: "bob",
    previous_owner: a.nodeId,
    actor: "cli",
  });
  assertEquals(d.unbindName("bob").changed, true);
  assertEquals(d.nameOwner("bob"), undefined);
  assertThrows(() => d.bindName("   ", a.nodeId), IronMeshError, "non-blank");
  assertThrows(() => d.bindName("x".repeat(257), a.nodeId), IronMeshError);
  // "__proto__" is an ordinary name (Maps, not plain objects).
  d.bindName("__proto__", a.nodeId);
  assertEquals(d.toPlain().extras.names, { ["__proto__"]: a.nodeId });
});
