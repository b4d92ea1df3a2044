/**
 * The `Agent` of the public SDK (re-exported by mod.ts): one ironmesh node inside an
 * application — identity, trust, audit, message store, transports, mesh routing and
 * capabilities (a `MeshNode`, daemon/node.ts) — with a small API for messages,
 * request/response and capability routing.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { withIsolatedArgon2 } from "../lib/crypto/argon2_isolated.ts";
import { ExitCode, IronMeshError } from "../lib/errors.ts";
import { Identity } from "../lib/identity/identity.ts";
import { encodeKeyFile, generateIdentity, openKeyFile } from "../lib/identity/keyfile.ts";
import { keyFileExists, keysPath, readKeyFileAt, saveKeyFileAt } from "../lib/identity/keystore.ts";
import { isNodeId } from "../lib/identity/node_id.ts";
import { isLogLevel, Logger } from "../lib/log.ts";
import {
  AGENT_NAME_RE,
  CAPABILITY_RE,
  checkPassphraseStrength,
  PEER_ADDRESS_RE,
  stripPassphraseFile,
} from "../lib/node_inputs.ts";
import type { CapabilityStrategy } from "../lib/routing/capabilities.ts";
import { type AllowList, parseAllowEntry } from "../lib/trust/allow_list.ts";
import type { Priority } from "../lib/wire/session.ts";
import { resolveTarget } from "../daemon/control_api.ts";
import { startDiscovery } from "../daemon/discovery/auto_dial.ts";
import type { MdnsDiscovery } from "../daemon/discovery/mdns.ts";
import type { NodeEvent } from "../daemon/events.ts";
import { MeshNode } from "../daemon/node.ts";
import { AgentMessage, encodePayload, type Payload, type Sender } from "./payload.ts";
import {
  encodeRpcError,
  encodeRpcRequest,
  encodeRpcResponse,
  parseRpc,
  REQ_TYPE,
  RESP_TYPE,
} from "./rpc.ts";

// ---------------------------------------------------------------------------------------------
// Public types

/** mDNS discovery settings (LAN only; off unless asked). */
export interface MdnsOptions {
  /** Auto-dial only discovered agents with these names (default: none — default-deny). */
  allowedPeers?: string[];
  /** Auto-dial every discovered agent (trusted networks only; default false). */
  openDiscovery?: boolean;
  /** Announce and listen on the interface with this IPv4 address. */
  interfaceAddress?: string;
}

/** How to start an agent. Everything is optional except a name on first use and a passphrase. */
export interface AgentOptions {
  /**
   * Agent name announced to peers (1–63 of letters, digits, `.`, `_`, `-`). Required the first
   * time (it creates the identity); later it defaults to the name stored in keys.json, and a
   * different one renames the agent.
   */
  name?: string;
  /**
   * Mesh passphrase shared by the nodes of a mesh (at least 12 characters; never logged).
   * Default: `passphraseFile`, else the file named by `IRONMESH_PASSPHRASE_FILE`, else
   * `IRONMESH_PASSPHRASE` (environment variables are read only when `--allow-env` grants them).
   */
  passphrase?: string;
  /** File holding the mesh passphrase (leading/trailing newlines stripped). */
  passphraseFile?: string;
  /**
   * Passphrase of keys.json when it differs from the mesh passphrase (default:
   * `IRONMESH_KEYS_PASSPHRASE` when granted, else the mesh passphrase).
   */
  keysPassphrase?: string;
  /**
   * UNSAFE: write a newly created identity key to keys.json unencrypted (file mode 0600), as
   * the reference's `--plaintext-keys`. Saves one Argon2id derivation (about a second) per
   * start; for throw-away test agents only. Default false.
   */
  plaintextKeys?: boolean;
  /**
   * State directory (identity, trust store, audit log, message store); one running agent or
   * daemon per directory. Default: `IRONMESH_HOME`, else `~/.ironmesh` (as the CLI).
   */
  stateDir?: string;
  /** Port to listen on for peers (default 8765; 0 = any free port, see `agent.port`). */
  port?: number;
  /**
   * Address to listen on. Default `127.0.0.1`: only agents on this machine can connect. The
   * reference SDK listens on `0.0.0.0`; pass that (or a LAN address) to accept peers from the
   * network.
   */
  bind?: string;
  /** Listen for peers at all (default true; false = dial only). */
  listen?: boolean;
  /** Static peers (`host:port`, `ws://host:port`, `wss://host:port`), dialed now and re-dialed. */
  connect?: string[];
  /**
   * Capabilities this agent offers (`namespace:name`, e.g. `llm:chat`). Given: replaces the set
   * persisted in the state dir; omitted: keeps it.
   */
  capabilities?: string[];
  /**
   * LAN discovery over mDNS (announce and browse `_ironmesh._tcp.local`). Default false in the
   * SDK (the reference turns it on and auto-dials everyone); `true` announces and browses but
   * auto-dials nobody unless `allowedPeers` or `openDiscovery` says so.
   */
  mdns?: boolean | MdnsOptions;
  /** Peer admission: `tofu` (default), `allow_list` (needs `allowList`), `allow_all`. */
  trustMode?: TrustMode;
  /** Node ids or base64 Ed25519 public keys admitted in `allow_list` mode. */
  allowList?: string[];
  /** New peers start `pending`; their messages wait until an operator promotes them. */
  requireMessagePromotion?: boolean;
  /**
   * Fall back to plaintext `ws://` when `wss://` fails (frames stay end-to-end encrypted and
   * signed; connection metadata does not). Default: allowed for loopback peers when the bind
   * address and every `connect` target are loopback and mDNS is off (nothing leaves the
   * machine; `agent.connect` to another host then still requires `wss://`), else false.
   */
  allowPlaintextWs?: boolean;
  /** Serve `wss://` with this certificate and key (PEM). */
  tls?: { cert: string; key: string };
  /** CA / self-signed certificates (PEM) trusted for outbound `wss://`. */
  caCerts?: string[];
  /** Never fall back to plaintext; validate certificates. */
  strictTls?: boolean;
  /** Mesh routing: `relay` (default), `passive` (route own traffic, relay none), `off`. */
  meshRouting?: "relay" | "passive" | "off";
  /** Hop budget of this agent's messages and its relay bound (default 5, max 15). */
  maxHops?: number;
  /** Default timeout of `request`/`requestCapability` in ms (default 30,000). */
  requestTimeoutMs?: number;
  /**
   * Messages kept while no `onMessage` handler or `messages()` iterator is attached, and per
   * iterator that is not being read (default 1000; the oldest are dropped beyond it).
   */
  inboxLimit?: number;
  /**
   * Log level of the node (default `error`: an embedded agent stays quiet; `warn` adds e.g.
   * plaintext fallbacks and dropped links, `info` peers and handshakes; `silent` logs nothing).
   */
  logLevel?: AgentLogLevel;
  /** Log format (default `text`). */
  logFormat?: "text" | "json";
  /** Where log lines go (default stderr). */
  logSink?: (line: string) => void;
}

