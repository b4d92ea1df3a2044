/**
 * `ironmesh audit …` — the tamper-evident audit log (audit.log, its archives and signed
 * checkpoint): verify it (for cron), read it, count it, export it signed and check exports.
 * Works on the files directly; a running daemon may keep appending meanwhile.
 */
import { checkpointPathFor, fileExists, MAX_ARCHIVES } from "../../lib/audit/files.ts";
import { buildExport, verifyExport } from "../../lib/audit/export.ts";
import { isKnownEvent } from "../../lib/audit/events.ts";
import {
  computeStats,
  filterEntries,
  follow,
  parseEventFilter,
  parseSince,
  type QueryEntry,
  readEntries,
} from "../../lib/audit/query.ts";
import { verifyLog, type VerifyReason } from "../../lib/audit/verify.ts";
import { auditKey } from "../../lib/crypto/kdf.ts";
import { ExitCode, IronMeshError } from "../../lib/errors.ts";
import { atomicWrite } from "../../lib/fs/atomic_write.ts";
import { fsError } from "../../lib/identity/keystore.ts";
import { decodeStoredKey } from "../../lib/trust/records.ts";
import { intFlag, parseCommandArgs, usageError } from "../args.ts";
import type { Command } from "../command.ts";
import { type Context, makeContext } from "../context.ts";
import {
  columns,
  fmtTime,
  inlineValue,
  isoTime,
  oneLine,
  positionalArgs,
  safeText,
} from "../format.ts";
import { type LoadedIdentity, loadIdentity } from "../identity_loader.ts";
import { color } from "../output.ts";
import { auditLogPath, checkLogFile, openTrustStore } from "../../lib/state_files.ts";
import { GLOBAL_HELP, splitSubcommand } from "../subcommand.ts";

const PASS_HELP = `  --passphrase-file FILE  key-file passphrase (else IRONMESH_KEYS_PASSPHRASE,
                          IRONMESH_PASSPHRASE_FILE, IRONMESH_PASSPHRASE, or a prompt on a
                          terminal; never argv)`;

const SINCE_HELP =
  `  --since WHEN    only entries at or after WHEN: a duration back from now (30s, 5m, 2h,
                  7d, 1w) or an ISO-8601 time (2025-01-14, 2025-01-14T08:00:00Z; no offset
                  means UTC)`;

const HELP = `ironmesh audit — the tamper-evident audit log (audit.log)

Usage:
  ironmesh audit verify [--archives] [--quiet]
  ironmesh audit tail [--since WHEN] [--event A,B] [--limit N] [--follow] [--archives]
  ironmesh audit stats [--since WHEN] [--archives]
  ironmesh audit export --out FILE [--archives] [--force]
  ironmesh audit verify-export FILE

Subcommands:
  verify          check the HMAC chain and the signed checkpoint (catches edits, deletions,
                  reordering and entries cut from the end); for cron: --quiet is silent and
                  exits 0 when intact, prints one line and exits 1 when not
  tail            the latest entries, filtered; --follow keeps printing new ones
  stats           counts per event type and per day (UTC)
  export          write a signed JSON export of the log (Ed25519, this node's identity)
  verify-export   check an export's signature, counts and chain

Every entry is chained with HMAC-SHA256 under a key derived from this node's identity,
byte-compatible with Python IronMesh: 'verify' and 'export' open keys.json for it.
'tail' and 'stats' only read the log and need no passphrase.

Examples:
  ironmesh audit verify
  ironmesh audit tail --since 2h --event TOFU_MISMATCH,PEER_BLOCKED
  ironmesh audit tail --follow
  ironmesh audit stats --since 7d --json
  ironmesh audit export --out /backup/audit-$(date +%F).json

Cron (mails you only when something is wrong):
  */15 * * * *  IRONMESH_PASSPHRASE_FILE=$HOME/.ironmesh-pass ironmesh audit verify --archives --quiet

${GLOBAL_HELP}`;

