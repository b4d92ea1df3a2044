// examples/chat.ts: two chat processes (run with the flags the example documents) find each
// other, exchange lines both ways, list peers, and leave with a GOODBYE when input ends.
import { assert, assertEquals } from "../support/assert.ts";
import { exampleDir, ExampleProc } from "./_proc.ts";

Deno.test("examples/chat.ts: two agents chat both ways and leave cleanly", async () => {
  const { dir, passFile } = await exampleDir("chat");
  const procs: ExampleProc[] = [];
  try {
    const alice = new ExampleProc("alice", "chat.ts", [
      "--name",
      "alice",
      "--state-dir",
      `${dir}/alice`,
    ], { dir, passFile });
    procs.push(alice);
    const [, aliceId, aliceAddr] = await alice.waitFor(/^ready alice ([0-9a-f]{32}) (\S+)$/);
    assert(aliceAddr.startsWith("127.0.0.1:"), aliceAddr);

    const bob = new ExampleProc("bob", "chat.ts", [
      "--name",
      "bob",
      "--state-dir",
      `${dir}/bob`,
      "--connect",
      aliceAddr,
    ], { dir, passFile });
    procs.push(bob);
    await bob.waitFor(/^ready bob [0-9a-f]{32} 127\.0\.0\.1:\d+$/);
    await bob.waitFor(/^\* alice joined$/);
    await alice.waitFor(/^\* bob joined$/);

    await bob.write("hello alice, over the mesh ✓");
    await alice.waitFor(/^<bob> hello alice, over the mesh ✓$/);
    await alice.write("hi bob");
    await bob.waitFor(/^<alice> hi bob$/);
    await bob.write("/peers");
    await bob.waitFor(new RegExp(`^  alice ${aliceId.slice(0, 12)} online$`));

    // End of input: bob says GOODBYE and exits 0; alice sees him leave.
    assertEquals(await bob.exit(), 0, bob.dump());
    await alice.waitFor(/^\* bob left$/);
    await alice.write("/quit");
    assertEquals(await alice.exit(), 0, alice.dump());
    // Each side got exactly the one message sent to it.
    assertEquals(alice.all(/^</), ["<bob> hello alice, over the mesh ✓"]);
    assertEquals(bob.all(/^</), ["<alice> hi bob"]);
  } finally {
    for (const p of procs) p.kill("SIGKILL");
    for (const p of procs) await p.exit();
    await Deno.remove(dir, { recursive: true });
  }
});
