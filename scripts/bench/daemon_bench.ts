/**
 * Daemon footprint: two real `ironmesh run` processes on 127.0.0.1 (--no-mdns, static
 * --connect), next to the reference's numbers as ratios. Measures the idle RSS of a daemon
 * with one connected peer (VmRSS from /proc after ~3 s idle), then RSS and CPU at 100 msg/s
 * for 10 s, sent through the sender's control socket (`send`, like `ironmesh send`). CPU is
 * utime+stime from /proc/<pid>/stat over the wall time, in % of one core.
 *
 *   deno task bench daemon
 */
import { fileURLToPath } from "node:url";
import { controlSocketPath } from "../../daemon/control.ts";
import { ControlClient } from "../../daemon/control_client.ts";
import type { InboxEntry } from "../../daemon/control_api.ts";
import type { PeerStatus } from "../../daemon/node.ts";
import { type Daemon, startDaemon } from "../../tests/support/daemon.ts";
import { fmt, printTable } from "./util.ts";

/** The reference's numbers (Python IronMesh on x86), in MB. */
const REF_IDLE_MB = 50;
const REF_LOAD_MB = 60;
/** Issue goal for the idle daemon. */
const GOAL_IDLE_MB = 60;
const RATE = 100;
const LOAD_S = 10;
const IDLE_S = 3;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A /proc file of another process (Deno grants /proc/<pid> only with --allow-all; `cat` it). */
function procFile(pid: number, name: string): string {
  const r = new Deno.Command("cat", { args: [`/proc/${pid}/${name}`], stdout: "piped" })
    .outputSync();
  if (!r.success) throw new Error(`daemon bench: cannot read /proc/${pid}/${name}`);
  return new TextDecoder().decode(r.stdout);
}

/** Resident set size of `pid` in MB (VmRSS), and the other memory lines for the breakdown. */
function memory(pid: number): { rssMb: number; lines: Record<string, number> } {
  const lines: Record<string, number> = {};
  for (const l of procFile(pid, "status").split("\n")) {
    const m = l.match(/^(Vm\w+|Rss\w+):\s+(\d+) kB/);
    if (m) lines[m[1]] = Number(m[2]) / 1024;
  }
  return { rssMb: lines.VmRSS, lines };
}

/** Resident MB of the largest anonymous mapping of `pid` (/proc/<pid>/smaps). */
function largestAnonMappingMb(pid: number): number {
  let anon = false;
  let best = 0;
  for (const l of procFile(pid, "smaps").split("\n")) {
    const head = l.match(/^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ (\d+)\s*(.*)$/);
    if (head) anon = head[1] === "0" && head[2] === "";
    const rss = l.match(/^Rss:\s+(\d+) kB/);
    if (rss && anon) best = Math.max(best, Number(rss[1]) / 1024);
  }
  return best;
}

/** CPU time (user + system) of `pid` in seconds. */
function cpuSeconds(pid: number, clkTck: number): number {
  const stat = procFile(pid, "stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / clkTck; // fields 14 and 15 of stat(5)
}

function clockTicks(): number {
  try {
    const out = new Deno.Command("getconf", { args: ["CLK_TCK"], stdout: "piped" }).outputSync();
    const n = Number(new TextDecoder().decode(out.stdout).trim());
    return n > 0 ? n : 100;
  } catch {
    return 100;
  }
}

async function withClient<T>(stateDir: string, fn: (c: ControlClient) => Promise<T>): Promise<T> {
  const c = await ControlClient.connect(stateDir);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

async function waitFor(what: () => Promise<boolean>, label: string, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!(await what())) {
    if (Date.now() - t0 > ms) throw new Error(`daemon bench: timed out waiting for ${label}`);
    await sleep(100);
  }
}

/**
 * The driver (a child process: the bench task's --allow-net is 127.0.0.1 only, and a Unix
 * socket needs its own `unix:` grant): waits until both daemons have an online peer, prints
 * "ready"; on a line on stdin sends `n` messages tx → rx at `rate`/s through tx's control
 * socket, prints "sent", waits until rx's inbox holds them all, prints "delivered".
 */
async function driver(txDir: string, rxDir: string, n: number, rate: number): Promise<void> {
  const online = (dir: string) =>
    withClient(dir, async (c) => (await c.call<PeerStatus[]>("peers")).some((p) => p.online));
  await waitFor(async () => (await online(rxDir)) && (await online(txDir)), "a connection", 30_000);
  console.log("ready");
  const go = Deno.stdin.readable.getReader();
  await go.read();
  go.releaseLock();
  await withClient(txDir, async (c) => {
    const calls: Promise<unknown>[] = [];
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const wait = t0 + (i * 1000) / rate - performance.now();
      if (wait > 0) await sleep(wait);
      calls.push(c.call("send", { to: "bench-rx", text: `bench message ${i} `.padEnd(200, ".") }));
    }
    await Promise.all(calls);
  });
  console.log("sent");
  await waitFor(
    () =>
      withClient(
        rxDir,
        async (c) => (await c.call<InboxEntry[]>("inbox", { limit: 5000 })).length >= n,
      ),
    `all ${n} messages to arrive`,
    30_000,
  );
  console.log("delivered");
}

/** Lines of a child's stdout, one at a time. */
function lineReader(child: Deno.ChildProcess) {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  return async (expect: string, ms: number): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!buf.includes("\n")) {
      const left = deadline - Date.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([
        reader.read(),
        new Promise<null>((res) => timer = setTimeout(() => res(null), Math.max(0, left))),
      ]);
      clearTimeout(timer);
      if (r === null) throw new Error(`daemon bench: driver did not print '${expect}' in time`);
      if (r.done) throw new Error(`daemon bench: driver exited before '${expect}'`);
      buf += r.value;
    }
    const nl = buf.indexOf("\n");
    const line = buf.slice(0, nl).trim();
    buf = buf.slice(nl + 1);
    if (line !== expect) throw new Error(`daemon bench: driver said '${line}', not '${expect}'`);
  };
}

