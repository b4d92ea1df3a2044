// Three real `ironmesh run` daemons in a line A–B–C (static --connect, no mDNS, 127.0.0.1):
// `ironmesh send` from A reaches C through B, sealed end to end; B's audit log records the
// relay; `ironmesh caps` on A lists C's capability; `send --cap` picks C; `trust revoke
// --broadcast` spreads to C.
import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { runCli, tempDir } from "../support/cli.ts";
import { call } from "../support/control.ts";
import { waitFor } from "../support/wait.ts";
import { startDaemon } from "../support/daemon.ts";
import type { InboxEntry } from "../../daemon/control_api.ts";
import { generateIdentity } from "../../lib/identity/keyfile.ts";

interface CapsOut {
  capabilities: { node_id: string; capability: string; reachable: boolean; hops: number | null }[];
}

Deno.test("mesh daemons: A–B–C line, send A→C through B, caps across the mesh, broadcast revocation", async () => {
  await using dir = await tempDir();
  const a = await startDaemon("alpha", `${dir.path}/a`);
  const b = await startDaemon("beta", `${dir.path}/b`, ["--connect", `127.0.0.1:${a.port}`]);
  const c = await startDaemon("gamma", `${dir.path}/c`, [
    "--connect",
    `127.0.0.1:${b.port}`,
    "--capability",
    "llm:chat",
    "--capability",
    "fs:read",
  ]);
  const all = [a, b, c];
  try {
    // `ironmesh caps` on A lists C's capabilities, two hops away.
    await waitFor(async () => {
      const r = await call<CapsOut>(a, "caps", { pattern: "llm:*" });
      return r.capabilities.some((x) => x.node_id === c.nodeId && x.reachable);
    }, "A to learn C's capability and a route to it");
    const caps = await runCli(["caps", "--state-dir", a.stateDir]);
    assertEquals(caps.code, 0, caps.stderr);
    assertMatch(caps.stdout, /llm:chat\s+\S+\s+[0-9a-f]{12}\s+2 hops/);
    assertMatch(caps.stdout, /fs:read/);
    const capsJson = JSON.parse(
      (await runCli(["caps", "llm:*", "--json", "--state-dir", a.stateDir])).stdout,
    );
    assertEquals(capsJson.capabilities.map((x: { capability: string }) => x.capability), [
      "llm:chat",
    ]);

    // `ironmesh send` A → C (named by its node id: A never met C), acknowledged end to end.
    const sent = await runCli([
      "send",
      c.nodeId,
      "across the mesh",
      "--wait",
      "--timeout",
      "20",
      "--json",
      "--state-dir",
      a.stateDir,
    ]);
    assertEquals(sent.code, 0, sent.stderr);
    const r = JSON.parse(sent.stdout);
    assertEquals([r.status, r.to], ["delivered", c.nodeId]);
    const inbox = await call<InboxEntry[]>(c, "inbox");
    const got = inbox.find((m) => m.msg_id === r.msg_id);
    assert(got, "C stored the message");
    assertEquals([got.text, got.from], ["across the mesh", a.nodeId]);
    // B relayed it without storing it, and audited the relay.
    assertEquals((await call<InboxEntry[]>(b, "inbox")).length, 0);
    const bLog = await Deno.readTextFile(`${b.stateDir}/audit.log`);
    assert(
      bLog.split("\n").some((l) =>
        l.includes('"event":"MESSAGE_RELAYED"') && l.includes(r.msg_id) &&
        l.includes(c.nodeId)
      ),
      "B's audit log records the relay",
    );

    // `send --cap` picks the node offering it.
    const byCap = await runCli([
      "send",
      "--cap",
      "llm:*",
      "who can chat?",
      "--wait",
      "--json",
      "--state-dir",
      a.stateDir,
    ]);
    assertEquals(byCap.code, 0, byCap.stderr);
    assertEquals(JSON.parse(byCap.stdout).to, c.nodeId);
    const none = await runCli(["send", "--cap", "gpu:*", "x", "--state-dir", a.stateDir]);
    assert(none.code !== 0);
    assertMatch(none.stderr, /no known node offers/);

    // A revokes a node and broadcasts it: C, two hops away, records it (C pins A first).
    const aKey = (await call<{ peers: { nodeId: string; pubkey: string }[] }>(
      b,
      "trust.snapshot",
    )).peers.find((p) => p.nodeId === a.nodeId)!.pubkey;
    const pin = await runCli(["trust", "pin", a.nodeId, aKey, "--state-dir", c.stateDir]);
    assertEquals(pin.code, 0, pin.stderr);
    const mallory = generateIdentity("mallory").nodeId;
    const rv = await runCli([
      "trust",
      "revoke",
      mallory,
      "--reason",
      "stolen laptop",
      "--broadcast",
      "--json",
      "--state-dir",
      a.stateDir,
    ]);
    assertEquals(rv.code, 0, rv.stderr);
    assert(rv.stdout.includes("REVOCATION_BROADCAST"));
    await waitFor(async () => {
      const snap = await call<{ revoked: { nodeId: string; revoker: string }[] }>(
        c,
        "trust.snapshot",
      );
      return snap.revoked.some((x) => x.nodeId === mallory && x.revoker === a.nodeId);
    }, "C to record A's revocation");
  } finally {
    for (const d of all) await d.stop();
  }
});
