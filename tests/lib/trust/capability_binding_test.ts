import { assertEquals, assertThrows } from "../../support/assert.ts";
import { IronMeshError } from "../../../lib/errors.ts";
import { capabilityHash } from "../../../lib/trust/capability_hash.ts";
import { capabilityDiff, classifyCapabilities } from "../../../lib/trust/capability_binding.ts";
import { TrustData } from "../../../lib/trust/state.ts";
import type { TrustState } from "../../../lib/trust/records.ts";
import { freshPeer, T } from "./fixtures/trust_vectors.ts";

const NOW = 1736812800;
const BASE = ["chat", "embed"];
const MORE = ["chat", "embed", "shell:exec"];

function pinned(state: TrustState = "trusted") {
  const d = new TrustData();
  const p = freshPeer();
  d.pin(p.nodeId, p.b64, NOW, { state });
  return { d, id: p.nodeId };
}

Deno.test("first set → baseline with PEER_CAP_BASELINE", () => {
  const { d, id } = pinned();
  const res = d.bindCapabilities(id, [" embed", "chat", "chat"], NOW + 1);
  assertEquals(res.observation.status, "first-observation");
  assertEquals(res.events, [{
    event: "PEER_CAP_BASELINE",
    details: { peer: id, capability_hash: capabilityHash(BASE), capability_count: 2 },
  }]);
  const rec = d.getPeer(id)!;
  assertEquals(rec.capabilitySet, BASE);
  assertEquals(rec.capFirstObserved, NOW + 1);
  assertEquals(d.bindCapabilities(id, ["embed", "chat"], NOW + 2).changed, false); // match
});

Deno.test("change → stash + demote; same pending again → nothing; back to baseline → stash cleared", () => {
  const { d, id } = pinned();
  d.bindCapabilities(id, BASE, NOW);
  const ch = d.bindCapabilities(id, MORE, NOW + 1);
  assertEquals(ch.events, [{
    event: "PEER_CAP_SET_CHANGED",
    details: {
      peer: id,
      old_hash: capabilityHash(BASE),
      new_hash: capabilityHash(MORE),
      added: ["shell:exec"],
      removed: [],
      trust_state_effective: "pending-cap-change",
      stashed: true,
      demoted: true,
    },
  }]);
  assertEquals(d.trustState(id), "pending-cap-change");
  assertEquals(d.getPeer(id)!.capabilitySetPending, MORE);
  const again = d.bindCapabilities(id, MORE, NOW + 2);
  assertEquals([again.observation.status, again.changed, again.events.length], [
    "pending-match",
    false,
    0,
  ]);
  const back = d.bindCapabilities(id, BASE, NOW + 3);
  assertEquals(back.observation.status, "reverted");
  assertEquals(back.events[0].event, "PEER_CAP_SET_CHANGED");
  assertEquals(back.events[0].details.old_hash, capabilityHash(MORE));
  assertEquals(d.getPeer(id)!.capabilityHashPending, undefined);
  assertEquals(d.trustState(id), "pending-cap-change"); // the operator still decides
});

Deno.test("accept → baseline := pending, trusted, PEER_CAP_ACCEPTED", () => {
  const { d, id } = pinned();
  d.bindCapabilities(id, BASE, NOW);
  d.bindCapabilities(id, MORE, NOW + 1);
  const res = d.acceptCapabilityChange(id, NOW + 2, { actor: "cli" });
  assertEquals(res.events, [{
    event: "PEER_CAP_ACCEPTED",
    details: {
      peer: id,
      old_hash: capabilityHash(BASE),
      new_hash: capabilityHash(MORE),
      trust_state_effective: "trusted",
      actor: "cli",
    },
  }]);
  const rec = d.getPeer(id)!;
  assertEquals([rec.capabilitySet, rec.capabilityHash, rec.capAcceptedAt], [
    MORE,
    capabilityHash(MORE),
    NOW + 2,
  ]);
  assertEquals(rec.capabilityHashPending, undefined);
  assertEquals(d.trustState(id), "trusted");
  assertThrows(
    () => d.acceptCapabilityChange(id, NOW),
    IronMeshError,
    "no pending capability change",
  );
});

Deno.test("reject → stash cleared, trusted again (or blocked when asked)", () => {
  for (const block of [false, true]) {
    const { d, id } = pinned();
    d.bindCapabilities(id, BASE, NOW);
    d.bindCapabilities(id, MORE, NOW + 1);
    const res = d.rejectCapabilityChange(id, NOW + 2, { block });
    assertEquals(res.events[0].event, block ? "PEER_BLOCKED" : "PEER_STATE_CHANGED");
    assertEquals(res.events[0].details.rejected_pending_hash, capabilityHash(MORE));
    assertEquals(d.trustState(id), block ? "blocked" : "trusted");
    assertEquals(d.getPeer(id)!.capabilitySet, BASE);
    assertEquals(d.getPeer(id)!.capRejectedAt, NOW + 2);
  }
});

Deno.test("ours: pending and blocked peers are not turned into pending-cap-change", () => {
  for (const state of ["pending", "blocked"] as const) {
    const { d, id } = pinned(state);
    d.bindCapabilities(id, BASE, NOW);
    const ch = d.bindCapabilities(id, MORE, NOW + 1);
    assertEquals(ch.events[0].details.demoted, false);
    assertEquals(ch.events[0].details.trust_state_effective, state);
    assertEquals(d.trustState(id), state);
    d.acceptCapabilityChange(id, NOW + 2);
    assertEquals(d.trustState(id), state); // accepting caps never promotes an unapproved peer
  }
});

Deno.test("classify against the vector's frank record; diff is code-point sorted", () => {
  const frank = T.inner.peers["3c3d1d1db3aa4a0857e3fbf687e08c1b"];
  assertEquals(classifyCapabilities(frank, MORE).status, "pending-match");
  assertEquals(classifyCapabilities(frank, BASE).status, "reverted");
  const other = classifyCapabilities(frank, ["chat"]);
  assertEquals(other.status, "changed");
  if (other.status === "changed") assertEquals([other.added, other.removed], [[], ["embed"]]);
  assertEquals(capabilityDiff(["a"], ["\u{1F680}", "\uff5a", "a"]).added, ["\uff5a", "\u{1F680}"]);
});
