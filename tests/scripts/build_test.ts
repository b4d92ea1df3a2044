import { assertEquals, assertMatch, assertStringIncludes } from "../support/assert.ts";
import { tempDir } from "../support/cli.ts";
import { RUN_FLAGS } from "../../scripts/build/permissions.ts";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

async function run(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: opts.cwd ?? ROOT,
    env: { NO_COLOR: "1", ...opts.env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("bundle: one JS file that runs from an empty folder with the least-privilege flags", async () => {
  await using tmp = await tempDir();
  const out = join(tmp.path, "ironmesh.js");
  const b = await run(["run", "-A", "scripts/build/bundle.ts", out]);
  assertEquals(b.code, 0, b.stderr);
  assert_noAllowAll(RUN_FLAGS);
  const empty = join(tmp.path, "empty");
  await Deno.mkdir(empty);
  const v = await run(["run", ...RUN_FLAGS, out, "--version"], { cwd: empty });
  assertEquals(v.code, 0, v.stderr);
  assertMatch(v.stdout, /^ironmesh \d+\.\d+\.\d+ \(ironmesh\/0\.9/);
  // The bundle carries libsodium: generating and opening an identity works.
  const state = join(tmp.path, "state");
  const pass = { IRONMESH_PASSPHRASE_FILE: join(tmp.path, "p") };
  await Deno.writeTextFile(pass.IRONMESH_PASSPHRASE_FILE, "bundle-test-passphrase");
  const g = await run([
    "run",
    ...RUN_FLAGS,
    out,
    "keys",
    "generate",
    "--state-dir",
    state,
    "--json",
  ], { cwd: empty, env: pass });
  assertEquals(g.code, 0, g.stderr);
  const i = await run(["run", ...RUN_FLAGS, out, "keys", "info", "--state-dir", state, "--json"], {
    cwd: empty,
    env: pass,
  });
  assertEquals(JSON.parse(i.stdout).node_id, JSON.parse(g.stdout).node_id);
});

function assert_noAllowAll(flags: string[]) {
  for (const f of flags) {
    if (f === "-A" || f === "--allow-all") throw new Error("shipped flags must never be -A");
  }
}

Deno.test("compile: uses least-privilege flags and refuses a DENORT_BIN that is not a file with a clear line", async () => {
  const p = await run(["run", "-A", "scripts/build/compile.ts", "--print-command"]);
  assertEquals(p.code, 0);
  assertStringIncludes(p.stdout, "compile --allow-read --allow-write --allow-env=HOME,");
  assertStringIncludes(p.stdout, "--output dist/ironmesh cli/main.ts");
  const bad = await run(["run", "-A", "scripts/build/compile.ts"], {
    env: { DENORT_BIN: "/nonexistent/denort" },
  });
  assertEquals(bad.code, 1);
  assertStringIncludes(bad.stderr, "DENORT_BIN=/nonexistent/denort is not a file");
});

Deno.test("the ironmesh and demo tasks never use -A", () => {
  const cfg = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json")));
  for (const t of ["ironmesh", "demo"]) {
    const words: string[] = cfg.tasks[t].split(/\s+/);
    assertEquals(words.includes("-A") || words.includes("--allow-all"), false, t);
  }
});
