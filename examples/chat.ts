/**
 * examples/chat.ts — a two-agent chat over ironmesh (end-to-end encrypted, signed, queued
 * while the other side is away).
 *
 * Two terminals, from the repository root:
 *
 * ```sh
 * mkdir -p .ironmesh-examples && umask 077 && openssl rand -base64 24 > .ironmesh-examples/pass
 * export IRONMESH_PASSPHRASE_FILE=.ironmesh-examples/pass
 * FLAGS="--allow-net=127.0.0.1 --allow-read=. --allow-write=.ironmesh-examples \
 *   --allow-env=HOME,IRONMESH_PASSPHRASE,IRONMESH_PASSPHRASE_FILE"
 * deno run $FLAGS examples/chat.ts --name alice --port 9101
 * deno run $FLAGS examples/chat.ts --name bob --port 9102 --connect 127.0.0.1:9101
 * ```
 *
 * Least privilege: the network only on 127.0.0.1 (listen and dial); reading the repository
 * (the SDK's own files, so Argon2id runs in a throw-away worker, and the state dir — with
 * `--allow-read=.ironmesh-examples` alone it still works, Argon2id then runs in-process);
 * writing only the examples' state directory; the passphrase variables and HOME (the trust
 * store's legacy format). Nothing else.
 *
 * Type a line to send it to every online peer (or only to `--to NAME`); `/peers` lists the
 * peers; `/quit` or end of input (Ctrl-D) says GOODBYE and exits. Output lines:
 * `ready NAME ID ADDRESS` once listening, `* NAME joined|left`, `<NAME> TEXT` for messages.
 *
 * Flags: --name NAME (required), --port N (default 0: any free port), --bind ADDR (default
 * 127.0.0.1), --connect HOST:PORT (repeatable), --to NAME, --state-dir DIR (default
 * .ironmesh-examples/NAME), --passphrase-file FILE (else IRONMESH_PASSPHRASE_FILE or
 * IRONMESH_PASSPHRASE).
 */
import { parseArgs } from "node:util";
import { Agent, IronMeshError } from "../mod.ts";

const USAGE = "usage: chat.ts --name NAME [--port N] [--connect HOST:PORT]... [--to NAME] " +
  "[--state-dir DIR] [--passphrase-file FILE] [--bind ADDR]";

/** Lines of a byte stream. */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i).replace(/\r$/, "");
      buf = buf.slice(i + 1);
    }
  }
  if (buf) yield buf;
}

function describe(e: unknown): string {
  return e instanceof IronMeshError ? `${e.message} — ${e.hint}` : String(e);
}

/** Run the chat; resolves with the exit code. */
export async function main(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parseArgs({
      args,
      options: {
        name: { type: "string" },
        port: { type: "string", default: "0" },
        bind: { type: "string", default: "127.0.0.1" },
        connect: { type: "string", multiple: true, default: [] },
        to: { type: "string" },
        "state-dir": { type: "string" },
        "passphrase-file": { type: "string" },
      },
    }).values;
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (!flags.name) {
    console.error(USAGE);
    return 2;
  }
  let agent: Agent;
  try {
    agent = await Agent.start({
      name: flags.name,
      port: Number(flags.port),
      bind: flags.bind,
      connect: flags.connect,
      stateDir: flags["state-dir"] ?? `.ironmesh-examples/${flags.name}`,
      passphraseFile: flags["passphrase-file"],
    });
  } catch (e) {
    console.error(`error: ${describe(e)}`);
    return 1;
  }
  agent.onPeer((e) => console.log(`* ${e.peer.name} ${e.type === "up" ? "joined" : "left"}`));
  agent.onMessage((from, payload) => {
    const text = typeof payload === "string"
      ? payload
      : `[${(payload as Uint8Array).length} bytes]`;
    console.log(`<${from.name}> ${text}`);
  });
  console.log(`ready ${agent.name} ${agent.id} ${agent.address}`);

  for await (const line of lines(Deno.stdin.readable)) {
    const text = line.trim();
    if (!text) continue;
    if (text === "/quit") break;
    if (text === "/peers") {
      for (const p of agent.peers) {
        console.log(`  ${p.name} ${p.id.slice(0, 12)} ${p.online ? "online" : "offline"}`);
      }
      continue;
    }
    const targets = flags.to ? [flags.to] : agent.peers.filter((p) => p.online).map((p) => p.id);
    if (targets.length === 0) {
      console.log("(nobody is online yet — not sent)");
      continue;
    }
    for (const t of targets) {
      await agent.send(t, text).catch((e) => console.error(`! ${describe(e)}`));
    }
  }
  await agent.close();
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
