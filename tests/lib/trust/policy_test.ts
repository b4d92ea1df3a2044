import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "../../support/assert.ts";
import { vectorPath } from "../../support/vectors.ts";
import { FakeClock } from "../../../lib/clock.ts";
import { IronMeshError } from "../../../lib/errors.ts";
import { PyFloat } from "../../../lib/json/py_float.ts";
import { parseAllowList } from "../../../lib/trust/allow_list.ts";
import {
  admitPeer,
  appFrameRule,
  applyHandshakeDecision,
  decideHandshake,
  type HandshakeDecision,
  type HandshakePeer,
  refusalError,
  type TrustPolicy,
  type TrustPolicyMode,
} from "../../../lib/trust/policy.ts";
import { TrustData } from "../../../lib/trust/state.ts";
import { TrustStore } from "../../../lib/trust/store.ts";
import { ALICE_SEED, freshPeer, withTempDir } from "./fixtures/trust_vectors.ts";

const NOW = 1736812800;
const known = freshPeer(), blocked = freshPeer(), revoked = freshPeer(), stranger = freshPeer();
const oddEncoding = freshPeer(); // pinned under a non-canonical (but same-bytes) b64 string

/** A store snapshot with a known "bob", a blocked "dave", a revoked peer and an oddly encoded pin. */
function world(): TrustData {
  const d = new TrustData();
  d.pin(known.nodeId, known.b64, NOW - 100, { name: "bob" });
  d.pin(blocked.nodeId, blocked.b64, NOW - 100, { name: "dave" });
  d.setState(blocked.nodeId, "blocked");
  d.pin(revoked.nodeId, revoked.b64, NOW - 100);
  d.recordRevocation(revoked.nodeId, { revoker: known.nodeId, timestamp: NOW - 50 });
  const plain = d.toPlain();
  plain.peers[oddEncoding.nodeId] = {
    pubkey: oddEncoding.b64.slice(0, 20) + "\n" + oddEncoding.b64.slice(20),
    fingerprint: oddEncoding.nodeId,
    first_seen: new PyFloat(NOW - 100),
    last_seen: new PyFloat(NOW - 100),
  };
  return TrustData.fromPlain(plain);
}

function peer(p: ReturnType<typeof freshPeer>, name?: string, b64 = p.b64): HandshakePeer {
  return { nodeId: p.nodeId, name, identityPublicB64: b64, address: "127.0.0.1:9999" };
}

const ALLOW = parseAllowList(
  [known.nodeId, blocked.b64, revoked.nodeId, oddEncoding.b64].join("\n"),
);
const POLICIES: Record<TrustPolicyMode, TrustPolicy> = {
  tofu: { mode: "tofu" },
  allow_list: { mode: "allow_list", allowList: ALLOW },
  allow_all: { mode: "allow_all" },
};

type Expect = string; // "accept:new-pin:trusted" | "accept:known:blocked" | "refuse:HS_…"

function summary(d: HandshakeDecision): Expect {
  return d.outcome === "accept" ? `accept:${d.kind}:${d.trustState}` : `refuse:${d.code}`;
}

const impostor = freshPeer();
const CASES: [string, HandshakePeer, Record<TrustPolicyMode, Expect>][] = [
  ["new peer", peer(stranger, "erin"), {
    tofu: "accept:new-pin:trusted",
    allow_list: "refuse:HS_NOT_ALLOWED",
    allow_all: "accept:new-pin:trusted",
  }],
  ["known peer", peer(known, "bob"), {
    tofu: "accept:known:trusted",
    allow_list: "accept:known:trusted",
    allow_all: "accept:known:trusted",
  }],
  ["same node id, different encoding of the same key", peer(oddEncoding, "olga"), {
    tofu: "accept:known:trusted",
    allow_list: "accept:known:trusted",
    allow_all: "accept:known:trusted",
  }],
  ["different key under a pinned name", peer(impostor, "bob"), {
    tofu: "refuse:HS_TOFU_MISMATCH",
    allow_list: "refuse:HS_NOT_ALLOWED",
    allow_all: "accept:new-pin:trusted",
  }],
  ["blocked peer", peer(blocked, "dave"), {
    tofu: "accept:known:blocked",
    allow_list: "accept:known:blocked",
    allow_all: "accept:known:blocked",
  }],
  ["revoked peer", peer(revoked), {
    tofu: "refuse:HS_REVOKED",
    allow_list: "refuse:HS_REVOKED",
    allow_all: "refuse:HS_REVOKED",
  }],
];

