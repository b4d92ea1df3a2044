import { assert, assertEquals, assertMatch, assertStringIncludes } from "../support/assert.ts";
import { runCli, tempDir } from "../support/cli.ts";
import { vectorPath } from "../support/vectors.ts";
import { lockStateDir } from "../../lib/fs/lock.ts";
import { join } from "node:path";

const PASS = "correct-horse-battery-staple-42";

async function passFile(dir: string, value = PASS): Promise<string> {
  const p = join(dir, "pass.txt");
  await Deno.writeTextFile(p, value + "\n", { mode: 0o600 });
  return p;
}

/** Snapshot of every file in a directory (name → bytes), to prove a failure changed nothing. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile) out[e.name] = new TextDecoder().decode(await Deno.readFile(join(dir, e.name)));
    }
  } catch { /* missing dir = empty snapshot */ }
  return out;
}

Deno.test("keys generate → info → fingerprint round trip (v3), text and --json", async () => {
  await using tmp = await tempDir();
  const state = join(tmp.path, "state");
  const pf = await passFile(tmp.path);
  const gen = await runCli([
    "keys",
    "generate",
    "--name",
    "alice",
    "--state-dir",
    state,
    "--passphrase-file",
    pf,
    "--json",
  ]);
  assertEquals(gen.code, 0, gen.stderr);
  const g = JSON.parse(gen.stdout);
  assertMatch(g.node_id, /^[0-9a-f]{32}$/);
  assertEquals(g.format, "master-seed-v1");
  assertEquals((await Deno.stat(join(state, "keys.json"))).mode! & 0o777, 0o600);
  assertEquals((await Deno.stat(state)).mode! & 0o777, 0o700);
  const file = JSON.parse(await Deno.readTextFile(join(state, "keys.json")));
  assertEquals(file.version, 3);
  assertEquals(file.encrypted, true);
  assertEquals(file.agent_name, "alice");
  assert(!JSON.stringify(file).includes(PASS));

  const info = await runCli(["keys", "info", "--state-dir", state, "--json"], {
    env: { IRONMESH_PASSPHRASE_FILE: pf },
  });
  assertEquals(info.code, 0, info.stderr);
  const i = JSON.parse(info.stdout);
  assertEquals(i.node_id, g.node_id);
  assertEquals(i.name, "alice");
  assertEquals(i.ed25519_public, g.ed25519_public);
  assertEquals(i.mode, "0600");
  assertEquals(i.mode_ok, true);

  const text = await runCli(["keys", "info"], {
    env: { IRONMESH_HOME: state, IRONMESH_PASSPHRASE: PASS },
  });
  assertEquals(text.code, 0, text.stderr);
  assertStringIncludes(text.stdout, g.node_id);
  assertStringIncludes(text.stderr, "IRONMESH_PASSPHRASE"); // the env-var warning

  const fp = await runCli(["keys", "fingerprint", "--state-dir", state]);
  assertEquals(fp.code, 0);
  assertStringIncludes(fp.stdout, g.node_id);
});

