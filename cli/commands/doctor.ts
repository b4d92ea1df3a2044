/**
 * `ironmesh doctor [--peer HOST:PORT] [--json]`: a checklist of what makes a node work, each
 * ✗ with a concrete fix. Read-only: it creates, locks and pins nothing (the trust store is
 * decoded without its lock, the audit log is only read, the port is probed by a listen that
 * is closed at once, mDNS is judged from interfaces and routes without sending anything).
 * The judging lives in lib/doctor/*.ts; this file gathers the facts.
 */
import { join } from "node:path";
import type { NodeStatus } from "../../daemon/control_api.ts";
import { ControlClient } from "../../daemon/control_client.ts";
import { checkpointPathFor, fileExists, logFilesOldestFirst } from "../../lib/audit/files.ts";
import { readEntries } from "../../lib/audit/query.ts";
import { verifyLog } from "../../lib/audit/verify.ts";
import { auditKey } from "../../lib/crypto/kdf.ts";
import { fromUtf8 } from "../../lib/crypto/sodium.ts";
import { checkClock } from "../../lib/doctor/clock.ts";
import {
  checkMdns,
  checkPort,
  type NetIface,
  parseIfaceFlags,
  parseProcNetRoute,
  type PortProbe,
  type RouteEntry,
} from "../../lib/doctor/network.ts";
import { checkStateDir, checkStateFiles, type StatInfo, statInfo } from "../../lib/doctor/perms.ts";
import { type CheckResult, fail, mark, pass, skip, summarize } from "../../lib/doctor/report.ts";
import { checkAudit, checkTrust } from "../../lib/doctor/state.ts";
import { ExitCode, IronMeshError } from "../../lib/errors.ts";
import type { Identity } from "../../lib/identity/identity.ts";
import { openKeyFile } from "../../lib/identity/keyfile.ts";
import { keysPath, readKeyFileAt } from "../../lib/identity/keystore.ts";
import { auditLogPath, stateLockHolder, trustStorePath } from "../../lib/state_files.ts";
import {
  decodeEnvelope,
  type DecodeResult,
  legacyMacKeyFor,
  trustKeys,
} from "../../lib/trust/envelope.ts";
import { decodeStoredKey } from "../../lib/trust/records.ts";
import { TrustData } from "../../lib/trust/state.ts";
import { intFlag, parseCommandArgs, usageError } from "../args.ts";
import type { Command } from "../command.ts";
import { type Context, makeContext } from "../context.ts";
import { positionalArgs } from "../format.ts";
import { kdfProgress } from "../identity_loader.ts";
import { color } from "../output.ts";
import { getPassphrase } from "../passphrase.ts";
import { GLOBAL_HELP } from "../subcommand.ts";
import { type PinnedPeer, probePeer } from "../doctor/peer.ts";