/** A peer this agent knows. */
export interface PeerInfo {
  /** Node id. */
  id: string;
  /** Agent name it announced. */
  name: string;
  /** `host:port` it was reached at (or last seen at). */
  address: string;
  /** A live, authenticated session exists now. */
  online: boolean;
  /** `trusted`, `pending`, `pending-cap-change`, `blocked`, … */
  trustState: string;
  /** Round-trip time of the last PING, in ms. */
  rttMs: number | null;
  /** Messages waiting in the queue for it. */
  queued: number;
  /** Seconds since the epoch of the last frame from it. */
  lastSeen: number | null;
}

/** A capability offered by a node. */
export interface CapabilityInfo {
  /** The capability (`namespace:name`). */
  capability: string;
  /** Node id of the node offering it. */
  nodeId: string;
  /** That node's agent name, when known. */
  name: string;
  /** This agent's own. */
  local: boolean;
  /** Reachable now (a direct peer or a route). */
  reachable: boolean;
  /** Hops away (0 = this agent, 1 = a direct peer), null when unreachable. */
  hops: number | null;
}

/** `first` (nearest), `random` (one reachable at random) or `all` (every known node). */
export type Strategy = CapabilityStrategy;

/** Priority of a message in the sender's queue and on the wire (case-insensitive). */
export type MessagePriority =
  | "LOW"
  | "NORMAL"
  | "HIGH"
  | "CRITICAL"
  | "low"
  | "normal"
  | "high"
  | "critical";

/** Peer admission policy. */
export type TrustMode = "tofu" | "allow_list" | "allow_all";

/** How much the node logs. */
export type AgentLogLevel = "debug" | "info" | "warn" | "error" | "silent";

/** A peer: a name, node id or unique id prefix, or a `Sender`/`PeerInfo`. */
export type Target = string | { id: string };

/** Options of `send` and `sendToCapability`. */
export interface SendOptions {
  /** Resolve only once the receiver acknowledged the message (default: once it is committed). */
  waitForDelivery?: boolean;
  /** With `waitForDelivery`: how long to wait, in ms (default 30,000). */
  timeoutMs?: number;
  /** Default `NORMAL`. */
  priority?: MessagePriority;
  /** Stop waiting (the message stays queued). */
  signal?: AbortSignal;
}

/** What `send` did. */
export interface SendResult {
  /** msg_id of the message. */
  id: string;
  /** Node id it is addressed to. */
  to: string;
  /**
   * `queued`: committed, waiting for the peer; `sent`: committed and written to a live link;
   * `delivered`: acknowledged by the receiver (`waitForDelivery`).
   */
  status: "queued" | "sent" | "delivered";
}

/** Options of `request` and `requestCapability`. */
export interface RequestOptions {
  /** How long to wait for the response, in ms (default `requestTimeoutMs`, 30,000). */
  timeoutMs?: number;
  /** Default `NORMAL`. */
  priority?: MessagePriority;
  /** Give up early (rejects with `REQUEST_ABORTED`). */
  signal?: AbortSignal;
}

/** Called for each plain message; may be async (errors are logged, not thrown). */
export type MessageHandler = (
  from: Sender,
  payload: unknown,
  message: AgentMessage,
) => unknown;

/**
 * Serves a request: returns (or resolves with) the response payload. A thrown error is sent
 * back as `{code, message}` (an `IronMeshError` keeps its code; others become
 * `HANDLER_ERROR`) — do not put secrets in error messages.
 */
export type RequestHandler = (
  from: Sender,
  payload: unknown,
  request: AgentMessage,
) => Payload | undefined | Promise<Payload | undefined>;