const SUB_HELP: Record<string, string> = {
  verify: `ironmesh audit verify — check the audit log

Usage: ironmesh audit verify [--archives] [--quiet] [--passphrase-file FILE]

  --archives   also verify audit.log.5 … audit.log.1 and the LOG_ROTATED anchors linking
               them (line numbers then count from the oldest archive)
  --quiet      print nothing when the log is intact (for cron)
${PASS_HELP}

Recomputes every entry's HMAC chain and compares the log with its signed checkpoint
(audit.checkpoint), which catches whole entries cut from the end even when the rest was
re-chained. Exit 0 when intact; exit 1 with one line naming the first bad line when not;
7 when there is no log.

Examples:
  ironmesh audit verify
  ironmesh audit verify --archives --json
  */15 * * * *  IRONMESH_PASSPHRASE_FILE=$HOME/.ironmesh-pass ironmesh audit verify --archives --quiet

${GLOBAL_HELP}`,
  tail: `ironmesh audit tail — the latest audit entries

Usage: ironmesh audit tail [--since WHEN] [--event A,B] [--limit N] [--follow] [--archives]

${SINCE_HELP}
  --event A,B     only these event types (comma list, any case)
  --limit N       at most N entries, the most recent (default 20; 0 = all)
  --follow        keep printing new entries as they are written (Ctrl-C stops);
                  with --json: one JSON object per line
  --archives      also read audit.log.5 … audit.log.1

Reads without checking the chain (that is 'audit verify'); needs no passphrase.

Examples:
  ironmesh audit tail
  ironmesh audit tail --since 30m --event TOFU_MISMATCH,AUTH_FAILURE --limit 0
  ironmesh audit tail --follow --json | jq .event

${GLOBAL_HELP}`,
  stats: `ironmesh audit stats — counts per event type and per day

Usage: ironmesh audit stats [--since WHEN] [--archives]

${SINCE_HELP}
  --archives      also count audit.log.5 … audit.log.1

Examples:
  ironmesh audit stats
  ironmesh audit stats --since 7d --archives --json

${GLOBAL_HELP}`,
  export: `ironmesh audit export — write a signed export of the log

Usage: ironmesh audit export --out FILE [--archives] [--force] [--passphrase-file FILE]

  --out FILE   where to write it (refuses to replace an existing file); mode 0600
  --archives   export the archives too, oldest first
  --force      export even when the chain does not verify
${PASS_HELP}

The export is Python IronMesh's format ({entries, final_hmac, entry_count, exported_at,
signer, signature}) plus signer_pubkey inside the signed body, so anyone can check it with
'ironmesh audit verify-export'.

Examples:
  ironmesh audit export --out audit-export.json
  ironmesh audit export --out /backup/audit-$(date +%F).json --archives --json

${GLOBAL_HELP}`,
  "verify-export": `ironmesh audit verify-export — check a signed export

Usage: ironmesh audit verify-export FILE [--passphrase-file FILE]

Checks the Ed25519 signature, that the signer is the node id of the signing key, the entry
count and final hmac. When this node's identity can be opened (keys.json and a passphrase
source), an export signed by this node is checked against its own key and audit key (chain
included), and one signed by a pinned peer against that peer's pinned key. Exit 0 valid,
1 signer unknown, 10 invalid, 13 not an export, 7 no such file.

Examples:
  ironmesh audit verify-export audit-export.json
  ironmesh audit verify-export /backup/audit-2025-01-14.json --json

${GLOBAL_HELP}`,
};

const PASS_OPT = { "passphrase-file": { type: "string" } } as const;

function noLog(path: string): IronMeshError {
  return new IronMeshError(
    "AUDIT_NOT_FOUND",
    `no audit log at ${path}`,
    "nothing has been logged in this state directory yet, or --state-dir / IRONMESH_HOME points elsewhere",
    ExitCode.NOT_FOUND,
  );
}

/** Check the live log and (with `archives`) each archive: readable regular files or absent. */
function checkLogFiles(path: string, archives: boolean): { live: boolean; any: boolean } {
  const live = checkLogFile(path) === "ok";
  let any = live;
  if (archives) {
    for (let i = 1; i <= MAX_ARCHIVES; i++) {
      if (checkLogFile(`${path}.${i}`) === "ok") any = true;
    }
  }
  return { live, any };
}

