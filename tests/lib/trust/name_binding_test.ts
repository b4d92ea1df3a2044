import { assertEquals } from "../../support/assert.ts";
import { bindableName, nameStatus } from "../../../lib/trust/name_binding.ts";
import { TrustData } from "../../../lib/trust/state.ts";
import { encodeInner } from "../../../lib/trust/envelope.ts";
import { freshPeer } from "./fixtures/trust_vectors.ts";

Deno.test("first node id seen for a name owns it; others conflict", () => {
  const d = new TrustData();
  const [a, b] = [freshPeer(), freshPeer()];
  assertEquals(nameStatus(d, "bob", a.nodeId), { status: "unbound", name: "bob" });
  d.pin(a.nodeId, a.b64, 1, { name: "bob" });
  assertEquals(nameStatus(d, "bob", a.nodeId), { status: "owned", name: "bob" });
  assertEquals(nameStatus(d, "bob", b.nodeId), {
    status: "conflict",
    name: "bob",
    owner: a.nodeId,
  });
  // Names are exact: another spelling is another name.
  assertEquals(nameStatus(d, "Bob", b.nodeId).status, "unbound");
  assertEquals(nameStatus(d, "", b.nodeId), { status: "unbindable" });
  assertEquals(nameStatus(d, undefined, b.nodeId), { status: "unbindable" });
});

Deno.test("an operator pin with --name moves the name and reports the previous owner", () => {
  const d = new TrustData();
  const [a, b] = [freshPeer(), freshPeer()];
  d.pin(a.nodeId, a.b64, 1, { name: "bob" });
  const res = d.pin(b.nodeId, b.b64, 2, {
    name: "bob",
    pinnedVia: "operator",
    trigger: "operator_manual_pin",
  });
  assertEquals(res.events.map((e) => e.event), ["TOFU_NEW_PEER", "PEER_STATE_CHANGED"]);
  assertEquals(res.events[1].details.previous_owner, a.nodeId);
  assertEquals(d.nameOwner("bob"), b.nodeId);
  assertEquals(d.namesOf(a.nodeId), []);
});

Deno.test("bindings persist under the extra plaintext key `names` next to peers/revoked", () => {
  const d = new TrustData();
  const a = freshPeer();
  d.pin(a.nodeId, a.b64, 1, { name: "bob" });
  const inner = JSON.parse(encodeInner(d.toPlain()));
  assertEquals(Object.keys(inner), ["names", "peers", "revoked"]);
  assertEquals(inner.names, { bob: a.nodeId });
  assertEquals(bindableName("x".repeat(256)), "x".repeat(256));
  assertEquals(bindableName("x".repeat(257)), null);
});
