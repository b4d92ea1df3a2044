import { assertEquals, assertStringIncludes, assertThrows } from "../../support/assert.ts";
import { IronMeshError } from "../../../lib/errors.ts";
import { resolvePeer } from "../../../lib/trust/resolve.ts";
import { TrustData } from "../../../lib/trust/state.ts";
import { decideHandshake } from "../../../lib/trust/policy.ts";
import { freshPeer } from "./fixtures/trust_vectors.ts";

function peerWithPrefix(prefix: string) {
  for (;;) {
    const p = freshPeer();
    if (p.nodeId.startsWith(prefix)) return p;
  }
}

const a = peerWithPrefix("a"), b = peerWithPrefix("a"), c = freshPeer(), r = freshPeer();
const d = new TrustData();
d.pin(a.nodeId, a.b64, 1, { name: "alice" });
d.pin(b.nodeId, b.b64, 1, { name: "alfred" });
d.pin(c.nodeId, c.b64, 1, { name: "carol" });
d.pin(r.nodeId, r.b64, 1, { name: "rex" });
d.recordRevocation(r.nodeId, { revoker: c.nodeId, timestamp: 1 });

Deno.test("resolve: full id (any case), exact name, unique prefixes", () => {
  assertEquals(resolvePeer(d, a.nodeId.toUpperCase()), { nodeId: a.nodeId, via: "node-id" });
  assertEquals(resolvePeer(d, "alice"), { nodeId: a.nodeId, via: "name", name: "alice" });
  assertEquals(resolvePeer(d, "car"), { nodeId: c.nodeId, via: "name-prefix", name: "carol" });
  assertEquals(resolvePeer(d, c.nodeId.slice(0, 8)).nodeId, c.nodeId);
  assertEquals(resolvePeer(d, r.nodeId).nodeId, r.nodeId); // revoked ids resolve by default
  assertThrows(
    () => resolvePeer(d, r.nodeId, { includeRevoked: false }),
    IronMeshError,
    "no known peer",
  );
});

Deno.test("resolve: ambiguous prefix lists the candidates", () => {
  const e = assertThrows(() => resolvePeer(d, "al"), IronMeshError) as IronMeshError;
  assertEquals(e.code, "TRUST_AMBIGUOUS_PEER");
  assertStringIncludes(e.message, `${a.nodeId} (alice)`);
  assertStringIncludes(e.message, `${b.nodeId} (alfred)`);
});

Deno.test("resolve: unknown argument gives a hint; too-short id prefixes do not match", () => {
  const e = assertThrows(() => resolvePeer(d, "zzz"), IronMeshError) as IronMeshError;
  assertEquals(e.code, "TRUST_UNKNOWN_PEER");
  assertStringIncludes(e.hint, "ironmesh trust list");
  assertThrows(() => resolvePeer(d, c.nodeId.slice(0, 3)), IronMeshError);
  assertThrows(() => resolvePeer(d, "  "), IronMeshError, "empty");
});

Deno.test("resolve by name never returns a peer that presented a conflicting name", () => {
  const impostor = freshPeer();
  const dec = decideHandshake(d, { mode: "allow_all" }, {
    nodeId: impostor.nodeId,
    name: "carol",
    identityPublicB64: impostor.b64,
  });
  assertEquals(dec.outcome, "accept");
  const copy = d.clone();
  copy.pin(impostor.nodeId, impostor.b64, 2); // admitted (allow_all) but not bound to "carol"
  assertEquals(resolvePeer(copy, "carol").nodeId, c.nodeId);
});