for (const [label, p, expected] of CASES) {
  for (const mode of Object.keys(POLICIES) as TrustPolicyMode[]) {
    Deno.test(`policy ${mode} × ${label}`, () => {
      const d = decideHandshake(world(), POLICIES[mode], p);
      assertEquals(summary(d), expected[mode]);
      if (mode === "allow_all" && d.outcome === "accept") assert(d.warning?.includes("allow_all"));
      if (mode !== "allow_all" && d.outcome === "accept") assertEquals(d.warning, undefined);
    });
  }
}

Deno.test("name conflict: refused with both fingerprints and a TOFU_MISMATCH event", () => {
  const d = decideHandshake(world(), POLICIES.tofu, peer(impostor, "bob"));
  assert(d.outcome === "refuse");
  assertEquals(d.conflict, {
    kind: "name",
    name: "bob",
    pinnedNodeId: known.nodeId,
    pinnedFingerprint: known.nodeId,
    presentedFingerprint: impostor.nodeId,
  });
  assertEquals(d.events, [{
    event: "TOFU_MISMATCH",
    details: {
      peer_id: impostor.nodeId,
      reason: "name-conflict",
      name: "bob",
      pinned_node_id: known.nodeId,
      presented_node_id: impostor.nodeId,
    },
  }]);
  assert(d.hint.includes(`trust forget ${known.nodeId}`));
  const e = refusalError(d);
  assertEquals(e.code, "HS_TOFU_MISMATCH");
  // allow_all admits it but flags the conflict and does not bind the name.
  const all = decideHandshake(world(), POLICIES.allow_all, peer(impostor, "bob"));
  assert(all.outcome === "accept");
  assertEquals(all.nameConflict?.pinnedNodeId, known.nodeId);
  assertEquals(all.bindName, undefined);
});

Deno.test("a pinned key whose bytes differ is a TOFU mismatch (compared as bytes, not strings)", () => {
  const d = world();
  const plain = d.toPlain();
  plain.peers[stranger.nodeId] = { pubkey: impostor.b64, fingerprint: stranger.nodeId };
  const res = decideHandshake(TrustData.fromPlain(plain), POLICIES.allow_all, peer(stranger));
  assert(res.outcome === "refuse");
  assertEquals(res.code, "HS_TOFU_MISMATCH");
  assertEquals(res.conflict?.pinnedFingerprint, impostor.nodeId);
  assertEquals(res.conflict?.presentedFingerprint, stranger.nodeId);
  assertEquals(res.events, [{ event: "TOFU_MISMATCH", details: { peer_id: stranger.nodeId } }]);
});

Deno.test("malformed identity or node id not matching the key → HS_BAD_HELLO", () => {
  const bad = decideHandshake(world(), POLICIES.tofu, {
    nodeId: stranger.nodeId,
    identityPublicB64: "AAAA",
  });
  assertEquals(summary(bad), "refuse:HS_BAD_HELLO");
  const swapped = decideHandshake(world(), POLICIES.tofu, {
    nodeId: known.nodeId,
    identityPublicB64: stranger.b64,
  });
  assertEquals(summary(swapped), "refuse:HS_BAD_HELLO");
});

