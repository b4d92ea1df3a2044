/**
 * `ironmesh doctor` as a subprocess: a healthy node passes; each broken condition gives its ✗,
 * its fix and a non-zero exit; --peer runs a timed handshake against a real daemon on
 * 127.0.0.1. Every run uses --bind 127.0.0.1 (never a wildcard bind) and most --no-mdns.
 */
import { join } from "node:path";
import { AuditLog } from "../../lib/audit/log.ts";
import { FakeClock } from "../../lib/clock.ts";
import { auditKey } from "../../lib/crypto/kdf.ts";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../support/assert.ts";
import { tempDir } from "../support/cli.ts";
import { DAEMON_PASS, startDaemon } from "../support/daemon.ts";
import {
  ALICE_ID,
  ALICE_SEED,
  aliceAuditLog,
  aliceIdentity,
  cli,
  cliJson,
  type Json,
  makeState,
  PASS,
  passFile,
  type StateSpec,
} from "./trust_audit_support.ts";

/** A port nothing listens on right now (127.0.0.1). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}

/** A healthy node: keys, trust store, an audit log with a signed checkpoint. */
async function healthy(dir: string, name: string, spec: StateSpec = {}): Promise<string> {
  const state = await makeState(dir, name, { trust: "known_peers.json", ...spec });
  const log = aliceAuditLog(state);
  for (let i = 0; i < 3; i++) await log.append("PEER_CONNECT", { peer_id: `peer-${i}` });
  log.close();
  return state;
}

function check(j: Json, id: string): Json {
  const c = j.checks.find((x: Json) => x.id === id);
  if (!c) throw new Error(`no check '${id}' in ${JSON.stringify(j.checks.map((x: Json) => x.id))}`);
  return c;
}

