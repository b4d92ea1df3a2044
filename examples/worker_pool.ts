/**
 * examples/worker_pool.ts — a request/response worker pool found by capability. Workers
 * advertise `job:square` and answer `{ n }` with `{ n, square, worker }`; the client waits
 * until enough workers are reachable, sends each job to one of them at random
 * (`requestCapability(…, { strategy: "random" })`), checks every answer and prints who did what.
 *
 * Run from the repository root, each in its own terminal (any number of workers):
 *
 * ```sh
 * mkdir -p .ironmesh-examples && umask 077 && openssl rand -base64 24 > .ironmesh-examples/pass
 * export IRONMESH_PASSPHRASE_FILE=.ironmesh-examples/pass
 * FLAGS="--allow-net=127.0.0.1 --allow-read=. --allow-write=.ironmesh-examples \
 *   --allow-env=HOME,IRONMESH_PASSPHRASE,IRONMESH_PASSPHRASE_FILE"
 * deno run $FLAGS examples/worker_pool.ts client --name client --port 9200 --workers 2 --jobs 10
 * deno run $FLAGS examples/worker_pool.ts worker --name w1 --connect 127.0.0.1:9200
 * deno run $FLAGS examples/worker_pool.ts worker --name w2 --connect 127.0.0.1:9200
 * ```
 *
 * Least privilege: the network only on 127.0.0.1; reading the repository (the SDK's own files,
 * so Argon2id can run in a throw-away worker, and the state dir); writing only the examples'
 * state directory; the passphrase variables and HOME.
 *
 * Flags: `worker` | `client` (first argument), --name NAME (required), --port N (default 0),
 * --bind ADDR (default 127.0.0.1), --connect HOST:PORT (repeatable), --state-dir DIR (default
 * .ironmesh-examples/NAME), --passphrase-file FILE. Worker: --delay-ms N (simulated work).
 * Client: --workers N (wait for N workers, default 1), --jobs N (default 10), --timeout-ms N
 * (per job, default 10000). The client exits 0 when every answer is right; workers run until
 * SIGINT/SIGTERM, then say GOODBYE and exit 0.
 */
import { parseArgs } from "node:util";
import { Agent, IronMeshError } from "../mod.ts";

const USAGE =
  "usage: worker_pool.ts worker|client --name NAME [--port N] [--connect HOST:PORT]... " +
  "[--state-dir DIR] [--passphrase-file FILE] [--delay-ms N] [--workers N] [--jobs N]";

/** The capability workers advertise. */
export const CAPABILITY = "job:square";

function describe(e: unknown): string {
  return e instanceof IronMeshError ? `${e.code}: ${e.message} — ${e.hint}` : String(e);
}

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    const sigs: Deno.Signal[] = ["SIGINT", "SIGTERM"];
    const h = () => {
      for (const s of sigs) Deno.removeSignalListener(s, h);
      resolve();
    };
    for (const s of sigs) Deno.addSignalListener(s, h);
  });
}

async function worker(agent: Agent, delayMs: number): Promise<number> {
  let served = 0;
  agent.onRequest(async (from, payload) => {
    const n = (payload as { n?: unknown })?.n;
    if (typeof n !== "number" || !Number.isFinite(n)) {
      throw new IronMeshError("BAD_JOB", "a job is { n: number }", "send { n: 7 }");
    }
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    served++;
    console.log(`job from ${from.name}: ${n}² = ${n * n}`);
    return { n, square: n * n, worker: agent.name };
  });
  await waitForSignal();
  console.log(`served ${served} job(s)`);
  return 0;
}

async function client(agent: Agent, workers: number, jobs: number, timeoutMs: number) {
  const found = await agent.waitForCapability(CAPABILITY, { count: workers, timeoutMs: 60_000 });
  console.log(`workers: ${[...new Set(found.map((c) => c.name))].sort().join(", ")}`);
  const by = new Map<string, number>();
  let correct = 0;
  await Promise.all(Array.from({ length: jobs }, async (_, n) => {
    try {
      const reply = await agent.requestCapability(CAPABILITY, { n }, {
        strategy: "random",
        timeoutMs,
      });
      const r = reply.data as { n: number; square: number; worker: string };
      const ok = r.n === n && r.square === n * n;
      if (ok) correct++;
      by.set(r.worker, (by.get(r.worker) ?? 0) + 1);
      console.log(`job ${n}: ${n}² = ${r.square} by ${r.worker}${ok ? "" : " WRONG"}`);
    } catch (e) {
      console.log(`job ${n}: failed (${describe(e)})`);
    }
  }));
  const split = [...by].sort().map(([w, c]) => `${w}×${c}`).join(", ");
  console.log(`done: ${correct}/${jobs} correct; served by ${split || "nobody"}`);
  return correct === jobs ? 0 : 1;
}

/** Run a worker or the client; resolves with the exit code. */
export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        name: { type: "string" },
        port: { type: "string", default: "0" },
        bind: { type: "string", default: "127.0.0.1" },
        connect: { type: "string", multiple: true, default: [] },
        "state-dir": { type: "string" },
        "passphrase-file": { type: "string" },
        "delay-ms": { type: "string", default: "0" },
        workers: { type: "string", default: "1" },
        jobs: { type: "string", default: "10" },
        "timeout-ms": { type: "string", default: "10000" },
      },
    });
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const role = parsed.positionals[0];
  const f = parsed.values;
  if ((role !== "worker" && role !== "client") || !f.name) {
    console.error(USAGE);
    return 2;
  }
  let agent: Agent;
  try {
    agent = await Agent.start({
      name: f.name,
      port: Number(f.port),
      bind: f.bind,
      connect: f.connect,
      stateDir: f["state-dir"] ?? `.ironmesh-examples/${f.name}`,
      passphraseFile: f["passphrase-file"],
      // Workers offer the capability from the start (peers bind a node's first set).
      capabilities: role === "worker" ? [CAPABILITY] : [],
    });
  } catch (e) {
    console.error(`error: ${describe(e)}`);
    return 1;
  }
  console.log(`ready ${agent.name} ${agent.id} ${agent.address}`);
  try {
    return role === "worker"
      ? await worker(agent, Number(f["delay-ms"]))
      : await client(agent, Number(f.workers), Number(f.jobs), Number(f["timeout-ms"]));
  } catch (e) {
    console.error(`error: ${describe(e)}`);
    return 1;
  } finally {
    await agent.close();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
