// `ironmesh run` as a real process: `--gui` prints a URL that serves the dashboard and API;
// without it, `/metrics` stays on 127.0.0.1 behind the same token (also in the state dir's
// token file, removed at shutdown); flag errors; and the one-file bundle serves the same page.
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../../support/assert.ts";
import { CLI_MAIN, runCli, taskPermissionFlags, tempDir } from "../../support/cli.ts";
import { runDaemon } from "../../support/dashboard.ts";
import { startNode } from "../../support/nodes.ts";
import { ExitCode } from "../../../lib/errors.ts";
import { Logger } from "../../../lib/log.ts";
import { MemoryNetwork } from "../../../daemon/transport/memory.ts";
import { startOperatorSurface } from "../../../daemon/dashboard/startup.ts";

Deno.test("cli: run --gui prints a ready-to-click URL; the API answers with its token only", async () => {
  await using d = await tempDir();
  const state = `${d.path}/s`;
  const daemon = await runDaemon(CLI_MAIN, taskPermissionFlags(), state, [
    "--name",
    "gui-1",
    "--gui",
  ]);
  try {
    const url = String(daemon.info.dashboard_url);
    assertMatch(url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43}$/);
    const token = url.split("token=")[1];
    const base = url.split("/?")[0];
    assertEquals(daemon.info.metrics_url, `${base}/metrics`);
    const page = await fetch(url);
    assertEquals(page.status, 200);
    assertStringIncludes(page.headers.get("content-security-policy")!, "default-src 'none'");
    await page.body?.cancel();
    const state1 = await fetch(`${base}/api/state`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assertEquals(state1.status, 200);
    assertEquals((await state1.json()).node_id, daemon.info.node_id);
    const anon = await fetch(`${base}/api/state`);
    assertEquals(anon.status, 401);
    await anon.body?.cancel();
    // The token file (for scrapers) holds the same token, owner-only.
    const tf = String(daemon.info.token_file);
    assertEquals(tf, `${state}/dashboard.token`);
    assertEquals((await Deno.readTextFile(tf)).trim(), token);
    assertEquals((await Deno.stat(tf)).mode! & 0o777, 0o600);
    assert(!daemon.stderr().includes(token), "the token is not logged");
    assertEquals(await daemon.stop(), 0);
    await assertGone(tf);
  } finally {
    await daemon.stop();
  }
});

async function assertGone(path: string) {
  try {
    await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  throw new Error(`${path} still exists`);
}

Deno.test("cli: without --gui only /metrics is served, on 127.0.0.1, with the token", async () => {
  await using d = await tempDir();
  const daemon = await runDaemon(CLI_MAIN, taskPermissionFlags(), `${d.path}/s`, ["--name", "m-1"]);
  try {
    assertEquals(daemon.info.dashboard_url, null);
    const murl = String(daemon.info.metrics_url);
    assertMatch(murl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const token = (await Deno.readTextFile(String(daemon.info.token_file))).trim();
    const ok = await fetch(murl, { headers: { authorization: `Bearer ${token}` } });
    assertEquals(ok.status, 200);
    assertStringIncludes(await ok.text(), "# TYPE ironmesh_uptime_seconds gauge");
    const anon = await fetch(murl);
    assertEquals(anon.status, 401);
    await anon.body?.cancel();
    const api = await fetch(murl.replace("/metrics", "/api/state"), {
      headers: { authorization: `Bearer ${token}` },
    });
    assertEquals(api.status, 404);
    await api.body?.cancel();
  } finally {
    assertEquals(await daemon.stop(), 0);
  }
});

Deno.test("cli: dashboard flag errors are usage errors", async () => {
  await using d = await tempDir();
  const r = await runCli(["run", "--state-dir", d.path, "--name", "x", "--gui-bind", "0.0.0.0"]);
  assertEquals(r.code, ExitCode.USAGE);
  assertStringIncludes(r.stderr, "--gui-bind needs --gui");
  const p = await runCli(["run", "--state-dir", d.path, "--name", "x", "--gui", "--port", "65535"]);
  assertEquals(p.code, ExitCode.USAGE);
  assertStringIncludes(p.stderr, "65535 + 1 is not a port");
  const h = await runCli(["run", "--help"]);
  assertStringIncludes(h.stdout, "--gui");
  assertStringIncludes(h.stdout, "--gui-bind ADDR");
});

Deno.test("cli: the operator listener: --no-metrics starts nothing; a busy port stops --gui only", async () => {
  const node = await startNode("ops", { transport: new MemoryNetwork().transport() });
  const lines: string[] = [];
  const log = new Logger("info", "text", {}, (l) => lines.push(l));
  const stateDir = node.trust.path.replace(/\/known_peers\.json$/, "");
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (busy.addr as Deno.NetAddr).port - 1; // so that port + 1 is the busy one
  try {
    const none = await startOperatorSurface(node, {
      gui: false,
      metrics: false,
      port,
      stateDir,
      log,
    });
    assertEquals([none.server, none.metricsUrl, none.tokenFile], [null, null, null]);
    // Metrics only: a busy port is a warning, the daemon runs on.
    const m = await startOperatorSurface(node, { gui: false, port, stateDir, log });
    assertEquals(m.server, null);
    assert(lines.some((l) => l.includes("metrics listener is off")), lines.join("\n"));
    // --gui: the operator asked for it, so a busy port is an error.
    const e = await startOperatorSurface(node, { gui: true, port, stateDir, log }).then(
      () => null,
      (e) => e,
    );
    assertEquals(e?.code, "PORT_BUSY");
    assertStringIncludes(e.message, `dashboard port ${port + 1} on 127.0.0.1 is already in use`);
  } finally {
    busy.close();
    await node.stop();
  }
});
