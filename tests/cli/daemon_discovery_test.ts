/**
 * LAN discovery end to end: two real `ironmesh run` daemons with mDNS on, each in its own
 * network namespace, the two joined by a veth pair created inside the first namespace (the
 * host namespace is never touched, so multicast cannot leave the pair). With --allowed-peers
 * they find each other, connect, and deliver `ironmesh send`; with default-deny they see each
 * other (listed offline, "not dialed") and never connect.
 *
 * Needs root for `ip netns`; without it the tests fail rather than fall back to the host
 * network. The control sockets are Unix sockets in the state dirs, so the CLI runs from the
 * host (it never touches the network).
 */
import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { runCli, tempDir } from "../support/cli.ts";
import { call } from "../support/control.ts";
import { waitFor } from "../support/wait.ts";
import { type Daemon, startDaemon } from "../support/daemon.ts";
import type { InboxEntry } from "../../daemon/control_api.ts";
import type { PeerStatus } from "../../daemon/node.ts";

const dec = new TextDecoder();

async function ip(...args: string[]): Promise<string> {
  const r = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  if (!r.success) throw new Error(`ip ${args.join(" ")}: ${dec.decode(r.stderr)}`);
  return dec.decode(r.stdout);
}

async function requireRoot(): Promise<void> {
  const r = await new Deno.Command("id", { args: ["-u"], stdout: "piped" }).output();
  if (dec.decode(r.stdout).trim() !== "0") {
    throw new Error(
      "discovery tests need root for network namespaces; refusing to use the host network",
    );
  }
}

/** Two namespaces joined by a veth pair, each end with its own 10.77.x.0/24 address. */
interface Lan {
  tag: string;
  nsA: string;
  nsB: string;
  ipA: string;
  ipB: string;
}

