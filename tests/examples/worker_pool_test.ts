// examples/worker_pool.ts: a client and two worker processes; the workers advertise job:square,
// the client finds them by capability, spreads 20 requests over both at random, checks every
// answer and exits 0; the workers leave cleanly on SIGTERM having served all 20 between them.
import { assert, assertEquals } from "../support/assert.ts";
import { exampleDir, ExampleProc } from "./_proc.ts";

Deno.test("examples/worker_pool.ts: 20 jobs spread at random over two workers found by capability", async () => {
  const { dir, passFile } = await exampleDir("pool");
  const procs: ExampleProc[] = [];
  try {
    const client = new ExampleProc("client", "worker_pool.ts", [
      "client",
      "--name",
      "client",
      "--state-dir",
      `${dir}/client`,
      "--workers",
      "2",
      "--jobs",
      "20",
    ], { dir, passFile });
    procs.push(client);
    const [, addr] = await client.waitFor(/^ready client [0-9a-f]{32} (\S+)$/);

    const workers = ["w1", "w2"].map((name) => {
      const w = new ExampleProc(name, "worker_pool.ts", [
        "worker",
        "--name",
        name,
        "--state-dir",
        `${dir}/${name}`,
        "--connect",
        addr,
        "--delay-ms",
        "5",
      ], { dir, passFile });
      procs.push(w);
      return w;
    });

    assertEquals(await client.exit(60_000), 0, client.dump());
    assertEquals(client.all(/^workers: /), ["workers: w1, w2"]);
    const [, split] = await client.waitFor(/^done: 20\/20 correct; served by (.*)$/);
    const counts = Object.fromEntries(
      split.split(", ").map((s) => s.split("×")).map(([w, n]) => [w, Number(n)]),
    );
    assertEquals(Object.keys(counts).sort(), ["w1", "w2"], client.dump());
    assertEquals(counts.w1 + counts.w2, 20);
    for (let n = 0; n < 20; n++) {
      assert(
        client.lines.some((l) => new RegExp(`^job ${n}: ${n}² = ${n * n} by w[12]$`).test(l)),
        `job ${n} answered\n${client.dump()}`,
      );
    }

    let served = 0;
    for (const w of workers) w.kill("SIGTERM");
    for (const w of workers) {
      assertEquals(await w.exit(), 0, w.dump());
      const [, n] = await w.waitFor(/^served (\d+) job\(s\)$/);
      assertEquals(Number(n), counts[w.label], w.dump());
      assertEquals(w.all(/^job from client: /).length, Number(n));
      served += Number(n);
    }
    assertEquals(served, 20);
  } finally {
    for (const p of procs) p.kill("SIGKILL");
    for (const p of procs) await p.exit();
    await Deno.remove(dir, { recursive: true });
  }
});
