/** `ironmesh status` and `ironmesh peers` — what the running daemon is doing. */
import type { NodeStatus } from "../../daemon/control_api.ts";
import type { PeerStatus } from "../../daemon/node.ts";
import { parseCommandArgs, usageError } from "../args.ts";
import type { Command } from "../command.ts";
import { makeContext } from "../context.ts";
import { withDaemon } from "../daemon_client.ts";
import { color } from "../output.ts";
import { GLOBAL_HELP } from "../subcommand.ts";

const STATUS_HELP = `ironmesh status — the running node: id, uptime, peers, queues

Usage: ironmesh status [--json]

Asks the daemon running on --state-dir (through its control socket).

Examples:
  ironmesh status
  ironmesh status --json | jq .queued

${GLOBAL_HELP}`;

const PEERS_HELP =
  `ironmesh peers — every known peer: online or not, trust state, RTT, traffic, queue

Usage: ironmesh peers [--json]

A peer that cannot be reached is listed with its last error, never dropped.

Examples:
  ironmesh peers
  ironmesh peers --json | jq '.[] | select(.online)'

${GLOBAL_HELP}`;

const ESC = String.fromCharCode(27);
const ANSI = new RegExp(`${ESC}\\[\\d+m`, "g");

/** Length as shown on a terminal (colour codes take no room). */
function visibleLength(s: string): number {
  return s.replace(ANSI, "").length;
}

function ago(ts: number | null): string {
  if (ts === null) return "never";
  const s = Math.max(0, Date.now() / 1000 - ts);
  if (s < 60) return `${Math.round(s)}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

async function status(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {}, "status");
  if (values.help) return console.log(STATUS_HELP), 0;
  if (positionals.length) throw usageError(`unexpected argument '${positionals[0]}'`, "status");
  const ctx = makeContext(values, "status");
  const s = await withDaemon(ctx, (c) => c.call<NodeStatus>("status"));
  if (ctx.json) return ctx.out.result({ ok: true, ...s }), 0;
  ctx.out.table([
    ["node", `${s.name} ${color.dim(s.node_id)}`],
    ["version", `ironmesh ${s.version} (pid ${s.pid}, up ${s.uptime_s}s)`],
    ["listening", s.listen ?? "not listening"],
    ["peers", `${s.peers_online} online of ${s.peers_known} known`],
    ["queued", `${s.queued} message(s) waiting for offline peers`],
    [
      "pending trust",
      s.pending_trust.length
        ? s.pending_trust.map((p) => `${p.node_id.slice(0, 12)}… (${p.count})`).join(", ")
        : "none",
    ],
  ]);
  if (s.trust_read_only) ctx.out.warn(`trust store is read-only: ${s.trust_read_only}`);
  return 0;
}

async function peers(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {}, "peers");
  if (values.help) return console.log(PEERS_HELP), 0;
  if (positionals.length) throw usageError(`unexpected argument '${positionals[0]}'`, "peers");
  const ctx = makeContext(values, "peers");
  const list = await withDaemon(ctx, (c) => c.call<PeerStatus[]>("peers"));
  if (ctx.json) return ctx.out.result(list), 0;
  if (list.length === 0) {
    ctx.out.line("no peers yet — dial one with 'ironmesh run --connect HOST:PORT'");
    return 0;
  }
  const rows = list.map((p) => [
    p.online ? color.green("online") : color.yellow("offline"),
    p.name || "-",
    p.nodeId ? p.nodeId.slice(0, 12) : "-",
    p.address || "-",
    p.transport || "-",
    p.trustState,
    p.rttMs === null ? "-" : `${p.rttMs.toFixed(1)} ms`,
    `${p.framesReceived}/${p.framesSent}`,
    String(p.queued),
    p.online ? "now" : ago(p.lastSeen),
    p.lastError ? p.lastError.slice(0, 60) : "",
  ]);
  const head = [
    "state",
    "name",
    "id",
    "address",
    "via",
    "trust",
    "rtt",
    "in/out",
    "queued",
    "seen",
    "error",
  ];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => visibleLength(r[i]))));
  const fmt = (r: string[]) =>
    r.map((c, i) => c + " ".repeat(w[i] - visibleLength(c))).join("  ")
      .trimEnd();
  ctx.out.line(color.dim(fmt(head)));
  for (const r of rows) ctx.out.line(fmt(r));
  return 0;
}

/** The `status` command. */
export const statusCommand: Command = {
  name: "status",
  summary: "the running node: id, uptime, peers, queues",
  help: STATUS_HELP,
  run: status,
};

/** The `peers` command. */
export const peersCommand: Command = {
  name: "peers",
  summary: "known peers: online state, trust, RTT, traffic, queue",
  help: PEERS_HELP,
  run: peers,
};