/** A peer came online or went offline. */
export interface PeerEvent {
  /** `up`: a session was established; `down`: it ended. */
  type: "up" | "down";
  /** The peer and the address of the session. */
  peer: Sender & { address: string };
  /** Why it went down. */
  reason?: string;
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** How long requests that arrive before `onRequest` is called wait for it (ms). */
const REQUEST_HANDLER_GRACE_MS = 5000;
/** How long `close` waits for running request handlers (ms). */
const CLOSE_HANDLER_WAIT_MS = 2000;

function optionError(message: string, hint: string): IronMeshError {
  return new IronMeshError("BAD_OPTIONS", message, hint, ExitCode.USAGE);
}

function closedError(): IronMeshError {
  return new IronMeshError(
    "AGENT_CLOSED",
    "the agent is closed",
    "start a new one with Agent.start()",
    ExitCode.FAILURE,
  );
}

/** An environment variable, read only when the permission is already granted (no prompt). */
function envVar(name: string): string | undefined {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
      return undefined;
    }
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

function readSecretFile(path: string, what: string): string {
  try {
    return stripPassphraseFile(Deno.readTextFileSync(path));
  } catch (e) {
    throw new IronMeshError(
      "PASSPHRASE_FILE",
      `${what} file ${path} cannot be read: ${
        e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).message
      }`,
      "check the path and that --allow-read covers it (chmod 600, owned by you)",
      ExitCode.BAD_PASSPHRASE,
    );
  }
}

function meshPassphrase(o: AgentOptions): string {
  if (o.passphrase !== undefined && o.passphraseFile !== undefined) {
    throw optionError(
      "pass either passphrase or passphraseFile, not both",
      "keep the passphrase in a file only you can read and pass passphraseFile",
    );
  }
  let p: string | undefined = o.passphrase;
  if (p === undefined && o.passphraseFile) p = readSecretFile(o.passphraseFile, "passphrase");
  if (p === undefined) {
    const f = envVar("IRONMESH_PASSPHRASE_FILE");
    if (f) p = readSecretFile(f, "IRONMESH_PASSPHRASE_FILE passphrase");
  }
  p ??= envVar("IRONMESH_PASSPHRASE");
  if (p === undefined) {
    throw new IronMeshError(
      "PASSPHRASE_REQUIRED",
      "Passphrase is required (no mesh passphrase given)",
      "pass { passphrase } or { passphraseFile }, or set IRONMESH_PASSPHRASE_FILE and allow " +
        "reading it with --allow-env=IRONMESH_PASSPHRASE_FILE",
      ExitCode.BAD_PASSPHRASE,
    );
  }
  checkPassphraseStrength(p);
  return p;
}

function stateDirOf(o: AgentOptions): string {
  if (o.stateDir) return o.stateDir;
  const env = envVar("IRONMESH_HOME");
  if (env) return env;
  const home = envVar("HOME");
  if (!home) {
    throw optionError(
      "no state directory: stateDir is not set and IRONMESH_HOME/HOME cannot be read",
      "pass { stateDir } (one directory per agent)",
    );
  }
  return join(home, ".ironmesh");
}

function hostOf(address: string): string {
  const a = address.replace(/^wss?:\/\//, "").replace(/\/$/, "");
  const m = a.match(/^\[([^\]]+)\]:\d+$/) ?? a.match(/^(.*):\d+$/);
  return (m ? m[1] : a).toLowerCase();
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function validCapabilities(caps: readonly string[], what: string): string[] {
  for (const c of caps) {
    if (typeof c !== "string" || !CAPABILITY_RE.test(c)) {
      throw optionError(
        `${what} expects NAMESPACE:NAME capabilities (e.g. llm:chat), got '${c}'`,
        "use letters, digits, '.', '_', '-' on both sides of one ':'",
      );
    }
  }
  return [...caps];
}

function intOption(v: number | undefined, what: string, def: number, min: number, max: number) {
  if (v === undefined) return def;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw optionError(`${what} must be an integer from ${min} to ${max}, got ${v}`, `fix ${what}`);
  }
  return v;
}

function normalizePriority(p: MessagePriority | undefined): Priority {
  const up = (p ?? "NORMAL").toUpperCase();
  if (!["LOW", "NORMAL", "HIGH", "CRITICAL"].includes(up)) {
    throw optionError(`priority must be LOW, NORMAL, HIGH or CRITICAL, got '${p}'`, "fix priority");
  }
  return up as Priority;
}

/** Open keys.json in `stateDir`, or create it on first use. */
async function loadIdentity(
  stateDir: string,
  name: string | undefined,
  keysPass: string,
  plaintext: boolean,
): Promise<Identity> {
  const path = keysPath(stateDir);
  if (!(await keyFileExists(path))) {
    if (!name) {
      throw new IronMeshError(
        "NAME_REQUIRED",
        `no identity in ${stateDir} yet and no name`,
        "pass { name } the first time (letters, digits, '.', '_', '-')",
        ExitCode.USAGE,
      );
    }
    if (!plaintext) checkPassphraseStrength(keysPass);
    const id = generateIdentity(name);
    await saveKeyFileAt(stateDir, encodeKeyFile(id, { passphrase: plaintext ? null : keysPass }));
    return id;
  }
  const kf = await readKeyFileAt(path);
  const id = openKeyFile(kf, kf.summary.encrypted ? keysPass : null, path);
  if (name && name !== id.name) {
    const renamed = new Identity(id.seed, name, id.hkdfSalt);
    id.wipe();
    return renamed;
  }
  if (!id.name) {
    id.wipe();
    throw new IronMeshError(
      "NAME_REQUIRED",
      `the identity in ${path} has no name`,
      "pass { name }",
      ExitCode.USAGE,
    );
  }
  return id;
}

/** Argon2id's worker provider is process-global: agents in one process start one at a time. */
let startQueue: Promise<unknown> = Promise.resolve();
function serially<T>(fn: () => Promise<T>): Promise<T> {
  const run = startQueue.then(fn, fn);
  startQueue = run.catch(() => {});
  return run;
}

/**
 * The worker entry for Argon2id isolation, or null when the worker could not load it: a
 * worker needs read access to the SDK's own files (e.g. `--allow-read=.` from the repository
 * root); without it Argon2id runs in-process (same result; the memory stays).
 */
function argon2Entry(): string | null {
  const entry = new URL("./argon2_entry.ts", import.meta.url);
  if (entry.protocol !== "file:") return entry.href;
  try {
    const root = fileURLToPath(new URL("../", import.meta.url));
    return Deno.permissions.querySync({ name: "read", path: root }).state === "granted"
      ? entry.href
      : null;
  } catch {
    return null;
  }
}

interface Subscription {
  push(m: AgentMessage): void;
  end(): void;
}

interface PendingRequest {
  resolve(m: AgentMessage): void;
  reject(e: unknown): void;
}

// ---------------------------------------------------------------------------------------------
// Agent

/**
 * An ironmesh agent: a full mesh node in this process.
 *
 * @example Two agents on one machine
 * ```ts
 * import { Agent } from "./mod.ts";
 *
 * const alice = await Agent.start({ name: "alice", stateDir: "./state/alice", port: 9001, passphrase });
 * const bob = await Agent.start({
 *   name: "bob", stateDir: "./state/bob", port: 9002, passphrase, connect: ["127.0.0.1:9001"],
 * });
 * alice.onMessage((from, text) => console.log(`${from.name}: ${text}`));
 * await bob.waitForPeer("alice");
 * await bob.send("alice", "hello", { waitForDelivery: true });
 * await bob.close();
 * await alice.close();
 * ```
 */
export class Agent {
  readonly #node: MeshNode;
  readonly #stateDir: string;
  readonly #bind: string;
  readonly #requestTimeoutMs: number;
  readonly #inboxLimit: number;
  /** Plaintext ws:// was allowed only because everything was loopback. */
  readonly #autoPlaintext: boolean;
  #discovery: MdnsDiscovery | null = null;
  #unsubscribe: () => void = () => {};
  #handlers = new Set<MessageHandler>();
  #subscriptions = new Set<Subscription>();
  #backlog: AgentMessage[] = [];
  #peerHandlers = new Set<(e: PeerEvent) => void>();
  #requestHandler: RequestHandler | null = null;
  #requestBacklog: { msg: AgentMessage; rpcId: string }[] = [];
  #graceTimer: ReturnType<typeof setTimeout> | null = null;
  #pending = new Map<string, PendingRequest>();
  #serving = new Set<Promise<void>>();
  #closeListeners = new Set<() => void>();
  #closing: Promise<void> | null = null;

