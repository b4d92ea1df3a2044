/**
 * `ironmesh run` — the daemon: loads (or on first run creates) the identity, opens the
 * state files, listens for peers, dials static peers, and runs until SIGINT/SIGTERM,
 * when it says GOODBYE to every peer, flushes its files and exits 0.
 */
import { ExitCode, IronMeshError } from "../../lib/errors.ts";
import { isLogLevel, LOG_LEVELS, Logger } from "../../lib/log.ts";
import { loadAllowList } from "../../lib/trust/allow_list.ts";
import {
  TRUST_POLICY_MODES,
  type TrustPolicy,
  type TrustPolicyMode,
} from "../../lib/trust/policy.ts";
import { DEFAULT_LIMITS, MeshNode, type NodeLimits } from "../../daemon/node.ts";
import type { MeshOptions } from "../../daemon/mesh.ts";
import { serveControl } from "../../daemon/control_api.ts";
import { startDiscovery } from "../../daemon/discovery/auto_dial.ts";
import type { MdnsDiscovery } from "../../daemon/discovery/mdns.ts";
import {
  dashboardPort,
  type OperatorSurface,
  startOperatorSurface,
} from "../../daemon/dashboard/startup.ts";
import { intFlag, parseCommandArgs, usageError } from "../args.ts";
import type { Command } from "../command.ts";
import { makeContext } from "../context.ts";
import { kdfProgress } from "../identity_loader.ts";
import { withIsolatedArgon2 } from "../../lib/crypto/argon2_isolated.ts";
import { color } from "../output.ts";
import {
  checkAddress,
  checkCapabilities,
  checkName,
  keysPassphrase,
  meshPassphrase,
  meshRoutingMode,
  openOrCreateIdentity,
  readFileFlag,
} from "../node_options.ts";
import { GLOBAL_HELP } from "../subcommand.ts";

const HELP = `ironmesh run — run this node (the daemon)

Listens for peers on --bind:--port, keeps encrypted sessions with them, delivers and
queues messages, and writes the audit log. On first run (no keys.json) it creates the
identity, encrypted with the mesh passphrase (or IRONMESH_KEYS_PASSPHRASE).
SIGINT/SIGTERM: GOODBYE to every peer, flush, exit 0.

Usage: ironmesh run [--name NAME] [--port N] [--bind ADDR] [--connect HOST:PORT]... [flags]

Network:
  --name NAME                 agent name announced to peers (default: the one in keys.json)
  --port N                    WebSocket port (default 8765)
  --bind ADDR                 listen address (default 0.0.0.0; 127.0.0.1 for local only)
  --connect HOST:PORT         static peer, dialed now and re-dialed with backoff (repeatable)
  --tls-cert FILE --tls-key FILE   serve wss:// with this certificate
  --pinned-ca FILE            trust this CA / self-signed certificate for outbound wss://
  --strict-tls                never fall back to plaintext (implies CA-validated wss://)
  --allow-plaintext-ws        if wss:// fails, fall back to ws:// (logged loudly; frames stay
                              encrypted, connection metadata does not)
  --min-protocol-version V    refuse peers below V (default ironmesh/0.9)
  --rekey-interval S          rotate session keys every S seconds (default 1800; 0 = never)

Discovery (mDNS, _ironmesh._tcp.local; Python IronMesh nodes see us and we see them):
  --no-mdns                   do not announce or browse (static --connect peers only)
  --allowed-peers a,b         auto-dial only these discovered names (default: none — default-deny)
  --open-discovery            auto-dial every discovered node (trusted networks only)
  --mdns-interface ADDR       announce and listen on the interface with this IPv4 address

Trust:
  --trust-mode MODE           tofu (default) | allow_list | allow_all (closed networks only)
  --allow-list PATH           file of node ids / public keys, or a directory of key files
  --require-message-promotion new peers start 'pending'; their messages wait for
                              'ironmesh trust set-state <id> trusted'

Secrets (never on the command line):
  --passphrase-file FILE      mesh passphrase (else IRONMESH_PASSPHRASE_FILE,
                              IRONMESH_PASSPHRASE, or a prompt on a terminal)
  --keys-passphrase-file FILE key-file passphrase (else IRONMESH_KEYS_PASSPHRASE,
                              else the mesh passphrase)

Mesh (multi-hop routing; messages to far nodes are sealed end to end):
  --mesh-routing MODE         relay (default: route and relay others' traffic) | passive (route
                              own traffic, relay none) | off (direct peers only)
  --max-hops N                hop budget of our messages and relay bound (default 5, max 15)
  --route-announce-interval S periodic ROUTE_ANNOUNCE (default 30; changes go out at once)
  --route-ttl S               a route not refreshed for S seconds expires (default 90)
  --capability NS:NAME        a capability this node offers, e.g. llm:chat (repeatable; replaces
                              the persisted set); others find it with 'ironmesh caps'
  --capability-announce-interval S   signed CAPABILITY_ANNOUNCE period (default 60)
  --e2e-plaintext-compat      also carry the plaintext beside the sealed body of relayed
                              messages (the reference's default, readable by relays; only for
                              destinations older than ironmesh/0.9)

Limits (defaults never throttle normal agent traffic):
  --peer-rate R               inbound frames/s per peer (default ${DEFAULT_LIMITS.peerRate}, burst ${DEFAULT_LIMITS.peerBurst})
  --peer-burst N
  --max-msgs-per-sec R        global inbound cap over all peers (default off)
  --peer-bandwidth B          outbound bytes/s per peer (default 67108864 = 64 MiB/s; 0 = unlimited)

Dashboard and metrics (on --port + 1; every data route needs the token printed at startup,
also written to <state dir>/dashboard.token):
  --gui                       serve the operator dashboard (page, API, /metrics, /ws)
  --gui-bind ADDR             dashboard address (default 127.0.0.1; anything else is plain HTTP
                              reachable from the network: logged as INSECURE BIND)
  --no-metrics                without --gui, do not serve /metrics on 127.0.0.1 either

Logs:
  --log-format text|json      (default text); --log-level debug|info|warn|error

Examples:
  ironmesh run --name lab-1 --passphrase-file ~/.ironmesh-pass
  ironmesh run --name lab-2 --port 8775 --connect 192.168.1.20:8765 --allow-plaintext-ws
  ironmesh run --trust-mode allow_list --allow-list ~/.ironmesh/authorized_keys/

${GLOBAL_HELP}`;

