/** `ironmesh send` and `ironmesh inbox` — messages through the running daemon. */
import { toB64 } from "../../lib/crypto/sodium.ts";
import { ExitCode, IronMeshError } from "../../lib/errors.ts";
import { parseSince } from "../../lib/audit/query.ts";
import type { InboxEntry } from "../../daemon/control_api.ts";
import { intFlag, parseCommandArgs, usageError } from "../args.ts";
import type { Command } from "../command.ts";
import { makeContext } from "../context.ts";
import { withDaemon } from "../daemon_client.ts";
import { GLOBAL_HELP } from "../subcommand.ts";

const SEND_HELP = `ironmesh send — send a message to a peer

Usage: ironmesh send <peer> <text | @file | -> [--wait] [--timeout S] [--priority P] [--type T]
       ironmesh send --cap PATTERN [--strategy S] <text | @file | -> [flags]

<peer> is a name, a node id or a unique prefix of either (a node met only through the mesh is
named by its node id). The message is committed to the daemon's queue before this returns (it
survives a crash) and is delivered as soon as the peer is reachable, directly or through
relays (then sealed end to end: relays cannot read it); the message id is printed.

  --cap PATTERN   send to the node(s) offering a capability matching the glob (see 'ironmesh caps')
  --strategy S    with --cap: first (nearest, default) | random | all (one message id per node)
  --wait          wait until the peer acknowledges delivery (exit 11 on timeout; the message stays queued)
  --timeout S     with --wait, give up waiting after S seconds (default 30)
  --priority P    LOW | NORMAL (default) | HIGH | CRITICAL (the queue evicts low priority first)
  --type T        MSG (default), REQ, RESP

Examples:
  ironmesh send lab-2 "hello from lab-1"
  ironmesh send 3fa4 @report.json --wait
  echo '{"prompt":"hi"}' | ironmesh send gpu-box - --type REQ
  ironmesh send --cap 'llm:*' "summarise the logs" --wait
  ironmesh send --cap 'gpu:*' --strategy all @job.json

${GLOBAL_HELP}`;

const INBOX_HELP = `ironmesh inbox — messages this node received

Usage: ironmesh inbox [--from P] [--since T] [--limit N] [--follow] [--json]

  --from P      only from this peer (name, node id or prefix)
  --since T     only newer than T: 5m, 2h, 7d or an ISO date
  --limit N     at most N messages (default 100, max 5000)
  --follow      keep running and print each new message as it arrives (one line each)

Examples:
  ironmesh inbox --since 1h
  ironmesh inbox --follow --json | while read -r m; do echo "$m" | jq .text; done

${GLOBAL_HELP}`;

async function readPayload(arg: string): Promise<{ text?: string; payload_b64?: string }> {
  if (arg === "-") {
    const bytes = new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
    return { payload_b64: toB64(bytes) };
  }
  if (arg.startsWith("@")) {
    try {
      return { payload_b64: toB64(await Deno.readFile(arg.slice(1))) };
    } catch (e) {
      throw new IronMeshError(
        "BAD_FILE",
        `cannot read ${arg.slice(1)}: ${
          e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).message
        }`,
        "check the path after '@'",
        ExitCode.NOT_FOUND,
      );
    }
  }
  return { text: arg };
}

async function send(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    wait: { type: "boolean" },
    timeout: { type: "string" },
    priority: { type: "string" },
    type: { type: "string" },
    cap: { type: "string" },
    strategy: { type: "string" },
  }, "send");
  if (values.help) return console.log(SEND_HELP), 0;
  const cap = values.cap;
  if (cap !== undefined) {
    if (positionals.length !== 1) {
      throw usageError("with --cap, send needs only the message (no peer)", "send");
    }
    if (!cap.trim()) throw usageError("--cap needs a capability pattern, e.g. 'llm:*'", "send");
  } else if (positionals.length !== 2) {
    throw usageError("send needs a peer and a message (text, @file or - for stdin)", "send");
  }
  const strategy = values.strategy ?? "first";
  if (values.strategy !== undefined && cap === undefined) {
    throw usageError("--strategy goes with --cap", "send");
  }
  if (!["first", "random", "all"].includes(strategy)) {
    throw usageError(`--strategy must be first, random or all, got '${strategy}'`, "send");
  }
  const ctx = makeContext(values, "send");
  const timeout = intFlag(values.timeout, "timeout", 30, 1, 3600, "send");
  const priority = (values.priority ?? "NORMAL").toUpperCase();
  if (!["LOW", "NORMAL", "HIGH", "CRITICAL"].includes(priority)) {
    throw usageError(
      `--priority must be LOW, NORMAL, HIGH or CRITICAL, got '${values.priority}'`,
      "send",
    );
  }
  const type = values.type ?? "MSG";
  if (!["MSG", "REQ", "RESP"].includes(type)) {
    throw usageError(`--type must be MSG, REQ or RESP, got '${type}'`, "send");
  }
  const body = await readPayload(positionals[positionals.length - 1]);
  type Sent = { msg_id: string; to: string; status: string };
  const r = await withDaemon(
    ctx,
    (c) =>
      c.call<Sent & { sent?: Sent[] }>("send", {
        ...(cap !== undefined ? { cap, strategy } : { to: positionals[0] }),
        ...body,
        priority,
        type,
        wait: values.wait ?? false,
        timeout_ms: timeout * 1000,
      }, { timeoutMs: (timeout + 10) * 1000 }),
  );
  const all = r.sent ?? [r];
  if (ctx.json) ctx.out.result({ ok: true, ...r });
  else for (const s of all) console.log(s.msg_id);
  if (!ctx.json && values["log-level"] === "debug") {
    for (const s of all) console.error(`${s.status} → ${s.to}`);
  }
  return 0;
}

function line(m: InboxEntry): string {
  const t = new Date(m.timestamp * 1000).toISOString().replace(/\.\d+Z$/, "Z");
  const body = m.text ?? `<${Math.floor(m.payload_b64.length * 3 / 4)} bytes, binary: use --json>`;
  return `${t} ${m.from_name || m.from.slice(0, 12)} ${m.type}: ${body.replaceAll("\n", "\\n")}`;
}

async function inbox(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    from: { type: "string" },
    since: { type: "string" },
    limit: { type: "string" },
    follow: { type: "boolean" },
  }, "inbox");
  if (values.help) return console.log(INBOX_HELP), 0;
  if (positionals.length) throw usageError(`unexpected argument '${positionals[0]}'`, "inbox");
  const ctx = makeContext(values, "inbox");
  const limit = intFlag(values.limit, "limit", 100, 1, 5000, "inbox");
  const since = values.since === undefined
    ? undefined
    : parseSince(values.since, Date.now() / 1000);
  const print = (m: InboxEntry) => console.log(ctx.json ? JSON.stringify(m) : line(m));
  return await withDaemon(ctx, async (c) => {
    if (values.follow) {
      for await (const m of c.stream<InboxEntry>("inbox.follow", { from: values.from })) print(m);
      return 0;
    }
    const list = await c.call<InboxEntry[]>("inbox", { from: values.from, since, limit });
    if (ctx.json) ctx.out.result(list);
    else if (list.length === 0) ctx.out.line("no messages");
    else list.forEach(print);
    return 0;
  });
}

/** The `send` command. */
export const sendCommand: Command = {
  name: "send",
  summary: "send a message to a peer (queued until it is online)",
  help: SEND_HELP,
  run: send,
};

/** The `inbox` command. */
export const inboxCommand: Command = {
  name: "inbox",
  summary: "messages received (--follow streams new ones)",
  help: INBOX_HELP,
  run: inbox,
};