const HELP = `ironmesh doctor — check that this node can work, and say how to fix what cannot

Usage: ironmesh doctor [--peer HOST:PORT] [--port N] [--bind ADDR] [--no-mdns] [--json]

Checks, each ✓ (ok), ✗ (with a fix) or ○ (skipped, with what it needs):
  state directory    exists, mode 0700, owned by you
  file permissions   every file in it 0600 or stricter and yours
  keys.json          parses and opens with the key-file passphrase
  trust store MAC    known_peers.json verifies under this identity (else it is read-only)
  audit chain        audit.log and its archives verify from genesis
  audit checkpoint   the signed checkpoint matches (catches entries cut from the end)
  daemon             running (pid, control socket answering) or not running; a stuck lock
  listen port        --bind:--port is free, or held by this node's own daemon
  mDNS possible      an IPv4 interface that is up and multicast-capable and a route for
                     224.0.0.251 (judged from the system; nothing is sent)
  clock              plausible, and not behind the audit log's newest entry
  peer               with --peer: a full handshake (connect, auth, hello, session), timed

Exit 0 when nothing failed (skipped checks do not fail the run, and are counted), else 1.
Read-only: nothing is created, locked or pinned. --peer uses a throwaway in-memory TOFU
(the real trust store is only read, to compare the peer's key with its pin); the peer sees
this node's identity, as it would from the daemon.

  --peer HOST:PORT         also handshake with this peer (ws://… or wss://… to force the
                           scheme; a bare HOST:PORT tries wss:// then ws://)
  --pinned-ca FILE         CA / self-signed certificate to trust for wss:// (with --peer)
  --timeout S              per-stage timeout for --peer in seconds (default 10)
  --port N                 listen port to check (default 8765, as 'ironmesh run')
  --bind ADDR              listen address to check (default 0.0.0.0, as 'ironmesh run')
  --no-mdns                skip the mDNS check (for nodes run with --no-mdns)
  --passphrase-file FILE   the mesh passphrase (else IRONMESH_PASSPHRASE_FILE,
                           IRONMESH_PASSPHRASE, or a prompt on a terminal)
  --keys-passphrase-file FILE  the key-file passphrase (else IRONMESH_KEYS_PASSPHRASE, else
                           the mesh passphrase), exactly as 'ironmesh run'
Without any passphrase source (and no terminal) the keys, trust, audit and peer checks are
skipped, not failed; the output says how to provide one.

Examples:
  ironmesh doctor
  ironmesh doctor --passphrase-file ~/.ironmesh-pass --json
  ironmesh doctor --peer 192.168.1.20:8765 --passphrase-file ~/.ironmesh-pass
  ironmesh doctor --port 8775 --bind 127.0.0.1 --no-mdns

${GLOBAL_HELP}`;

const OPTIONS = {
  peer: { type: "string" },
  "pinned-ca": { type: "string" },
  timeout: { type: "string" },
  port: { type: "string" },
  bind: { type: "string" },
  "no-mdns": { type: "boolean" },
  "passphrase-file": { type: "string" },
  "keys-passphrase-file": { type: "string" },
} as const;

const PASS_HOWTO =
  "pass --passphrase-file FILE (or --keys-passphrase-file FILE), set IRONMESH_PASSPHRASE_FILE or " +
  "IRONMESH_KEYS_PASSPHRASE, or run on a terminal to be asked";

/** This process's uid (needs --allow-sys=uid, which the 'ironmesh' task grants); null if unknown. */
function currentUid(): number | null {
  try {
    return Deno.uid();
  } catch {
    return null;
  }
}

async function lstatOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch {
    return null;
  }
}

/** Passphrase sources as 'ironmesh run': mesh from --passphrase-file…; key file from --keys-passphrase-file, IRONMESH_KEYS_PASSPHRASE, else mesh. */
class Secrets {
  #mesh: Promise<string | null> | null = null;
  constructor(
    private readonly ctx: Context,
    private readonly meshFile: string | undefined,
    private readonly keysFile: string | undefined,
    private readonly purpose: string,
  ) {}

  mesh(): Promise<string | null> {
    this.#mesh ??= getPassphrase({
      file: this.meshFile,
      purpose: this.purpose,
      out: this.ctx.out,
      optional: true,
    });
    return this.#mesh;
  }

  async keys(): Promise<string | null> {
    if (this.keysFile) {
      try {
        return Deno.readTextFileSync(this.keysFile).replace(/^\n+|\n+$/g, "").replace(
          /^\r+|\r+$/g,
          "",
        );
      } catch (e) {
        throw new IronMeshError(
          "PASSPHRASE_FILE",
          `--keys-passphrase-file ${this.keysFile}: ${
            e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).message
          }`,
          "check the path and its permissions",
          ExitCode.BAD_PASSPHRASE,
        );
      }
    }
    const env = Deno.env.get("IRONMESH_KEYS_PASSPHRASE");
    if (env) return env;
    return await this.mesh();
  }
}