const REASON_HINT: Record<VerifyReason, string> = {
  "hmac-mismatch":
    "an entry was edited, deleted, inserted or reordered there: keep a copy of the log as evidence and compare it with a backup or export",
  malformed:
    "that line is not an audit entry: keep a copy of the log as evidence and compare it with a backup or export",
  "torn-tail":
    "a write was interrupted (crash, full disk) and the next entry will recover it; if nothing crashed, treat it as tampering",
  truncated:
    "entries were cut from the end of the log (perhaps re-chained): keep a copy as evidence and compare it with a backup or export",
  "bad-anchor": "an archive is missing, replaced or out of order: check audit.log.1 … audit.log.5",
  "checkpoint-invalid":
    "audit.checkpoint was edited, replaced or written by another identity: keep a copy as evidence",
};

async function verify(argv: string[]): Promise<number> {
  const cmd = "audit verify";
  const { values, positionals } = parseCommandArgs(argv, {
    ...PASS_OPT,
    archives: { type: "boolean" },
    quiet: { type: "boolean" },
  }, cmd);
  if (values.help) return console.log(SUB_HELP.verify), 0;
  positionalArgs(positionals, [], cmd);
  const ctx = makeContext(values, cmd);
  const archives = values.archives === true;
  const quiet = values.quiet === true;
  const path = auditLogPath(ctx.stateDir);
  const files = checkLogFiles(path, archives);
  if (!files.any && !fileExists(checkpointPathFor(path))) throw noLog(path);
  const { id } = await loadIdentity(ctx, { passphraseFile: values["passphrase-file"] });
  let res;
  try {
    res = verifyLog(path, auditKey(id.seed), { archives, checkpointPublicKey: id.publicKey });
  } finally {
    id.wipe();
  }
  const cp = res.checkpoint;
  const result = {
    ok: res.ok,
    path,
    archives,
    entries: res.entries,
    first_bad_line: res.firstBadLine,
    reason: res.reason,
    message: res.message,
    head_hmac: res.headHmac,
    files: res.files.map((f) => ({ path: f.path, first_line: f.firstLine, lines: f.lines })),
    torn_lines: res.tornLines,
    checkpoint: {
      status: cp.status,
      path: cp.path,
      signed: cp.signed,
      entry_count: cp.entryCount ?? null,
      head_hmac: cp.headHmac ?? null,
      time: cp.time ?? null,
      problems: cp.problems,
    },
  };
  if (!res.ok) {
    ctx.out.result(result);
    const reason = res.reason ?? "hmac-mismatch";
    console.error(
      `error: audit log ${path} does not verify, first bad line ${res.firstBadLine}: ${
        oneLine(res.message)
      } — ${REASON_HINT[reason]}`,
    );
    return ExitCode.FAILURE;
  }
  if (quiet) return 0;
  ctx.out.result(result);
  const span = res.files.length > 1 ? ` across ${res.files.length} files` : "";
  ctx.out.line(`${color.green("✓")} ${path}: ${res.entries} entries verified${span}`);
  const cpText = cp.status === "ok"
    ? `ok, signed by this node, ${cp.entryCount} entries, written ${fmtTime(cp.time)}`
    : cp.status === "missing"
    ? "none yet (entries cut from the end cannot be detected until ironmesh writes to this log)"
    : cp.status === "needs-archives"
    ? "the log rotated since it was written: run with --archives to check it"
    : cp.status === "stale"
    ? "older than every kept archive (not checked)"
    : cp.status;
  ctx.out.line(`  checkpoint: ${cpText}`);
  if (res.tornLines.length) {
    ctx.out.line(
      `  ${res.tornLines.length} torn line(s) from interrupted writes, recovered: ${
        res.tornLines.join(", ")
      }`,
    );
  }
  return 0;
}

function entryJson(e: QueryEntry) {
  return {
    line: e.line,
    timestamp: e.timestamp,
    time: isoTime(e.timestamp),
    event: e.event,
    details: e.details,
    hmac: e.hmac,
  };
}

