/** `ironmesh trust …` run as a subprocess: output shapes, exit codes, audit entries, bad input. */
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../support/assert.ts";
import { tempDir } from "../support/cli.ts";
import { lockStateDir } from "../../lib/fs/lock.ts";
import { formatFingerprint } from "../../lib/identity/node_id.ts";
import { decideHandshake } from "../../lib/trust/policy.ts";
import { TrustStore } from "../../lib/trust/store.ts";
import {
  ALICE_SEED,
  aliceAuditLog,
  auditEntries,
  cli,
  cliJson,
  freshPeer,
  ID_OF,
  type Json,
  makeState,
  passFile,
  snapshot,
  TRUST,
} from "./trust_audit_support.ts";

/** The JSON a command printed: one document, or the error object on its last line. */
function parseOutput(stdout: string): Json {
  try {
    return JSON.parse(stdout);
  } catch {
    return JSON.parse(stdout.trim().split("\n").pop()!);
  }
}

const FRANK = ID_OF.frank; // pending-cap-change with a pending set in the vector store
const CAROL = ID_OF.carol; // pending

Deno.test("trust list decrypts the Python-written store to the recorded peers (--json and text)", async () => {
  await using tmp = await tempDir();
  const state = await makeState(tmp.path, "s", { trust: "known_peers.json" });
  const { r, j } = await cliJson(state, ["trust", "list", "--show-caps"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(j.ok, true);
  assertEquals(j.format, "v2");
  assertEquals(j.own_node_id, TRUST.owner.node_id);
  const ids = j.peers.map((p: Json) => p.node_id);
  assertEquals(ids, Object.keys(TRUST.inner.peers).sort());
  for (const p of j.peers) {
    const name = TRUST.peer_names[p.node_id];
    assertEquals(p.trust_state, TRUST.trust_state_by_reference[name], name);
    assertEquals(p.pubkey, TRUST.inner.peers[p.node_id].pubkey, name);
    assertEquals(p.fingerprint, formatFingerprint(p.node_id));
    assertEquals(p.last_seen, TRUST.inner.peers[p.node_id].last_seen, name);
  }
  assertEquals(j.peers.find((p: Json) => p.node_id === ID_OF.erin).pinned_via, "invite");
  const frank = j.peers.find((p: Json) => p.node_id === FRANK);
  assertEquals(frank.cap_change_pending, true);
  assertEquals(frank.capabilities.capability_set, ["chat", "embed"]);
  assertEquals(frank.capabilities.capability_set_pending, ["chat", "embed", "shell:exec"]);
  assertEquals(frank.capabilities.added, ["shell:exec"]);
  // Revoked peers (one by alice, one by bob with an int timestamp and a non-ASCII reason).
  assertEquals(j.revoked.map((x: Json) => x.node_id), Object.keys(TRUST.inner.revoked).sort());
  const mallory = j.revoked.find((x: Json) => x.node_id === ID_OF.mallory);
  assertEquals(mallory.reason, "key compromised");
  assertEquals(mallory.revoker, TRUST.owner.node_id);
  assertEquals(j.revoked[0].reason, "clé volée 🔑");
  assertEquals(j.conflicts, []);

  const text = await cli(state, ["trust", "list"]);
  assertEquals(text.code, 0, text.stderr);
  assertStringIncludes(text.stdout, "6 pinned peers");
  assertMatch(text.stdout, new RegExp(`${FRANK}\\s+-\\s+pending-cap-change`));
  assertStringIncludes(text.stdout, "2 revoked");
  assertStringIncludes(text.stdout, "clé volée 🔑");

  const pending = await cliJson(state, ["trust", "list", "--state", "pending"]);
  assertEquals(pending.r.code, 0);
  assertEquals(
    pending.j.peers.map((p: Json) => p.node_id),
    [CAROL, ID_OF.erin].sort(),
  );
  assertEquals(pending.j.revoked, []);
});

Deno.test("a legacy v1 store lists, and the first change migrates it to v2 (audited)", async () => {
  await using tmp = await tempDir();
  const state = await makeState(tmp.path, "s", { trust: "known_peers.v1.json" });
  const { r, j } = await cliJson(state, ["trust", "list"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(j.format, "v1");
  assertEquals(j.peers.length, 6);
  const v = await cli(state, ["trust", "verify"]);
  assertEquals(v.code, 0, v.stderr);
  assertStringIncludes(v.stderr, "legacy v1");
  const s = await cliJson(state, ["trust", "set-state", CAROL, "trusted"]);
  assertEquals(s.r.code, 0, s.r.stderr);
  assertEquals(s.j.events.map((e: Json) => e.event), ["PEER_PROMOTED", "TRUST_STORE_ENCRYPTED"]);
  assertEquals(s.j.events.map((e: Json) => e.details.actor), ["cli", "cli"]);
  const file = JSON.parse(await Deno.readTextFile(join(state, "known_peers.json")));
  assertEquals(file.version, 2);
  const after = await cliJson(state, ["trust", "list"]);
  assertEquals(after.j.format, "v2");
  assertEquals(after.j.peers.find((p: Json) => p.node_id === CAROL).trust_state, "trusted");
});

Deno.test("an encrypted keys.json: passphrase from a file or the environment, never argv", async () => {
  await using tmp = await tempDir();
  const state = await makeState(tmp.path, "s", { keys: "encrypted", trust: "known_peers.json" });
  const pf = await passFile(tmp.path);
  const viaFlag = await cli(state, ["trust", "list", "--json", "--passphrase-file", pf]);
  assertEquals(viaFlag.code, 0, viaFlag.stderr);
  assertEquals(JSON.parse(viaFlag.stdout).peers.length, 6);
  const viaEnv = await cli(state, ["trust", "verify"], {
    IRONMESH_KEYS_PASSPHRASE: "wrong-pass-phrase",
  });
  assertEquals(viaEnv.code, 3, viaEnv.stderr);
  assertStringIncludes(viaEnv.stderr, "Wrong passphrase");
  const none = await cli(state, ["trust", "list"]);
  assertEquals(none.code, 9, none.stderr);
  assertStringIncludes(none.stderr, "--passphrase-file");
});

Deno.test("set-state by node-id prefix and by name: JSON shape, audit entry with actor cli, no-op", async () => {
  await using tmp = await tempDir();
  const state = await makeState(tmp.path, "s", { trust: "known_peers.json" });
  const { r, j } = await cliJson(state, ["trust", "set-state", CAROL.slice(0, 6), "trusted"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(j.ok, true);
  assertEquals(j.changed, true);
  assertEquals(j.node_id, CAROL);
  assertEquals(j.matched_by, "node-id-prefix");
  assertEquals([j.old_state, j.new_state], ["pending", "trusted"]);
  assertEquals(j.events.length, 1);
  assertEquals(j.events[0].event, "PEER_PROMOTED");
  assertEquals(j.events[0].details, {
    peer_id: CAROL,
    old_state: "pending",
    new_state: "trusted",
    actor: "cli",
  });
  assertEquals(j.audit_log, join(state, "audit.log"));
  const log = await auditEntries(state);
  assertEquals(log.length, 1);
  assertEquals(log[0].event, "PEER_PROMOTED");
  assertEquals(log[0].details.actor, "cli");
  assertEquals(log[0].details.peer_id, CAROL);

  // The same state again changes nothing and logs nothing.
  const again = await cliJson(state, ["trust", "set-state", CAROL, "trusted"]);
  assertEquals(again.r.code, 0);
  assertEquals(again.j.changed, false);
  assertEquals(again.j.events, []);
  assertEquals((await auditEntries(state)).length, 1);

  // A name (bound by `trust pin --name`) resolves too, and its unique prefix.
  const pin = await cliJson(state, [
    "trust",
    "pin",
    ID_OF.bob,
    TRUST.inner.peers[ID_OF.bob].pubkey as string,
    "--name",
    "bob-laptop",
  ]);
  assertEquals(pin.r.code, 0, pin.r.stderr);
  assertEquals(pin.j.names, ["bob-laptop"]);
  const byName = await cliJson(state, ["trust", "set-state", "bob-lap", "blocked"]);
  assertEquals(byName.r.code, 0, byName.r.stderr);
  assertEquals(byName.j.matched_by, "name-prefix");
  assertEquals(byName.j.events[0].event, "PEER_BLOCKED");
  const text = await cli(state, ["trust", "set-state", "bob-laptop", "pending"]);
  assertEquals(text.code, 0, text.stderr);
  assertStringIncludes(text.stdout, "bob-laptop");
  assertStringIncludes(text.stdout, "blocked → pending");
  // Every change is in one valid chain with a signed checkpoint.
  const v = await cliJson(state, ["audit", "verify"]);
  assertEquals(v.r.code, 0, v.r.stderr);
  assertEquals(v.j.entries, 4);
  assertEquals(v.j.checkpoint.status, "ok");
  assertEquals(v.j.checkpoint.signed, true);
});

Deno.test("cap-diff, cap-promote and cap-status: the pending set becomes the baseline", async () => {
  await using tmp = await tempDir();
  const state = await makeState(tmp.path, "s", { trust: "known_peers.json" });
  const diff = await cliJson(state, ["trust", "cap-diff", "3c3d"]);
  assertEquals(diff.r.code, 0, diff.r.stderr);
  assertEquals(diff.j.pending, true);
  assertEquals(diff.j.added, ["shell:exec"]);
  assertEquals(diff.j.removed, []);
  const diffText = await cli(state, ["trust", "cap-diff", "3c3d"]);
  assertStringIncludes(diffText.stdout, "+ shell:exec");
  const status = await cliJson(state, ["trust", "cap-status"]);
  assertEquals(status.j.pending, 1);

  const p = await cliJson(state, ["trust", "cap-promote", FRANK.slice(0, 8)]);
  assertEquals(p.r.code, 0, p.r.stderr);
  assertEquals([p.j.old_state, p.j.new_state], ["pending-cap-change", "trusted"]);
  assertEquals(p.j.events[0].event, "PEER_CAP_ACCEPTED");
  assertEquals(p.j.events[0].details.actor, "cli");
  assertEquals(
    p.j.events[0].details.new_hash,
    TRUST.inner.peers[FRANK].capability_hash_pending,
  );
  const list = await cliJson(state, ["trust", "list", "--show-caps"]);
  const frank = list.j.peers.find((x: Json) => x.node_id === FRANK);
  assertEquals(frank.trust_state, "trusted");
  assertEquals(frank.capabilities.capability_set, ["chat", "embed", "shell:exec"]);
  assertEquals(frank.capabilities.capability_hash_pending, null);
  assertEquals((await cliJson(state, ["trust", "cap-status"])).j.pending, 0);

  // Nothing pending any more: a clear error, nothing written.
  const before = await snapshot(state);
  const again = await cli(state, ["trust", "cap-promote", FRANK]);
  assertEquals(again.code, 7, again.stderr);
  assertMatch(
    again.stderr.trim(),
    /^error: peer [0-9a-f]{32} has no pending capability change — .+cap-status/,
  );
  assertEquals(await snapshot(state), before);
  // --all with nothing pending changes nothing.
  const all = await cliJson(state, ["trust", "cap-promote", "--all"]);
  assertEquals(all.r.code, 0);
  assertEquals(all.j.changed, false);
  assertEquals(all.j.node_ids, []);
});

Deno.test("cap-reject returns the peer to trusted; cap-reject --block blocks it; --all promotes", async () => {
  await using tmp = await tempDir();
  const a = await makeState(tmp.path, "a", { trust: "known_peers.json" });
  const r = await cliJson(a, ["trust", "cap-reject", FRANK]);
  assertEquals(r.r.code, 0, r.r.stderr);
  assertEquals([r.j.old_state, r.j.new_state], ["pending-cap-change", "trusted"]);
  assertEquals(r.j.events[0].event, "PEER_STATE_CHANGED");
  assertEquals(r.j.events[0].details.reason, "cap-reject");
  const diff = await cliJson(a, ["trust", "cap-diff", FRANK]);
  assertEquals(diff.j.pending, false);
  assertEquals(diff.j.capability_set, ["chat", "embed"]);

  const b = await makeState(tmp.path, "b", { trust: "known_peers.json" });
  const blk = await cliJson(b, ["trust", "cap-reject", FRANK.slice(0, 4), "--block"]);
  assertEquals(blk.r.code, 0, blk.r.stderr);
  assertEquals(blk.j.new_state, "blocked");
  assertEquals(blk.j.events[0].event, "PEER_BLOCKED");
  assertEquals(blk.j.events[0].details.actor, "cli");
  assertEquals(
    blk.j.events[0].details.rejected_pending_hash,
    TRUST.inner.peers[FRANK].capability_hash_pending,
  );
  const logged = await auditEntries(b);
  assertEquals(logged.map((e) => e.event), ["PEER_BLOCKED"]);
  const list = await cliJson(b, ["trust", "list", "--state", "blocked"]);
  assert(list.j.peers.some((p: Json) => p.node_id === FRANK));

  const c = await makeState(tmp.path, "c", { trust: "known_peers.json" });
  const all = await cliJson(c, ["trust", "cap-promote", "--all"]);
  assertEquals(all.r.code, 0, all.r.stderr);
  assertEquals(all.j.node_ids, [FRANK]);
  assertEquals(all.j.events.map((e: Json) => e.event), ["PEER_CAP_ACCEPTED"]);
});

Deno.test("pin, revoke, list-revoked, clear-revocation and forget", async () => {
  await using tmp = await tempDir();
  const state = await makeState(tmp.path, "s");
  const peer = freshPeer();
  const pin = await cliJson(state, ["trust", "pin", peer.nodeId, peer.b64, "--name", "zed"]);
  assertEquals(pin.r.code, 0, pin.r.stderr);
  assertEquals(pin.j.new_state, "trusted");
  assertEquals(pin.j.events[0].event, "TOFU_NEW_PEER");
  assertEquals(pin.j.events[0].details.pinned_via, "operator");
  assertEquals(pin.j.events[0].details.actor, "cli");

  const rev = await cliJson(state, ["trust", "revoke", "zed", "--reason", "laptop stolen"]);
  assertEquals(rev.r.code, 0, rev.r.stderr);
  assertEquals(rev.j.events[0].event, "PEER_REVOKED_LOCAL");
  assertEquals(rev.j.events[0].details, {
    peer_id: peer.nodeId,
    reason: "laptop stolen",
    actor: "cli",
  });
  const again = await cliJson(state, ["trust", "revoke", peer.nodeId]);
  assertEquals(again.j.changed, false);
  const lr = await cliJson(state, ["trust", "list-revoked"]);
  assertEquals(lr.j.revoked.length, 1);
  assertEquals(lr.j.revoked[0].node_id, peer.nodeId);
  assertEquals(lr.j.revoked[0].reason, "laptop stolen");
  assertEquals(lr.j.revoked[0].names, ["zed"]); // names stay bound to the revoked node

  // A revoked node cannot be pinned or forgotten until the revocation is cleared.
  const before = await snapshot(state);
  const repin = await cli(state, ["trust", "pin", peer.nodeId, peer.b64]);
  assertEquals(repin.code, 1, repin.stderr);
  assertStringIncludes(repin.stderr, "clear-revocation");
  const fg = await cli(state, ["trust", "forget", "zed"]);
  assertEquals(fg.code, 7, fg.stderr);
  assertStringIncludes(fg.stderr, "is revoked, not pinned");
  assertEquals(await snapshot(state), before);

  const clr = await cliJson(state, ["trust", "clear-revocation", "zed"]);
  assertEquals(clr.r.code, 0, clr.r.stderr);
  assertEquals(clr.j.events[0].details.reason, "clear-revocation");
  assertEquals((await cliJson(state, ["trust", "list-revoked"])).j.revoked, []);
  assertEquals((await cli(state, ["trust", "pin", peer.nodeId, peer.b64])).code, 0);
  const forget = await cliJson(state, ["trust", "forget", "zed"]);
  assertEquals(forget.r.code, 0, forget.r.stderr);
  assertEquals(forget.j.new_state, "forgotten");
  assertEquals(forget.j.events[0].details.released_names, ["zed"]);
  assertEquals((await cliJson(state, ["trust", "list"])).j.peers, []);
  assertEquals((await auditEntries(state)).map((e) => e.event), [
    "TOFU_NEW_PEER",
    "PEER_REVOKED_LOCAL",
    "PEER_STATE_CHANGED",
    "TOFU_NEW_PEER",
    "PEER_STATE_CHANGED",
  ]);
});

Deno.test("trust list shows a name conflict (TOFU_MISMATCH) with both fingerprints side by side", async () => {
  await using tmp = await tempDir();
  const state = await makeState(tmp.path, "s");
  const owner = freshPeer();
  const impostor = freshPeer();
  assertEquals(
    (await cli(state, ["trust", "pin", owner.nodeId, owner.b64, "--name", "bob"])).code,
    0,
  );
  // The handshake refuses the impostor presenting "bob"; the daemon audits the refusal.
  const store = await TrustStore.open(join(state, "known_peers.json"), ALICE_SEED, {
    legacyHomeDir: null,
  });
  const decision = decideHandshake(store.data, { mode: "tofu" }, {
    nodeId: impostor.nodeId,
    name: "bob",
    identityPublicB64: impostor.b64,
  });
  assertEquals(decision.outcome, "refuse");
  assert(decision.outcome === "refuse");
  const log = aliceAuditLog(state);
  for (let i = 0; i < 2; i++) {
    for (const e of decision.events) await log.append(e.event, e.details);
  }
  log.close();

  const { r, j } = await cliJson(state, ["trust", "list"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(j.conflicts.length, 1);
  const c = j.conflicts[0];
  assertEquals(c.kind, "name");
  assertEquals(c.name, "bob");
  assertEquals(c.pinned_fingerprint, owner.nodeId);
  assertEquals(c.presented_fingerprint, impostor.nodeId);
  assertEquals(c.attempts, 2);
  const text = await cli(state, ["trust", "list"]);
  assertStringIncludes(text.stdout, "TOFU_MISMATCH");
  const row = text.stdout.split("\n").find((l) => l.startsWith("bob "));
  assert(row, text.stdout);
  assertMatch(
    row,
    new RegExp(
      `^bob\\s+${formatFingerprint(owner.nodeId)}\\s+${formatFingerprint(impostor.nodeId)}\\s+2×`,
    ),
  );
  assertStringIncludes(text.stdout, "trust forget");

  // Revoking the impostor (never pinned: its full node id) resolves it too.
  const other = await makeState(tmp.path, "copy");
  for await (const e of Deno.readDir(state)) {
    if (e.isFile) await Deno.copyFile(join(state, e.name), join(other, e.name));
  }
  const rev = await cliJson(other, ["trust", "revoke", impostor.nodeId, "--reason", "impostor"]);
  assertEquals(rev.r.code, 0, rev.r.stderr);
  assertEquals([rev.j.old_state, rev.j.new_state], ["pending", "revoked"]);
  assertEquals((await cliJson(other, ["trust", "list"])).j.conflicts, []);
  assertEquals((await cliJson(state, ["trust", "list"])).j.conflicts.length, 1);

  // Resolved by binding the name to the new key: the conflict disappears.
  const moved = await cliJson(state, [
    "trust",
    "pin",
    impostor.nodeId,
    impostor.b64,
    "--name",
    "bob",
  ]);
  assertEquals(moved.r.code, 0, moved.r.stderr);
  assert(moved.j.events.some((e: Json) => e.details.previous_owner === owner.nodeId));
  assertEquals((await cliJson(state, ["trust", "list"])).j.conflicts, []);
});

Deno.test("bad input: one clear line, a distinct exit code, no file changed (--json errors too)", async () => {
  await using tmp = await tempDir();
  const state = await makeState(tmp.path, "s", { trust: "known_peers.json" });
  const web1 = freshPeer(), web2 = freshPeer();
  for (const [p, n] of [[web1, "web-1"], [web2, "web-2"]] as const) {
    assertEquals((await cli(state, ["trust", "pin", p.nodeId, p.b64, "--name", n])).code, 0);
  }
  const tampered = await makeState(tmp.path, "t", { trust: "known_peers.tampered.json" });
  const wrongKey = TRUST.inner.peers[ID_OF.bob].pubkey as string;
  const cases: { name: string; dir?: string; args: string[]; code: number; says: string }[] = [
    {
      name: "unknown id",
      args: ["trust", "set-state", "ffff", "trusted"],
      code: 7,
      says: "no known peer",
    },
    {
      name: "ambiguous prefix",
      args: ["trust", "forget", "web"],
      code: 2,
      says: "matches 2 peers",
    },
    {
      name: "invalid state",
      args: ["trust", "set-state", CAROL, "friendly"],
      code: 2,
      says: "invalid trust state",
    },
    {
      name: "list --state bogus",
      args: ["trust", "list", "--state", "x"],
      code: 2,
      says: "use one of",
    },
    {
      name: "missing argument",
      args: ["trust", "set-state", CAROL],
      code: 2,
      says: "missing <state>",
    },
    { name: "extra argument", args: ["trust", "forget", CAROL, "x"], code: 2, says: "unexpected" },
    { name: "unknown flag", args: ["trust", "list", "--bogus"], code: 2, says: "unknown option" },
    {
      name: "pin: not a node id",
      args: ["trust", "pin", "abc", wrongKey],
      code: 13,
      says: "not a node id",
    },
    {
      name: "pin: key of another node",
      args: ["trust", "pin", CAROL, wrongKey],
      code: 13,
      says: `belongs to node ${ID_OF.bob}`,
    },
    {
      name: "pin: this node itself",
      args: ["trust", "pin", TRUST.owner.node_id, "RbuJMuKVfYHPaIz6kWr7lq/QCnbHr7p70T2COC0MxMM="],
      code: 13,
      says: "own key",
    },
    {
      name: "cap-diff of an unpinned (revoked) node",
      args: ["trust", "cap-diff", ID_OF.mallory.slice(0, 6)],
      code: 7,
      says: "not pinned",
    },
    {
      name: "cap-promote with id and --all",
      args: ["trust", "cap-promote", FRANK, "--all"],
      code: 2,
      says: "not both",
    },
    { name: "tampered: list", dir: tampered, args: ["trust", "list"], code: 10, says: "MAC" },
    {
      name: "tampered: set-state",
      dir: tampered,
      args: ["trust", "set-state", CAROL, "trusted"],
      code: 10,
      says: "read-only",
    },
    {
      name: "tampered: cap-promote",
      dir: tampered,
      args: ["trust", "cap-promote", "--all"],
      code: 10,
      says: "read-only",
    },
    { name: "tampered: verify", dir: tampered, args: ["trust", "verify"], code: 10, says: "MAC" },
    {
      name: "no identity",
      dir: join(tmp.path, "empty"),
      args: ["trust", "list"],
      code: 7,
      says: "keys generate",
    },
  ];
  for (const c of cases) {
    const dir = c.dir ?? state;
    const before = await snapshot(dir);
    const r = await cli(dir, c.args);
    assertEquals(r.code, c.code, `${c.name}: ${r.stderr}`);
    const lines = r.stderr.trim().split("\n");
    assertEquals(lines.length, 1, `${c.name}: one line, got ${r.stderr}`);
    assertMatch(lines[0], /^error: .+ — .+/, c.name);
    assertStringIncludes(lines[0], c.says, c.name);
    assertEquals(await snapshot(dir), before, `${c.name} changed a file`);
    const j = await cli(dir, [...c.args, "--json"]);
    assertEquals(j.code, c.code, c.name);
    const out = parseOutput(j.stdout);
    assertEquals(out.ok, false, c.name);
    if (out.error) assert(typeof out.error.code === "string" && out.error.hint, c.name);
    assertEquals(await snapshot(dir), before, `${c.name} (--json) changed a file`);
  }
  // The tampered store is left exactly as it was, and nothing was logged.
  assertEquals(await auditEntries(tampered), []);
});

Deno.test("a stuck daemon (lock held, control socket silent): changes refused naming its pid, reads still work", async () => {
  await using tmp = await tempDir();
  const state = await makeState(tmp.path, "s", { trust: "known_peers.json" });
  const lock = lockStateDir(state, "ironmesh run");
  try {
    const before = await snapshot(state);
    const r = await cli(state, ["trust", "set-state", CAROL, "trusted"]);
    assertEquals(r.code, 5, r.stderr);
    assertEquals(r.stderr.trim().split("\n").length, 1);
    assertStringIncludes(r.stderr, `pid ${Deno.pid}`);
    assertStringIncludes(r.stderr, "control socket does not answer");
    assertEquals(await snapshot(state), before);
    const list = await cliJson(state, ["trust", "list"]);
    assertEquals(list.r.code, 0, list.r.stderr);
    assertEquals(list.j.peers.length, 6);
    assertEquals((await cli(state, ["trust", "verify"])).code, 0);
  } finally {
    lock.release();
  }
  assertEquals((await cli(state, ["trust", "set-state", CAROL, "trusted"])).code, 0);
});

Deno.test("concurrent trust changes from two processes are both kept, in one audit chain", async () => {
  await using tmp = await tempDir();
  const state = await makeState(tmp.path, "s", { trust: "known_peers.json" });
  const [a, b, c] = await Promise.all([
    cli(state, ["trust", "set-state", CAROL, "trusted"]),
    cli(state, ["trust", "set-state", ID_OF.erin, "blocked"]),
    cli(state, ["trust", "cap-promote", FRANK]),
  ]);
  for (const r of [a, b, c]) assertEquals(r.code, 0, r.stderr);
  const { j } = await cliJson(state, ["trust", "list"]);
  const st = (id: string) => j.peers.find((p: Json) => p.node_id === id).trust_state;
  assertEquals([st(CAROL), st(ID_OF.erin), st(FRANK)], ["trusted", "blocked", "trusted"]);
  assertEquals((await auditEntries(state)).length, 3);
  const v = await cliJson(state, ["audit", "verify"]);
  assertEquals(v.j.ok, true);
  assertEquals(v.j.checkpoint.status, "ok");
});

Deno.test("trust --help and every subcommand's --help have examples; usage errors exit 2", async () => {
  const subs = [
    "list",
    "set-state",
    "pin",
    "revoke",
    "clear-revocation",
    "forget",
    "list-revoked",
    "cap-status",
    "cap-diff",
    "cap-promote",
    "cap-reject",
    "verify",
  ];
  const top = await cli("/nonexistent", ["trust", "--help"]);
  assertEquals(top.code, 0);
  assertStringIncludes(top.stdout, "Examples:");
  for (const s of subs) assertStringIncludes(top.stdout, `ironmesh trust ${s}`);
  for (const s of subs) {
    const r = await cli("/nonexistent", ["trust", s, "--help"]);
    assertEquals(r.code, 0, s);
    assertStringIncludes(r.stdout, "Examples:", s);
    assertStringIncludes(r.stdout, `ironmesh trust ${s}`, s);
  }
  const main = await cli("/nonexistent", ["--help"]);
  assertStringIncludes(main.stdout, "trust");
  assertStringIncludes(main.stdout, "ironmesh trust list");
  for (const args of [["trust"], ["trust", "nope"]]) {
    const r = await cli("/nonexistent", args);
    assertEquals(r.code, 2, args.join(" "));
    assertMatch(r.stderr.trim(), /^error: .+ — try 'ironmesh trust --help'$/);
  }
});