async function checkKeys(
  ctx: Context,
  secrets: Secrets,
): Promise<{ result: CheckResult; id: Identity | null }> {
  const id = "keys", title = "keys.json";
  const path = keysPath(ctx.stateDir);
  let kf;
  try {
    kf = await readKeyFileAt(path);
  } catch (e) {
    const err = e instanceof IronMeshError ? e : new IronMeshError("IO", String(e));
    const fix = err.code === "KEYS_NOT_FOUND"
      ? "create an identity: 'ironmesh keys generate --name NAME', or restore one: 'ironmesh restore --in FILE'"
      : err.hint || "restore keys.json from a backup ('ironmesh restore --in FILE')";
    return { result: fail(id, title, err.message, fix), id: null };
  }
  const s = kf.summary;
  const what = `node ${s.nodeId}${s.name ? ` (${s.name})` : ""}, ${s.format}`;
  let pass_: string | null = null;
  if (s.encrypted) {
    try {
      pass_ = await secrets.keys();
    } catch (e) {
      const err = e as IronMeshError;
      return {
        result: fail(id, title, `parses (${what}); ${err.message}`, err.hint ?? PASS_HOWTO),
        id: null,
      };
    }
    if (pass_ === null) {
      return {
        result: skip(
          id,
          title,
          `parses (${what}); not opened: no key-file passphrase source`,
          `to check it: ${PASS_HOWTO}`,
        ),
        id: null,
      };
    }
  }
  let identity: Identity;
  try {
    identity = openKeyFile(kf, pass_, path, kdfProgress(ctx.out));
  } catch (e) {
    const err = e instanceof IronMeshError ? e : new IronMeshError("IO", String(e));
    return { result: fail(id, title, err.message, err.hint || PASS_HOWTO), id: null };
  }
  const notes: string[] = [];
  if (!s.encrypted) {
    notes.push("PLAINTEXT: the secret key is not encrypted on disk; keep the directory 0700");
  }
  if (s.version < 3) notes.push(`legacy v${s.version}: 'ironmesh run' migrates it (same node id)`);
  return {
    result: pass(
      id,
      title,
      `opens: ${what}${s.encrypted ? ", encrypted" : ""}${
        notes.length ? `; ${notes.join("; ")}` : ""
      }`,
    ),
    id: identity,
  };
}

async function readTrust(ctx: Context, identity: Identity): Promise<DecodeResult | null> {
  const path = trustStorePath(ctx.stateDir);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    return { ok: false, failure: "json", reason: `cannot read it: ${(e as Error).message}` };
  }
  let text: string;
  try {
    text = fromUtf8(bytes);
  } catch {
    return { ok: false, failure: "json", reason: "not valid UTF-8" };
  }
  const home = Deno.env.get("HOME");
  return decodeEnvelope(
    text,
    trustKeys(identity.seed),
    home ? { legacyMacKey: legacyMacKeyFor(home) } : {},
  );
}

interface DaemonFacts {
  result: CheckResult;
  status: { pid?: number; listen?: string | null } | null;
}