function entryText(e: QueryEntry): string {
  const details = Object.entries(e.details).map(([k, v]) => `${safeText(k)}=${inlineValue(v)}`);
  return `${fmtTime(e.timestamp)}  ${color.bold(safeText(e.event))}${
    details.length ? "  " + details.join(" ") : ""
  }`;
}

/** Line numbers that did not parse as entries (gaps in the numbering before the last entry). */
function skippedLines(entries: QueryEntry[]): number[] {
  const out: number[] = [];
  let next = 1;
  for (const e of entries) {
    for (let l = next; l < e.line && out.length < 1000; l++) out.push(l);
    next = e.line + 1;
  }
  return out;
}

function sinceFlag(value: string | undefined): number | undefined {
  return value === undefined ? undefined : parseSince(value, Date.now() / 1000);
}

function eventFlag(ctx: Context, value: string | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const set = parseEventFilter(value);
  if (set.size === 0) throw usageError("--event needs at least one event name", "audit tail");
  const unknown = [...set].filter((e) => !isKnownEvent(e));
  if (unknown.length) {
    ctx.out.warn(`not an event type ironmesh writes: ${unknown.map(safeText).join(", ")}`);
  }
  return set;
}

async function tail(argv: string[]): Promise<number> {
  const cmd = "audit tail";
  const { values, positionals } = parseCommandArgs(argv, {
    since: { type: "string" },
    event: { type: "string" },
    limit: { type: "string" },
    follow: { type: "boolean" },
    archives: { type: "boolean" },
  }, cmd);
  if (values.help) return console.log(SUB_HELP.tail), 0;
  positionalArgs(positionals, [], cmd);
  const ctx = makeContext(values, cmd);
  const since = sinceFlag(values.since);
  const limit = intFlag(values.limit, "limit", 20, 0, 100_000_000, cmd);
  const events = eventFlag(ctx, values.event);
  const archives = values.archives === true;
  const path = auditLogPath(ctx.stateDir);
  const following = values.follow === true;
  const files = checkLogFiles(path, archives);
  if (!files.any && !following) throw noLog(path);
  const all = files.any ? readEntries(path, { archives }) : [];
  const picked = filterEntries(all, {
    ...(since !== undefined ? { since } : {}),
    ...(events ? { events: [...events] } : {}),
    limit,
  });
  const skipped = skippedLines(all);
  if (skipped.length) {
    ctx.out.warn(
      `skipped ${skipped.length} line(s) that are not audit entries (${
        skipped.slice(0, 5).join(", ")
      }${skipped.length > 5 ? ", …" : ""}): run 'ironmesh audit verify'`,
    );
  }
  if (!following) {
    ctx.out.result({
      ok: true,
      path,
      count: picked.length,
      skipped_lines: skipped,
      entries: picked.map(entryJson),
    });
    if (!picked.length) ctx.out.line(color.dim("no matching entries"));
    for (const e of picked) ctx.out.line(entryText(e));
    return 0;
  }
  const print = (e: QueryEntry) =>
    ctx.json ? console.log(JSON.stringify(entryJson(e))) : console.log(entryText(e));
  for (const e of picked) print(e);
  // Follow from the start of the live file and skip what was already read, so an entry
  // appended between the read above and the follow is not lost.
  let skip = all.filter((e) => e.file === path).length;
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  if (!ctx.json) {
    console.error(color.dim(`following ${path} (Ctrl-C to stop)`));
  }
  try {
    for await (const e of follow(path, { fromStart: true, signal: stop.signal })) {
      if (skip > 0) {
        skip--;
        continue;
      }
      if (since !== undefined && !(e.timestamp >= since)) continue;
      if (events && !events.has(e.event.toUpperCase())) continue;
      print(e);
    }
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
  }
  return 0;
}

function stats(argv: string[]): Promise<number> {
  return Promise.resolve().then(() => statsNow(argv));
}

