/**
 * Real multicast, never on the host network: every test here runs its nodes in
 * network namespaces it creates (`unshare -n` with loopback only, or two
 * `ip netns` namespaces joined by a veth pair) and removes them afterwards. The
 * children run with exactly the Deno permissions the daemon needs for mDNS.
 * Without root (no namespaces) these tests fail; they never fall back to the
 * host interfaces.
 */
import { assert, assertEquals, assertStringIncludes } from "../../support/assert.ts";
import type { ChildConfig } from "./mdns_child.ts";
import { pythonPacket } from "./python_packets.ts";

const CHILD = new URL("./mdns_child.ts", import.meta.url).pathname;
const CONFIG = new URL("../../../deno.json", import.meta.url).pathname;
const NET_FLAG = "--allow-net=0.0.0.0:5353,224.0.0.251:5353";
const SYS_FLAG = "--allow-sys=networkInterfaces";
const hex16 = (n: number) => n.toString(16).padStart(16, "0");
const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

// deno-lint-ignore no-explicit-any
type Line = any;

/** A child process we started, its JSON lines, and a way to wait for one. */
class Child {
  readonly lines: Line[] = [];
  readonly proc: Deno.ChildProcess;
  readonly stderr: Promise<string>;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #waiters: (() => void)[] = [];
  readonly done: Promise<Deno.CommandStatus>;

  constructor(cmd: string, args: string[]) {
    this.proc = new Deno.Command(cmd, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.#writer = this.proc.stdin.getWriter();
    this.stderr = new Response(this.proc.stderr).text();
    this.#read();
    this.done = this.proc.status;
  }

  async #read(): Promise<void> {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of this.proc.stdout) {
      buf += dec.decode(chunk, { stream: true });
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(line));
        } catch {
          this.lines.push({ t: "text", line });
        }
        for (const w of this.#waiters.splice(0)) w();
      }
    }
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Wait for a line matching `pred` (fails on a fatal line, exit, or timeout). */
  async waitFor(pred: (l: Line) => boolean, what: string, ms = 20_000): Promise<Line> {
    const deadline = Date.now() + ms;
    let exited = false;
    this.done.then(() => exited = true);
    while (true) {
      const hit = this.lines.find(pred);
      if (hit) return hit;
      const fatal = this.lines.find((l) => l.t === "fatal");
      if (fatal || exited || Date.now() > deadline) {
        throw new Error(
          `waiting for ${what}: ${
            fatal ? JSON.stringify(fatal) : exited ? "child exited" : "timeout"
          }\n` +
            `lines: ${JSON.stringify(this.lines)}\nstderr: ${
              exited ? await this.stderr : "(running)"
            }`,
        );
      }
      await new Promise<void>((r) => {
        const id = setTimeout(r, 100);
        this.#waiters.push(() => (clearTimeout(id), r()));
      });
    }
  }

  async send(line: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(line + "\n"));
  }

  /** Kill by the PID we started, if still running; wait for it. */
  async kill(): Promise<void> {
    try {
      this.#writer.releaseLock();
      await this.proc.stdin.close();
    } catch { /* already closed */ }
    try {
      this.proc.kill("SIGKILL");
    } catch { /* already exited */ }
    await this.done;
    await this.stderr.catch(() => "");
  }
}

function denoArgs(cfg: ChildConfig, flags: string[]): string[] {
  return ["run", "--no-prompt", "--config", CONFIG, ...flags, CHILD, JSON.stringify(cfg)];
}

/** A child in a fresh network namespace with loopback only (multicast routed to lo). */
function inLoopbackNamespace(cfg: ChildConfig, flags: string[]): Child {
  const setup = "set -e; ip link set lo up; ip link set lo multicast on; " +
    'ip route add 224.0.0.0/4 dev lo; exec "$@"';
  return new Child("unshare", [
    "-n",
    "sh",
    "-c",
    setup,
    "sh",
    Deno.execPath(),
    ...denoArgs(cfg, flags),
  ]);
}

async function run(cmd: string, ...args: string[]): Promise<void> {
  const r = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!r.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
  }
}

