// The public SDK (mod.ts): agents in one process on 127.0.0.1 with temp state dirs exchange
// messages (onMessage, messages(), waitForDelivery), make requests with correlation ids
// (responses, remote errors, NO_HANDLER, timeouts), find each other by capability, keep their
// identity across restarts, refuse bad options, and close cleanly (Deno's sanitizers are on).
import { assert, assertEquals, assertRejects, assertThrows } from "./support/assert.ts";
import { waitFor } from "./support/wait.ts";
import { Agent, AgentMessage, type AgentOptions, IronMeshError } from "../mod.ts";

const PASS = "a-mesh-passphrase-for-sdk-tests";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A throw-away agent: temp state dir, any free port, unencrypted keys (fast; tests only). */
async function agent(name: string, o: Partial<AgentOptions> = {}): Promise<Agent> {
  return await Agent.start({
    name,
    passphrase: PASS,
    stateDir: o.stateDir ?? await Deno.makeTempDir({ prefix: `ironmesh-sdk-${name}-` }),
    port: 0,
    plaintextKeys: true,
    logLevel: "silent",
    ...o,
  });
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  await waitFor(cond, what, ms, { intervalMs: 10 });
}

async function removeDirs(...agents: Agent[]): Promise<void> {
  for (const a of agents) await Deno.remove(a.stateDir, { recursive: true }).catch(() => {});
}

function code(e: unknown): string {
  return e instanceof IronMeshError ? e.code : `not an IronMeshError: ${e}`;
}

Deno.test("sdk: send/onMessage with every payload kind, messages(), waitForDelivery, peers, close", async () => {
  const alice = await agent("alice");
  const bob = await agent("bob", { connect: [alice.address!] });
  try {
    assert(/^[0-9a-f]{32}$/.test(alice.id));
    assertEquals(alice.name, "alice");
    assertEquals(alice.address, `127.0.0.1:${alice.port}`);
    const seenByBob = await bob.waitForPeer("alice", { timeoutMs: 10_000 });
    assertEquals(seenByBob.id, alice.id);
    await alice.waitForPeer("bob", { timeoutMs: 10_000 });

    // A message that arrives before any handler is attached is kept for the first one.
    await bob.send("alice", "early bird", { waitForDelivery: true, timeoutMs: 5000 });

    const got: { from: string; fromId: string; payload: unknown; msg: AgentMessage }[] = [];
    const off = alice.onMessage((from, payload, msg) => {
      got.push({ from: from.name, fromId: from.id, payload, msg });
    });
    await until(() => got.length === 1, "the backlogged message");
    assertEquals(got[0].payload, "early bird");
    assertEquals([got[0].from, got[0].fromId, got[0].msg.type], ["bob", bob.id, "MSG"]);

    // Strings as UTF-8, objects as JSON, bytes as is; targets by name, by node id or by Sender.
    const r1 = await bob.send("alice", "héllo ✓");
    assert(r1.status === "sent" || r1.status === "queued", r1.status);
    assertEquals(r1.to, alice.id);
    await bob.send(alice.id, { task: "square", n: 7, tags: ["a", "b"] });
    await bob.send({ id: alice.id }, new Uint8Array([0xff, 0x00, 0x7f]));
    await until(() => got.length === 4, "three more messages");
    assertEquals(got[1].payload, "héllo ✓");
    assertEquals(got[1].msg.id, r1.id);
    assertEquals(got[2].msg.json(), { task: "square", n: 7, tags: ["a", "b"] });
    assertEquals(got[2].payload, '{"task":"square","n":7,"tags":["a","b"]}');
    assertEquals(got[3].msg.text, null);
    assertEquals(got[3].payload, new Uint8Array([0xff, 0x00, 0x7f]));
    assertEquals(code(assertThrows(() => got[3].msg.json(), IronMeshError)), "BAD_PAYLOAD");

    // waitForDelivery resolves once the receiver acknowledged it.
    const r2 = await alice.send(got[0].msg.from, "ack me", { waitForDelivery: true });
    assertEquals(r2.status, "delivered");

    // messages(): an async iterator, ended by break (or by close).
    const it = bob.messages();
    for (const t of ["one", "two", "three"]) await alice.send("bob", t, { priority: "high" });
    const texts: string[] = [];
    for await (const m of it) {
      texts.push(m.text!);
      if (texts.length === 4) break;
    }
    assertEquals(texts, ["ack me", "one", "two", "three"]);
    off();

    // peers: both sides see each other online and pinned.
    const p = bob.peers.find((x) => x.id === alice.id)!;
    assertEquals([p.name, p.online, p.trustState], ["alice", true, "trusted"]);
    assert(p.address.endsWith(`:${alice.port}`));

    // Errors carry a code and a hint.
    const e = await assertRejects(() => bob.send("nobody-by-that-name", "x"), IronMeshError);
    assertEquals(code(e), "TRUST_UNKNOWN_PEER");
    assert((e as IronMeshError).hint.includes("waitForPeer"));
    assertEquals(code(await bob.send("alice", undefined as never).catch((x) => x)), "BAD_PAYLOAD");
    // A second agent on the same state dir is refused while the first runs.
    assertEquals(
      code(await agent("alice2", { stateDir: alice.stateDir }).catch((x) => x)),
      "STATE_LOCKED",
    );

    // An iterator still open when the agent closes ends.
    const ending = (async () => {
      let n = 0;
      for await (const _ of alice.messages()) n++;
      return n;
    })();
    await alice.close();
    assertEquals(await ending, 0);
    assertEquals(code(await alice.send("bob", "late").catch((x) => x)), "AGENT_CLOSED");
    await alice.close(); // twice is fine
    await until(() => !bob.peers.find((x) => x.id === alice.id)?.online, "bob to see alice leave");
  } finally {
    await bob.close();
    await alice.close();
    await removeDirs(alice, bob);
  }
});