  private constructor(
    node: MeshNode,
    s: {
      stateDir: string;
      bind: string;
      requestTimeoutMs: number;
      inboxLimit: number;
      autoPlaintext: boolean;
    },
  ) {
    this.#node = node;
    this.#autoPlaintext = s.autoPlaintext;
    this.#stateDir = s.stateDir;
    this.#bind = s.bind;
    this.#requestTimeoutMs = s.requestTimeoutMs;
    this.#inboxLimit = s.inboxLimit;
    this.#unsubscribe = node.bus.subscribe((e) => this.#onEvent(e));
    this.#graceTimer = setTimeout(() => {
      this.#graceTimer = null;
      this.#refuseBackloggedRequests();
    }, REQUEST_HANDLER_GRACE_MS);
  }

  /**
   * Start an agent: open (or on first use create) its identity in `stateDir`, listen, dial
   * `connect`, announce `capabilities`. Argon2id (about a second each for keys.json and the
   * message store) runs in a throw-away worker, so its 256 MiB leave with it — when the program
   * may read the SDK's own files (`--allow-read` covering the repository; else in-process).
   *
   * @example
   * ```ts
   * const agent = await Agent.start({
   *   name: "worker-1",
   *   passphraseFile: "/home/me/.ironmesh-pass",
   *   stateDir: "/home/me/.ironmesh-worker-1",
   *   port: 0,
   *   connect: ["127.0.0.1:8765"],
   *   capabilities: ["job:square"],
   * });
   * ```
   */
  static async start(options: AgentOptions = {}): Promise<Agent> {
    const o = options;
    if (o.name !== undefined && !AGENT_NAME_RE.test(o.name)) {
      throw optionError(
        `name must be 1–63 characters of letters, digits, '.', '_' or '-', got '${o.name}'`,
        "pick another name",
      );
    }
    const stateDir = stateDirOf(o);
    const passphrase = meshPassphrase(o);
    const keysPass = o.keysPassphrase ?? envVar("IRONMESH_KEYS_PASSPHRASE") ?? passphrase;
    const port = intOption(o.port, "port", 8765, 0, 65535);
    const bind = o.bind ?? "127.0.0.1";
    const connect = [...(o.connect ?? [])];
    for (const a of connect) {
      if (typeof a !== "string" || !PEER_ADDRESS_RE.test(a)) {
        throw optionError(
          `connect expects HOST:PORT (or ws[s]://HOST:PORT), got '${a}'`,
          "fix the address",
        );
      }
    }
    const capabilities = o.capabilities === undefined
      ? undefined
      : validCapabilities(o.capabilities, "capabilities");
    const mode = o.trustMode ?? "tofu";
    if (!["tofu", "allow_list", "allow_all"].includes(mode)) {
      throw optionError(
        `trustMode must be tofu, allow_list or allow_all, got '${mode}'`,
        "fix trustMode",
      );
    }
    let allowList: AllowList | undefined;
    if (o.allowList) {
      allowList = {
        entries: o.allowList.map((t, i) => {
          const e = parseAllowEntry(String(t).trim(), `allowList[${i}]`);
          if (!e) {
            throw optionError(
              `allowList[${i}] is not a node id or base64 Ed25519 public key: '${t}'`,
              "list 32-hex node ids or padded base64 public keys",
            );
          }
          return e;
        }),
      };
    }
    if (mode === "allow_list" && !allowList) {
      throw optionError("trustMode allow_list needs allowList", "pass { allowList: [ids…] }");
    }
    const routing = o.meshRouting ?? "relay";
    if (!["relay", "passive", "off"].includes(routing)) {
      throw optionError(
        `meshRouting must be relay, passive or off, got '${routing}'`,
        "fix meshRouting",
      );
    }
    const maxHops = intOption(o.maxHops, "maxHops", 5, 1, 15);
    const requestTimeoutMs = intOption(
      o.requestTimeoutMs,
      "requestTimeoutMs",
      30_000,
      1,
      86_400_000,
    );
    const inboxLimit = intOption(o.inboxLimit, "inboxLimit", 1000, 1, 1_000_000);
    const autoPlaintext = o.allowPlaintextWs === undefined && !o.mdns && isLoopback(bind) &&
      connect.every((a) => isLoopback(hostOf(a)));
    const allowPlaintextWs = o.allowPlaintextWs ?? autoPlaintext;
    const level = o.logLevel ?? "error";
    if (level !== "silent" && !isLogLevel(level)) {
      throw optionError(
        `logLevel must be debug, info, warn, error or silent, got '${level}'`,
        "fix logLevel",
      );
    }
    const sink = level === "silent" ? () => {} : o.logSink;
    const log = new Logger(level === "silent" ? "error" : level, o.logFormat ?? "text", {}, sink);

    const entry = argon2Entry();
    if (!entry) log.debug("Argon2id runs in-process: --allow-read does not cover the SDK's files");
    const isolated = <T>(fn: () => Promise<T>) => entry ? withIsolatedArgon2(entry, fn) : fn();
    const node = await serially(() =>
      isolated(async () => {
        const identity = await loadIdentity(stateDir, o.name, keysPass, o.plaintextKeys ?? false);
        try {
          return await MeshNode.start({
            stateDir,
            identity,
            passphrase,
            listen: o.listen === false ? null : { hostname: bind, port },
            tls: o.tls,
            caCerts: o.caCerts,
            dial: { allowPlaintextWs, strictTls: o.strictTls ?? false },
            connect,
            trust: {
              mode,
              requireMessagePromotion: o.requireMessagePromotion ?? false,
              ...(allowList ? { allowList } : {}),
            },
            mesh: { mode: routing, maxHops, capabilities },
            log,
          });
        } catch (e) {
          identity.wipe();
          throw e;
        }
      })
    );
    const agent = new Agent(node, {
      stateDir,
      bind,
      requestTimeoutMs,
      inboxLimit,
      autoPlaintext,
    });
    if (o.mdns) {
      const m: MdnsOptions = o.mdns === true ? {} : o.mdns;
      try {
        agent.#discovery = await startDiscovery(node, {
          allowedPeers: new Set(m.allowedPeers ?? []),
          openDiscovery: m.openDiscovery ?? false,
          bind,
          interfaceAddress: m.interfaceAddress,
        });
      } catch (e) {
        log.warn("LAN discovery (mDNS) is off: static peers still work", {
          error: e instanceof IronMeshError ? e.oneLine() : String(e),
        });
      }
    }
    return agent;
  }

  // -------------------------------------------------------------------------------------------
  // Identity and state

  /** This agent's node id (32 hex characters, derived from its identity key). */
  get id(): string {
    return this.#node.nodeId;
  }

  /** This agent's name. */
  get name(): string {
    return this.#node.name;
  }

  /** The port it listens on (the real one when started with `port: 0`), or null. */
  get port(): number | null {
    return this.#node.listener?.port ?? null;
  }

  /**
   * `host:port` of the listener (the bind address; 127.0.0.1 when bound to every interface),
   * or null when not listening.
   */
  get address(): string | null {
    const p = this.port;
    if (p === null) return null;
    const host = this.#bind === "0.0.0.0" || this.#bind === "::" ? "127.0.0.1" : this.#bind;
    return host.includes(":") ? `[${host}]:${p}` : `${host}:${p}`;
  }

  /** The state directory. */
  get stateDir(): string {
    return this.#stateDir;
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closing !== null;
  }

  /**
   * Every peer this agent knows by node id: live sessions first, then pinned and previously
   * dialed peers that are offline.
   */
  get peers(): PeerInfo[] {
    if (this.closed) return [];
    return this.#node.peerStatus().filter((p) => p.nodeId).map((p) => ({
      id: p.nodeId,
      name: p.name,
      address: p.address,
      online: p.online,
      trustState: p.trustState,
      rttMs: p.rttMs,
      queued: p.queued,
      lastSeen: p.lastSeen,
    }));
  }

  /**
   * Dial `address` (`host:port`, `ws://…`, `wss://…`) now and keep re-dialing it when the link
   * drops. Resolves once the handshake completed.
   */
  async connect(address: string): Promise<PeerInfo> {
    this.#assertOpen();
    if (!PEER_ADDRESS_RE.test(address)) {
      throw optionError(`expected HOST:PORT (or ws[s]://HOST:PORT), got '${address}'`, "fix it");
    }
    if (this.#autoPlaintext && !isLoopback(hostOf(address))) {
      // Plaintext was allowed for loopback only: a remote host must speak wss://.
      if (address.startsWith("ws://")) {
        throw optionError(
          `plaintext ${address} is not allowed to a host beyond this machine`,
          "use wss://, or start the agent with allowPlaintextWs: true on a network you trust",
        );
      }
      if (!address.startsWith("wss://")) address = `wss://${address}`;
    }
    const link = await this.#node.connect(address);
    const t = this.#node.addTarget(address, { autoDial: true });
    t.nodeId = link.nodeId;
    return this.peers.find((p) => p.id === link.nodeId) ?? {
      id: link.nodeId,
      name: link.peer.name,
      address,
      online: true,
      trustState: "unknown",
      rttMs: null,
      queued: 0,
      lastSeen: null,
    };
  }

  /**
   * Resolve when a peer matching `target` (name, node id or id prefix; any peer when omitted)
   * has a live session. Rejects with `PEER_TIMEOUT` after `timeoutMs` (default 30,000).
   */
  waitForPeer(
    target?: string,
    opts: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<PeerInfo> {
    this.#assertOpen();
    const match = (p: PeerInfo) =>
      p.online &&
      (target === undefined || p.name === target || p.id === target ||
        (target.length >= 4 && p.id.startsWith(target.toLowerCase())));
    const timeoutMs = opts.timeoutMs ?? 30_000;
    return this.#waitFor<PeerInfo>(
      () => this.peers.find(match) ?? null,
      (recheck) => this.#node.bus.subscribe((e) => e.type === "peer-up" && recheck()),
      timeoutMs,
      opts.signal,
      () =>
        new IronMeshError(
          "PEER_TIMEOUT",
          `no peer ${target === undefined ? "" : `"${target}" `}came online within ${
            timeoutMs / 1000
          } s`,
          "check the address in connect, the shared passphrase and the other agent's log",
          ExitCode.NETWORK,
        ),
    );
  }

  /** Subscribe to peers coming online and going offline; returns the unsubscribe function. */
  onPeer(handler: (e: PeerEvent) => void): () => void {
    this.#peerHandlers.add(handler);
    return () => this.#peerHandlers.delete(handler);
  }

  // -------------------------------------------------------------------------------------------
  // Messages

  /**
   * Send `payload` to `target` (a name, node id or unique id prefix). Resolves once the message
   * is committed to the outbound queue (it survives a crash and is re-sent until acknowledged),
   * or with `waitForDelivery` once the receiver acknowledged it. Strings travel as UTF-8,
   * `Uint8Array`s as is, other values as JSON.
   *
   * @example
   * ```ts
   * await agent.send("bob", "hello");
   * await agent.send("bob", { task: "square", n: 7 }, { waitForDelivery: true, timeoutMs: 5000 });
   * ```
   */
  async send(target: Target, payload: Payload, opts: SendOptions = {}): Promise<SendResult> {
    this.#assertOpen();
    const to = this.#resolve(target);
    const { bytes } = encodePayload(payload);
    return (await this.#submit([to], bytes, "MSG", opts))[0];
  }

  /**
   * Call `handler` for every plain message (not requests or responses); returns the
   * unsubscribe function. The payload argument is the text when the bytes are UTF-8, else the
   * bytes; `message` has `bytes`, `text`, `json()`.
   *
   * @example
   * ```ts
   * agent.onMessage((from, text, msg) => console.log(from.name, text, msg.id));
   * ```
   */
  onMessage(handler: MessageHandler): () => void {
    this.#handlers.add(handler);
    const backlog = this.#takeBacklog();
    if (backlog.length) queueMicrotask(() => backlog.forEach((m) => this.#call(handler, m)));
    return () => this.#handlers.delete(handler);
  }

  /**
   * Plain messages as an async iterator; it ends when the agent closes, `signal` aborts or the
   * loop breaks. Messages that arrived before any handler or iterator was attached are handed to
   * the first one.
   *
   * @example
   * ```ts
   * for await (const msg of agent.messages()) {
   *   if (msg.text === "bye") break;
   *   await agent.send(msg.from, `echo: ${msg.text}`);
   * }
   * ```
   */
  messages(opts: { signal?: AbortSignal } = {}): AsyncIterableIterator<AgentMessage> {
    const queue: AgentMessage[] = this.#takeBacklog();
    let wake: (() => void) | null = null;
    let done = this.closed;
    const limit = this.#inboxLimit;
    const sub: Subscription = {
      push: (m) => {
        queue.push(m);
        if (queue.length > limit) queue.shift();
        wake?.();
      },
      end: () => {
        done = true;
        wake?.();
      },
    };
    const detach = () => {
      this.#subscriptions.delete(sub);
      opts.signal?.removeEventListener("abort", sub.end);
      sub.end();
    };
    if (!done) {
      this.#subscriptions.add(sub);
      if (opts.signal?.aborted) detach();
      else opts.signal?.addEventListener("abort", detach, { once: true });
    }
    const it: AsyncIterableIterator<AgentMessage> = {
      [Symbol.asyncIterator]: () => it,
      next: async (): Promise<IteratorResult<AgentMessage>> => {
        while (true) {
          if (queue.length) return { value: queue.shift()!, done: false };
          if (done) {
            detach();
            return { value: undefined, done: true };
          }
          await new Promise<void>((r) => wake = r);
          wake = null;
        }
      },
      return: (): Promise<IteratorResult<AgentMessage>> => {
        detach();
        queue.length = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
    return it;
  }

  // -------------------------------------------------------------------------------------------
  // Request / response

  /**
   * Send a request (a `REQ` frame, sdk/rpc.ts envelope) and resolve with the response
   * (`RESP`). Rejects with `REQUEST_TIMEOUT` after `timeoutMs`, or with the error code the
   * remote handler threw (`NO_HANDLER` when the peer serves no requests). A timed-out request
   * may still be delivered later (it stays queued); its late response is dropped.
   *
   * @example
   * ```ts
   * const reply = await agent.request("worker-1", { n: 7 }, { timeoutMs: 5000 });
   * console.log(reply.data); // e.g. { n: 7, square: 49 }
   * ```
   */
  async request(
    target: Target,
    payload: Payload,
    opts: RequestOptions = {},
  ): Promise<AgentMessage> {
    this.#assertOpen();
    return await this.#request(this.#resolve(target), payload, opts);
  }

  /**
   * Serve requests: `handler`'s return value (string, bytes or JSON value) is sent back as the
   * response; a thrown error is sent back as an error. One handler per agent (a new one
   * replaces the old); returns the function that removes it. Requests that arrive within 5 s of
   * start, before the first handler is set, wait for it; any other request that finds no handler
   * is answered with a `NO_HANDLER` error.
   *
   * @example
   * ```ts
   * agent.onRequest((from, payload) => {
   *   const { n } = payload as { n: number };
   *   return { n, square: n * n };
   * });
   * ```
   */
  onRequest(handler: RequestHandler): () => void {
    this.#requestHandler = handler;
    if (this.#graceTimer !== null) clearTimeout(this.#graceTimer);
    this.#graceTimer = null; // from now on, requests without a handler get NO_HANDLER at once
    const waiting = this.#requestBacklog;
    this.#requestBacklog = [];
    for (const r of waiting) this.#serve(r.msg, r.rpcId);
    return () => {
      if (this.#requestHandler === handler) this.#requestHandler = null;
    };
  }

  // -------------------------------------------------------------------------------------------
  // Capabilities

  /** This agent's advertised capabilities. */
  get capabilities(): string[] {
    return this.#node.mesh.registry.localCapabilities();
  }

  /**
   * Add capabilities (`namespace:name`) and announce the new set to the mesh at once; returns
   * the whole set. Note: a peer that pinned this agent binds its first non-empty set; a later
   * different set makes that peer hold this agent's messages (`pending-cap-change`) until its
   * operator accepts the change (`ironmesh trust cap-promote`). Prefer the `capabilities`
   * start option for a fixed set.
   */
  advertise(...caps: string[]): string[] {
    this.#assertOpen();
    validCapabilities(caps, "advertise");
    const set = new Set([...this.capabilities, ...caps]);
    this.#node.mesh.setLocalCapabilities([...set]);
    return this.capabilities;
  }

  /** Remove capabilities and announce the new set (see `advertise` about peers' binding). */
  withdraw(...caps: string[]): string[] {
    this.#assertOpen();
    const drop = new Set(caps);
    this.#node.mesh.setLocalCapabilities(this.capabilities.filter((c) => !drop.has(c)));
    return this.capabilities;
  }

  /**
   * Capabilities known in the mesh matching a glob (`*`, `?`, `[...]`; default `*`), this
   * agent's own first, with reachability.
   *
   * @example
   * ```ts
   * for (const c of agent.discover("llm:*")) console.log(c.capability, c.name, c.hops);
   * ```
   */
  discover(pattern = "*"): CapabilityInfo[] {
    this.#assertOpen();
    return this.#node.mesh.findCapabilities(pattern).map((r) => ({
      capability: r.capability,
      nodeId: r.node_id,
      name: r.name,
      local: r.local,
      reachable: r.reachable,
      hops: r.hops,
    }));
  }

  /**
   * Resolve when at least `count` (default 1) other nodes offering a capability matching
   * `pattern` are reachable; rejects with `CAPABILITY_TIMEOUT` after `timeoutMs` (30,000).
   */
  waitForCapability(
    pattern: string,
    opts: { count?: number; timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<CapabilityInfo[]> {
    this.#assertOpen();
    const count = opts.count ?? 1;
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const found = () => {
      const rows = this.discover(pattern).filter((r) => !r.local && r.reachable);
      return new Set(rows.map((r) => r.nodeId)).size >= count ? rows : null;
    };
    return this.#waitFor(
      found,
      (recheck) => {
        const t = setInterval(recheck, 50);
        return () => clearInterval(t);
      },
      timeoutMs,
      opts.signal,
      () =>
        new IronMeshError(
          "CAPABILITY_TIMEOUT",
          `fewer than ${count} reachable node(s) offer "${pattern}" after ${timeoutMs / 1000} s`,
          "check that the workers run, are connected, and advertise that capability",
          ExitCode.NOT_FOUND,
        ),
    );
  }

  /**
   * Send `payload` to the node(s) offering a capability matching `pattern`: `first` — the
   * nearest, `random` — one reachable at random, `all` — every known one. Rejects with
   * `NO_CAPABILITY` when none is known.
   */
  async sendToCapability(
    pattern: string,
    payload: Payload,
    strategy: Strategy = "first",
    opts: SendOptions = {},
  ): Promise<SendResult[]> {
    this.#assertOpen();
    const { bytes } = encodePayload(payload);
    const ids = this.#node.mesh.selectCapability(pattern, strategy);
    return await this.#submit(ids, bytes, "MSG", opts);
  }

  /**
   * `request` to one node offering a capability matching `pattern` (`first` or `random`).
   *
   * @example
   * ```ts
   * const r = await client.requestCapability("job:square", { n: 12 }, { strategy: "random" });
   * ```
   */
  async requestCapability(
    pattern: string,
    payload: Payload,
    opts: RequestOptions & { strategy?: "first" | "random" } = {},
  ): Promise<AgentMessage> {
    this.#assertOpen();
    const strategy = opts.strategy ?? "first";
    if (strategy !== "first" && strategy !== "random") {
      throw optionError(`strategy must be first or random, got '${strategy}'`, "fix strategy");
    }
    const [to] = this.#node.mesh.selectCapability(pattern, strategy);
    return await this.#request(to, payload, opts);
  }

  // -------------------------------------------------------------------------------------------
  // Close

  /**
   * Stop: running request handlers get up to 2 s to answer, then every peer gets a GOODBYE,
   * the files are flushed and the state directory is unlocked. Pending requests reject with
   * `AGENT_CLOSED`; `messages()` iterators end. Safe to call twice.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** `await using agent = await Agent.start(…)` closes it at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    if (this.#graceTimer !== null) clearTimeout(this.#graceTimer);
    this.#graceTimer = null;
    this.#requestBacklog = [];
    if (this.#serving.size) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled([...this.#serving]),
        new Promise((r) => timer = setTimeout(r, CLOSE_HANDLER_WAIT_MS)),
      ]);
      clearTimeout(timer);
    }
    for (const l of [...this.#closeListeners]) l();
    this.#closeListeners.clear();
    for (const p of [...this.#pending.values()]) p.reject(closedError());
    this.#pending.clear();
    for (const s of [...this.#subscriptions]) s.end();
    this.#subscriptions.clear();
    this.#handlers.clear();
    this.#peerHandlers.clear();
    this.#backlog = [];
    await this.#discovery?.stop().catch(() => {});
    this.#discovery = null;
    try {
      await this.#node.stop();
    } finally {
      this.#unsubscribe();
      this.#node.identity.wipe();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Internals

  #assertOpen(): void {
    if (this.closed) throw closedError();
  }

  #resolve(target: Target): string {
    if (typeof target === "object" && target !== null) {
      const id = String(target.id).toLowerCase();
      if (!isNodeId(id)) {
        throw optionError(`'${target.id}' is not a node id`, "pass a name or a 32-hex node id");
      }
      return id;
    }
    try {
      return resolveTarget(this.#node, String(target));
    } catch (e) {
      if (e instanceof IronMeshError && e.code === "TRUST_UNKNOWN_PEER") {
        throw new IronMeshError(
          e.code,
          e.message,
          "wait until the peer is online (agent.waitForPeer) or pass its full node id",
          e.exitCode,
        );
      }
      throw e;
    }
  }

  /** Send to each of `ids`; with `waitForDelivery` wait until every one acknowledged. */
  async #submit(
    ids: string[],
    bytes: Uint8Array,
    msgType: string,
    opts: SendOptions & { msgId?: string },
  ): Promise<SendResult[]> {
    const priority = normalizePriority(opts.priority);
    const wait = opts.waitForDelivery ?? false;
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const delivered = new Set<string>();
    let recheck = () => {};
    // Subscribe before sending: the ACK can arrive before `send` resolves.
    const unsub = wait
      ? this.#node.bus.subscribe((e) => {
        if (e.type === "delivered") {
          delivered.add(e.msgId);
          recheck();
        }
      })
      : () => {};
    try {
      const sent = [];
      for (const to of ids) {
        sent.push(await this.#node.send(to, bytes, { msgType, priority, msgId: opts.msgId }));
      }
      if (!wait) return sent.map((s) => ({ id: s.msgId, to: s.to, status: s.status }));
      const msgIds = sent.map((s) => s.msgId);
      await this.#waitFor(
        () => msgIds.every((id) => delivered.has(id)) || null,
        (r) => {
          recheck = r;
          return () => {};
        },
        timeoutMs,
        opts.signal,
        () =>
          new IronMeshError(
            "NOT_DELIVERED",
            `message ${
              msgIds.filter((id) => !delivered.has(id)).join(", ")
            } is queued but was not delivered within ${timeoutMs / 1000} s`,
            "it stays queued and is delivered when the peer is back (see agent.peers)",
            ExitCode.NETWORK,
          ),
      );
      return sent.map((s) => ({ id: s.msgId, to: s.to, status: "delivered" as const }));
    } finally {
      unsub();
    }
  }

  async #request(to: string, payload: Payload, opts: RequestOptions): Promise<AgentMessage> {
    const timeoutMs = opts.timeoutMs ?? this.#requestTimeoutMs;
    const id = crypto.randomUUID();
    const body = encodeRpcRequest(id, payload);
    const name = this.#node.peers.get(to)?.peer.name || this.#node.mesh.nameOf(to) || to;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort = () => {};
    const answer = new Promise<AgentMessage>((resolve, reject) => {
      const settle = () => {
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
        this.#pending.delete(id);
      };
      this.#pending.set(id, {
        resolve: (m) => (settle(), resolve(m)),
        reject: (e) => (settle(), reject(e)),
      });
      timer = setTimeout(() => {
        this.#pending.get(id)?.reject(
          new IronMeshError(
            "REQUEST_TIMEOUT",
            `no response from ${name} within ${timeoutMs / 1000} s`,
            "check that the peer is online and serves requests (agent.onRequest), or raise timeoutMs",
            ExitCode.NETWORK,
          ),
        );
      }, timeoutMs);
      onAbort = () =>
        this.#pending.get(id)?.reject(
          new IronMeshError("REQUEST_ABORTED", "the request was aborted", "", ExitCode.FAILURE),
        );
      if (opts.signal?.aborted) onAbort();
      else opts.signal?.addEventListener("abort", onAbort, { once: true });
    });
    try {
      await this.#node.send(to, body, {
        msgType: REQ_TYPE,
        priority: normalizePriority(opts.priority),
        msgId: id,
      });
    } catch (e) {
      this.#pending.get(id)?.reject(e);
    }
    return await answer;
  }

  /** Poll `check` (again whenever `arm`'s callback fires) until it returns non-null. */
  #waitFor<T>(
    check: () => T | null | false,
    arm: (recheck: () => void) => () => void,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    timeoutError: () => IronMeshError,
  ): Promise<T> {
    const first = check();
    if (first) return Promise.resolve(first);
    return new Promise<T>((resolve, reject) => {
      let disarm = () => {};
      const finish = (f: () => void) => {
        clearTimeout(timer);
        disarm();
        signal?.removeEventListener("abort", onAbort);
        this.#closeListeners.delete(onClose);
        f();
      };
      const timer = setTimeout(() => finish(() => reject(timeoutError())), timeoutMs);
      const onAbort = () =>
        finish(() =>
          reject(new IronMeshError("ABORTED", "stopped waiting (aborted)", "", ExitCode.FAILURE))
        );
      const onClose = () => finish(() => reject(closedError()));
      this.#closeListeners.add(onClose);
      signal?.addEventListener("abort", onAbort, { once: true });
      disarm = arm(() => {
        const v = check();
        if (v) finish(() => resolve(v));
      });
      if (signal?.aborted) onAbort();
    });
  }

  #onEvent(e: NodeEvent): void {
    if (this.closed) return;
    if (e.type === "message-in") {
      if (e.disposition !== "delivered") return; // held for an operator; re-published on release
      this.#onMessageIn(e);
    } else if (e.type === "peer-up" || e.type === "peer-down") {
      const ev: PeerEvent = {
        type: e.type === "peer-up" ? "up" : "down",
        peer: { id: e.peer.nodeId, name: e.peer.name, address: e.peer.address },
        ...(e.type === "peer-down" ? { reason: e.reason } : {}),
      };
      for (const h of this.#peerHandlers) {
        try {
          h(ev);
        } catch (err) {
          this.#node.log.error("onPeer handler failed", { error: String(err) });
        }
      }
    }
  }

  #onMessageIn(e: Extract<NodeEvent, { type: "message-in" }>): void {
    const from = { id: e.from, name: e.fromName || this.#node.mesh.nameOf(e.from) || "" };
    const rpc = parseRpc(e.msgType, e.payload);
    const base = { id: e.msgId, from, type: e.msgType, timestamp: e.timestamp };
    if (rpc?.kind === "request") {
      const msg = new AgentMessage({ ...base, ...rpc.body });
      if (this.#requestHandler) this.#serve(msg, rpc.id);
      else if (this.#graceTimer !== null) this.#requestBacklog.push({ msg, rpcId: rpc.id });
      else this.#replyNoHandler(msg.from.id, rpc.id);
      return;
    }
    if (rpc) {
      const p = this.#pending.get(rpc.id);
      if (!p) {
        this.#node.log.debug("response to an unknown or expired request dropped", {
          id: rpc.id,
          peer: e.from,
        });
        return;
      }
      if (rpc.kind === "response") p.resolve(new AgentMessage({ ...base, ...rpc.body }));
      else {
        p.reject(
          new IronMeshError(
            rpc.code,
            `${from.name || from.id} answered with an error: ${rpc.message}`,
            rpc.code === "NO_HANDLER"
              ? "that agent does not serve requests (agent.onRequest)"
              : "see the serving agent's handler",
            ExitCode.FAILURE,
          ),
        );
      }
      return;
    }
    this.#deliver(new AgentMessage({ ...base, bytes: e.payload }));
  }

  #deliver(msg: AgentMessage): void {
    if (this.#handlers.size === 0 && this.#subscriptions.size === 0) {
      this.#backlog.push(msg);
      if (this.#backlog.length > this.#inboxLimit) this.#backlog.shift();
      return;
    }
    for (const h of this.#handlers) this.#call(h, msg);
    for (const s of this.#subscriptions) s.push(msg);
  }

  #takeBacklog(): AgentMessage[] {
    const b = this.#backlog;
    this.#backlog = [];
    return b;
  }

  #call(h: MessageHandler, msg: AgentMessage): void {
    const fail = (err: unknown) =>
      this.#node.log.error("onMessage handler failed", { msg_id: msg.id, error: String(err) });
    try {
      const r = h(msg.from, msg.data, msg);
      if (r instanceof Promise) r.catch(fail);
    } catch (err) {
      fail(err);
    }
  }

  #replyNoHandler(to: string, rpcId: string): void {
    this.#reply(
      to,
      rpcId,
      encodeRpcError(rpcId, "NO_HANDLER", "this agent does not serve requests"),
    );
  }

  #refuseBackloggedRequests(): void {
    const waiting = this.#requestBacklog;
    this.#requestBacklog = [];
    for (const r of waiting) this.#replyNoHandler(r.msg.from.id, r.rpcId);
  }

  #serve(msg: AgentMessage, rpcId: string): void {
    const handler = this.#requestHandler!;
    const run = (async () => {
      let reply: Uint8Array;
      try {
        const out = await handler(msg.from, msg.data, msg);
        reply = encodeRpcResponse(rpcId, out === undefined ? null : out);
      } catch (e) {
        const code = e instanceof IronMeshError ? e.code : "HANDLER_ERROR";
        reply = encodeRpcError(rpcId, code, e instanceof Error ? e.message : String(e));
      }
      await this.#reply(msg.from.id, rpcId, reply);
    })();
    this.#serving.add(run);
    run.finally(() => this.#serving.delete(run));
  }

  async #reply(to: string, rpcId: string, payload: Uint8Array): Promise<void> {
    try {
      await this.#node.send(to, payload, { msgType: RESP_TYPE });
    } catch (e) {
      if (e instanceof IronMeshError && e.code === "MESSAGE_TOO_LARGE") {
        await this.#node.send(to, encodeRpcError(rpcId, e.code, e.message), {
          msgType: RESP_TYPE,
        }).catch(() => {});
        return;
      }
      this.#node.log.warn("cannot send the response", { to, id: rpcId, error: String(e) });
    }
  }
}
