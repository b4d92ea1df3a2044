/**
 * Real `ironmesh run` daemons as subprocesses on 127.0.0.1 (never multicast: --no-mdns).
 * Discovery tests may instead run one inside a network namespace they created
 * (`netns`), on its own address (`bind`), with mDNS on (`mdns: true`).
 */
import { CLI_MAIN, taskPermissionFlags } from "./cli.ts";

export const DAEMON_PASS = "daemon-test-mesh-passphrase";

/** A running daemon process. */
export interface Daemon {
  child: Deno.ChildProcess;
  nodeId: string;
  name: string;
  port: number;
  stateDir: string;
  /** The startup JSON (`dashboard_url`, `metrics_url`, `token_file` with `--gui`, …). */
  info: Record<string, unknown>;
  /** Everything the daemon wrote to stderr so far. */
  stderr(): string;
  /** Send `signal` and wait for the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
}

/** Write the mesh passphrase file for a test (0600). */
export async function passFile(dir: string, pass = DAEMON_PASS): Promise<string> {
  const p = `${dir}/mesh-pass`;
  await Deno.writeTextFile(p, pass + "\n", { mode: 0o600 });
  return p;
}

/** Options of `startDaemon`. */
export interface StartOptions {
  env?: Record<string, string>;
  timeoutMs?: number;
  port?: number;
  /** Listen address (default 127.0.0.1). */
  bind?: string;
  /**
   * Run under `ip netns exec NETNS` (a namespace the test created; `ip` execs the daemon, so
   * the child's PID is the daemon's). Default: the current network namespace.
   */
  netns?: string;
  /**
   * Leave mDNS on (no --no-mdns). Only inside a namespace the test created: multicast must
   * never reach the host network, so this throws without `netns`.
   */
  mdns?: boolean;
}

/** Start `ironmesh run` and wait until it prints its startup JSON. */
export async function startDaemon(
  name: string,
  stateDir: string,
  args: string[] = [],
  opts: StartOptions = {},
): Promise<Daemon> {
  if (opts.mdns && !opts.netns) {
    throw new Error("startDaemon: mdns: true needs netns (never multicast on the host network)");
  }
  await Deno.mkdir(stateDir, { recursive: true, mode: 0o700 });
  const pf = await passFile(stateDir);
  const prefix = opts.netns ? ["netns", "exec", opts.netns, Deno.execPath()] : [];
  const cmd = new Deno.Command(opts.netns ? "ip" : Deno.execPath(), {
    args: [
      ...prefix,
      "run",
      "--quiet",
      ...taskPermissionFlags(),
      CLI_MAIN,
      "run",
      "--json",
      "--name",
      name,
      "--bind",
      opts.bind ?? "127.0.0.1",
      "--port",
      String(opts.port ?? 0),
      ...(opts.mdns ? [] : ["--no-mdns"]),
      "--allow-plaintext-ws",
      "--passphrase-file",
      pf,
      "--state-dir",
      stateDir,
      ...args,
    ],
    env: {
      NO_COLOR: "1",
      HOME: "/nonexistent-home",
      ...(opts.netns ? { PATH: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin" } : {}),
      ...opts.env,
    },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  let err = "";
  (async () => {
    const dec = new TextDecoder();
    for await (const c of child.stderr) err += dec.decode(c);
  })();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  let info: { node_id: string; listen: string; [k: string]: unknown } | null = null;
  while (!info) {
    const left = deadline - Date.now();
    const r = await Promise.race([
      reader.read(),
      new Promise<null>((res) => setTimeout(() => res(null), Math.max(0, left))),
    ]);
    if (r === null || r.done) {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      throw new Error(`daemon ${name} did not start: ${out}\n${err}`);
    }
    out += r.value;
    const m = out.match(/\{[\s\S]*?"pid"[\s\S]*?\}/);
    if (m) info = JSON.parse(m[0]);
  }
  (async () => {
    try {
      for (;;) if ((await reader.read()).done) break;
    } catch { /* closed */ }
  })();
  const port = Number(info.listen.split(":").pop());
  return {
    child,
    nodeId: info.node_id,
    name,
    port,
    stateDir,
    info,
    stderr: () => err,
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      return (await child.status).code;
    },
  };
}