async function listing(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

const base = (kp: string, port: number) => [
  "doctor",
  "--passphrase-file",
  kp,
  "--bind",
  "127.0.0.1",
  "--port",
  String(port),
  "--no-mdns",
];

Deno.test("doctor: a healthy node passes every check (exit 0) and changes nothing", async () => {
  await using tmp = await tempDir();
  const state = await healthy(tmp.path, "ok", { keys: "encrypted" });
  const kp = await passFile(tmp.path, PASS);
  const before = await listing(state);
  const { r, j } = await cliJson(state, base(kp, freePort()));
  assertEquals(r.code, 0, r.stdout + r.stderr);
  assertEquals(j.ok, true);
  const ids = j.checks.map((c: Json) => c.id);
  assertEquals(ids, [
    "state-dir",
    "file-modes",
    "keys",
    "trust-store",
    "audit-chain",
    "audit-checkpoint",
    "daemon",
    "port",
    "mdns",
    "clock",
  ]);
  for (const c of j.checks) {
    assertEquals(c.status, c.id === "mdns" ? "skip" : "pass", `${c.id}: ${c.detail}`);
  }
  assertStringIncludes(check(j, "keys").detail, ALICE_ID);
  assertStringIncludes(check(j, "audit-checkpoint").detail, "matches");
  assertEquals([j.passed, j.failed, j.skipped], [9, 0, 1]);
  const text = await cli(state, base(kp, freePort()));
  assertEquals(text.code, 0);
  assertMatch(text.stdout, /✓ state directory/);
  assertMatch(text.stdout, /✓ audit chain +3 entries verified from genesis/);
  assertMatch(text.stdout, /○ mDNS possible +skipped: not checked \(--no-mdns\)/);
  assert(!text.stdout.includes("✗"), text.stdout);
  assertStringIncludes(text.stdout, "9 passed, 1 skipped (skipped checks do not fail the run)");
  assertEquals(await listing(state), before, "doctor creates nothing (no lock files either)");
});

Deno.test("doctor: without a passphrase source the key checks are skipped, not failed", async () => {
  await using tmp = await tempDir();
  const state = await healthy(tmp.path, "nopass", { keys: "encrypted" });
  const { r, j } = await cliJson(state, [
    "doctor",
    "--bind",
    "127.0.0.1",
    "--port",
    String(freePort()),
    "--no-mdns",
  ]);
  assertEquals(r.code, 0, r.stdout + r.stderr);
  assertEquals(check(j, "keys").status, "skip");
  assertStringIncludes(check(j, "keys").fix, "--passphrase-file");
  assertEquals(check(j, "trust-store").status, "skip");
  assertEquals(check(j, "audit-chain").status, "skip");
  assertEquals(j.skipped, 5);
  // A wrong key-file passphrase is a failure, not a skip.
  const wrong = await cliJson(
    state,
    base(await passFile(tmp.path, "not-the-key-passphrase"), freePort()),
  );
  assertEquals(wrong.r.code, 1);
  assertEquals(check(wrong.j, "keys").status, "fail");
  assertStringIncludes(check(wrong.j, "keys").detail, "Wrong passphrase");
});

Deno.test("doctor: each broken condition gives its ✗, its fix and exit 1", async () => {
  await using tmp = await tempDir();
  const kp = await passFile(tmp.path, PASS);
  const run = async (state: string, extra: string[] = [], port = freePort()) => {
    const { r, j } = await cliJson(state, [...base(kp, port), ...extra]);
    assertEquals(r.code, 1, `${state}: ${r.stdout}${r.stderr}`);
    assertEquals(j.ok, false);
    return j;
  };
  const expectFail = (j: Json, id: string, fix: string) => {
    const c = check(j, id);
    assertEquals(c.status, "fail", `${id}: ${c.detail}`);
    assertStringIncludes(c.fix, fix);
    assertEquals(
      j.checks.filter((x: Json) => x.status === "fail").length,
      1,
      JSON.stringify(j.checks),
    );
  };

  // state dir 0755
  const open = await healthy(tmp.path, "open");
  await Deno.chmod(open, 0o755);
  expectFail(await run(open), "state-dir", `chmod 700 ${open}`);

  // a state file 0644
  const leaky = await healthy(tmp.path, "leaky");
  await Deno.chmod(join(leaky, "known_peers.json"), 0o644);
  const lj = await run(leaky);
  expectFail(lj, "file-modes", `chmod 600 ${join(leaky, "known_peers.json")}`);
  assertStringIncludes(check(lj, "file-modes").detail, "known_peers.json (0644)");

  // a tampered trust store
  const tampered = await healthy(tmp.path, "tampered", { trust: "known_peers.tampered.json" });
  expectFail(await run(tampered), "trust-store", "move it aside");

  // entries cut from the end of the audit log (the chain alone cannot tell)
  const cut = await healthy(tmp.path, "cut");
  const lines = (await Deno.readTextFile(join(cut, "audit.log"))).split("\n").filter((l) => l);
  await Deno.writeTextFile(
    join(cut, "audit.log"),
    lines.slice(0, -1).map((l) => l + "\n").join(""),
  );
  const cj = await run(cut);
  expectFail(cj, "audit-checkpoint", "keep the evidence");
  assertEquals(check(cj, "audit-chain").status, "pass");
  assertStringIncludes(check(cj, "audit-checkpoint").detail, "cut from the end");

  // an edited audit entry
  const edited = await healthy(tmp.path, "edited");
  const el = (await Deno.readTextFile(join(edited, "audit.log"))).split("\n").filter((l) => l);
  el[1] = el[1].replace("peer-1", "peer-9");
  await Deno.writeTextFile(join(edited, "audit.log"), el.map((l) => l + "\n").join(""));
  const ej = await run(edited);
  expectFail(ej, "audit-chain", "keep the evidence");
  assertStringIncludes(check(ej, "audit-chain").detail, "first bad line 2");

  // missing keys.json
  const nokeys = await healthy(tmp.path, "nokeys", { keys: null });
  const nj = await run(nokeys);
  expectFail(nj, "keys", "ironmesh keys generate");
  assertEquals(check(nj, "trust-store").status, "skip");

  // the listen port taken by another process
  const busy = await healthy(tmp.path, "busy");
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    const pj = await run(busy, [], port);
    expectFail(pj, "port", "--port N");
    assertStringIncludes(check(pj, "port").detail, `127.0.0.1:${port} is in use`);
  } finally {
    listener.close();
  }

  // a clock behind the newest audit entry
  const future = await makeState(tmp.path, "future", { trust: "known_peers.json" });
  const clock = new FakeClock(Date.UTC(2099, 0, 1) / 1000);
  const log = new AuditLog(join(future, "audit.log"), {
    key: auditKey(ALICE_SEED),
    signer: aliceIdentity(),
    clock,
  });
  await log.append("STARTUP", { node_id: ALICE_ID });
  log.close();
  const fj = await run(future);
  expectFail(fj, "clock", "NTP");
  assertStringIncludes(check(fj, "clock").detail, "behind the audit log's newest entry");

  // the text form: ✗ line and its fix line
  const t = await cli(open, base(kp, freePort()));
  assertEquals(t.code, 1);
  assertMatch(t.stdout, /✗ state directory +.*mode 0755/);
  assertMatch(t.stdout, new RegExp(`fix: chmod 700 ${open}`));
  assertMatch(t.stdout, /✗ 1 failed, 8 passed, 1 skipped/);
});

