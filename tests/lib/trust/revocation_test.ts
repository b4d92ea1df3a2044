import { assert, assertEquals } from "../../support/assert.ts";
import { loadVector, type VectorFloat, vectorFloat } from "../../support/vectors.ts";
import { fromB64, fromUtf8, signDetached, toB64, utf8 } from "../../../lib/crypto/sodium.ts";
import {
  acceptRevocation,
  type RevocationContext,
  revocationDedupKey,
  revocationSignedBytes,
} from "../../../lib/trust/revocation.ts";
import { TrustData } from "../../../lib/trust/state.ts";
import { freshPeer } from "./fixtures/trust_vectors.ts";

const NOW = 1736812800.5;
const me = freshPeer(), sender = freshPeer(), target = freshPeer(), pendingPeer = freshPeer();
const operatorPinned = freshPeer();

function data(): TrustData {
  const d = new TrustData();
  d.pin(sender.nodeId, sender.b64, 1);
  d.pin(target.nodeId, target.b64, 1);
  d.pin(pendingPeer.nodeId, pendingPeer.b64, 1, { state: "pending" });
  d.pin(operatorPinned.nodeId, operatorPinned.b64, 1, { pinnedVia: "operator" });
  return d;
}

function payload(over: Record<string, unknown> = {}, signer = sender) {
  const base = {
    type: "REVOCATION",
    from: signer.nodeId,
    target_node_id: target.nodeId,
    revoker_node_id: signer.nodeId,
    timestamp: Math.trunc(NOW),
    reason: "stolen",
    ...over,
  };
  const sig = signDetached(
    revocationSignedBytes(
      base.target_node_id as string,
      base.revoker_node_id as string,
      base.timestamp as number,
    ),
    signer.secretKey,
  );
  return {
    ...base,
    signature: toB64(sig),
    ...("signature" in over ? { signature: over.signature } : {}),
  };
}

function ctx(over: Partial<RevocationContext> = {}): RevocationContext {
  return {
    senderNodeId: sender.nodeId,
    senderPublicKey: sender.key,
    ownNodeId: me.nodeId,
    now: NOW,
    view: data(),
    ...over,
  };
}

interface RevVector {
  name: string;
  sent_by: string;
  payload_json: Record<string, unknown>;
  signed_message_text: string;
  clock: VectorFloat;
}
const CP = loadVector<{
  identities: Record<string, { node_id: string; ed25519_public_b64: string }>;
  payloads: RevVector[];
}>("control_payloads.json");

Deno.test("C-RV-01: the reference REVOCATIONs verify and are accepted by a trusted receiver", () => {
  const revs = CP.payloads.filter((p) => p.name === "REVOCATION");
  assertEquals(revs.length, 2);
  const alice = CP.identities.alice, bob = CP.identities.bob;
  for (const rev of revs) {
    const p = rev.payload_json;
    const msg = revocationSignedBytes(
      p.target_node_id as string,
      p.revoker_node_id as string,
      p.timestamp as number,
    );
    assertEquals(fromUtf8(msg), rev.signed_message_text);
    const view = new TrustData();
    view.pin(alice.node_id, alice.ed25519_public_b64, 1);
    const v = acceptRevocation(p, {
      senderNodeId: alice.node_id,
      senderPublicKey: fromB64(alice.ed25519_public_b64),
      ownNodeId: bob.node_id,
      now: vectorFloat(rev.clock),
      view,
    });
    assert(v.accept, JSON.stringify(v));
    assertEquals(v.revocation.reason, p.reason);
  }
  assertEquals(revocationSignedBytes("t", "r", 1736812900.75), utf8("tr1736812900"));
});

Deno.test("a fresh, signed revocation from a trusted sender is accepted", () => {
  const v = acceptRevocation(payload(), ctx());
  assert(v.accept);
  assertEquals(v.advisory, false);
  assertEquals(v.revocation, {
    revoker: sender.nodeId,
    timestamp: Math.trunc(NOW),
    reason: "stolen",
    timestampKind: "float",
  });
  const d = data();
  d.recordRevocation(v.target, v.revocation);
  assertEquals(d.trustState(target.nodeId), "blocked");
});

Deno.test("refusals: each §18.7 rule", () => {
  const d = data();
  const cleared = data();
  cleared.recordRevocation(target.nodeId, { revoker: sender.nodeId, timestamp: NOW - 10 });
  cleared.clearRevocation(target.nodeId, NOW - 5);
  const already = data();
  already.recordRevocation(target.nodeId, { revoker: sender.nodeId, timestamp: NOW - 10 });
  const seen = new Set([revocationDedupKey(target.nodeId, sender.nodeId, Math.trunc(NOW))]);
  const rows: [string, Record<string, unknown>, Partial<RevocationContext>][] = [
    ["malformed", payload({ timestamp: 0 }), {}],
    ["malformed", payload({ target_node_id: "short" }), {}],
    ["revoker-not-sender", payload({}, pendingPeer), {}],
    ["self-target", payload({ target_node_id: me.nodeId }), {}],
    ["sender-not-trusted", payload({}, pendingPeer), {
      senderNodeId: pendingPeer.nodeId,
      senderPublicKey: pendingPeer.key,
    }],
    ["stale", payload({ timestamp: Math.trunc(NOW) - 301 }), {}],
    ["future", payload({ timestamp: Math.trunc(NOW) + 302 }), {}],
    ["bad-signature", payload({ signature: toB64(new Uint8Array(64)) }), {}],
    ["bad-signature", payload({ reason: "x" }), { senderPublicKey: target.key }],
    ["duplicate", payload(), { seen }],
    ["cleared-later", payload({ timestamp: Math.trunc(NOW) - 20 }), { view: cleared }],
    ["already-revoked", payload(), { view: already }],
  ];
  for (const [reason, p, over] of rows) {
    const v = acceptRevocation(p, ctx({ view: d, ...over }));
    assert(!v.accept, reason);
    assertEquals(v.reason, reason);
  }
  // Exactly 300 s old is still accepted.
  assert(
    acceptRevocation(payload({ timestamp: Math.trunc(NOW) - 300 }), ctx({ now: Math.trunc(NOW) }))
      .accept,
  );
});

Deno.test("revocation of an operator-pinned peer is advisory", () => {
  const v = acceptRevocation(payload({ target_node_id: operatorPinned.nodeId }), ctx());
  assert(v.accept);
  assertEquals(v.advisory, true);
});