function statsNow(argv: string[]): number {
  const cmd = "audit stats";
  const { values, positionals } = parseCommandArgs(argv, {
    since: { type: "string" },
    archives: { type: "boolean" },
  }, cmd);
  if (values.help) return console.log(SUB_HELP.stats), 0;
  positionalArgs(positionals, [], cmd);
  const ctx = makeContext(values, cmd);
  const since = sinceFlag(values.since);
  const archives = values.archives === true;
  const path = auditLogPath(ctx.stateDir);
  if (!checkLogFiles(path, archives).any) throw noLog(path);
  const all = readEntries(path, { archives });
  const s = computeStats(
    filterEntries(all, { ...(since !== undefined ? { since } : {}), limit: 0 }),
  );
  const skipped = skippedLines(all);
  if (skipped.length) {
    ctx.out.warn(
      `skipped ${skipped.length} line(s) that are not audit entries: run 'ironmesh audit verify'`,
    );
  }
  ctx.out.result({
    ok: true,
    path,
    since: since ?? null,
    total: s.total,
    first: s.first,
    last: s.last,
    by_event: s.byEvent,
    by_day: s.byDay,
    skipped_lines: skipped.length,
  });
  if (s.total === 0) {
    ctx.out.line(color.dim("no matching entries"));
    return 0;
  }
  ctx.out.line(
    color.bold(`${s.total} entries`) + `, ${fmtTime(s.first)} … ${fmtTime(s.last)}` +
      (since !== undefined ? color.dim(` (since ${fmtTime(since)})`) : ""),
  );
  ctx.out.line();
  const byEvent = Object.entries(s.byEvent).sort(([a, x], [b, y]) =>
    y - x || (a < b ? -1 : a > b ? 1 : 0)
  );
  for (const l of columns(["EVENT", "COUNT"], byEvent.map(([e, n]) => [safeText(e), String(n)]))) {
    ctx.out.line(l);
  }
  ctx.out.line();
  for (
    const l of columns(
      ["DAY (UTC)", "COUNT"],
      Object.entries(s.byDay).map(([d, n]) => [d, String(n)]),
    )
  ) {
    ctx.out.line(l);
  }
  return 0;
}

async function exportLog(argv: string[]): Promise<number> {
  const cmd = "audit export";
  const { values, positionals } = parseCommandArgs(argv, {
    ...PASS_OPT,
    out: { type: "string" },
    archives: { type: "boolean" },
    force: { type: "boolean" },
  }, cmd);
  if (values.help) return console.log(SUB_HELP.export), 0;
  positionalArgs(positionals, [], cmd);
  const ctx = makeContext(values, cmd);
  const out = values.out;
  if (!out) throw usageError("missing --out FILE", cmd);
  const archives = values.archives === true;
  const path = auditLogPath(ctx.stateDir);
  let exists = true;
  try {
    await Deno.lstat(out);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw fsError(e, out, "export file");
    exists = false;
  }
  if (exists) {
    throw new IronMeshError(
      "EXPORT_EXISTS",
      `${out} already exists`,
      "choose another --out file, or move the old export away first",
      ExitCode.EXISTS,
    );
  }
  if (!checkLogFiles(path, archives).any) throw noLog(path);
  const { id } = await loadIdentity(ctx, { passphraseFile: values["passphrase-file"] });
  let built: { text: string; count: number };
  try {
    built = buildExport(path, {
      signer: id,
      key: auditKey(id.seed),
      archives,
      force: values.force === true,
    });
  } finally {
    id.wipe();
  }
  try {
    await atomicWrite(out, built.text, { mode: 0o600 });
  } catch (e) {
    throw fsError(e, out, "export file");
  }
  const body = JSON.parse(built.text);
  ctx.out.result({
    ok: true,
    out,
    entries: built.count,
    final_hmac: body.final_hmac,
    signer: body.signer,
    exported_at: body.exported_at,
  });
  ctx.out.line(
    `${color.green("✓")} exported ${built.count} entries to ${out} (signed by ${body.signer})`,
  );
  ctx.out.line(color.dim(`  check it with: ironmesh audit verify-export ${out}`));
  return 0;
}

