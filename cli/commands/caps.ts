/** `ironmesh caps` — capabilities offered across the mesh, as the running daemon knows them. */
import type { CapabilityRow } from "../../daemon/mesh.ts";
import { parseCommandArgs, usageError } from "../args.ts";
import type { Command } from "../command.ts";
import { makeContext } from "../context.ts";
import { withDaemon } from "../daemon_client.ts";
import { color } from "../output.ts";
import { GLOBAL_HELP } from "../subcommand.ts";

const HELP = `ironmesh caps — which nodes offer which capabilities

Usage: ironmesh caps [PATTERN] [--json]

Lists this node's own capabilities (--capability on 'ironmesh run') and those other nodes
announced (signed CAPABILITY_ANNOUNCE, relayed through the mesh), with how far each node is.
PATTERN is a case-sensitive glob: * ? [abc] [!abc] (default: everything). Send to the nodes
that match with 'ironmesh send --cap PATTERN'.

Examples:
  ironmesh caps
  ironmesh caps 'llm:*'
  ironmesh caps --json | jq '.capabilities[] | select(.reachable)'

${GLOBAL_HELP}`;

interface CapsResult {
  routing_enabled: boolean;
  local: string[];
  capabilities: CapabilityRow[];
}

async function caps(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {}, "caps");
  if (values.help) return console.log(HELP), 0;
  if (positionals.length > 1) throw usageError(`unexpected argument '${positionals[1]}'`, "caps");
  const pattern = positionals[0] ?? "*";
  if (!pattern.trim()) throw usageError("empty pattern", "caps");
  const ctx = makeContext(values, "caps");
  const r = await withDaemon(ctx, (c) => c.call<CapsResult>("caps", { pattern }));
  if (ctx.json) return ctx.out.result({ ok: true, pattern, ...r }), 0;
  if (r.capabilities.length === 0) {
    ctx.out.line(
      pattern === "*"
        ? "no capabilities known yet — give this node some with 'ironmesh run --capability ns:name'"
        : `no known node offers a capability matching '${pattern}'`,
    );
    return 0;
  }
  const rows = r.capabilities.map((c) => [
    c.capability,
    c.local ? "this node" : c.name || "-",
    c.node_id.slice(0, 12),
    c.local
      ? "local"
      : c.reachable
      ? (c.hops === 1 ? color.green("direct") : color.green(`${c.hops} hops`))
      : color.yellow("unreachable"),
  ]);
  const head = ["capability", "node", "id", "reach"];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((x) => visible(x[i]).length)));
  const fmt = (x: string[]) =>
    x.map((c, i) => c + " ".repeat(w[i] - visible(c).length)).join("  ").trimEnd();
  ctx.out.line(color.dim(fmt(head)));
  for (const x of rows) ctx.out.line(fmt(x));
  if (!r.routing_enabled) ctx.out.line(color.dim("mesh routing is off: direct peers only"));
  return 0;
}

const ESC = String.fromCharCode(27);
const ANSI = new RegExp(`${ESC}\\[\\d+m`, "g");

function visible(s: string): string {
  return s.replace(ANSI, "");
}

/** The `caps` command. */
export const capsCommand: Command = {
  name: "caps",
  summary: "capabilities offered across the mesh (glob filter)",
  help: HELP,
  run: caps,
};
