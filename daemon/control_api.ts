/**
 * The daemon's methods on the control socket: `status`, `peers`, `send` (to a peer, or to the
 * nodes offering a capability), `caps`, `caps.advertise` / `caps.withdraw` (change this node's
 * own capabilities live), `inbox`, `inbox.follow` (a stream). The trust methods are registered
 * by `trust_control.ts`.
 */
import { fromB64, toB64 } from "../lib/crypto/sodium.ts";
import { ExitCode, IronMeshError } from "../lib/errors.ts";
import type { HistoryMessage } from "../lib/store/history.ts";
import { isNodeId } from "../lib/identity/node_id.ts";
import type { CapabilityStrategy } from "../lib/routing/capabilities.ts";
import { resolvePeer } from "../lib/trust/resolve.ts";
import type { Priority } from "../lib/wire/session.ts";
import { VERSION } from "../lib/version.ts";
import type { Logger } from "../lib/log.ts";
import {
  ControlServer,
  optionalBool,
  optionalInt,
  optionalString,
  requireString,
} from "./control.ts";
import type { MeshNode } from "./node.ts";
import { registerTrustMethods } from "./trust_control.ts";

const PRIORITIES = ["LOW", "NORMAL", "HIGH", "CRITICAL"];

/** A message as the control API shows it. */
export interface InboxEntry {
  msg_id: string;
  from: string;
  from_name: string;
  to: string;
  type: string;
  direction: string;
  timestamp: number;
  /** UTF-8 text when the payload decodes as such, else null (then see payload_b64). */
  text: string | null;
  payload_b64: string;
}