const OPTIONS = {
  name: { type: "string" },
  port: { type: "string" },
  bind: { type: "string" },
  connect: { type: "string", multiple: true },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "pinned-ca": { type: "string" },
  "strict-tls": { type: "boolean" },
  "allow-plaintext-ws": { type: "boolean" },
  "min-protocol-version": { type: "string" },
  "rekey-interval": { type: "string" },
  "no-mdns": { type: "boolean" },
  "allowed-peers": { type: "string" },
  "open-discovery": { type: "boolean" },
  "mdns-interface": { type: "string" },
  "trust-mode": { type: "string" },
  "allow-list": { type: "string" },
  "require-message-promotion": { type: "boolean" },
  "passphrase-file": { type: "string" },
  "keys-passphrase-file": { type: "string" },
  "peer-rate": { type: "string" },
  "peer-burst": { type: "string" },
  "max-msgs-per-sec": { type: "string" },
  "peer-bandwidth": { type: "string" },
  "log-format": { type: "string" },
  gui: { type: "boolean" },
  "gui-bind": { type: "string" },
  "no-metrics": { type: "boolean" },
  "mesh-routing": { type: "string" },
  "max-hops": { type: "string" },
  "route-announce-interval": { type: "string" },
  "route-ttl": { type: "string" },
  capability: { type: "string", multiple: true },
  "capability-announce-interval": { type: "string" },
  "e2e-plaintext-compat": { type: "boolean" },
} as const;

/** The mesh flags (validated). */
function meshOptions(values: {
  "mesh-routing"?: string;
  "max-hops"?: string;
  "route-announce-interval"?: string;
  "route-ttl"?: string;
  capability?: string[];
  "capability-announce-interval"?: string;
  "e2e-plaintext-compat"?: boolean;
}): MeshOptions {
  const mode = meshRoutingMode(values["mesh-routing"], "run");
  checkCapabilities(values.capability, "run");
  return {
    mode,
    maxHops: intFlag(values["max-hops"], "max-hops", 5, 1, 15, "run"),
    announceIntervalS: intFlag(
      values["route-announce-interval"],
      "route-announce-interval",
      30,
      1,
      3600,
      "run",
    ),
    routeTtlS: intFlag(values["route-ttl"], "route-ttl", 90, 3, 86_400, "run"),
    capabilities: values.capability,
    capabilityAnnounceIntervalS: intFlag(
      values["capability-announce-interval"],
      "capability-announce-interval",
      60,
      1,
      3600,
      "run",
    ),
    confidentiality: values["e2e-plaintext-compat"] ? "plaintext" : "strict",
  };
}

