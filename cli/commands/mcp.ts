/**
 * `ironmesh mcp` — an MCP server on stdio that gives an AI agent (Claude Desktop, Claude Code,
 * any MCP client) tools to use the mesh. By default it attaches to the daemon of the state
 * dir through its control socket; with `--own-node` it runs a node itself. stdout carries
 * only MCP JSON-RPC; logs go to stderr. The MCP machinery is loaded only when the command
 * runs (daemon/mcp/server.ts), so other commands and the Argon2id worker never load it.
 */
import { ExitCode } from "../../lib/errors.ts";
import { Logger, type LogLevel } from "../../lib/log.ts";
import { MeshBackend } from "../../daemon/mcp/backend.ts";
import { type OwnNode, startOwnNode } from "../../daemon/mcp/own_node.ts";
import { meshTools } from "../../daemon/mcp/tools.ts";
import type { MeshOptions } from "../../daemon/mesh.ts";
import { intFlag, parseCommandArgs, usageError } from "../args.ts";
import type { Command } from "../command.ts";
import { makeContext } from "../context.ts";
import { kdfProgress } from "../identity_loader.ts";
import { Output } from "../output.ts";
import {
  checkAddress,
  checkCapabilities,
  checkName,
  keysPassphrase,
  meshPassphrase,
  meshRoutingMode,
  openOrCreateIdentity,
} from "../node_options.ts";
import { GLOBAL_HELP } from "../subcommand.ts";

const HELP = `ironmesh mcp — an MCP server (stdio) that lets an AI agent use the mesh

Speaks the Model Context Protocol on stdin/stdout, for Claude Desktop, Claude Code or any MCP
client; logs go to stderr. By default it attaches to the daemon running on the state dir
(start it first with 'ironmesh run'); with --own-node it runs a node itself, which also serves
the control socket, so 'ironmesh status', 'send', 'trust' … work against it meanwhile.

Usage: ironmesh mcp [--state-dir DIR] [--attach]
       ironmesh mcp --own-node [--name NAME] [--port N] [--connect HOST:PORT]... [flags]
       ironmesh mcp --list-tools

Tools: list peers, send a message, request a service and wait for the reply (REQ/RESP with a
correlation id), reply to a request, discover / advertise / withdraw capabilities, read
received messages, mesh stats, trust list, promote / block pending peers (these two require
the argument confirm: true), audit log tail. 'ironmesh mcp --list-tools' prints them.

  --attach                    attach to the running daemon (the default)
  --own-node                  run a node in this process instead (no daemon may run on DIR)
  --list-tools                print the tool names and exit

With --own-node (same meaning as for 'ironmesh run'; no mDNS discovery: static peers only):
  --name NAME                 agent name (needed on the first run, when keys.json is created)
  --port N                    WebSocket port (default 8765)
  --bind ADDR                 listen address (default 0.0.0.0; 127.0.0.1 for local only)
  --connect HOST:PORT         static peer, dialed and re-dialed (repeatable)
  --capability NS:NAME        a capability this node offers (repeatable)
  --allow-plaintext-ws        if wss:// fails, fall back to ws:// (frames stay encrypted)
  --require-message-promotion new peers start 'pending' until promoted
  --mesh-routing MODE         relay (default) | passive | off
  --passphrase-file FILE      mesh passphrase (else IRONMESH_PASSPHRASE_FILE, IRONMESH_PASSPHRASE)
  --keys-passphrase-file FILE key-file passphrase (else IRONMESH_KEYS_PASSPHRASE, else the mesh
                              passphrase)

MCP client configuration (e.g. claude_desktop_config.json):
  {"mcpServers": {"ironmesh": {"command": "ironmesh", "args": ["mcp"]}}}

Examples:
  ironmesh mcp
  ironmesh mcp --state-dir ~/.ironmesh-lab
  ironmesh mcp --own-node --name desk-agent --port 8775 --connect 192.168.1.20:8765 \\
      --passphrase-file ~/.ironmesh-pass
  ironmesh mcp --list-tools

${GLOBAL_HELP}`;

const OPTIONS = {
  attach: { type: "boolean" },
  "own-node": { type: "boolean" },
  "list-tools": { type: "boolean" },
  name: { type: "string" },
  port: { type: "string" },
  bind: { type: "string" },
  connect: { type: "string", multiple: true },
  capability: { type: "string", multiple: true },
  "allow-plaintext-ws": { type: "boolean" },
  "require-message-promotion": { type: "boolean" },
  "mesh-routing": { type: "string" },
  "passphrase-file": { type: "string" },
  "keys-passphrase-file": { type: "string" },
} as const;