async function checkDaemon(ctx: Context): Promise<DaemonFacts> {
  const id = "daemon", title = "daemon";
  const holder = stateLockHolder(ctx.stateDir);
  let status: Record<string, unknown> | null = null;
  let why = "";
  try {
    const client = await ControlClient.connect(ctx.stateDir, { timeoutMs: 2_000 });
    try {
      status = await client.call<Record<string, unknown>>("status", {}, { timeoutMs: 5_000 });
    } finally {
      client.close();
    }
  } catch (e) {
    why = e instanceof IronMeshError ? e.message : String(e);
    if (e instanceof IronMeshError && e.code === "DAEMON_NOT_RUNNING") why = "";
  }
  if (status) {
    const s = status as Partial<NodeStatus>; // any version of the daemon may answer
    return {
      result: pass(
        id,
        title,
        `running: pid ${s.pid ?? "?"}, node ${s.node_id ?? "?"}, listening on ${
          s.listen ?? "?"
        }, ` +
          `${s.peers_online ?? 0} peer(s) online, up ${s.uptime_s ?? 0} s; control socket answers`,
      ),
      status: s,
    };
  }
  if (!holder) {
    return {
      result: pass(id, title, `not running${why ? ` (${why})` : ""}; start it with 'ironmesh run'`),
      status: null,
    };
  }
  const pid = holder.pid ? `pid ${holder.pid}` : "a process";
  const isRun = holder.purpose.includes("run");
  return {
    result: fail(
      id,
      title,
      `${pid}${
        holder.purpose ? ` (${holder.purpose})` : ""
      } holds ${ctx.stateDir}/ironmesh.lock but the control socket does not answer${
        why ? ` (${why})` : ""
      }`,
      isRun
        ? `the daemon is stuck or still starting: wait a few seconds and run doctor again; if it persists, stop it${
          holder.pid ? ` ('kill ${holder.pid}')` : ""
        } and start 'ironmesh run' again`
        : `'${holder.purpose || "another ironmesh command"}' is still running: let it finish${
          holder.pid ? ` (or 'kill ${holder.pid}')` : ""
        }`,
    ),
    status: null,
  };
}

function probePort(bind: string, port: number): PortProbe {
  try {
    const l = Deno.listen({ hostname: bind, port, transport: "tcp" });
    l.close();
    return { kind: "free" };
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) return { kind: "in-use" };
    if (e instanceof Deno.errors.PermissionDenied) {
      return { kind: "denied", message: (e as Error).message };
    }
    return { kind: "error", message: (e as Error).message };
  }
}

function listenPort(listen: string | null | undefined): number | null {
  const m = listen?.match(/:(\d+)$/);
  return m ? Number(m[1]) : null;
}

async function gatherMdns(disabled: boolean): Promise<CheckResult> {
  if (disabled) {
    return checkMdns({ interfaces: [], routes: null, ifaceFlags: null, disabled: true });
  }
  let interfaces: NetIface[];
  try {
    interfaces = Deno.networkInterfaces().map((i) => ({
      name: i.name,
      family: i.family,
      address: i.address,
    }));
  } catch (e) {
    return skip(
      "mdns",
      "mDNS possible",
      `cannot list network interfaces (${(e as Error).message})`,
      "run with --allow-sys=networkInterfaces (the 'ironmesh' task and the shipped binary have it)",
    );
  }
  let routes: RouteEntry[] | null = null;
  try {
    routes = parseProcNetRoute(await Deno.readTextFile("/proc/net/route"));
  } catch { /* not Linux, or Deno refuses /proc without --allow-all: routes not checked */ }
  const flags = new Map<string, number>();
  for (const name of new Set(interfaces.map((i) => i.name))) {
    try {
      const f = parseIfaceFlags(await Deno.readTextFile(`/sys/class/net/${name}/flags`));
      if (f !== null) flags.set(name, f);
    } catch { /* unknown flags: not held against the interface */ }
  }
  return checkMdns({ interfaces, routes, ifaceFlags: flags });
}

function lastAuditTimestamp(path: string): number | null {
  try {
    if (!fileExists(path)) return null;
    const entries = readEntries(path);
    let max: number | null = null;
    for (const e of entries.slice(-50)) {
      if (Number.isFinite(e.timestamp) && (max === null || e.timestamp > max)) max = e.timestamp;
    }
    return max;
  } catch {
    return null;
  }
}