/** Create the pair of namespaces, run `fn`, then delete them and check that none remain. */
async function withLan(fn: (lan: Lan) => Promise<void>): Promise<void> {
  await requireRoot();
  const tag = `${Deno.pid.toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
  const subnet = 1 + Math.floor(Math.random() * 254);
  const lan: Lan = {
    tag,
    nsA: `imdd-a-${tag}`,
    nsB: `imdd-b-${tag}`,
    ipA: `10.77.${subnet}.1`,
    ipB: `10.77.${subnet}.2`,
  };
  const vA = `idA${tag}`.slice(0, 15);
  const vB = `idB${tag}`.slice(0, 15);
  const created: string[] = [];
  try {
    await ip("netns", "add", lan.nsA);
    created.push(lan.nsA);
    await ip("netns", "add", lan.nsB);
    created.push(lan.nsB);
    // made inside nsA, the peer end moved straight into nsB: nothing touches the host namespace
    await ip(
      "-n",
      lan.nsA,
      "link",
      "add",
      vA,
      "type",
      "veth",
      "peer",
      "name",
      vB,
      "netns",
      lan.nsB,
    );
    for (const [ns, dev, addr] of [[lan.nsA, vA, lan.ipA], [lan.nsB, vB, lan.ipB]]) {
      await ip("-n", ns, "addr", "add", `${addr}/24`, "dev", dev);
      await ip("-n", ns, "link", "set", "lo", "up");
      await ip("-n", ns, "link", "set", dev, "up");
      await ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", dev);
    }
    // each namespace holds only lo and its end of the pair: multicast has nowhere else to go
    for (const [ns, dev] of [[lan.nsA, vA], [lan.nsB, vB]]) {
      const names = (await ip("-n", ns, "-o", "link")).split("\n").filter(Boolean)
        .map((l) => l.split(":")[1].trim().split("@")[0]);
      assertEquals(names.sort(), [dev, "lo"].sort());
    }
    await fn(lan);
  } finally {
    for (const ns of created) await ip("netns", "del", ns).catch(() => {});
  }
  assertEquals((await ip("netns", "list")).includes(tag), false, "namespaces left behind");
}

/** A daemon in `ns` on `addr`, mDNS on that interface only. */
function startIn(
  ns: string,
  addr: string,
  name: string,
  stateDir: string,
  extra: string[] = [],
): Promise<Daemon> {
  return startDaemon(name, stateDir, ["--mdns-interface", addr, ...extra], {
    netns: ns,
    bind: addr,
    mdns: true,
  });
}

/** SIGTERM, then SIGKILL if the daemon has not exited after 8 s (only PIDs we started). */
async function stopAll(ds: Daemon[]): Promise<void> {
  await Promise.all(ds.map(async (d) => {
    const timer = setTimeout(() => {
      try {
        d.child.kill("SIGKILL");
      } catch { /* exited */ }
    }, 8000);
    await d.stop("SIGTERM");
    clearTimeout(timer);
  }));
}

const peers = (d: Daemon) => call<PeerStatus[]>(d, "peers");

/** Wait on the LAN; a timeout shows each daemon's peers and log. */
async function waitOnLan(what: () => Promise<boolean>, label: string, ms: number, ds: Daemon[]) {
  await waitFor(what, label, ms, {
    intervalMs: 200,
    detail: async () =>
      (await Promise.all(ds.map(async (d) => {
        const p = await peers(d).catch((e) => String(e));
        return `${d.name}: ${JSON.stringify(p)}\n${d.stderr()}`;
      }))).join("\n"),
  });
}

async function peersJson(d: Daemon): Promise<PeerStatus[]> {
  const r = await runCli(["peers", "--json", "--state-dir", d.stateDir]);
  assertEquals(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

Deno.test("discovery: with --allowed-peers two daemons on a veth LAN find each other, connect and exchange messages", async () => {
  await withLan(async ({ nsA, nsB, ipA, ipB }) => {
    await using dir = await tempDir();
    const ds: Daemon[] = [];
    try {
      const alice = await startIn(nsA, ipA, "alice", `${dir.path}/a`, ["--allowed-peers", "bob"]);
      ds.push(alice);
      const bob = await startIn(nsB, ipB, "bob", `${dir.path}/b`, ["--allowed-peers", "alice"]);
      ds.push(bob);
      const onlineWith = async (d: Daemon, name: string) =>
        (await peers(d)).some((p) => p.name === name && p.online);
      await waitOnLan(
        async () => (await onlineWith(alice, "bob")) && (await onlineWith(bob, "alice")),
        "alice and bob connected through mDNS discovery",
        25_000,
        ds,
      );

      // the CLI agrees; alice (the smaller name) dialed bob at his announced veth address
      const atAlice = (await peersJson(alice)).find((p) => p.name === "bob");
      assert(atAlice, "bob is in alice's peers");
      assertEquals(atAlice.online, true);
      assertEquals(atAlice.nodeId, bob.nodeId);
      assertEquals(atAlice.address, `${ipB}:${bob.port}`);
      const atBob = (await peersJson(bob)).find((p) => p.name === "alice");
      assert(atBob, "alice is in bob's peers");
      assertEquals(atBob.online, true);
      assertEquals(atBob.nodeId, alice.nodeId);
      assertMatch(atBob.address, new RegExp(`^${ipA.replaceAll(".", "\\.")}:\\d+$`));

      // messages both ways through `ironmesh send`, read back with `ironmesh inbox --json`
      for (const [from, to] of [[alice, bob], [bob, alice]]) {
        const text = `hello ${to.name}, from ${from.name} across the veth`;
        const s = await runCli(["send", to.name, text, "--wait", "--state-dir", from.stateDir]);
        assertEquals(s.code, 0, s.stderr);
        assertMatch(s.stdout.trim(), /^[0-9a-f-]{36}$/);
        const r = await runCli(["inbox", "--json", "--state-dir", to.stateDir]);
        assertEquals(r.code, 0, r.stderr);
        const inbox: InboxEntry[] = JSON.parse(r.stdout);
        assertEquals(inbox.map((m) => [m.from, m.from_name, m.text]), [
          [from.nodeId, from.name, text],
        ]);
      }
    } finally {
      await stopAll(ds);
    }
  });
});

Deno.test("discovery: default-deny daemons see each other on the LAN but do not connect", async () => {
  await withLan(async ({ nsA, nsB, ipA, ipB }) => {
    await using dir = await tempDir();
    const ds: Daemon[] = [];
    try {
      const alice = await startIn(nsA, ipA, "alice", `${dir.path}/a`);
      ds.push(alice);
      const bob = await startIn(nsB, ipB, "bob", `${dir.path}/b`);
      ds.push(bob);
      const up = Date.now();
      let everOnline = false;
      const seenNotDialed = async (d: Daemon, name: string) => {
        const ps = await peers(d);
        if (ps.some((p) => p.online)) everOnline = true;
        return ps.some((p) => p.name === name && !p.online && /not dialed/.test(p.lastError ?? ""));
      };
      await waitOnLan(
        async () => (await seenNotDialed(alice, "bob")) && (await seenNotDialed(bob, "alice")),
        "both daemons list the other as discovered, not dialed",
        25_000,
        ds,
      );
      // and for ~8 s after both are up, neither ever connects
      const until = up + 8000;
      while (Date.now() < until) {
        for (const d of ds) {
          const ps = await peers(d);
          assertEquals(ps.filter((p) => p.online), [], `${d.name} connected under default-deny`);
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      assertEquals(everOnline, false);

      for (const [d, other, addr] of [[alice, bob, ipB], [bob, alice, ipA]] as const) {
        const list = await peersJson(d);
        assertEquals(list.length, 1, JSON.stringify(list));
        const p = list[0];
        assertEquals([p.name, p.online, p.address], [other.name, false, `${addr}:${other.port}`]);
        assertMatch(p.lastError ?? "", /discovered; not dialed/);
        // never handshaken: no node id, no traffic
        assertEquals([p.nodeId, p.framesSent, p.framesReceived], ["", 0, 0]);
      }
      const st = await runCli(["status", "--json", "--state-dir", alice.stateDir]);
      assertEquals(st.code, 0, st.stderr);
      assertEquals(JSON.parse(st.stdout).peers_online, 0);
    } finally {
      await stopAll(ds);
    }
  });
});