Deno.test("doctor: mDNS is judged from this host's interfaces (nothing sent)", async () => {
  await using tmp = await tempDir();
  const state = await healthy(tmp.path, "mdns");
  const kp = await passFile(tmp.path, PASS);
  const { j } = await cliJson(state, base(kp, freePort()).filter((a) => a !== "--no-mdns"));
  const m = check(j, "mdns");
  const v4 = Deno.networkInterfaces().filter((i) =>
    i.family === "IPv4" && !i.address.startsWith("127.")
  );
  assertEquals(m.status, v4.length ? "pass" : "fail", m.detail);
  if (v4.length) assertStringIncludes(m.detail, v4[0].address);
  assertStringIncludes(m.detail, "nothing was sent");
});

Deno.test("doctor --peer: a timed handshake against a real daemon; wrong passphrase; unreachable", async () => {
  await using tmp = await tempDir();
  const d = await startDaemon("doc-peer", join(tmp.path, "peer"));
  try {
    const state = await healthy(tmp.path, "me", { keys: "encrypted" });
    const kp = await passFile(tmp.path, PASS);
    const mesh = await passFile(tmp.path, DAEMON_PASS);
    const trustBefore = await Deno.readFile(join(state, "known_peers.json"));
    const peerArgs = (meshFile: string, address = `127.0.0.1:${d.port}`) => [
      "doctor",
      "--peer",
      address,
      "--passphrase-file",
      meshFile,
      "--keys-passphrase-file",
      kp,
      "--bind",
      "127.0.0.1",
      "--port",
      String(freePort()),
      "--no-mdns",
      "--timeout",
      "5",
    ];

    const ok = await cliJson(state, peerArgs(mesh));
    assertEquals(ok.r.code, 0, ok.r.stdout + ok.r.stderr);
    const p = check(ok.j, "peer");
    assertEquals(p.status, "pass", p.detail);
    assertEquals(p.stages.map((s: Json) => [s.name, s.status]), [
      ["connect", "pass"],
      ["auth", "pass"],
      ["hello", "pass"],
      ["session", "pass"],
    ]);
    for (const s of p.stages) assert(typeof s.ms === "number" && s.ms >= 0, JSON.stringify(s));
    assertStringIncludes(p.stages[0].detail, `ws://127.0.0.1:${d.port}/`);
    assertStringIncludes(p.stages[2].detail, d.nodeId);
    assertStringIncludes(p.detail, "not pinned yet");
    // The throwaway TOFU never pins into the real trust store.
    assertEquals(await Deno.readFile(join(state, "known_peers.json")), trustBefore);
    const text = await cli(state, peerArgs(mesh));
    assertMatch(text.stdout, /✓ auth +\d+ ms/);
    assertMatch(text.stdout, /✓ session +\d+ ms/);

    const wrong = await cliJson(
      state,
      peerArgs(await passFile(tmp.path, "not-the-mesh-passphrase")),
    );
    assertEquals(wrong.r.code, 1, wrong.r.stdout);
    const w = check(wrong.j, "peer");
    assertEquals(w.status, "fail");
    assertEquals(w.stages.map((s: Json) => [s.name, s.status]), [
      ["connect", "pass"],
      ["auth", "fail"],
      ["hello", "skip"],
      ["session", "skip"],
    ]);
    assertStringIncludes(w.detail, "auth failed");
    assertStringIncludes(w.fix, "passphrase");

    const gone = await cliJson(state, peerArgs(mesh, `127.0.0.1:${freePort()}`));
    assertEquals(gone.r.code, 1);
    const g = check(gone.j, "peer");
    assertEquals([g.stages[0].name, g.stages[0].status, g.stages[1].status], [
      "connect",
      "fail",
      "skip",
    ]);
    assertStringIncludes(g.fix, "listens on that address");

    // On the daemon's own state dir: running, control socket answering, port held by it.
    const own = await cliJson(d.stateDir, [
      "doctor",
      "--passphrase-file",
      mesh,
      "--bind",
      "127.0.0.1",
      "--no-mdns",
    ]);
    const dc = check(own.j, "daemon");
    assertEquals(dc.status, "pass", dc.detail);
    assertStringIncludes(dc.detail, `pid ${d.child.pid}`);
    assertStringIncludes(dc.detail, "control socket answers");
    const pc = check(own.j, "port");
    assertEquals(pc.status, "pass", pc.detail);
    assertStringIncludes(pc.detail, "held by this node's daemon");
    assertEquals(
      own.r.code,
      0,
      JSON.stringify(own.j.checks.filter((c: Json) => c.status === "fail")),
    );
  } finally {
    await d.stop();
  }
});