const ratio = (ours: number, ref: number) => `${(ours / ref).toFixed(2)}×`;

/** Run the daemon benchmark and print its table. */
export async function daemonBench(): Promise<void> {
  const clkTck = clockTicks();
  const dir = await Deno.makeTempDir({ prefix: "ironmesh-daemon-bench-" });
  const started: Daemon[] = [];
  let driverProc: Deno.ChildProcess | null = null;
  const n = RATE * LOAD_S;
  try {
    const rx = await startDaemon("bench-rx", `${dir}/rx`, [], { timeoutMs: 60_000 });
    started.push(rx);
    const tx = await startDaemon("bench-tx", `${dir}/tx`, ["--connect", `127.0.0.1:${rx.port}`], {
      timeoutMs: 60_000,
    });
    started.push(tx);
    const socks = [tx, rx].map((d) => controlSocketPath(d.stateDir));
    const drv = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        `--allow-read=${dir}`,
        `--allow-write=${socks.join(",")}`,
        `--allow-net=${socks.map((p) => `unix:${p}`).join(",")}`,
        fileURLToPath(import.meta.url),
        "driver",
        tx.stateDir,
        rx.stateDir,
        String(n),
        String(RATE),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    driverProc = drv;
    const expect = lineReader(drv);
    await expect("ready", 40_000);

    // 1. idle, one connected peer
    await sleep(IDLE_S * 1000);
    const idleRx = memory(rx.child.pid);
    const idleTx = memory(tx.child.pid);
    const idleAnon = largestAnonMappingMb(rx.child.pid);

    // 2. 100 msg/s for 10 s, tx → rx, paced on a fixed schedule by the driver
    const peak = [0, 0];
    const sample = () => {
      peak[0] = Math.max(peak[0], memory(tx.child.pid).rssMb);
      peak[1] = Math.max(peak[1], memory(rx.child.pid).rssMb);
    };
    const sampler = setInterval(sample, 500);
    const cpu0 = [cpuSeconds(tx.child.pid, clkTck), cpuSeconds(rx.child.pid, clkTck)];
    const t0 = performance.now();
    const w = drv.stdin.getWriter();
    await w.write(new TextEncoder().encode("go\n"));
    await w.close();
    try {
      await expect("sent", (LOAD_S + 30) * 1000);
    } finally {
      clearInterval(sampler);
    }
    const wall = (performance.now() - t0) / 1000;
    const cpu1 = [cpuSeconds(tx.child.pid, clkTck), cpuSeconds(rx.child.pid, clkTck)];
    sample();
    const cpuPct = [(cpu1[0] - cpu0[0]) / wall * 100, (cpu1[1] - cpu0[1]) / wall * 100];
    await expect("delivered", 40_000);
    await drv.status;
    driverProc = null;

    const mb = (x: number) => `${fmt(x, 1)} MB`;
    const rssRow = (label: string, ours: number, ref: number) => [
      label,
      mb(ours),
      `~${ref} MB`,
      ratio(ours, ref),
    ];
    printTable(
      `daemon footprint (two daemons on 127.0.0.1, one peer each; ${RATE} msg/s × ${LOAD_S} s, 200 B)`,
      ["measure", "ironmesh (Deno)", "reference (Python, x86)", "ironmesh / reference"],
      [
        rssRow("idle RSS, one connected peer (listener)", idleRx.rssMb, REF_IDLE_MB),
        rssRow("idle RSS, one connected peer (dialer)", idleTx.rssMb, REF_IDLE_MB),
        rssRow(`peak RSS at ${RATE} msg/s, sender`, peak[0], REF_LOAD_MB),
        rssRow(`peak RSS at ${RATE} msg/s, receiver`, peak[1], REF_LOAD_MB),
        [`CPU at ${RATE} msg/s, sender`, `${fmt(cpuPct[0], 1)} % of a core`, "—", "—"],
        [`CPU at ${RATE} msg/s, receiver`, `${fmt(cpuPct[1], 1)} % of a core`, "—", "—"],
      ],
    );
    const idle = Math.max(idleRx.rssMb, idleTx.rssMb);
    const goal = idle <= GOAL_IDLE_MB ? "met" : "NOT met";
    console.log(`\ngoal ≤ ${GOAL_IDLE_MB} MB idle RSS: ${goal} (${mb(idle)})`);
    console.log(
      `listener idle: RssAnon ${mb(idleRx.lines.RssAnon ?? 0)}, RssFile ${
        mb(idleRx.lines.RssFile ?? 0)
      } (mostly the deno binary); largest anonymous mapping ${mb(idleAnon)} ` +
        "(libsodium's wasm memory: Argon2id at 256 MiB grows it at startup, and WebAssembly " +
        `memory never shrinks); RSS without it ${mb(idleRx.rssMb - idleAnon)}`,
    );
  } finally {
    if (driverProc) {
      try {
        driverProc.kill("SIGKILL");
      } catch { /* exited */ }
      await driverProc.status;
    }
    for (const d of started) {
      const timer = setTimeout(() => {
        try {
          d.child.kill("SIGKILL");
        } catch { /* exited */ }
      }, 8000);
      await d.stop("SIGTERM");
      clearTimeout(timer);
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "driver") {
    const [txDir, rxDir, n, rate] = Deno.args.slice(1);
    await driver(txDir, rxDir, Number(n), Number(rate));
  } else await daemonBench();
}
