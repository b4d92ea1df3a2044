// Three real `ironmesh run` daemons on 127.0.0.1 (static --connect, no mDNS): messages in
// every direction through `ironmesh send`, `status`/`peers`/`inbox --follow` over the control
// socket, the offline queue across a restart, and a sender killed with SIGKILL mid-queue.
import { assertEquals, assertMatch } from "../support/assert.ts";
import { CLI_MAIN, runCli, taskPermissionFlags, tempDir } from "../support/cli.ts";
import { call } from "../support/control.ts";
import { waitFor } from "../support/wait.ts";
import { type Daemon, startDaemon } from "../support/daemon.ts";
import { ControlClient } from "../../daemon/control_client.ts";
import type { InboxEntry } from "../../daemon/control_api.ts";
import type { PeerStatus } from "../../daemon/node.ts";
import { ExitCode } from "../../lib/errors.ts";

const online = async (d: Daemon, n: number) =>
  (await call<PeerStatus[]>(d, "peers")).filter((p) => p.online).length === n;

Deno.test("daemons: three nodes exchange messages in every direction through the CLI", async () => {
  await using dir = await tempDir();
  const a = await startDaemon("alpha", `${dir.path}/a`);
  const b = await startDaemon("beta", `${dir.path}/b`, ["--connect", `127.0.0.1:${a.port}`]);
  const c = await startDaemon("gamma", `${dir.path}/c`, [
    "--connect",
    `127.0.0.1:${a.port}`,
    "--connect",
    `127.0.0.1:${b.port}`,
  ]);
  const all = [a, b, c];
  try {
    for (const d of all) await waitFor(() => online(d, 2), `${d.name} sees two peers`);
    const st = await runCli(["status", "--json", "--state-dir", a.stateDir]);
    assertEquals(st.code, 0, st.stderr);
    const s = JSON.parse(st.stdout);
    assertEquals(s.node_id, a.nodeId);
    assertEquals(s.peers_online, 2);
    const pr = await runCli(["peers", "--state-dir", b.stateDir]);
    assertEquals(pr.code, 0, pr.stderr);
    assertMatch(pr.stdout, /online\s+alpha/);
    assertMatch(pr.stdout, /online\s+gamma/);

    // inbox --follow on gamma prints messages as they arrive.
    const follow = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        ...taskPermissionFlags(),
        CLI_MAIN,
        "inbox",
        "--follow",
        "--json",
        "--state-dir",
        c.stateDir,
      ],
      env: { NO_COLOR: "1", HOME: "/nonexistent-home" },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const lines: string[] = [];
    const reading = (async () => {
      let buf = "";
      for await (const chunk of follow.stdout.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        const parts = buf.split("\n");
        buf = parts.pop()!;
        lines.push(...parts.filter(Boolean));
      }
    })();
    await new Promise((r) => setTimeout(r, 1500)); // the follower subscribes

    for (const from of all) {
      for (const to of all) {
        if (from === to) continue;
        const r = await runCli([
          "send",
          to.name,
          `from ${from.name} to ${to.name}`,
          "--wait",
          "--state-dir",
          from.stateDir,
        ]);
        assertEquals(r.code, 0, r.stderr);
        assertMatch(r.stdout.trim(), /^[0-9a-f-]{36}$/);
      }
    }
    for (const to of all) {
      const inbox = await call<InboxEntry[]>(to, "inbox", {});
      const texts = inbox.map((m) => m.text).sort();
      const expected = all.filter((f) => f !== to).map((f) => `from ${f.name} to ${to.name}`)
        .sort();
      assertEquals(texts, expected, `${to.name}'s inbox`);
    }
    await waitFor(() => lines.length >= 2, "inbox --follow lines");
    const followed = lines.map((l) => JSON.parse(l).text).sort();
    assertEquals(followed, ["from alpha to gamma", "from beta to gamma"]);
    follow.kill("SIGTERM");
    await follow.status;
    await reading.catch(() => {});

    // Unknown peer: clear error, exit code, nothing queued.
    const bad = await runCli(["send", "nobody", "hi", "--state-dir", a.stateDir]);
    assertEquals(bad.code, ExitCode.NOT_FOUND, bad.stderr);
    assertMatch(bad.stderr, /no known peer matches "nobody"/);
  } finally {
    for (const d of all) await d.stop();
  }
  // No daemon: a clear error.
  const none = await runCli(["status", "--state-dir", a.stateDir]);
  assertEquals(none.code, ExitCode.DAEMON_NOT_RUNNING, none.stderr);
  assertMatch(none.stderr, /ironmesh run/);
});

Deno.test("daemons: 200 messages for a stopped peer arrive once, in order, after it restarts; a SIGKILLed sender loses none of 500", async () => {
  await using dir = await tempDir();
  const a0 = await startDaemon("alpha", `${dir.path}/a`);
  let a = a0;
  let c = await startDaemon("gamma", `${dir.path}/c`, ["--connect", `127.0.0.1:${a.port}`]);
  const cPort = c.port;
  try {
    await waitFor(() => online(a, 1), "alpha sees gamma");
    assertEquals(await c.stop(), 0);
    await waitFor(async () => await online(a, 0), "alpha sees gamma leave");
    const cl = await ControlClient.connect(a.stateDir);
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) {
      ids.push((await cl.call<{ msg_id: string }>("send", { to: "gamma", text: `q${i}` })).msg_id);
    }
    await cl.close();
    assertEquals((await call<{ queued: number }>(a, "status")).queued, 200);
    c = await startDaemon("gamma", `${dir.path}/c`, ["--connect", `127.0.0.1:${a.port}`], {
      port: cPort,
    });
    await waitFor(
      async () => (await call<{ queued: number }>(a, "status")).queued === 0,
      "queue drained",
    );
    const got = await call<InboxEntry[]>(c, "inbox", { limit: 5000 });
    assertEquals(got.map((m) => m.text), ids.map((_, i) => `q${i}`));

    // Sender SIGKILLed with 500 queued: restart, none lost, none duplicated.
    assertEquals(await c.stop(), 0);
    await waitFor(async () => await online(a, 0), "alpha sees gamma leave again");
    const cl2 = await ControlClient.connect(a.stateDir);
    const sends = [];
    for (let i = 0; i < 500; i++) sends.push(cl2.call("send", { to: "gamma", text: `k${i}` }));
    await Promise.all(sends);
    await cl2.close();
    await a.stop("SIGKILL");
    a = await startDaemon("alpha", `${dir.path}/a`, [], { port: a.port });
    assertEquals((await call<{ queued: number }>(a, "status")).queued, 500);
    c = await startDaemon("gamma", `${dir.path}/c`, ["--connect", `127.0.0.1:${a.port}`], {
      port: cPort,
    });
    await waitFor(
      async () => (await call<{ queued: number }>(a, "status")).queued === 0,
      "queue drained after crash",
    );
    const after = (await call<InboxEntry[]>(c, "inbox", { limit: 5000 })).filter((m) =>
      m.text?.startsWith("k")
    );
    assertEquals(after.length, 500);
    assertEquals(new Set(after.map((m) => m.text)).size, 500);
  } finally {
    await c.stop();
    await a.stop();
  }
});