Deno.test("sdk: request/response with correlation ids, remote errors, NO_HANDLER and timeouts", async () => {
  const alice = await agent("alice");
  const bob = await agent("bob", { connect: [alice.address!] });
  try {
    await bob.waitForPeer("alice", { timeoutMs: 10_000 });
    const off = alice.onRequest(async (from, payload, req) => {
      assertEquals(from.id, bob.id);
      if (req.encoding === "text") return `echo: ${payload}`;
      if (req.encoding === "bytes") return (payload as Uint8Array).slice().reverse();
      const p = payload as { n: number; sleepMs?: number };
      if (p.sleepMs) await sleep(p.sleepMs);
      if (p.n < 0) throw new IronMeshError("BAD_N", "n must not be negative", "pass n ≥ 0");
      if (p.n === 13) throw new Error("unlucky");
      return { n: p.n, square: p.n * p.n };
    });

    const r = await bob.request("alice", { n: 7 });
    assertEquals([r.type, r.encoding, r.from.id], ["RESP", "json", alice.id]);
    assertEquals(r.data, { n: 7, square: 49 });
    assertEquals((await bob.request("alice", "hi")).data, "echo: hi");
    assertEquals(
      (await bob.request("alice", new Uint8Array([1, 2, 3]))).data,
      new Uint8Array([3, 2, 1]),
    );

    // Many at once, answered out of order: each response finds its own request.
    const ns = Array.from({ length: 12 }, (_, i) => i);
    const answers = await Promise.all(
      ns.map((n) => bob.request("alice", { n, sleepMs: (12 - n) * 5 })),
    );
    assertEquals(answers.map((a) => (a.data as { square: number }).square), ns.map((n) => n * n));

    // Remote errors keep their code; other exceptions become HANDLER_ERROR.
    const bad = await bob.request("alice", { n: -1 }).catch((e) => e);
    assertEquals(code(bad), "BAD_N");
    assert((bad as Error).message.includes("n must not be negative"));
    assertEquals(code(await bob.request("alice", { n: 13 }).catch((e) => e)), "HANDLER_ERROR");

    // A timeout rejects with REQUEST_TIMEOUT; the late response is dropped.
    const t0 = Date.now();
    const slow = await bob.request("alice", { n: 2, sleepMs: 600 }, { timeoutMs: 150 })
      .catch((e) => e);
    assertEquals(code(slow), "REQUEST_TIMEOUT");
    assert(Date.now() - t0 < 550, "rejected at the timeout, not at the response");
    await sleep(700);
    assertEquals((await bob.request("alice", { n: 3 })).data, { n: 3, square: 9 });

    // No handler: alice removed hers → NO_HANDLER at once.
    off();
    assertEquals(code(await bob.request("alice", { n: 1 }).catch((e) => e)), "NO_HANDLER");
    // Bob never set one and started seconds ago: alice's request waits for one → timeout.
    assertEquals(
      code(await alice.request("bob", "anyone?", { timeoutMs: 200 }).catch((e) => e)),
      "REQUEST_TIMEOUT",
    );
    // Aborting stops waiting.
    const ac = new AbortController();
    const aborted = alice.request("bob", "x", { signal: ac.signal }).catch((e) => e);
    ac.abort();
    assertEquals(code(await aborted), "REQUEST_ABORTED");
    // Pending requests reject when the agent closes.
    const pending = alice.request("bob", "y", { timeoutMs: 60_000 }).catch((e) => e);
    await sleep(20);
    await alice.close();
    assertEquals(code(await pending), "AGENT_CLOSED");
  } finally {
    await bob.close();
    await alice.close();
    await removeDirs(alice, bob);
  }
});