async function requireRoot(): Promise<void> {
  const r = await new Deno.Command("id", { args: ["-u"], stdout: "piped" }).output();
  const uid = new TextDecoder().decode(r.stdout).trim();
  if (uid !== "0") {
    throw new Error(
      "mDNS multicast tests need root for network namespaces; refusing to use the host network",
    );
  }
}

Deno.test({
  name: "real multicast in a private namespace: two nodes and a Python-style node find each other",
  fn: async () => {
    await requireRoot();
    const py = pythonPacket({
      name: "pynode",
      srvPort: 8765,
      txtPort: 8799,
      idhash: "00112233aabbccdd",
      addresses: ["127.0.0.1"],
    });
    const cfg: ChildConfig = {
      nodes: [
        { name: "alice", port: 8765, address: "127.0.0.1", idhash: hex16(0xa) },
        { name: "bob", port: 9000, address: "127.0.0.1", idhash: hex16(0xb) },
      ],
      expect: { alice: ["bob", "pynode"], bob: ["alice", "pynode"] },
      allowedInterfaces: ["lo"],
      allowedPeers: ["alice", "bob"],
      injectHex: toHex(py),
    };
    // exactly the daemon's mDNS permissions
    const child = inLoopbackNamespace(cfg, [NET_FLAG, SYS_FLAG]);
    try {
      await child.waitFor((l) => l.t === "all-found", "both nodes to see each other and pynode");
      const sighting = (node: string, name: string) =>
        child.lines.find((l) =>
          l.t === "event" && l.node === node && l.type === "sighting" && l.sighting.name === name
        );
      const bobAtAlice = sighting("alice", "bob");
      assertEquals([
        bobAtAlice.sighting.address,
        bobAtAlice.sighting.port,
        bobAtAlice.sighting.idhash,
      ], [
        "127.0.0.1",
        9000,
        hex16(0xb),
      ]);
      assertEquals(sighting("alice", "pynode").sighting.port, 8799);
      assertEquals(sighting("bob", "pynode").sighting.idhash, "00112233aabbccdd");
      // policy: alice (smaller) dials bob when allowed; bob only remembers; default deny dials nobody
      assertEquals([bobAtAlice.withAllowList, bobAtAlice.defaultDeny], ["dial", "deny"]);
      const aliceAtBob = sighting("bob", "alice");
      assertEquals([aliceAtBob.withAllowList, aliceAtBob.defaultDeny], ["remember", "deny"]);
      // nobody saw itself, nothing was rejected
      assertEquals(child.lines.filter((l) => l.t === "event" && l.sighting?.name === l.node), []);
      assertEquals(child.lines.filter((l) => l.type === "rejected" || l.type === "conflict"), []);
      // bob leaves (goodbye); alice keeps him as departed
      await child.send("bob");
      await child.waitFor(
        (l) => l.t === "event" && l.node === "alice" && l.type === "departed",
        "alice to see bob leave",
      );
      await child.send("alice");
      const stopped = await child.waitFor(
        (l) => l.t === "stopped" && l.node === "alice",
        "alice to stop",
      );
      const bob = stopped.sightings.find((s: Line) => s.name === "bob");
      assert(bob && bob.departedAt !== null, "bob is kept, marked departed");
      assertEquals((await child.done).code, 0);
    } finally {
      await child.kill();
    }
  },
});

Deno.test({
  name:
    "permissions: without --allow-sys=networkInterfaces start fails with a clear error (no crash)",
  fn: async () => {
    await requireRoot();
    const cfg: ChildConfig = {
      nodes: [{ name: "alice", port: 8765, address: "127.0.0.1", idhash: hex16(0xa) }],
      expect: {},
    };
    const child = inLoopbackNamespace(cfg, [NET_FLAG]);
    try {
      const fatal = await child.waitFor((l) => l.t === "fatal", "a fatal line").catch((e) => {
        // waitFor throws on fatal lines too; return the line
        const line = child.lines.find((l) => l.t === "fatal");
        if (line) return line;
        throw e;
      });
      assertEquals(fatal.code, "MDNS_PERMISSION");
      assertStringIncludes(fatal.hint, SYS_FLAG);
      assertStringIncludes(fatal.hint, NET_FLAG);
      assertEquals((await child.done).code, 4);
    } finally {
      await child.kill();
    }
  },
});