/** What the `status` method returns. */
export interface NodeStatus {
  node_id: string;
  name: string;
  version: string;
  pid: number;
  uptime_s: number;
  listen: string | null;
  peers_online: number;
  peers_known: number;
  queued: number;
  pending_trust: { node_id: string; count: number }[];
  trust_read_only: string | null;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function asText(b: Uint8Array): string | null {
  try {
    return strictUtf8.decode(b);
  } catch {
    return null;
  }
}

/** One history row for the API. */
export function inboxEntry(m: HistoryMessage): InboxEntry {
  return {
    msg_id: m.msgId,
    from: m.source,
    from_name: m.sourceDisplay ?? m.source,
    to: m.destination,
    type: m.msgType,
    direction: m.direction,
    timestamp: m.timestamp,
    text: asText(m.payload),
    payload_b64: toB64(m.payload),
  };
}

/**
 * Resolve a peer argument: trust-store names/ids/prefixes, then names of live links, then
 * nodes known over the mesh (a full node id — queued until it is reachable — or a unique
 * prefix of a routed or capability-announcing node's id).
 */
export function resolveTarget(node: MeshNode, arg: string): string {
  try {
    return resolvePeer(node.trust.data, arg, { includeRevoked: false }).nodeId;
  } catch (e) {
    const live = node.peers.entries().filter((x) => x.link.peer.name === arg);
    if (live.length === 1) return live[0].link.nodeId;
    const a = arg.trim().toLowerCase();
    if (node.trust.isRevoked(a)) throw e;
    if (isNodeId(a) && a !== node.nodeId) return a;
    if (a.length >= 4 && /^[0-9a-f]+$/.test(a)) {
      const known = new Set([
        ...node.mesh.table.routes().map((r) => r.destination),
        ...node.mesh.registry.remoteNodes(),
      ]);
      const hits = [...known].filter((id) => id.startsWith(a) && !node.trust.isRevoked(id));
      if (hits.length === 1) return hits[0];
    }
    throw e;
  }
}

/** A capability as `ironmesh run --capability` takes it: NAMESPACE:NAME. */
const CAPABILITY_RE = /^[A-Za-z0-9._-]{1,64}:[A-Za-z0-9._*-]{1,128}$/;

function requireCapability(params: Record<string, unknown>): string {
  const c = requireString(params, "capability").trim();
  if (!CAPABILITY_RE.test(c)) {
    throw new IronMeshError(
      "BAD_CAPABILITY",
      `a capability is NAMESPACE:NAME (letters, digits, '.', '_', '-'), got '${c}'`,
      "for example llm:chat or tool:search",
      ExitCode.BAD_INPUT,
    );
  }
  return c;
}

/** Register the node's methods. */
export function registerNodeMethods(server: ControlServer, node: MeshNode): void {
  server.handle("status", (): NodeStatus => {
    const peers = node.peerStatus();
    const queued = [...node.store.queue.pendingCounts().values()].reduce((a, b) => a + b, 0);
    return {
      node_id: node.nodeId,
      name: node.name,
      version: VERSION,
      pid: Deno.pid,
      uptime_s: Math.round((Date.now() - node.startedAt) / 1000),
      listen: node.listener ? `${node.listener.hostname}:${node.listener.port}` : null,
      peers_online: peers.filter((p) => p.online).length,
      peers_known: peers.length,
      queued,
      pending_trust: node.store.pendingTrust.summary().map((s) => ({
        node_id: s.sourceNodeId,
        count: s.queuedCount,
      })),
      trust_read_only: node.trust.readOnly ? node.trust.readOnlyReason : null,
    };
  });

  server.handle("peers", () => node.peerStatus());

  server.handle("caps", (params) => {
    const pattern = optionalString(params, "pattern") ?? "*";
    return {
      routing_enabled: node.mesh.routingEnabled,
      local: node.mesh.registry.localCapabilities(),
      capabilities: node.mesh.findCapabilities(pattern),
    };
  });

  server.handle("caps.advertise", (params) => {
    const capability = requireCapability(params);
    const local = node.mesh.registry.localCapabilities();
    const changed = node.mesh.setLocalCapabilities([...local, capability]);
    return { changed, capability, local: node.mesh.registry.localCapabilities() };
  });

  server.handle("caps.withdraw", (params) => {
    const capability = requireCapability(params);
    const local = node.mesh.registry.localCapabilities();
    const changed = node.mesh.setLocalCapabilities(local.filter((c) => c !== capability));
    return { changed, capability, local: node.mesh.registry.localCapabilities() };
  });

  server.handle("send", async (params, ctx) => {
    const cap = optionalString(params, "cap");
    const strategy = (optionalString(params, "strategy") ?? "first") as CapabilityStrategy;
    if (cap !== undefined && params.to != null) {
      throw new IronMeshError(
        "BAD_PARAMS",
        "send takes either to or cap, not both",
        "name a peer, or --cap PATTERN to pick nodes by capability",
        ExitCode.USAGE,
      );
    }
    const targets = cap !== undefined
      ? node.mesh.selectCapability(cap, strategy)
      : [resolveTarget(node, requireString(params, "to"))];
    const text = optionalString(params, "text");
    const b64 = optionalString(params, "payload_b64");
    if ((text === undefined) === (b64 === undefined)) {
      throw new IronMeshError(
        "BAD_PARAMS",
        "send needs exactly one of text or payload_b64",
        "pass the message text (or @file / - for bytes)",
        ExitCode.BAD_INPUT,
      );
    }
    const payload = text !== undefined ? new TextEncoder().encode(text) : fromB64(b64!);
    const type = optionalString(params, "type") ?? "MSG";
    const priority = optionalString(params, "priority") ?? "NORMAL";
    if (!PRIORITIES.includes(priority)) {
      throw new IronMeshError(
        "BAD_PARAMS",
        `priority must be one of ${PRIORITIES.join(", ")}`,
        "pass --priority LOW|NORMAL|HIGH|CRITICAL",
        ExitCode.BAD_INPUT,
      );
    }
    const wait = optionalBool(params, "wait") ?? false;
    const timeoutMs = optionalInt(params, "timeout_ms", { min: 1, max: 3_600_000 }) ?? 30_000;
    // Subscribe before sending: the ACK can arrive before `send` resolves.
    const deliveredIds = new Set<string>();
    let notify = () => {};
    const unsub = wait
      ? node.bus.subscribe((e) => {
        if (e.type === "delivered") {
          deliveredIds.add(e.msgId);
          notify();
        }
      })
      : () => {};
    const sent = [];
    try {
      for (const to of targets) {
        sent.push(await node.send(to, payload, { msgType: type, priority: priority as Priority }));
      }
      if (wait) {
        const ids = sent.map((r) => r.msgId);
        const done = () => ids.every((id) => deliveredIds.has(id));
        const ok = done() || await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), timeoutMs);
          ctx.signal.addEventListener("abort", () => resolve(false));
          notify = () => {
            if (done()) {
              clearTimeout(timer);
              resolve(true);
            }
          };
        });
        if (!ok) {
          const late = ids.filter((id) => !deliveredIds.has(id)).join(", ");
          throw new IronMeshError(
            "NOT_DELIVERED",
            `message ${late} is queued but was not delivered within ${timeoutMs / 1000} s`,
            "it stays queued and is delivered when the peer is back; see 'ironmesh peers'",
            ExitCode.NETWORK,
          );
        }
      }
    } finally {
      unsub();
    }
    const rows = sent.map((r) => ({
      msg_id: r.msgId,
      to: r.to,
      status: wait ? "delivered" : r.status,
    }));
    return cap === undefined ? rows[0] : { ...rows[0], sent: rows };
  });

  server.handle("inbox", (params) => {
    const from = optionalString(params, "from");
    const since = params.since == null ? undefined : Number(params.since);
    const limit = optionalInt(params, "limit", { min: 1, max: 5000 }) ?? 100;
    return node.store.history.query({
      direction: "inbound",
      source: from === undefined ? undefined : resolveTarget(node, from),
      since,
      limit,
      order: "newest",
    }).reverse().map(inboxEntry);
  });

  server.handle("inbox.follow", (params, ctx) => {
    const from = optionalString(params, "from");
    const source = from === undefined ? undefined : resolveTarget(node, from);
    return (async function* () {
      let cursor = node.store.history.maxRowid();
      const wake = { fn: null as null | (() => void) };
      const unsub = node.bus.subscribe((e) => {
        if (e.type === "message-in") wake.fn?.();
      });
      const onAbort = () => wake.fn?.();
      ctx.signal.addEventListener("abort", onAbort);
      try {
        while (!ctx.signal.aborted) {
          const rows = node.store.history.follow(cursor, {
            direction: "inbound",
            source,
            limit: 500,
          });
          for (const m of rows) {
            cursor = m.rowid;
            yield inboxEntry(m);
          }
          if (rows.length) continue;
          await new Promise<void>((r) => {
            wake.fn = r;
            setTimeout(r, 1000);
          });
          wake.fn = null;
        }
      } finally {
        unsub();
        ctx.signal.removeEventListener("abort", onAbort);
      }
    })();
  });
}

/**
 * Serve `node`'s control socket in `stateDir`: these methods and the trust methods. When the
 * socket cannot start, the node is stopped and the error rethrown.
 */
export async function serveControl(
  node: MeshNode,
  stateDir: string,
  log: Logger,
): Promise<ControlServer> {
  const control = new ControlServer(stateDir, { log });
  registerNodeMethods(control, node);
  registerTrustMethods(control, node);
  try {
    await control.start();
  } catch (e) {
    await node.stop();
    throw e;
  }
  return control;
}