Deno.test("sdk: advertise, discover, sendToCapability and requestCapability; withdraw", async () => {
  const client = await agent("client");
  const w1 = await agent("w1", { connect: [client.address!], capabilities: ["job:square"] });
  const w2 = await agent("w2");
  const served = new Map<string, number>();
  try {
    for (const w of [w1, w2]) {
      w.onRequest((_from, payload) => {
        served.set(w.name, (served.get(w.name) ?? 0) + 1);
        const n = payload as number;
        return { worker: w.name, square: n * n };
      });
    }
    // w2 dials at run time, then advertises; both show up at the client.
    const seen = await w2.connect(client.address!);
    assertEquals([seen.id, seen.name, seen.online], [client.id, "client", true]);
    assertEquals(w2.advertise("job:square", "gpu:cuda"), ["gpu:cuda", "job:square"]);
    assertEquals(w2.capabilities, ["gpu:cuda", "job:square"]);
    const rows = await client.waitForCapability("job:*", { count: 2, timeoutMs: 10_000 });
    assertEquals(rows.map((r) => r.name).sort(), ["w1", "w2"]);
    assert(rows.every((r) => r.reachable && r.hops === 1 && !r.local));
    assertEquals(client.discover("gpu:*").map((r) => r.nodeId), [w2.id]);
    assertEquals(w1.discover("job:square").find((r) => r.local)?.nodeId, w1.id);
    assertEquals(client.discover("db:*"), []);

    // sendToCapability: first → one node; all → both.
    const inbox: string[] = [];
    for (const w of [w1, w2]) w.onMessage((_f, t) => inbox.push(`${w.name}:${t}`));
    const one = await client.sendToCapability("gpu:*", "render", "first", {
      waitForDelivery: true,
    });
    assertEquals(one.map((s) => [s.to, s.status]), [[w2.id, "delivered"]]);
    const all = await client.sendToCapability("job:square", "hello workers", "all", {
      waitForDelivery: true,
    });
    assertEquals(all.map((s) => s.to).sort(), [w1.id, w2.id].sort());
    await until(() => inbox.length === 3, "three capability messages");
    assertEquals(inbox.sort(), ["w1:hello workers", "w2:hello workers", "w2:render"]);

    // requestCapability with random spreads the work over both workers.
    const results = await Promise.all(
      Array.from(
        { length: 16 },
        (_, i) =>
          client.requestCapability("job:square", i, { strategy: "random", timeoutMs: 10_000 }),
      ),
    );
    assertEquals(results.map((r) => (r.data as { square: number }).square), [
      ...Array.from({ length: 16 }, (_, i) => i * i),
    ]);
    assertEquals([...served.values()].reduce((a, b) => a + b, 0), 16);
    assert(served.size === 2, `both workers served requests: ${JSON.stringify([...served])}`);

    // withdraw: the client no longer sees w2's gpu capability.
    assertEquals(w2.withdraw("gpu:cuda"), ["job:square"]);
    await until(() => client.discover("gpu:*").length === 0, "the withdrawal to arrive");
    assertEquals(
      code(await client.sendToCapability("gpu:*", "x").catch((e) => e)),
      "NO_CAPABILITY",
    );
  } finally {
    await Promise.all([client.close(), w1.close(), w2.close()]);
    await removeDirs(client, w1, w2);
  }
});

Deno.test("sdk: the identity is created (encrypted) on first use and kept; bad options are refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ironmesh-sdk-identity-" });
  const stateDir = `${dir}/state`;
  const passFile = `${dir}/pass`;
  await Deno.writeTextFile(passFile, `${PASS}\n`, { mode: 0o600 });
  try {
    const base = { stateDir, port: 0, logLevel: "silent" as const };
    const first = await Agent.start({ ...base, name: "keeper", passphraseFile: passFile });
    const id = first.id;
    await first.close();
    const keys = JSON.parse(await Deno.readTextFile(`${stateDir}/keys.json`));
    assertEquals([keys.encrypted, keys.agent_name], [true, "keeper"]);
    assertEquals((await Deno.stat(`${stateDir}/keys.json`)).mode! & 0o777, 0o600);

    assertEquals(
      code(await Agent.start({ ...base, passphrase: "not-the-right-passphrase" }).catch((e) => e)),
      "KEYS_WRONG_PASSPHRASE",
    );
    const again = await Agent.start({ ...base, passphrase: PASS }); // no name: the stored one
    assertEquals([again.id, again.name], [id, "keeper"]);
    await again.close();

    const refused = async (o: AgentOptions) => code(await Agent.start(o).catch((e) => e));
    const fresh = `${dir}/fresh`;
    assertEquals(await refused({ stateDir: fresh, passphrase: "short" }), "PASSPHRASE_TOO_SHORT");
    assertEquals(await refused({ stateDir: fresh, passphrase: PASS }), "NAME_REQUIRED");
    assertEquals(
      await refused({ name: "bad name!", stateDir: fresh, passphrase: PASS }),
      "BAD_OPTIONS",
    );
    assertEquals(
      await refused({ name: "x", stateDir: fresh, passphrase: PASS, capabilities: ["nocolon"] }),
      "BAD_OPTIONS",
    );
    assertEquals(
      await refused({ name: "x", stateDir: fresh, passphrase: PASS, connect: ["not an address"] }),
      "BAD_OPTIONS",
    );
    assertEquals(
      await refused({ name: "x", stateDir: fresh, passphrase: PASS, trustMode: "allow_list" }),
      "BAD_OPTIONS",
    );
    assertEquals(
      await refused({ name: "x", stateDir: fresh, passphrase: PASS, passphraseFile: passFile }),
      "BAD_OPTIONS",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