Deno.test("keys info opens Python-written v3 and v2 key files", async () => {
  await using tmp = await tempDir();
  const pf = await passFile(tmp.path);
  for (
    const [file, nodeId, format] of [
      ["keys.json", "f55eae1a043e0fc95d8694706070202b", "master-seed-v1"],
      ["keys.v2.json", "3097e2dee2cb4a34b53840cdb705aed7", "legacy-v2"],
      ["keys.v2.plaintext.json", "3097e2dee2cb4a34b53840cdb705aed7", "legacy-v2"],
    ]
  ) {
    const state = join(tmp.path, file);
    await Deno.mkdir(state, { mode: 0o700 });
    await Deno.copyFile(vectorPath("keys", file), join(state, "keys.json"));
    await Deno.chmod(join(state, "keys.json"), 0o644);
    const r = await runCli([
      "keys",
      "info",
      "--state-dir",
      state,
      "--passphrase-file",
      pf,
      "--json",
    ]);
    assertEquals(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assertEquals(j.node_id, nodeId, file);
    assertEquals(j.format, format, file);
    assertEquals(j.mode_ok, false);
    assertStringIncludes(r.stderr, "chmod 600");
  }
});

Deno.test("bad input: each case gives one clear line, a distinct exit code, and changes no file", async () => {
  await using tmp = await tempDir();
  const pf = await passFile(tmp.path);
  const wrong = join(tmp.path, "wrong.txt");
  await Deno.writeTextFile(wrong, "a-wrong-passphrase-123");
  const short = join(tmp.path, "short.txt");
  await Deno.writeTextFile(short, "short");
  const state = join(tmp.path, "state");
  await Deno.mkdir(state, { mode: 0o700 });
  const good = await Deno.readTextFile(vectorPath("keys", "keys.json"));

  const cases: { name: string; keys?: string; args: string[]; code: number; says: string }[] = [
    {
      name: "wrong passphrase",
      keys: good,
      args: ["keys", "info", "--passphrase-file", wrong],
      code: 3,
      says: "Wrong passphrase",
    },
    {
      name: "truncated keys.json",
      keys: good.slice(0, 300),
      args: ["keys", "info", "--passphrase-file", pf],
      code: 4,
      says: "damaged",
    },
    {
      name: "garbage keys.json",
      keys: "\x00\x01garbage",
      args: ["keys", "info", "--passphrase-file", pf],
      code: 4,
      says: "not valid JSON",
    },
    {
      name: "unknown version",
      keys: good.replace('"version": 3', '"version": 7'),
      args: ["keys", "info", "--passphrase-file", pf],
      code: 12,
      says: "format version 7",
    },
    {
      name: "short passphrase",
      args: ["keys", "generate", "--passphrase-file", short],
      code: 9,
      says: "Minimum 12 characters",
    },
    {
      name: "identity exists",
      keys: good,
      args: ["keys", "generate", "--passphrase-file", pf],
      code: 6,
      says: "--force",
    },
    {
      name: "no identity",
      args: ["keys", "info", "--passphrase-file", pf],
      code: 7,
      says: "keys generate",
    },
    {
      name: "missing passphrase file",
      keys: good,
      args: ["keys", "info", "--passphrase-file", join(tmp.path, "nope")],
      code: 9,
      says: "does not exist",
    },
    {
      name: "no passphrase source",
      keys: good,
      args: ["keys", "info"],
      code: 9,
      says: "--passphrase-file",
    },
  ];
  for (const c of cases) {
    await Deno.remove(join(state, "keys.json")).catch(() => {});
    if (c.keys !== undefined) {
      await Deno.writeTextFile(join(state, "keys.json"), c.keys, { mode: 0o600 });
    }
    const before = await snapshot(state);
    const r = await runCli([...c.args, "--state-dir", state]);
    assertEquals(r.code, c.code, `${c.name}: ${r.stderr}`);
    const lines = r.stderr.trim().split("\n");
    assertEquals(lines.length, 1, `${c.name}: one line, got ${r.stderr}`);
    assertMatch(lines[0], /^error: .+ — .+/, c.name);
    assertStringIncludes(lines[0], c.says, c.name);
    assertEquals(await snapshot(state), before, `${c.name} changed a file`);
  }
});

Deno.test("bad input: a state dir that is not a directory, and a lock held by another process", async () => {
  await using tmp = await tempDir();
  const pf = await passFile(tmp.path);
  const notDir = join(tmp.path, "file");
  await Deno.writeTextFile(notDir, "x");
  const r = await runCli(["keys", "generate", "--state-dir", notDir, "--passphrase-file", pf]);
  assertEquals(r.code, 8, r.stderr);
  assertStringIncludes(r.stderr, "not a directory");
  assertEquals(await Deno.readTextFile(notDir), "x");

  const state = join(tmp.path, "locked");
  await Deno.mkdir(state, { mode: 0o700 });
  const lock = lockStateDir(state, "test");
  try {
    const l = await runCli(["keys", "generate", "--state-dir", state, "--passphrase-file", pf]);
    assertEquals(l.code, 5, l.stderr);
    assertStringIncludes(l.stderr, `pid ${Deno.pid}`);
    assertEquals(l.stderr.trim().split("\n").length, 1);
    await Deno.stat(join(state, "keys.json")).then(
      () => assert(false, "keys.json written"),
      () => {},
    );
  } finally {
    lock.release();
  }
});

Deno.test("generate --force replaces the identity and keeps the old file as keys.json.bak", async () => {
  await using tmp = await tempDir();
  const pf = await passFile(tmp.path);
  const state = join(tmp.path, "s");
  const a = JSON.parse(
    (await runCli(["keys", "generate", "--state-dir", state, "--passphrase-file", pf, "--json"]))
      .stdout,
  );
  const old = await Deno.readTextFile(join(state, "keys.json"));
  const b = await runCli([
    "keys",
    "generate",
    "--force",
    "--state-dir",
    state,
    "--passphrase-file",
    pf,
    "--json",
  ]);
  assertEquals(b.code, 0, b.stderr);
  assert(JSON.parse(b.stdout).node_id !== a.node_id);
  assertEquals(await Deno.readTextFile(join(state, "keys.json.bak")), old);
});

Deno.test("usage errors: unknown command, flag, subcommand → one line, exit 2; --help and --version work", async () => {
  for (
    const args of [["frobnicate"], ["keys", "info", "--bogus"], ["keys", "nope"], ["--bogus"], [
      "keys",
    ]]
  ) {
    const r = await runCli(args);
    assertEquals(r.code, 2, args.join(" "));
    assertMatch(r.stderr.trim(), /^error: .+ — try 'ironmesh( [a-z]+)* --help'$/);
  }
  for (
    const args of [["--help"], ["keys", "--help"], ["keys", "generate", "--help"], [
      "keys",
      "info",
      "--help",
    ], ["keys", "fingerprint", "--help"]]
  ) {
    const r = await runCli(args);
    assertEquals(r.code, 0, args.join(" "));
    assertStringIncludes(r.stdout, "Example");
  }
  const v = await runCli(["--version"]);
  assertEquals(v.code, 0);
  assertMatch(v.stdout, /^ironmesh \d+\.\d+\.\d+/);
  const vj = await runCli(["--version", "--json"]);
  assertEquals(JSON.parse(vj.stdout).protocol, "ironmesh/0.9");
});