Deno.test({
  name: "two namespaces joined by a veth pair: nodes discover each other across the link",
  fn: async () => {
    await requireRoot();
    const tag = `${Deno.pid.toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
    const nsA = `imdns-a-${tag}`;
    const nsB = `imdns-b-${tag}`;
    const vA = `imA${tag}`.slice(0, 15);
    const vB = `imB${tag}`.slice(0, 15);
    const children: Child[] = [];
    const created: string[] = [];
    try {
      await run("ip", "netns", "add", nsA);
      created.push(nsA);
      await run("ip", "netns", "add", nsB);
      created.push(nsB);
      // created inside nsA, peer moved straight into nsB: nothing touches the host namespace
      await run(
        "ip",
        "-n",
        nsA,
        "link",
        "add",
        vA,
        "type",
        "veth",
        "peer",
        "name",
        vB,
        "netns",
        nsB,
      );
      for (const [ns, dev, ip] of [[nsA, vA, "10.253.0.1"], [nsB, vB, "10.253.0.2"]]) {
        await run("ip", "-n", ns, "addr", "add", `${ip}/24`, "dev", dev);
        await run("ip", "-n", ns, "link", "set", "lo", "up");
        await run("ip", "-n", ns, "link", "set", dev, "up");
        await run("ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", dev);
      }
      // each namespace holds only lo and its end of the veth pair
      for (const [ns, dev] of [[nsA, vA], [nsB, vB]]) {
        const links = await new Deno.Command("ip", {
          args: ["-n", ns, "-o", "link"],
          stdout: "piped",
        }).output();
        const names = new TextDecoder().decode(links.stdout).split("\n").filter(Boolean)
          .map((l) => l.split(":")[1].trim().split("@")[0]);
        assertEquals(names.sort(), [dev, "lo"].sort());
      }
      const start = (ns: string, name: string, ip: string, peer: string) => {
        const cfg: ChildConfig = {
          nodes: [{
            name,
            port: 8765,
            address: ip,
            idhash: hex16(name.charCodeAt(0)),
            interfaceAddress: ip,
          }],
          expect: { [name]: [peer] },
          allowedPeers: [peer],
        };
        // with interfaceAddress, --allow-net alone suffices
        const c = new Child("ip", [
          "netns",
          "exec",
          ns,
          Deno.execPath(),
          ...denoArgs(cfg, [NET_FLAG]),
        ]);
        children.push(c);
        return c;
      };
      const alice = start(nsA, "alice", "10.253.0.1", "bob");
      const bob = start(nsB, "bob", "10.253.0.2", "alice");
      await alice.waitFor((l) => l.t === "found", "alice to find bob");
      await bob.waitFor((l) => l.t === "found", "bob to find alice");
      const seen = (c: Child, name: string) =>
        c.lines.find((l) => l.t === "event" && l.type === "sighting" && l.sighting.name === name);
      assertEquals(seen(alice, "bob").sighting.address, "10.253.0.2");
      assertEquals(seen(alice, "bob").sighting.source, "10.253.0.2");
      assertEquals(seen(bob, "alice").sighting.address, "10.253.0.1");
      assertEquals(seen(alice, "bob").sighting.idhash, hex16("b".charCodeAt(0)));
      assertEquals([seen(alice, "bob").withAllowList, seen(bob, "alice").withAllowList], [
        "dial",
        "remember",
      ]);
      assertEquals([seen(alice, "bob").defaultDeny, seen(bob, "alice").defaultDeny], [
        "deny",
        "deny",
      ]);
      // alice stops: bob sees the goodbye across the link
      await alice.send("all");
      assertEquals((await alice.done).code, 0);
      await bob.waitFor((l) => l.t === "event" && l.type === "departed", "bob to see alice leave");
      await bob.send("all");
      assertEquals((await bob.done).code, 0);
    } finally {
      for (const c of children) await c.kill();
      for (const ns of created) await run("ip", "netns", "del", ns).catch(() => {});
    }
    const left = new TextDecoder().decode(
      (await new Deno.Command("ip", { args: ["netns", "list"], stdout: "piped" }).output()).stdout,
    );
    assertEquals(left.includes(tag), false);
  },
});
