import { assert, assertEquals, assertMatch, assertStringIncludes } from "../support/assert.ts";
import { runCli, tempDir } from "../support/cli.ts";

/** A free loopback port pair (N and N+2) for the demo. */
function freePort(): number {
  for (;;) {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const p = l.addr.port;
    l.close();
    if (p > 65000) continue;
    try {
      Deno.listen({ hostname: "127.0.0.1", port: p + 2 }).close();
      return p;
    } catch { /* try another */ }
  }
}

async function tmpEntries(): Promise<Set<string>> {
  const s = new Set<string>();
  for await (const e of Deno.readDir(Deno.env.get("TMPDIR") ?? "/tmp")) {
    if (e.name.startsWith("ironmesh-demo-")) s.add(e.name);
  }
  return s;
}

Deno.test("demo end to end as a subprocess: exit 0, every stage, RTT, nothing left behind", async () => {
  await using home = await tempDir("ironmesh-home-");
  const before = await tmpEntries();
  const port = freePort();
  const r = await runCli(["demo", "--port", String(port)], { env: { HOME: home.path } });
  assertEquals(r.code, 0, r.stderr + r.stdout);
  for (
    const stage of [
      "identities",
      "listening",
      "connected",
      "auth",
      "HELLO verified",
      "session key",
      "PONG",
      "MSG delivered",
    ]
  ) {
    assertStringIncludes(r.stdout, stage);
  }
  assertMatch(r.stdout, /RTT \d+\.\d+ ms/);
  assertMatch(r.stdout, /demo passed: round trip \d+\.\d+ ms/);
  // Nothing in ~/.ironmesh, no temp dir left.
  const homeEntries = [];
  for await (const e of Deno.readDir(home.path)) homeEntries.push(e.name);
  assertEquals(homeEntries.filter((n) => n !== ".cache"), []); // .cache is Deno's own module cache
  const after = await tmpEntries();
  for (const e of after) assert(before.has(e), `temp dir ${e} left behind`);
});

Deno.test("demo --json gives the stages with timings and the RTT", async () => {
  const port = freePort();
  const r = await runCli(["demo", "--json", "--port", String(port)]);
  assertEquals(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assertEquals(j.ok, true);
  assert(j.rtt_ms > 0 && j.rtt_ms < 5000);
  assertEquals(j.stages.map((s: { stage: string }) => s.stage), [
    "identities",
    "listening",
    "connected",
    "auth",
    "HELLO verified",
    "session key",
    "PONG",
    "MSG delivered",
  ]);
  for (let i = 1; i < j.stages.length; i++) assert(j.stages[i].ms >= j.stages[i - 1].ms);
});

Deno.test("demo with its port taken: one clear line naming the port and suggesting --port, exit 11", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const r = await runCli(["demo", "--port", String(l.addr.port)]);
    assertEquals(r.code, 11, r.stderr);
    assertStringIncludes(r.stderr, `port ${l.addr.port} on 127.0.0.1 is busy`);
    assertStringIncludes(r.stderr, "--port");
    assertStringIncludes(r.stderr, "stage 'listen'");
    assertEquals(r.stderr.trim().split("\n").length, 1);
  } finally {
    l.close();
  }
  const bad = await runCli(["demo", "--port", "99999"]);
  assertEquals(bad.code, 2);
  assertStringIncludes(bad.stderr, "--port must be a whole number");
});