function printResults(ctx: Context, results: CheckResult[]): void {
  const w = Math.max(...results.map((r) => r.title.length));
  for (const r of results) {
    const m = r.status === "pass"
      ? color.green(mark(r.status))
      : r.status === "fail"
      ? color.red(mark(r.status))
      : color.dim(mark(r.status));
    const detail = r.status === "skip" ? `skipped: ${r.detail}` : r.detail;
    ctx.out.line(`  ${m} ${r.title.padEnd(w)}  ${detail}`);
    for (const s of r.stages ?? []) {
      const sm = s.status === "pass"
        ? color.green(mark(s.status))
        : s.status === "fail"
        ? color.red(mark(s.status))
        : color.dim(mark(s.status));
      const ms = s.ms === null ? "" : `${s.ms} ms`;
      ctx.out.line(
        `      ${sm} ${s.name.padEnd(8)} ${ms.padStart(8)}${s.detail ? `  ${s.detail}` : ""}`,
      );
    }
    if (r.fix) {
      ctx.out.line(`      ${r.status === "fail" ? color.bold("fix:") : "to run it:"} ${r.fix}`);
    }
  }
}

async function doctor(argv: string[]): Promise<number> {
  const cmd = "doctor";
  const { values, positionals } = parseCommandArgs(argv, OPTIONS, cmd);
  if (values.help) return console.log(HELP), 0;
  positionalArgs(positionals, [], cmd);
  const ctx = makeContext(values, cmd);
  const port = intFlag(values.port, "port", 8765, 1, 65535, cmd);
  const timeoutS = intFlag(values.timeout, "timeout", 10, 1, 300, cmd);
  const bind = values.bind ?? "0.0.0.0";
  const peer = values.peer;
  if (
    peer !== undefined && !/^(wss?:\/\/)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}\/?$/.test(peer)
  ) {
    throw usageError(`--peer expects HOST:PORT (or ws[s]://HOST:PORT), got '${peer}'`, cmd);
  }
  let caCerts: string[] | undefined;
  if (values["pinned-ca"]) {
    try {
      caCerts = [await Deno.readTextFile(values["pinned-ca"])];
    } catch (e) {
      throw new IronMeshError(
        "BAD_FILE",
        `--pinned-ca ${values["pinned-ca"]}: ${(e as Error).message}`,
        "check the path given to --pinned-ca",
        ExitCode.NOT_FOUND,
      );
    }
  }
  const secrets = new Secrets(
    ctx,
    values["passphrase-file"],
    values["keys-passphrase-file"],
    peer ? "mesh passphrase" : "key-file passphrase",
  );
  const results: CheckResult[] = [];
  const dir = ctx.stateDir;
  const uid = currentUid();

  // Permissions.
  const dirInfo = await Deno.stat(dir).catch(() => null);
  results.push(checkStateDir(dir, dirInfo ? statInfo(dir, dirInfo) : null, uid));
  if (dirInfo?.isDirectory) {
    const entries: StatInfo[] = [];
    try {
      for await (const e of Deno.readDir(dir)) {
        const info = await lstatOrNull(join(dir, e.name));
        if (info) entries.push(statInfo(e.name, info));
      }
      entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
      results.push(checkStateFiles(dir, entries, uid));
    } catch (e) {
      results.push(
        fail(
          "file-modes",
          "file permissions",
          `cannot list ${dir}: ${(e as Error).message}`,
          "run as the user that owns the state directory",
        ),
      );
    }
  } else {
    results.push(skip("file-modes", "file permissions", "no state directory"));
  }

  // Identity, trust store, audit log.
  let identity: Identity | null = null;
  let trust: DecodeResult | null = null;
  const auditPath = auditLogPath(dir);
  if (dirInfo?.isDirectory) {
    const k = await checkKeys(ctx, secrets);
    results.push(k.result);
    identity = k.id;
  } else {
    results.push(skip("keys", "keys.json", "no state directory"));
  }
  try {
    if (identity) {
      trust = await readTrust(ctx, identity);
      results.push(checkTrust(trustStorePath(dir), trust));
      const anyLog = logFilesOldestFirst(auditPath, true).length > 0 ||
        fileExists(checkpointPathFor(auditPath));
      let res = null;
      if (anyLog) {
        try {
          res = verifyLog(auditPath, auditKey(identity.seed), { archives: true });
        } catch (e) {
          const err = e instanceof IronMeshError ? e : new IronMeshError("IO", String(e));
          results.push(
            fail(
              "audit-chain",
              "audit chain",
              err.message,
              err.hint || "check the files' owner and mode",
            ),
          );
          results.push(skip("audit-checkpoint", "audit checkpoint", "the log could not be read"));
        }
      }
      if (!anyLog || res) results.push(...checkAudit(auditPath, res));
    } else {
      const why = "needs keys.json opened (see above)";
      results.push(skip("trust-store", "trust store MAC", why));
      results.push(skip("audit-chain", "audit chain", why));
      results.push(skip("audit-checkpoint", "audit checkpoint", why));
    }

    // Daemon, port, mDNS, clock.
    const d = await checkDaemon(ctx);
    results.push(d.result);
    const daemonPort = listenPort(d.status?.listen);
    if (d.status && daemonPort !== null && (values.port === undefined || daemonPort === port)) {
      results.push(
        checkPort(bind, daemonPort, {
          kind: "ours",
          pid: d.status.pid ?? null,
          listen: d.status.listen ?? "?",
        }),
      );
    } else {
      results.push(checkPort(bind, port, probePort(bind, port)));
    }
    results.push(await gatherMdns(values["no-mdns"] === true));
    results.push(checkClock(Date.now() / 1000, lastAuditTimestamp(auditPath)));

    // Peer handshake.
    if (peer !== undefined) {
      const title = `peer ${peer}`;
      let mesh: string | null = null;
      let meshErr: IronMeshError | null = null;
      try {
        mesh = await secrets.mesh();
      } catch (e) {
        meshErr = e instanceof IronMeshError ? e : new IronMeshError("IO", String(e));
      }
      if (!identity) {
        results.push(
          skip(
            "peer",
            title,
            "needs this node's identity (keys.json did not open)",
            `to check it: ${PASS_HOWTO}`,
          ),
        );
      } else if (meshErr) {
        results.push(fail("peer", title, meshErr.message, meshErr.hint));
      } else if (mesh === null) {
        results.push(
          skip(
            "peer",
            title,
            "no mesh passphrase source",
            "pass --passphrase-file FILE, set IRONMESH_PASSPHRASE_FILE, or run on a terminal to be asked",
          ),
        );
      } else {
        const data = trust?.ok ? TrustData.fromPlain(trust.plain) : null;
        const pinned = data
          ? (nodeId: string): PinnedPeer | undefined => {
            const rec = data.getPeer(nodeId);
            if (!rec) {
              return data.isRevoked(nodeId) ? { pubkey: null, state: "revoked" } : undefined;
            }
            return {
              pubkey: decodeStoredKey(rec.pubkey),
              state: data.isRevoked(nodeId) ? "revoked" : rec.trustState,
            };
          }
          : trust === null
          ? () => undefined
          : undefined;
        results.push(
          await probePeer({
            address: peer,
            identity,
            passphrase: mesh,
            timeoutMs: timeoutS * 1000,
            caCerts,
            pinned,
          }),
        );
      }
    }
  } finally {
    identity?.wipe();
  }

  const sum = summarize(results);
  ctx.out.result({ ...sum, state_dir: dir, checks: results });
  ctx.out.line(`ironmesh doctor — ${dir}`);
  ctx.out.line();
  printResults(ctx, results);
  ctx.out.line();
  const skipped = sum.skipped
    ? `, ${sum.skipped} skipped (skipped checks do not fail the run)`
    : "";
  ctx.out.line(
    sum.ok
      ? `${color.green("✓")} ${sum.passed} passed${skipped}`
      : `${color.red("✗")} ${sum.failed} failed, ${sum.passed} passed${skipped}`,
  );
  return sum.ok ? 0 : ExitCode.FAILURE;
}

export const doctorCommand: Command = {
  name: "doctor",
  summary: "check permissions, keys, trust store, audit log, daemon, ports, mDNS, clock, a peer",
  help: HELP,
  run: doctor,
};