const OWN_NODE_FLAGS = [
  "name",
  "port",
  "bind",
  "connect",
  "capability",
  "allow-plaintext-ws",
  "require-message-promotion",
  "mesh-routing",
  "passphrase-file",
  "keys-passphrase-file",
] as const;

type Values = ReturnType<typeof parse>["values"];

function parse(argv: string[]) {
  return parseCommandArgs(argv, OPTIONS, "mcp");
}

/** Validate the --own-node flags and start the node with its control socket. */
async function ownNode(values: Values, stateDir: string, log: Logger): Promise<OwnNode> {
  const port = intFlag(values.port, "port", 8765, 0, 65535, "mcp");
  checkName(values.name, "mcp");
  for (const a of values.connect ?? []) checkAddress(a, "mcp");
  checkCapabilities(values.capability, "mcp");
  const mode = meshRoutingMode(values["mesh-routing"], "mcp");
  const out = new Output(false); // warnings go to stderr; stdout is the MCP channel
  const passphrase = await meshPassphrase(values["passphrase-file"], out);
  const keysPass = keysPassphrase(values["keys-passphrase-file"], passphrase);
  const mesh: MeshOptions = {
    mode,
    ...(values.capability ? { capabilities: values.capability } : {}),
  };
  return await startOwnNode({
    stateDir,
    identity: () =>
      openOrCreateIdentity(stateDir, {
        name: values.name,
        keysPass,
        kdf: kdfProgress(out),
        firstRunHint:
          "pass --name NAME with --own-node on the first run (letters, digits, '.', '_', '-')",
        onCreated: (id, path) => log.info("created a new identity", { path, node_id: id.nodeId }),
      }),
    passphrase,
    listen: { hostname: values.bind ?? "0.0.0.0", port },
    dial: { allowPlaintextWs: values["allow-plaintext-ws"] ?? false },
    connect: values.connect ?? [],
    trust: {
      mode: "tofu",
      requireMessagePromotion: values["require-message-promotion"] ?? false,
    },
    mesh,
    log,
  });
}

/** Resolves with the signal's name on SIGINT or SIGTERM; `off()` removes the listeners. */
function onSignals(fire: () => void): () => void {
  const sigs: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const s of sigs) Deno.addSignalListener(s, fire);
  return () => {
    for (const s of sigs) Deno.removeSignalListener(s, fire);
  };
}

async function mcp(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  if (values.help) return console.log(HELP), 0;
  if (positionals.length) throw usageError(`unexpected argument '${positionals[0]}'`, "mcp");
  if (values.json) {
    throw usageError("--json does not apply: 'ironmesh mcp' speaks JSON-RPC on stdout", "mcp");
  }
  if (values["list-tools"]) {
    // The tools are only listed, never run: no backend is needed.
    const tools = meshTools(null as unknown as MeshBackend);
    const w = Math.max(...tools.map((t) => t.name.length));
    for (const t of tools) console.log(`${t.name.padEnd(w)}  ${t.title}`);
    return 0;
  }
  const own = values["own-node"] === true;
  if (own && values.attach) throw usageError("--attach and --own-node exclude each other", "mcp");
  if (!own) {
    const given = OWN_NODE_FLAGS.find((f) => values[f] !== undefined);
    if (given) throw usageError(`--${given} goes with --own-node`, "mcp");
  }
  const ctx = makeContext(values, "mcp");
  const log = new Logger((values["log-level"] ?? "info") as LogLevel).child({ component: "mcp" });

  const stop = new AbortController();
  const offSignals = onSignals(() => stop.abort());
  let node: OwnNode | null = null;
  let backend: MeshBackend | null = null;
  try {
    if (own) node = await ownNode(values, ctx.stateDir, log);
    backend = await MeshBackend.open(ctx.stateDir, own ? "own-node" : "attach", log);
    if (!stop.signal.aborted) {
      const { serveStdio } = await import("../../daemon/mcp/server.ts");
      await serveStdio(backend, log, stop.signal);
    }
  } finally {
    offSignals();
    const timer = setTimeout(() => {
      log.error("shutdown took longer than 5 s; exiting anyway");
      Deno.exit(ExitCode.FAILURE);
    }, 5000);
    await backend?.close();
    await node?.stop();
    clearTimeout(timer);
  }
  log.info("MCP server stopped");
  return ExitCode.OK;
}

/** The `mcp` command. */
export const mcpCommand: Command = {
  name: "mcp",
  summary: "MCP server on stdio: AI agents use the mesh as tools",
  help: HELP,
  run: mcp,
};