Deno.test("doctor: a stuck lock holder is reported with the pid to kill", async () => {
  await using tmp = await tempDir();
  const state = await healthy(tmp.path, "stuck");
  const kp = await passFile(tmp.path, PASS);
  // Hold the state lock from another process that answers nothing.
  const holder = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `const f = Deno.openSync(${
        JSON.stringify(join(state, "ironmesh.lock"))
      }, {read: true, write: true, create: true, mode: 0o600});
       f.lockSync(true); f.writeSync(new TextEncoder().encode(Deno.pid + " ironmesh run\\n"));
       console.log("locked"); await new Promise((r) => setTimeout(r, 60000));`,
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const reader = holder.stdout.getReader();
    await reader.read(); // "locked"
    reader.releaseLock();
    const { r, j } = await cliJson(state, base(kp, freePort()));
    assertEquals(r.code, 1);
    const dc = check(j, "daemon");
    assertEquals(dc.status, "fail", dc.detail);
    assertStringIncludes(dc.detail, `pid ${holder.pid}`);
    assertStringIncludes(dc.fix, `kill ${holder.pid}`);
  } finally {
    holder.kill("SIGKILL");
    await holder.status;
    await holder.stdout.cancel().catch(() => {});
  }
});

Deno.test("doctor: --help lists every check and examples; bad flags are usage errors", async () => {
  const h = await cli("/nonexistent", ["doctor", "--help"]);
  assertEquals(h.code, 0);
  for (
    const w of [
      "state directory",
      "trust store MAC",
      "audit checkpoint",
      "mDNS possible",
      "--peer",
      "Examples:",
    ]
  ) {
    assertStringIncludes(h.stdout, w);
  }
  const bad = await cli("/nonexistent", ["doctor", "--peer", "not an address"]);
  assertEquals(bad.code, 2);
  assertMatch(bad.stderr, /^error: --peer expects HOST:PORT.* — try 'ironmesh doctor --help'\n$/);
});
