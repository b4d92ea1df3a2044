/** `ironmesh audit …` run as a subprocess: Python fixtures, tampering, truncation, follow. */
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../support/assert.ts";
import { tempDir } from "../support/cli.ts";
import { vectorPath } from "../support/vectors.ts";
import {
  ALICE_ID,
  aliceAuditLog,
  AUDIT,
  cli,
  cliJson,
  type Json,
  makeState,
  snapshot,
  StreamingCli,
} from "./trust_audit_support.ts";

async function lines(state: string): Promise<string[]> {
  return (await Deno.readTextFile(join(state, "audit.log"))).split("\n").filter((l) => l);
}

async function writeLines(state: string, ls: string[]): Promise<void> {
  await Deno.writeTextFile(join(state, "audit.log"), ls.map((l) => l + "\n").join(""));
}

/** A state dir with `n` entries written by alice's audit writer (signed checkpoint). */
async function loggedState(dir: string, name: string, n: number): Promise<string> {
  const state = await makeState(dir, name);
  const log = aliceAuditLog(state);
  for (let i = 1; i <= n; i++) await log.append("PEER_CONNECT", { peer_id: `peer-${i}`, n: i });
  log.close();
  return state;
}

Deno.test("audit verify: the Python-written log and the rotated set (--archives) verify", async () => {
  await using tmp = await tempDir();
  const state = await makeState(tmp.path, "s", { audit: "audit.log" });
  const { r, j } = await cliJson(state, ["audit", "verify"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(j.ok, true);
  assertEquals(j.entries, AUDIT.main_log.entry_count);
  assertEquals(j.head_hmac, AUDIT.main_log.final_hmac);
  assertEquals(j.first_bad_line, null);
  assertEquals(j.checkpoint.status, "missing"); // Python writes no checkpoint
  const text = await cli(state, ["audit", "verify"]);
  assertEquals(text.code, 0);
  assertStringIncludes(text.stdout, `${AUDIT.main_log.entry_count} entries verified`);
  const quiet = await cli(state, ["audit", "verify", "--quiet"]);
  assertEquals([quiet.code, quiet.stdout, quiet.stderr], [0, "", ""]);

  const rot = await makeState(tmp.path, "rot");
  for (const f of ["audit.log", "audit.log.1", "audit.log.2"]) {
    await Deno.writeFile(join(rot, f), await Deno.readFile(vectorPath("audit", "rotated", f)), {
      mode: 0o600,
    });
  }
  const all = await cliJson(rot, ["audit", "verify", "--archives"]);
  assertEquals(all.r.code, 0, all.r.stderr);
  assertEquals(all.j.entries, AUDIT.rotated.verify_chain_across_archives.entries_checked);
  assertEquals(all.j.files.length, 3);
});

Deno.test("audit verify: every recorded tampered copy fails at the recorded line (exit 1, one line)", async () => {
  await using tmp = await tempDir();
  for (const t of AUDIT.tampered) {
    const state = await makeState(tmp.path, t.file, { audit: t.file });
    const before = await snapshot(state);
    const r = await cli(state, ["audit", "verify", "--quiet"]);
    if (t.verify_result.ok) {
      assertEquals([r.code, r.stdout, r.stderr], [0, "", ""], `${t.file}: ${r.stderr}`);
    } else {
      assertEquals(r.code, 1, `${t.file}: ${r.stderr}`);
      assertEquals(r.stdout, "", t.file);
      const ls = r.stderr.trim().split("\n");
      assertEquals(ls.length, 1, `${t.file}: ${r.stderr}`);
      assertMatch(ls[0], /^error: audit log .+ — .+/, t.file);
      assertStringIncludes(ls[0], `first bad line ${t.verify_result.first_bad_line}:`, t.file);
    }
    const j = await cliJson(state, ["audit", "verify"]);
    assertEquals(j.j.ok, t.verify_result.ok, t.file);
    assertEquals(j.j.first_bad_line, t.verify_result.first_bad_line, t.file);
    assertEquals(j.j.entries, t.verify_result.entries_checked, t.file);
    assertEquals(await snapshot(state), before, `${t.file}: verify changed a file`);
  }
  const rt = await makeState(tmp.path, "rotated-tampered");
  for (const f of ["audit.log", "audit.log.1", "audit.log.2"]) {
    await Deno.writeFile(
      join(rt, f),
      await Deno.readFile(vectorPath("audit", "rotated-tampered", f)),
    );
  }
  const want = AUDIT.rotated.tampered_copy.verify_chain_across_archives;
  const r = await cliJson(rt, ["audit", "verify", "--archives"]);
  assertEquals(r.r.code, 1);
  assertEquals(r.j.first_bad_line, want.first_bad_line_global);
  assertEquals(r.j.entries, want.entries_checked);
  assertStringIncludes(r.r.stderr, `first bad line ${want.first_bad_line_global}:`);
});

Deno.test("audit verify: tail truncation and a re-chained tail are caught by the signed checkpoint", async () => {
  await using tmp = await tempDir();
  const state = await loggedState(tmp.path, "s", 10);
  const ok = await cliJson(state, ["audit", "verify"]);
  assertEquals(ok.r.code, 0, ok.r.stderr);
  assertEquals(ok.j.checkpoint, {
    status: "ok",
    path: join(state, "audit.checkpoint"),
    signed: true,
    entry_count: 10,
    head_hmac: ok.j.head_hmac,
    time: ok.j.checkpoint.time,
    problems: [],
  });
  const all = await lines(state);

  // Whole lines cut off the end: the chain alone still verifies; the checkpoint does not.
  await writeLines(state, all.slice(0, 8));
  const cut = await cli(state, ["audit", "verify", "--quiet"]);
  assertEquals(cut.code, 1, cut.stderr);
  assertStringIncludes(cut.stderr, "first bad line 9:");
  assertStringIncludes(cut.stderr, "truncated");
  const cutJ = await cliJson(state, ["audit", "verify"]);
  assertEquals(cutJ.j.reason, "truncated");

  // Cut and re-chained by someone holding the key (no checkpoint update): still caught.
  await writeLines(state, all.slice(0, 7));
  const forger = aliceAuditLog(state, { checkpoint: false });
  for (let i = 0; i < 3; i++) await forger.append("SHUTDOWN", { forged: i });
  forger.close();
  assertEquals((await lines(state)).length, 10);
  const rechained = await cliJson(state, ["audit", "verify"]);
  assertEquals(rechained.r.code, 1);
  assertEquals(rechained.j.reason, "truncated");
  assertEquals(rechained.j.first_bad_line, 10);
  assertStringIncludes(rechained.r.stderr, "re-chained");

  // An edited checkpoint is refused.
  await writeLines(state, all);
  const cpPath = join(state, "audit.checkpoint");
  const cp = await Deno.readTextFile(cpPath);
  await Deno.writeTextFile(cpPath, cp.replace('"entry_count": 10', '"entry_count": 11'));
  const edited = await cliJson(state, ["audit", "verify"]);
  assertEquals(edited.r.code, 1);
  assertEquals(edited.j.reason, "checkpoint-invalid");
  await Deno.writeTextFile(cpPath, cp);
  assertEquals((await cli(state, ["audit", "verify", "--quiet"])).code, 0);

  // The whole log deleted while its checkpoint remains: not "no log yet", but tampering.
  await Deno.remove(join(state, "audit.log"));
  const gone = await cliJson(state, ["audit", "verify"]);
  assertEquals(gone.r.code, 1, gone.r.stderr);
  assertEquals(gone.j.reason, "truncated");
  assertStringIncludes(gone.r.stderr, "first bad line 1:");

  // A checkpoint that is only MACed (not signed by this node) is refused too.
  const unsigned = await makeState(tmp.path, "u");
  const log = aliceAuditLog(unsigned, { signed: false });
  await log.append("STARTUP", { node_id: ALICE_ID });
  log.close();
  const u = await cliJson(unsigned, ["audit", "verify"]);
  assertEquals(u.r.code, 1);
  assertEquals(u.j.reason, "checkpoint-invalid");
  assertStringIncludes(u.r.stderr, "not signed");
});

Deno.test("a corrupt line in the middle: verify names it; tail and stats skip it and say so", async () => {
  await using tmp = await tempDir();
  const state = await makeState(tmp.path, "s", { audit: "audit.log" });
  const ls = await lines(state);
  ls[9] = "this line is not an audit entry";
  await writeLines(state, ls);
  const before = await snapshot(state);
  const v = await cli(state, ["audit", "verify"]);
  assertEquals(v.code, 1);
  assertEquals(v.stderr.trim().split("\n").length, 1);
  assertStringIncludes(v.stderr, "first bad line 10:");
  assertStringIncludes(v.stderr, "not a valid audit entry");
  const t = await cliJson(state, ["audit", "tail", "--limit", "0"]);
  assertEquals(t.r.code, 0, t.r.stderr);
  assertEquals(t.j.count, AUDIT.main_log.entry_count - 1);
  assertEquals(t.j.skipped_lines, [10]);
  assertStringIncludes(t.r.stderr, "skipped 1 line");
  const s = await cliJson(state, ["audit", "stats"]);
  assertEquals(s.j.total, AUDIT.main_log.entry_count - 1);
  assertEquals(s.j.skipped_lines, 1);
  assertEquals(await snapshot(state), before);
});

Deno.test("missing or unreadable log: one clear line and a distinct exit code", async () => {
  await using tmp = await tempDir();
  const empty = await makeState(tmp.path, "empty");
  const notFile = await makeState(tmp.path, "dir");
  await Deno.mkdir(join(notFile, "audit.log"));
  const cases: { dir: string; args: string[]; code: number; says: string }[] = [
    { dir: empty, args: ["audit", "verify"], code: 7, says: "no audit log" },
    { dir: empty, args: ["audit", "verify", "--quiet"], code: 7, says: "no audit log" },
    { dir: empty, args: ["audit", "tail"], code: 7, says: "no audit log" },
    { dir: empty, args: ["audit", "stats"], code: 7, says: "no audit log" },
    {
      dir: empty,
      args: ["audit", "export", "--out", join(tmp.path, "x.json")],
      code: 7,
      says: "no audit log",
    },
    { dir: notFile, args: ["audit", "verify"], code: 8, says: "not a regular file" },
    { dir: notFile, args: ["audit", "tail"], code: 8, says: "not a regular file" },
    { dir: join(tmp.path, "nope"), args: ["audit", "verify"], code: 7, says: "no audit log" },
  ];
  if (Deno.uid() !== 0) {
    const locked = await makeState(tmp.path, "locked", { audit: "audit.log" });
    await Deno.chmod(join(locked, "audit.log"), 0o000);
    cases.push({ dir: locked, args: ["audit", "verify"], code: 8, says: "permission denied" });
    cases.push({ dir: locked, args: ["audit", "tail"], code: 8, says: "permission denied" });
  }
  for (const c of cases) {
    const before = await snapshot(c.dir);
    const r = await cli(c.dir, c.args);
    const name = `${c.args.join(" ")} in ${c.dir}`;
    assertEquals(r.code, c.code, `${name}: ${r.stderr}`);
    const ls = r.stderr.trim().split("\n");
    assertEquals(ls.length, 1, `${name}: ${r.stderr}`);
    assertMatch(ls[0], /^error: .+ — .+/, name);
    assertStringIncludes(ls[0], c.says, name);
    assertEquals(await snapshot(c.dir), before, name);
    const j = await cli(c.dir, [...c.args, "--json"]);
    assertEquals(JSON.parse(j.stdout).ok, false, name);
  }
  await Deno.stat(join(tmp.path, "x.json")).then(() => assert(false, "export written"), () => {});
});

Deno.test("audit tail: --limit, --event, --since filters and the JSON entry shape", async () => {
  await using tmp = await tempDir();
  const state = await makeState(tmp.path, "s", { audit: "audit.log" });
  const exp = AUDIT.main_log.lines;
  const last3 = await cliJson(state, ["audit", "tail", "--limit", "3"]);
  assertEquals(last3.r.code, 0, last3.r.stderr);
  assertEquals(last3.j.count, 3);
  assertEquals(last3.j.entries.map((e: Json) => e.line), exp.slice(-3).map((l) => l.line));
  assertEquals(last3.j.entries.map((e: Json) => e.event), exp.slice(-3).map((l) => l.event));
  assertEquals(last3.j.entries.map((e: Json) => e.hmac), exp.slice(-3).map((l) => l.hmac));
  const e0 = last3.j.entries[0];
  assertEquals(Object.keys(e0).sort(), ["details", "event", "hmac", "line", "time", "timestamp"]);
  assertEquals(e0.timestamp, Number(exp[exp.length - 3].timestamp_repr));
  assertEquals(e0.time, new Date(e0.timestamp * 1000).toISOString());

  const def = await cliJson(state, ["audit", "tail"]);
  assertEquals(def.j.count, 20); // default limit

  const byEvent = await cliJson(state, [
    "audit",
    "tail",
    "--event",
    "peer_connect,startup",
    "--limit",
    "0",
  ]);
  const want = exp.filter((l) => l.event === "PEER_CONNECT" || l.event === "STARTUP");
  assert(want.length >= 2);
  assertEquals(byEvent.j.entries.map((e: Json) => e.line), want.map((l) => l.line));

  const cutoff = Number(exp[20].timestamp_repr);
  const since = await cliJson(state, [
    "audit",
    "tail",
    "--since",
    new Date(cutoff * 1000).toISOString(),
    "--limit",
    "0",
  ]);
  assertEquals(
    since.j.entries.map((e: Json) => e.line),
    exp.filter((l) => Number(l.timestamp_repr) >= cutoff).map((l) => l.line),
  );
  const recent = await cliJson(state, ["audit", "tail", "--since", "5m"]);
  assertEquals(recent.j.count, 0); // the fixture was written in January 2025

  const text = await cli(state, ["audit", "tail", "--limit", "1", "--event", "STARTUP"]);
  assertEquals(text.code, 0);
  assertMatch(
    text.stdout,
    /^2025-01-14 00:00:00Z {2}STARTUP {2}name=alice node_id=f55e\S+ port=8765\n$/,
  );

  for (
    const [args, says] of [
      [["--since", "yesterday"], "cannot read the time"],
      [["--since", "2025-02-30"], "cannot read the time"],
      [["--limit=-1"], "--limit"],
      [["--limit", "ten"], "--limit"],
      [["--event", ","], "--event"],
    ] as const
  ) {
    const r = await cli(state, ["audit", "tail", ...args]);
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assertStringIncludes(r.stderr, says);
    assertEquals(r.stderr.trim().split("\n").length, 1);
  }
});

Deno.test("audit stats: counts per event type and per day", async () => {
  await using tmp = await tempDir();
  const state = await makeState(tmp.path, "s", { audit: "audit.log" });
  const { r, j } = await cliJson(state, ["audit", "stats"]);
  assertEquals(r.code, 0, r.stderr);
  const exp = AUDIT.main_log.lines;
  const byEvent: Record<string, number> = {};
  const byDay: Record<string, number> = {};
  for (const l of exp) {
    byEvent[l.event] = (byEvent[l.event] ?? 0) + 1;
    const day = new Date(Number(l.timestamp_repr) * 1000).toISOString().slice(0, 10);
    byDay[day] = (byDay[day] ?? 0) + 1;
  }
  assertEquals(j.total, exp.length);
  assertEquals(j.by_event, byEvent);
  assertEquals(j.by_day, byDay);
  assertEquals(j.first, Number(exp[0].timestamp_repr));
  const since = await cliJson(state, ["audit", "stats", "--since", "1d"]);
  assertEquals(since.j.total, 0);
  const text = await cli(state, ["audit", "stats"]);
  assertMatch(text.stdout, /PEER_CONNECT\s+\d+/);
  assertMatch(text.stdout, /2025-01-14\s+32/);
});

Deno.test("audit export is signed and verify-export checks it; tampered, foreign and Python exports", async () => {
  await using tmp = await tempDir();
  const state = await makeState(tmp.path, "s", { audit: "audit.log" });
  const out = join(tmp.path, "export.json");
  const { r, j } = await cliJson(state, ["audit", "export", "--out", out]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(j.entries, AUDIT.main_log.entry_count);
  assertEquals(j.final_hmac, AUDIT.main_log.final_hmac);
  assertEquals(j.signer, ALICE_ID);
  assertEquals((await Deno.stat(out)).mode! & 0o777, 0o600);

  const ok = await cliJson(state, ["audit", "verify-export", out]);
  assertEquals(ok.r.code, 0, ok.r.stderr);
  assertEquals([ok.j.valid, ok.j.status, ok.j.chain, ok.j.key_source], [
    true,
    "valid",
    "ok",
    "expected",
  ]);
  // Without this node's identity, the key included in the export still proves the signer.
  const other = await makeState(tmp.path, "other", { keys: null });
  const foreign = await cliJson(other, ["audit", "verify-export", out]);
  assertEquals(foreign.r.code, 0, foreign.r.stderr);
  assertEquals([foreign.j.key_source, foreign.j.chain], ["included", "unchecked"]);

  // Refuses to overwrite.
  const again = await cli(state, ["audit", "export", "--out", out]);
  assertEquals(again.code, 6, again.stderr);
  assertStringIncludes(again.stderr, "already exists");

  // An entry changed after signing.
  const bad = join(tmp.path, "bad.json");
  await Deno.writeTextFile(
    bad,
    (await Deno.readTextFile(out)).replace('"port": 8765', '"port": 8766'),
  );
  const t = await cliJson(state, ["audit", "verify-export", bad]);
  assertEquals(t.r.code, 10);
  assertEquals(t.j.status, "bad-signature");
  assertEquals(t.r.stderr.trim().split("\n").length, 1);
  const junk = join(tmp.path, "junk.json");
  await Deno.writeTextFile(junk, "not an export");
  assertEquals((await cli(state, ["audit", "verify-export", junk])).code, 13);
  assertEquals((await cli(state, ["audit", "verify-export", join(tmp.path, "none")])).code, 7);

  // The Python-written export: alice's own (chain checked with her audit key) …
  const py = vectorPath("audit", "audit.export.json");
  const pyOk = await cliJson(state, ["audit", "verify-export", py]);
  assertEquals(pyOk.r.code, 0, pyOk.r.stderr);
  assertEquals([pyOk.j.valid, pyOk.j.chain, pyOk.j.entry_count], [true, "ok", 32]);
  // … but without alice's key it has no signer_pubkey, so it cannot be called valid.
  const pyForeign = await cliJson(other, ["audit", "verify-export", py]);
  assertEquals(pyForeign.r.code, 1);
  assertEquals(pyForeign.j.status, "unknown-signer");

  // A broken chain refuses the export unless --force.
  const ls = await lines(state);
  assertStringIncludes(ls[1], '"peer_name":"bob"');
  ls[1] = ls[1].replace('"peer_name":"bob"', '"peer_name":"eve"');
  await writeLines(state, ls);
  const refused = await cli(state, ["audit", "export", "--out", join(tmp.path, "b.json")]);
  assertEquals(refused.code, 10, refused.stderr);
  const forced = await cli(state, [
    "audit",
    "export",
    "--out",
    join(tmp.path, "b.json"),
    "--force",
  ]);
  assertEquals(forced.code, 0, forced.stderr);
});

Deno.test("audit tail --follow prints an entry appended while it runs", async () => {
  await using tmp = await tempDir();
  const state = await loggedState(tmp.path, "s", 3);
  const follower = new StreamingCli([
    "audit",
    "tail",
    "--follow",
    "--json",
    "--limit",
    "1",
    "--state-dir",
    state,
  ]);
  let status: Deno.CommandStatus | null = null;
  try {
    const first = JSON.parse(await follower.waitFor((l) => l.includes("peer-3"), 20_000));
    assertEquals(first.event, "PEER_CONNECT");
    assertEquals(first.details.n, 3);
    const log = aliceAuditLog(state);
    await log.append("PEER_DISCONNECT", { peer_id: "follow-me", reason: "test" });
    log.close();
    const seen = JSON.parse(await follower.waitFor((l) => l.includes("follow-me"), 20_000));
    assertEquals(seen.event, "PEER_DISCONNECT");
    assertEquals(seen.details, { peer_id: "follow-me", reason: "test" });
    // Only the last existing entry (--limit 1) and the new one: nothing repeated.
    assertEquals(follower.lines.length, 2);
  } finally {
    status = await follower.stop("SIGTERM");
  }
  assertEquals(status.success, true, follower.stderr);
});

Deno.test("audit --help and every subcommand's --help have examples (with a cron line); usage errors", async () => {
  const subs = ["verify", "tail", "stats", "export", "verify-export"];
  const top = await cli("/nonexistent", ["audit", "--help"]);
  assertEquals(top.code, 0);
  assertStringIncludes(top.stdout, "Examples:");
  assertStringIncludes(top.stdout, "audit verify --archives --quiet");
  for (const s of subs) {
    const r = await cli("/nonexistent", ["audit", s, "--help"]);
    assertEquals(r.code, 0, s);
    assertStringIncludes(r.stdout, "Examples:", s);
    assertStringIncludes(r.stdout, `ironmesh audit ${s}`, s);
  }
  for (
    const args of [["audit"], ["audit", "nope"], ["audit", "export"], ["audit", "verify-export"]]
  ) {
    const r = await cli("/nonexistent", args);
    assertEquals(r.code, 2, args.join(" "));
    assertMatch(r.stderr.trim(), /^error: .+ — try 'ironmesh audit( [a-z-]+)? --help'$/);
  }
});
