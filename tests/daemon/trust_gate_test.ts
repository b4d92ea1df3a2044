// The trust policy matrix through the real handshake hook (tofu / allow_list / allow_all ×
// new peer / known peer / changed key / blocked / revoked), and the capability-change hold:
// a changed set holds the peer's messages; promote releases them in order; reject drops them.
import { assert, assertEquals } from "../support/assert.ts";
import { addrOf, nextEvent, startNode } from "../support/nodes.ts";
import { MemoryNetwork } from "../../daemon/transport/memory.ts";
import { generateIdentity } from "../../lib/identity/keyfile.ts";
import type { Identity } from "../../lib/identity/identity.ts";
import type { MeshNode } from "../../daemon/node.ts";
import type { TrustPolicy, TrustPolicyMode } from "../../lib/trust/policy.ts";
import { ControlServer } from "../../daemon/control.ts";
import { ControlClient } from "../../daemon/control_client.ts";
import { registerTrustMethods } from "../../daemon/trust_control.ts";
import { DaemonTrustBackend } from "../../cli/trust_backend.ts";

const enc = (s: string) => new TextEncoder().encode(s);
type Outcome = "accept" | "dropped" | string;

/** Connect `id` to `server` and report: accepted (messages arrive), dropped, or the refusal code. */
async function attempt(net: MemoryNetwork, server: MeshNode, id: Identity): Promise<Outcome> {
  const client = await startNode(id.name, { transport: net.transport(), identity: id });
  try {
    const failed = nextEvent(server, (e) => e.type === "handshake-failed", 3000).then(
      (e) => e.type === "handshake-failed" ? e.code : "?",
      () => null,
    );
    const up = nextEvent(server, (e) => e.type === "peer-up", 3000).then(() => "up", () => null);
    await client.connect(addrOf(server)).catch(() => {});
    const first = await Promise.race([failed, up]);
    if (first !== "up") return (await failed) ?? "no outcome";
    const got = nextEvent(server, (e) => e.type === "message-in", 500).then(
      () => true,
      () => false,
    );
    await client.send(server.nodeId, enc("hi"));
    return (await got) ? "accept" : "dropped";
  } finally {
    await client.stop();
  }
}

const bob1 = generateIdentity("bob");
const bob2 = generateIdentity("bob"); // same name, another key

const EXPECTED: Record<TrustPolicyMode, Record<string, Outcome>> = {
  tofu: {
    new: "accept",
    known: "accept",
    changed: "HS_TOFU_MISMATCH",
    blocked: "dropped",
    revoked: "HS_REVOKED",
  },
  allow_list: {
    new: "accept",
    known: "accept",
    changed: "HS_NOT_ALLOWED",
    blocked: "dropped",
    revoked: "HS_REVOKED",
  },
  allow_all: {
    new: "accept",
    known: "accept",
    changed: "accept",
    blocked: "dropped",
    revoked: "HS_REVOKED",
  },
};

for (const mode of ["tofu", "allow_list", "allow_all"] as TrustPolicyMode[]) {
  Deno.test(`trust matrix through the handshake: ${mode}`, async () => {
    const net = new MemoryNetwork();
    const policy: TrustPolicy = mode === "allow_list"
      ? { mode, allowList: { entries: [{ nodeId: bob1.nodeId, source: "test" }] } }
      : { mode };
    const s = await startNode("server", { transport: net.transport(), trust: policy });
    try {
      const got: Record<string, Outcome> = {};
      got.new = await attempt(net, s, bob1);
      got.known = await attempt(net, s, bob1);
      got.changed = await attempt(net, s, bob2);
      await s.trust.setState(bob1.nodeId, "blocked");
      got.blocked = await attempt(net, s, bob1);
      await s.trust.revokeLocal(bob1.nodeId, { reason: "test" });
      got.revoked = await attempt(net, s, bob1);
      assertEquals(got, EXPECTED[mode]);
    } finally {
      await s.stop();
    }
  });
}

Deno.test("capability change holds messages; promote releases them in order; reject drops them", async () => {
  const net = new MemoryNetwork();
  const s = await startNode("server", { transport: net.transport() });
  const c = await startNode("carol", { transport: net.transport() });
  const control = new ControlServer(s.trust.path.replace(/\/known_peers\.json$/, ""));
  registerTrustMethods(control, s);
  await control.start();
  const backend = new DaemonTrustBackend(await ControlClient.connect(control.stateDir));
  try {
    await c.connect(addrOf(s));
    await s.observeCapabilities(c.nodeId, ["llm:chat"]); // baseline
    assertEquals(s.trust.trustState(c.nodeId), "trusted");
    await s.observeCapabilities(c.nodeId, ["llm:chat", "shell:exec"]); // changed set
    assertEquals(s.trust.trustState(c.nodeId), "pending-cap-change");
    const delivered: string[] = [];
    s.bus.subscribe((e) => {
      if (e.type === "message-in" && e.disposition === "delivered") {
        delivered.push(new TextDecoder().decode(e.payload));
      }
    });
    for (const t of ["one", "two", "three"]) await c.send(s.nodeId, enc(t));
    await new Promise((r) => setTimeout(r, 200));
    assertEquals(delivered, []);
    assertEquals(s.store.pendingTrust.count(c.nodeId), 3);
    const r = await backend.capPromote(c.nodeId.slice(0, 8));
    assertEquals(r.newState, "trusted");
    assertEquals(delivered, ["one", "two", "three"]);

    await s.observeCapabilities(c.nodeId, ["llm:chat", "shell:exec", "fs:write"]);
    assertEquals(s.trust.trustState(c.nodeId), "pending-cap-change");
    await c.send(s.nodeId, enc("four"));
    await new Promise((r) => setTimeout(r, 200));
    assertEquals(s.store.pendingTrust.count(c.nodeId), 1);
    const rej = await backend.capReject("carol", { block: true });
    assertEquals(rej.newState, "blocked");
    assertEquals(s.store.pendingTrust.count(c.nodeId), 0);
    assertEquals(delivered, ["one", "two", "three"]);
    const log = await Deno.readTextFile(s.audit.path);
    assert(log.includes('"event":"PEER_CAP_SET_CHANGED"'));
    assert(log.includes('"event":"PEER_CAP_ACCEPTED"'));
  } finally {
    backend.close();
    await control.close();
    await c.stop();
    await s.stop();
  }
});