function numberFlag(v: string | undefined, flag: string, def: number, min: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) {
    throw usageError(`--${flag} must be a number ≥ ${min}, got '${v}'`, "run");
  }
  return n;
}

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, OPTIONS, "run");
  if (values.help) return console.log(HELP), 0;
  if (positionals.length) throw usageError(`unexpected argument '${positionals[0]}'`, "run");
  const ctx = makeContext(values, "run");
  const port = intFlag(values.port, "port", 8765, 0, 65535, "run");
  const bind = values.bind ?? "0.0.0.0";
  checkName(values.name, "run");
  const format = values["log-format"] ?? "text";
  if (format !== "text" && format !== "json") {
    throw usageError(`--log-format must be text or json, got '${format}'`, "run");
  }
  const level = values["log-level"] ?? "info";
  if (!isLogLevel(level)) {
    throw usageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}`, "run");
  }
  const mode = (values["trust-mode"] ?? "tofu") as TrustPolicyMode;
  if (!TRUST_POLICY_MODES.includes(mode)) {
    throw usageError(
      `--trust-mode must be one of ${TRUST_POLICY_MODES.join(", ")}, got '${mode}'`,
      "run",
    );
  }
  if (mode === "allow_list" && !values["allow-list"]) {
    throw usageError("--trust-mode allow_list needs --allow-list PATH", "run");
  }
  if (!!values["tls-cert"] !== !!values["tls-key"]) {
    throw usageError("--tls-cert and --tls-key go together", "run");
  }
  const minVersion = values["min-protocol-version"];
  if (minVersion !== undefined && !/^ironmesh\/\d+\.\d+$/.test(minVersion)) {
    throw usageError(
      `--min-protocol-version must look like ironmesh/0.9, got '${minVersion}'`,
      "run",
    );
  }
  const allowedPeers = new Set(
    (values["allowed-peers"] ?? "").split(",").map((x) => x.trim()).filter(Boolean),
  );
  if (
    values["mdns-interface"] !== undefined &&
    !/^\d{1,3}(\.\d{1,3}){3}$/.test(values["mdns-interface"])
  ) {
    throw usageError(
      `--mdns-interface expects an IPv4 address, got '${values["mdns-interface"]}'`,
      "run",
    );
  }
  const rekey = intFlag(values["rekey-interval"], "rekey-interval", 1800, 0, 86_400 * 7, "run");
  const mesh = meshOptions(values);
  const connect = (values.connect ?? []).map((a) => checkAddress(a, "run"));
  if (values["gui-bind"] !== undefined && !values.gui) {
    throw usageError("--gui-bind needs --gui", "run");
  }
  if (values.gui || !values["no-metrics"]) dashboardPort(port); // port + 1 must exist
  const limits: Partial<NodeLimits> = {
    peerRate: numberFlag(values["peer-rate"], "peer-rate", DEFAULT_LIMITS.peerRate, 1),
    peerBurst: numberFlag(values["peer-burst"], "peer-burst", DEFAULT_LIMITS.peerBurst, 1),
    globalRate: numberFlag(values["max-msgs-per-sec"], "max-msgs-per-sec", 0, 0),
    peerBandwidth: numberFlag(
      values["peer-bandwidth"],
      "peer-bandwidth",
      DEFAULT_LIMITS.peerBandwidth,
      0,
    ),
  };
  const tls = values["tls-cert"]
    ? {
      cert: readFileFlag(values["tls-cert"], "--tls-cert"),
      key: readFileFlag(values["tls-key"]!, "--tls-key"),
    }
    : undefined;
  const caCerts = values["pinned-ca"]
    ? [readFileFlag(values["pinned-ca"], "--pinned-ca")]
    : undefined;
  const trust: TrustPolicy = {
    mode,
    requireMessagePromotion: values["require-message-promotion"] ?? false,
    ...(values["allow-list"] ? { allowList: await loadAllowList(values["allow-list"]) } : {}),
  };

  const passphrase = await meshPassphrase(values["passphrase-file"], ctx.out);
  const log = new Logger(level, format);
  if (values["allow-plaintext-ws"] && !values["strict-tls"]) {
    log.warn(
      "--allow-plaintext-ws: outbound connections may fall back to unencrypted WebSocket transport",
    );
  }
  const keysPass = keysPassphrase(values["keys-passphrase-file"], passphrase);
  // Argon2id (keys.json, data.db) runs in a throw-away worker: its 256 MiB stay out of the daemon.
  const node = await withIsolatedArgon2(Deno.mainModule, async () =>
    await MeshNode.start({
      stateDir: ctx.stateDir,
      identity: await openOrCreateIdentity(ctx.stateDir, {
        name: values.name,
        keysPass,
        kdf: kdfProgress(ctx.out),
        firstRunHint: "pass --name NAME on the first run (letters, digits, '.', '_', '-')",
        onCreated: (_id, path) =>
          ctx.out.line(`${color.green("✓")} created a new identity in ${path}`),
      }),
      passphrase,
      listen: { hostname: bind, port },
      tls,
      caCerts,
      dial: {
        allowPlaintextWs: values["allow-plaintext-ws"] ?? false,
        strictTls: values["strict-tls"] ?? false,
      },
      connect,
      trust,
      minProtocolVersion: minVersion,
      rekeyIntervalS: rekey,
      mesh,
      limits,
      log,
    }));
  const control = await serveControl(node, ctx.stateDir, log);
  let discovery: MdnsDiscovery | null = null;
  if (!values["no-mdns"]) {
    try {
      discovery = await startDiscovery(node, {
        allowedPeers,
        openDiscovery: values["open-discovery"] ?? false,
        bind,
        interfaceAddress: values["mdns-interface"],
      });
    } catch (e) {
      log.warn("LAN discovery (mDNS) is off: static --connect peers still work", {
        error: e instanceof IronMeshError ? e.oneLine() : String(e),
      });
    }
  }
  let operator: OperatorSurface;
  try {
    operator = await startOperatorSurface(node, {
      gui: values.gui ?? false,
      guiBind: values["gui-bind"],
      port,
      metrics: !values["no-metrics"],
      stateDir: ctx.stateDir,
      strictTls: values["strict-tls"] ?? false,
      log,
    });
  } catch (e) {
    await discovery?.stop().catch(() => {});
    await control.close();
    await node.stop();
    throw e;
  }
  const listen = `${tls ? "wss" : "ws"}://${bind}:${node.listener!.port}`;
  if (ctx.json) {
    ctx.out.result({
      ok: true,
      node_id: node.nodeId,
      name: node.name,
      listen,
      state_dir: ctx.stateDir,
      pid: Deno.pid,
      dashboard_url: operator.dashboardUrl,
      metrics_url: operator.metricsUrl,
      token_file: operator.tokenFile,
    });
  } else {
    ctx.out.line(`${color.bold("ironmesh")} ${node.name} is running`);
    ctx.out.table([
      ["node id", node.nodeId],
      ["listening", listen],
      ["state dir", ctx.stateDir],
      ["static peers", connect.length ? connect.join(", ") : "none"],
      [
        "mesh",
        `${mesh.mode}${
          mesh.confidentiality === "plaintext" ? " (plaintext compat)" : ", sealed end to end"
        }; capabilities: ${node.mesh.registry.localCapabilities().join(", ") || "none"}`,
      ],
      ["control", control.path],
      [
        "discovery",
        discovery
          ? `mDNS on; auto-dial: ${
            values["open-discovery"]
              ? "everyone (--open-discovery)"
              : allowedPeers.size
              ? [...allowedPeers].join(", ")
              : "nobody (default-deny; see --allowed-peers)"
          }`
          : "off",
      ],
      [
        "dashboard",
        operator.dashboardUrl
          ? `${operator.dashboardUrl}  (new token at every start; keep it private)`
          : "off (--gui to serve it)",
      ],
      [
        "metrics",
        operator.metricsUrl
          ? `${operator.metricsUrl}  (Bearer token in ${operator.tokenFile ?? "the dashboard URL"})`
          : "off",
      ],
    ]);
    ctx.out.line(color.dim("Stop with Ctrl-C (peers get a GOODBYE)."));
  }
  await waitForSignal();
  log.info("shutting down");
  const timer = setTimeout(() => {
    log.error("shutdown took longer than 5 s; exiting anyway");
    Deno.exit(ExitCode.FAILURE);
  }, 5000);
  await discovery?.stop().catch(() => {});
  await operator.close();
  await control.close();
  await node.stop();
  clearTimeout(timer);
  return ExitCode.OK;
}

function waitForSignal(): Promise<string> {
  return new Promise((resolve) => {
    const handlers: [Deno.Signal, () => void][] = [];
    for (const sig of ["SIGINT", "SIGTERM"] as Deno.Signal[]) {
      const h = () => {
        for (const [s, f] of handlers) Deno.removeSignalListener(s, f);
        resolve(sig);
      };
      handlers.push([sig, h]);
      Deno.addSignalListener(sig, h);
    }
  });
}

/** The `run` command. */
export const runCommand: Command = {
  name: "run",
  summary: "run this node (the daemon)",
  help: HELP,
  run,
};
