import { assert, assertEquals, assertStringIncludes, assertThrows } from "../../support/assert.ts";
import { tempDir } from "../../support/cli.ts";
import { atomicWrite } from "../../../lib/fs/atomic_write.ts";
import { lockHolderPid, lockStateDir } from "../../../lib/fs/lock.ts";
import { IronMeshError } from "../../../lib/errors.ts";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

const CHILD = fileURLToPath(new URL("./rewrite_child.ts", import.meta.url));

Deno.test("atomicWrite: mode 0600, no tmp file left, content replaced", async () => {
  await using tmp = await tempDir();
  const p = join(tmp.path, "state.json");
  await atomicWrite(p, "one");
  await atomicWrite(p, "two");
  assertEquals(await Deno.readTextFile(p), "two");
  assertEquals((await Deno.stat(p)).mode! & 0o777, 0o600);
  const names = [];
  for await (const e of Deno.readDir(tmp.path)) names.push(e.name);
  assertEquals(names, ["state.json"]);
});

Deno.test("crash safety: a rewriter killed with SIGKILL 50 times always leaves the old or the new complete file", async () => {
  await using tmp = await tempDir();
  const p = join(tmp.path, "state.json");
  await atomicWrite(p, JSON.stringify({ n: 0, pad: "", sum: 0 }));
  let lastN = 0, advanced = 0;
  for (let round = 0; round < 50; round++) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--allow-read", "--allow-write", CHILD, p],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.getReader();
    await reader.read(); // "started": the child is inside its write loop
    await new Promise((r) => setTimeout(r, Math.random() * 40));
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    await child.stdout.cancel();
    const v = JSON.parse(await Deno.readTextFile(p)); // throws on a torn file
    assertEquals(v.pad.length, v.sum, `round ${round}: incomplete file`);
    assert(typeof v.n === "number" && v.n >= 1);
    if (v.n !== lastN) advanced++;
    lastN = v.n;
    for await (const e of Deno.readDir(tmp.path)) {
      if (e.name.endsWith(".tmp")) await Deno.remove(join(tmp.path, e.name)); // leftovers are only ever tmp files
    }
  }
  assert(advanced > 10, "the child should have completed writes in most rounds");
});

Deno.test("state-dir lock: a second process is refused with the holder's pid; released on exit, even SIGKILL", async () => {
  await using tmp = await tempDir();
  const lock = lockStateDir(tmp.path, "test");
  assertEquals(lockHolderPid(join(tmp.path, "ironmesh.lock")), Deno.pid);
  const probe = `import { lockStateDir } from ${
    JSON.stringify(new URL("../../../lib/fs/lock.ts", import.meta.url).href)
  };
try { lockStateDir(${
    JSON.stringify(tmp.path)
  }); console.log("acquired"); } catch (e) { console.log(e.code + " " + e.message + " — " + e.hint); }`;
  const run = async () =>
    new TextDecoder().decode(
      (await new Deno.Command(Deno.execPath(), {
        args: ["eval", probe],
        stdout: "piped",
        stderr: "null",
      }).output()).stdout,
    );
  const refused = await run();
  assertStringIncludes(refused, "STATE_LOCKED");
  assertStringIncludes(refused, `pid ${Deno.pid}`);
  assertStringIncludes(refused, "--state-dir");
  lock.release();
  assertStringIncludes(await run(), "acquired");

  // A holder killed with SIGKILL does not leave a stale lock behind.
  const holder = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      probe.replace(
        'console.log("acquired")',
        'console.log("acquired"); await new Promise(() => setTimeout(() => {}, 1e9))',
      ),
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const r = holder.stdout.getReader();
  assertStringIncludes(new TextDecoder().decode((await r.read()).value), "acquired");
  assertThrows(() => lockStateDir(tmp.path), IronMeshError, `pid ${holder.pid}`);
  holder.kill("SIGKILL");
  await holder.status;
  r.releaseLock();
  await holder.stdout.cancel();
  lockStateDir(tmp.path).release();
});