async function verifyExportCmd(argv: string[]): Promise<number> {
  const cmd = "audit verify-export";
  const { values, positionals } = parseCommandArgs(argv, PASS_OPT, cmd);
  if (values.help) return console.log(SUB_HELP["verify-export"]), 0;
  const [file] = positionalArgs(positionals, ["file"], cmd);
  const ctx = makeContext(values, cmd);
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw fsError(e, file, "export file");
  }
  let loaded: LoadedIdentity | null = null;
  try {
    loaded = await loadIdentity(ctx, {
      passphraseFile: values["passphrase-file"],
      optional: true,
    });
  } catch (e) {
    if (!(e instanceof IronMeshError) || e.code !== "KEYS_NOT_FOUND") throw e;
  }
  let res;
  let keySource = "the key included in the export";
  try {
    const signer = peekSigner(text);
    let expectedPublicKey: Uint8Array | undefined;
    let key: Uint8Array | undefined;
    if (loaded && signer === loaded.id.nodeId) {
      expectedPublicKey = loaded.id.publicKey;
      key = auditKey(loaded.id.seed);
      keySource = "this node's own key";
    } else if (loaded && signer) {
      const store = await openTrustStore(ctx.stateDir, loaded.id);
      const pinned = store.readOnly ? undefined : store.getPeer(signer);
      const k = pinned ? decodeStoredKey(pinned.pubkey) : null;
      if (k && k.length === 32) {
        expectedPublicKey = k;
        keySource = "the signer's pinned key";
      }
    }
    res = verifyExport(text, {
      ...(expectedPublicKey ? { expectedPublicKey } : {}),
      ...(key ? { key } : {}),
    });
  } finally {
    loaded?.id.wipe();
  }
  const result = {
    ok: res.valid,
    file,
    valid: res.valid,
    status: res.status,
    message: res.message,
    signer: res.signer ?? null,
    entry_count: res.entryCount ?? null,
    final_hmac: res.finalHmac ?? null,
    exported_at: res.exportedAt ?? null,
    key_source: res.keySource ?? null,
    chain: res.chain,
  };
  ctx.out.result(result);
  if (res.valid) {
    ctx.out.line(
      `${color.green("✓")} ${file}: valid — ${res.entryCount} entries signed by ${res.signer}, ` +
        `checked with ${keySource}; chain ${res.chain}`,
    );
    return 0;
  }
  const code = res.status === "malformed"
    ? ExitCode.BAD_INPUT
    : res.status === "unknown-signer"
    ? ExitCode.FAILURE
    : ExitCode.TAMPERED;
  const hint = res.status === "unknown-signer"
    ? "pin the signer first ('ironmesh trust pin <node-id> <key>') so its key is known"
    : res.status === "malformed"
    ? "this is not an ironmesh audit export"
    : "do not trust this export: it was changed after signing or signed by another key";
  console.error(
    `error: export ${file} is not valid (${res.status}): ${oneLine(res.message)} — ${hint}`,
  );
  return code;
}

/** The `signer` field of an export, if it is readable (the verdict comes from verifyExport). */
function peekSigner(text: string): string | null {
  try {
    const v = JSON.parse(text);
    return v && typeof v === "object" && typeof v.signer === "string" ? v.signer : null;
  } catch {
    return null;
  }
}

const SUBS: Record<string, (argv: string[]) => Promise<number>> = {
  verify,
  tail,
  stats,
  export: exportLog,
  "verify-export": verifyExportCmd,
};

export const auditCommand: Command = {
  name: "audit",
  summary: "verify, read, count and export the tamper-evident audit log",
  help: HELP,
  run(argv) {
    const { sub, rest } = splitSubcommand(argv, [
      "--passphrase-file",
      "--since",
      "--event",
      "--limit",
      "--out",
    ]);
    if (!sub) {
      if (rest.includes("--help") || rest.includes("-h")) {
        return Promise.resolve((console.log(HELP), 0));
      }
      throw usageError(`missing subcommand: ${Object.keys(SUBS).join(", ")}`, "audit");
    }
    const fn = SUBS[sub];
    if (!fn) throw usageError(`unknown subcommand 'audit ${sub}'`, "audit");
    return fn(rest);
  },
};
