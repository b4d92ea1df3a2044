// `ironmesh run` as a real process: startup errors (bad flag, busy port, locked state dir,
// wrong passphrase) and a clean SIGTERM shutdown that the next start resumes from.
import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { runCli, tempDir } from "../support/cli.ts";
import { waitFor } from "../support/wait.ts";
import { DAEMON_PASS, passFile, startDaemon } from "../support/daemon.ts";
import { ExitCode } from "../../lib/errors.ts";

Deno.test("run: a bad flag value is a usage error naming the flag", async () => {
  await using d = await tempDir();
  const r = await runCli(["run", "--state-dir", d.path, "--name", "x", "--port", "99999"]);
  assertEquals(r.code, ExitCode.USAGE);
  assertMatch(r.stderr, /--port must be a whole number from 0 to 65535/);
  const t = await runCli(["run", "--state-dir", d.path, "--trust-mode", "everyone"]);
  assertEquals(t.code, ExitCode.USAGE);
  assertMatch(t.stderr, /--trust-mode must be one of tofu, allow_list, allow_all/);
  const c = await runCli(["run", "--state-dir", d.path, "--connect", "not an address"]);
  assertEquals(c.code, ExitCode.USAGE);
  assertMatch(c.stderr, /--connect expects HOST:PORT/);
  // Nothing was created by a refused start.
  assertEquals([...Deno.readDirSync(d.path)].length, 0);
});

/** `ironmesh run` on 127.0.0.1 without mDNS, as a process that is expected to refuse. */
function runLocal(stateDir: string, port: number, passphraseFile: string, ...args: string[]) {
  return runCli([
    "run",
    "--state-dir",
    stateDir,
    ...args,
    "--bind",
    "127.0.0.1",
    "--port",
    String(port),
    "--no-mdns",
    "--passphrase-file",
    passphraseFile,
  ]);
}

Deno.test("run: busy port, locked state dir and wrong passphrase each refuse to start with their reason", async () => {
  await using d = await tempDir();
  const a = await startDaemon("alpha", `${d.path}/a`);
  try {
    // Busy port.
    const pf = await passFile(d.path);
    const busy = await runLocal(`${d.path}/b`, a.port, pf, "--name", "beta");
    assertEquals(busy.code, ExitCode.NETWORK, busy.stderr);
    assertMatch(busy.stderr, new RegExp(`port ${a.port} on 127.0.0.1 is already in use`));
    // Same state dir as a running daemon.
    const locked = await runLocal(`${d.path}/a`, 0, pf);
    assertEquals(locked.code, ExitCode.LOCKED, locked.stderr);
    assertMatch(locked.stderr, new RegExp(`locked by another process \\(pid ${a.child.pid}\\)`));
  } finally {
    assertEquals(await a.stop(), 0);
  }
  // Wrong mesh passphrase for the key file created on the first run.
  await Deno.writeTextFile(`${d.path}/wrong`, "a-different-passphrase\n");
  const wrong = await runLocal(`${d.path}/a`, 0, `${d.path}/wrong`);
  assertEquals(wrong.code, ExitCode.WRONG_PASSPHRASE, wrong.stderr);
  assertMatch(wrong.stderr, /passphrase/i);
});

Deno.test("run: SIGTERM says goodbye, exits 0, and the next start resumes the session", async () => {
  await using d = await tempDir();
  const a = await startDaemon("alpha", `${d.path}/a`);
  let b = await startDaemon("beta", `${d.path}/b`, ["--connect", `127.0.0.1:${a.port}`]);
  const until = (what: () => boolean, label: string) =>
    waitFor(what, label, 15_000, { intervalMs: 50, detail: () => `${a.stderr()}\n${b.stderr()}` });
  try {
    await until(() => a.stderr().includes("peer online"), "alpha sees beta");
    // Argon2id ran in a throw-away worker: its 256 MiB are not part of the daemon.
    // /proc needs --allow-all in Deno; `cat` reads it under the suite's permissions.
    const status = new TextDecoder().decode(
      (await new Deno.Command("cat", { args: [`/proc/${a.child.pid}/status`] }).output()).stdout,
    );
    const rssKb = Number(status.match(/VmRSS:\s+(\d+)/)![1]);
    assert(rssKb < 200_000, `daemon RSS ${rssKb} kB (in-process Argon2id would be ~340 MB)`);
    const t0 = Date.now();
    assertEquals(await b.stop("SIGTERM"), 0);
    assert(Date.now() - t0 < 5000, "shutdown within 5 s");
    await until(
      () => /peer offline .*reason="?peer said goodbye/.test(a.stderr()),
      "alpha gets GOODBYE",
    );
    const audit = await Deno.readTextFile(`${d.path}/b/audit.log`);
    assert(audit.includes('"event":"SHUTDOWN"'), "SHUTDOWN audited");
    const before = a.stderr().split("peer online").length;
    b = await startDaemon("beta", `${d.path}/b`, ["--connect", `127.0.0.1:${a.port}`]);
    await until(() => a.stderr().split("peer online").length > before, "session resumed");
  } finally {
    await b.stop();
    await a.stop();
  }
  // Same identity across restarts.
  const v = await runCli(["audit", "verify", "--state-dir", `${d.path}/b`], {
    env: { IRONMESH_PASSPHRASE: DAEMON_PASS },
  });
  assert(v.code === 0 || v.stderr.includes("unknown command"), v.stderr);
});

Deno.test("run: --keys-passphrase-file is stripped like every passphrase file (CRLF endings too)", async () => {
  await using d = await tempDir();
  await Deno.writeTextFile(`${d.path}/keys-pass`, "a-separate-key-passphrase\r\n", { mode: 0o600 });
  const a = await startDaemon("alpha", `${d.path}/a`, [
    "--keys-passphrase-file",
    `${d.path}/keys-pass`,
  ]);
  assertEquals(await a.stop(), 0);
  // The key file was encrypted with the stripped passphrase, not the mesh one.
  const info = await runCli(["keys", "info", "--json", "--state-dir", `${d.path}/a`], {
    env: { IRONMESH_KEYS_PASSPHRASE: "a-separate-key-passphrase" },
  });
  assertEquals(info.code, 0, info.stderr);
  assertEquals(JSON.parse(info.stdout).node_id, a.nodeId);
});
