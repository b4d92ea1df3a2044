// `ironmesh trust` against a running daemon: changes go through its control socket and take
// effect live (no passphrase needed: the daemon holds the keys).
import { assert, assertEquals } from "../support/assert.ts";
import { runCli, tempDir } from "../support/cli.ts";
import { call } from "../support/control.ts";
import { waitFor } from "../support/wait.ts";
import { startDaemon } from "../support/daemon.ts";
import type { InboxEntry } from "../../daemon/control_api.ts";
import type { PeerStatus } from "../../daemon/node.ts";

Deno.test("trust live: promotion releases held messages, revocation closes the link, all audited", async () => {
  await using dir = await tempDir();
  const a = await startDaemon("alpha", `${dir.path}/a`, ["--require-message-promotion"]);
  const b = await startDaemon("beta", `${dir.path}/b`, ["--connect", `127.0.0.1:${a.port}`]);
  try {
    await waitFor(
      async () => (await call<PeerStatus[]>(a.stateDir, "peers")).some((p) => p.online),
      "alpha sees beta",
    );
    await call(b.stateDir, "send", { to: "alpha", text: "let me in" });
    await waitFor(
      async () =>
        (await call<{ pending_trust: unknown[] }>(a.stateDir, "status")).pending_trust.length === 1,
      "message held",
    );
    assertEquals((await call<InboxEntry[]>(a.stateDir, "inbox")).length, 0);

    const list = await runCli(["trust", "list", "--json", "--state-dir", a.stateDir]);
    assertEquals(list.code, 0, list.stderr);
    const peers = JSON.parse(list.stdout).peers as { node_id: string; trust_state: string }[];
    assertEquals(peers.find((p) => p.node_id === b.nodeId)?.trust_state, "pending");

    const set = await runCli(["trust", "set-state", "beta", "trusted", "--state-dir", a.stateDir]);
    assertEquals(set.code, 0, set.stderr);
    const inbox = await call<InboxEntry[]>(a.stateDir, "inbox");
    assertEquals(inbox.map((m) => m.text), ["let me in"]);

    const rev = await runCli([
      "trust",
      "revoke",
      "beta",
      "--reason",
      "test",
      "--state-dir",
      a.stateDir,
    ]);
    assertEquals(rev.code, 0, rev.stderr);
    await waitFor(
      async () => !(await call<PeerStatus[]>(a.stateDir, "peers")).some((p) => p.online),
      "beta's link closed",
    );
    await new Promise((r) => setTimeout(r, 1500)); // beta's reconnect attempts are refused
    assert(!(await call<PeerStatus[]>(a.stateDir, "peers")).some((p) => p.online), "stays out");
    const log = await Deno.readTextFile(`${a.stateDir}/audit.log`);
    assert(/"actor":"cli"/.test(log), "changes audited with actor cli");
    assert(log.includes('"event":"PEER_REVOKED_LOCAL"'), "revocation audited");
  } finally {
    await b.stop();
    await a.stop();
  }
});