Deno.test("requireMessagePromotion pins pending; invites pin pending via invite; allow-list pins trusted", () => {
  const gated = decideHandshake(
    world(),
    { mode: "tofu", requireMessagePromotion: true },
    peer(stranger),
  );
  assertEquals(summary(gated), "accept:new-pin:pending");
  assert(gated.outcome === "accept");
  assertEquals(gated.appFrames, "queue");
  const inv = decideHandshake(world(), POLICIES.tofu, { ...peer(stranger), invite: true });
  assert(inv.outcome === "accept");
  assertEquals(inv.pin, { pubkeyB64: stranger.b64, state: "pending", pinnedVia: "invite" });
  const invAllow = decideHandshake(world(), POLICIES.allow_list, {
    ...peer(stranger),
    invite: true,
  });
  assertEquals(summary(invAllow), "accept:new-pin:pending");
  const listed = freshPeer();
  const allow = {
    mode: "allow_list" as const,
    allowList: parseAllowList(listed.b64),
    requireMessagePromotion: true,
  };
  const res = decideHandshake(world(), allow, peer(listed));
  assert(res.outcome === "accept");
  assertEquals(res.pin, { pubkeyB64: listed.b64, state: "trusted", pinnedVia: "allow_list" });
  // A pinned peer removed from the allow list is refused.
  const removed = decideHandshake(
    world(),
    { mode: "allow_list", allowList: parseAllowList("") },
    peer(known, "bob"),
  );
  assertEquals(summary(removed), "refuse:HS_NOT_ALLOWED");
});

Deno.test("blocked peers: admitted but application frames always dropped (ours)", () => {
  const d = decideHandshake(world(), POLICIES.tofu, peer(blocked, "dave"));
  assert(d.outcome === "accept");
  assertEquals(d.appFrames, "drop");
  assertEquals(appFrameRule("blocked", false), "drop");
  assertEquals(appFrameRule("pending", false), "deliver");
  assertEquals(appFrameRule("pending-cap-change", true), "queue");
  assertEquals(appFrameRule("pending-cap-change", false), "queue");
  assertEquals(appFrameRule("trusted", true), "deliver");
});

Deno.test("applying: new pin binds the name; known peer touches and re-encodes the key", () => {
  const d = world();
  const dec = decideHandshake(d, POLICIES.tofu, peer(stranger, "erin"));
  const res = applyHandshakeDecision(d, dec, NOW);
  assertEquals(res.events, [{
    event: "TOFU_NEW_PEER",
    details: { peer_id: stranger.nodeId, trust_state: "trusted", name: "erin" },
  }]);
  assertEquals(d.nameOwner("erin"), stranger.nodeId);
  const odd = decideHandshake(d, POLICIES.tofu, peer(oddEncoding, "olga"));
  const touched = applyHandshakeDecision(d, odd, NOW + 1);
  assertEquals(touched.events.map((e) => e.details.reason), ["name-bound"]);
  assertEquals(d.getPeer(oddEncoding.nodeId)!.pubkey, oddEncoding.b64);
  assertEquals(d.getPeer(oddEncoding.nodeId)!.lastSeen, NOW + 1);
  const refused = decideHandshake(d, POLICIES.tofu, peer(revoked));
  assertEquals(applyHandshakeDecision(d, refused, NOW).changed, false);
});

Deno.test("admitPeer decides and writes under the lock; a latched store fails closed", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "known_peers.json");
    const clock = new FakeClock(NOW);
    const s = await TrustStore.open(path, ALICE_SEED, { legacyHomeDir: null, clock });
    const first = await admitPeer(s, POLICIES.tofu, peer(stranger, "erin"));
    assertEquals(summary(first.decision), "accept:new-pin:trusted");
    const other = await TrustStore.open(path, ALICE_SEED, { legacyHomeDir: null });
    assertEquals(other.nameOwner("erin"), stranger.nodeId);
    clock.advance(10);
    await admitPeer(s, POLICIES.tofu, peer(stranger, "erin"));
    assertEquals(s.getPeer(stranger.nodeId)!.lastSeen, NOW + 10);
    const conflict = await admitPeer(s, POLICIES.tofu, peer(impostor, "erin"));
    assertEquals(summary(conflict.decision), "refuse:HS_TOFU_MISMATCH");
    assertEquals(conflict.changed, false);

    const tampered = join(dir, "tampered.json");
    await Deno.copyFile(vectorPath("trust", "known_peers.tampered.json"), tampered);
    const latched = await TrustStore.open(tampered, ALICE_SEED, { legacyHomeDir: null });
    await assertRejects(
      () => admitPeer(latched, POLICIES.tofu, peer(stranger)),
      IronMeshError,
      "read-only",
    );
  });
});
