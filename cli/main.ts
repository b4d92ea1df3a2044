/**
 * ironmesh — one program: the CLI and the daemon. Dispatches to cli/commands/*.
 * Errors print one line `error: <what> — <what to do>` and exit with a stable code.
 */
import { ExitCode, IronMeshError } from "../lib/errors.ts";
import { PROTOCOL_VERSION, VERSION } from "../lib/version.ts";
import { usageError } from "./args.ts";
import type { Command } from "./command.ts";
import { keysCommand } from "./commands/keys.ts";
import { demoCommand } from "./commands/demo.ts";
import { runCommand } from "./commands/run.ts";
import { peersCommand, statusCommand } from "./commands/status.ts";
import { inboxCommand, sendCommand } from "./commands/send.ts";
import { capsCommand } from "./commands/caps.ts";
import { trustCommand } from "./commands/trust.ts";
import { auditCommand } from "./commands/audit.ts";
import { backupCommand, restoreCommand } from "./commands/backup.ts";
import { doctorCommand } from "./commands/doctor.ts";
import { mcpCommand } from "./commands/mcp.ts";
import { Output } from "./output.ts";
import { inWorker, serveArgon2 } from "../lib/crypto/argon2_isolated.ts";
import { GLOBAL_HELP, splitSubcommand } from "./subcommand.ts";

const COMMANDS: Command[] = [
  runCommand,
  statusCommand,
  peersCommand,
  sendCommand,
  inboxCommand,
  capsCommand,
  demoCommand,
  keysCommand,
  trustCommand,
  auditCommand,
  doctorCommand,
  backupCommand,
  restoreCommand,
  mcpCommand,
];

function mainHelp(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length));
  return `ironmesh ${VERSION} — a local-first, end-to-end encrypted mesh for AI agents (${PROTOCOL_VERSION})

Usage: ironmesh <command> [flags]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`).join("\n")}

Run 'ironmesh <command> --help' for a command's flags and examples.

Examples:
  ironmesh demo                      10-second smoke test on 127.0.0.1
  ironmesh keys generate --name lab-1
  ironmesh keys info --json
  ironmesh trust list                pinned peers, states, name conflicts
  ironmesh trust set-state bob blocked
  ironmesh audit verify --quiet      silent unless the audit log was tampered with
  ironmesh audit tail --since 2h --follow
  ironmesh doctor                    checklist of what this node needs, a fix for every ✗
  ironmesh backup --out node.imb     encrypted backup (restore: ironmesh restore --in node.imb)

${GLOBAL_HELP}
  -V, --version       print the version`;
}

/** Run the CLI; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const json = argv.includes("--json");
  try {
    const { sub, rest } = splitSubcommand(argv);
    if (!sub) {
      if (rest.includes("--version") || rest.includes("-V")) {
        if (json) console.log(JSON.stringify({ version: VERSION, protocol: PROTOCOL_VERSION }));
        else console.log(`ironmesh ${VERSION} (${PROTOCOL_VERSION}, deno ${Deno.version.deno})`);
        return 0;
      }
      if (rest.length === 0 || rest.includes("--help") || rest.includes("-h")) {
        console.log(mainHelp());
        return rest.length === 0 ? ExitCode.USAGE : 0;
      }
      throw usageError(`unknown option '${rest.find((a) => a.startsWith("-")) ?? rest[0]}'`, "");
    }
    const cmd = COMMANDS.find((c) => c.name === sub);
    if (!cmd) throw usageError(`unknown command '${sub}'`, "");
    if (rest.length === 1 && (rest[0] === "--help" || rest[0] === "-h")) {
      console.log(cmd.help);
      return 0;
    }
    return await cmd.run(rest);
  } catch (e) {
    const err = e instanceof IronMeshError ? e : new IronMeshError(
      "INTERNAL",
      `unexpected failure: ${(e as Error)?.message ?? e}`,
      "please report this with the command you ran",
      ExitCode.FAILURE,
    );
    new Output(json).error(err);
    return err.exitCode;
  }
}

if (inWorker()) {
  serveArgon2(); // started by withIsolatedArgon2 (see lib/crypto/argon2_isolated.ts)
} else if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
