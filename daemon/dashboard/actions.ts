/**
 * The reference's dashboard actions (PROTOCOL-0.9 §14), shared by the WebSocket and
 * `POST /api/action`: `{"action": …, …fields}` in, one reply object out. Every reply carries
 * `action` and, when the request had one, the client's `id` (a string or number) so replies
 * can be matched to requests. Failures answer `send_error {error, code, hint}` (the trust
 * actions answer their `*_ack` with `ok: false` and `error`, as the reference does).
 */
import { ExitCode, IronMeshError } from "../../lib/errors.ts";
import { compileGlob } from "../../lib/routing/glob.ts";
import { HISTORY_MAX_LIMIT } from "../../lib/store/history.ts";
import type { Priority } from "../../lib/wire/session.ts";
import { inboxEntry, resolveTarget } from "../control_api.ts";
import { MAX_PAYLOAD_BYTES } from "../node.ts";
import {
  ApiError,
  type DashboardContext,
  pendingCapView,
  pendingTrustView,
  stateView,
  statusOfError,
} from "./api.ts";

/** A reply to an action. */
export type Reply = { type: string } & Record<string, unknown>;

/** Message types the send form may use. */
export const SEND_TYPES = ["MSG", "REQ", "RESP"] as const;
const PRIORITIES = ["LOW", "NORMAL", "HIGH", "CRITICAL"];

/** Every action name. */
export const ACTIONS = [
  "send_message",
  "get_history",
  "refresh",
  "list_pending_trust",
  "promote_peer",
  "block_peer",
  "list_pending_cap",
  "cap_promote_peer",
  "cap_reject_peer",
  "rotate_session",
  "broadcast_revocation",
] as const;

/** The message of the mesh-only actions until routing is wired. */
export const MESH_DISABLED_MESSAGE = "not available until mesh routing is enabled";

function bad(message: string, hint = ""): ApiError {
  return new ApiError(400, "BAD_REQUEST", message, hint);
}

function str(
  msg: Record<string, unknown>,
  key: string,
  opts: { required?: boolean; max?: number } = {},
): string | undefined {
  const v = msg[key];
  if (v === undefined || v === null || v === "") {
    if (opts.required) throw bad(`${key} required`, `give ${key} as a string`);
    return undefined;
  }
  if (typeof v !== "string") throw bad(`${key} must be a string`);
  if (v.length > (opts.max ?? 256)) throw bad(`${key} is too long (at most ${opts.max ?? 256})`);
  return v;
}

/** A node argument: full id, unique id prefix or name (trust store, then live links). */
function target(ctx: DashboardContext, arg: string): string {
  return resolveTarget(ctx.node, arg.trim());
}

/** HTTP statuses of error replies (for `POST /api/action`; not part of the reply itself). */
const statuses = new WeakMap<Reply, number>();

/** The HTTP status for a reply: its error's, 409 for a failed trust action, else 200. */
export function replyStatus(r: Reply): number {
  return statuses.get(r) ?? (r.ok === false ? 409 : 200);
}

function errorReply(e: unknown, action: string): Reply {
  const known = e instanceof ApiError || e instanceof IronMeshError;
  const r: Reply = {
    type: "send_error",
    action,
    error: known ? e.message : e instanceof Error ? e.message : String(e),
    code: known ? e.code : "FAILED",
    hint: known ? e.hint : "",
  };
  statuses.set(
    r,
    e instanceof ApiError ? e.status : e instanceof IronMeshError ? statusOfError(e) : 500,
  );
  return r;
}

/** Run one action; never throws (errors become replies). */
export async function runAction(
  ctx: DashboardContext,
  msg: Record<string, unknown>,
): Promise<Reply> {
  const action = typeof msg.action === "string" ? msg.action : "";
  const id = msg.id;
  const withId = (r: Reply): Reply => {
    r.action = action;
    if ((typeof id === "string" && id.length <= 64) || typeof id === "number") r.id = id;
    return r;
  };
  try {
    if (!action) throw bad("action required", `one of: ${ACTIONS.join(", ")}`);
    return withId(await dispatch(ctx, action, msg));
  } catch (e) {
    if (!(e instanceof ApiError) && !(e instanceof IronMeshError)) {
      ctx.log.error("dashboard action failed", { action, error: String(e) });
    }
    return withId(errorReply(e, action));
  }
}

async function dispatch(
  ctx: DashboardContext,
  action: string,
  msg: Record<string, unknown>,
): Promise<Reply> {
  const node = ctx.node;
  switch (action) {
    case "send_message":
      return await sendMessage(ctx, msg);
    case "get_history": {
      const peerArg = str(msg, "peer_id");
      const raw = msg.limit ?? 50;
      if (typeof raw !== "number" || !Number.isFinite(raw)) throw bad("limit must be a number");
      const limit = Math.min(HISTORY_MAX_LIMIT, Math.max(1, Math.floor(raw)));
      const peer = peerArg === undefined ? undefined : target(ctx, peerArg);
      const messages = node.store.history.query({ peer, limit, order: "newest" }).reverse()
        .map(inboxEntry);
      return { type: "history", peer_id: peer ?? null, messages };
    }
    case "refresh":
      return { type: "snapshot", data: stateView(ctx) };
    case "list_pending_trust":
      return {
        type: "pending_trust_list",
        pending: pendingTrustView(ctx),
        gate_enabled: node.gateEnabled,
      };
    case "list_pending_cap":
      return { type: "pending_cap_list", pending: pendingCapView(ctx) };
    case "promote_peer":
    case "block_peer": {
      const promote = action === "promote_peer";
      const arg = str(msg, "target_node_id", { required: true })!;
      const type = promote ? "promote_ack" : "block_ack";
      try {
        const id = target(ctx, arg);
        const before = node.store.pendingTrust.count(id);
        const r = await ctx.trust.setState(id, promote ? "trusted" : "blocked");
        const after = node.store.pendingTrust.count(id);
        return promote
          ? { type, target: id, ok: true, drained: before - after, new_state: r.newState ?? null }
          : {
            type,
            target: id,
            ok: true,
            discarded: before - after,
            new_state: r.newState ?? null,
          };
      } catch (e) {
        return { type, target: arg, ok: false, error: (e as Error).message };
      }
    }
    case "cap_promote_peer":
    case "cap_reject_peer": {
      const accept = action === "cap_promote_peer";
      const arg = str(msg, "target_node_id", { required: true })!;
      const block = msg.block === undefined ? false : msg.block;
      if (typeof block !== "boolean") throw bad("block must be true or false");
      const type = accept ? "cap_promote_ack" : "cap_reject_ack";
      try {
        const id = target(ctx, arg);
        const before = node.store.pendingTrust.count(id);
        const r = accept ? await ctx.trust.capPromote(id) : await ctx.trust.capReject(id, block);
        const after = node.store.pendingTrust.count(id);
        return accept
          ? { type, node_id: id, ok: true, drained: before - after, new_state: r.newState ?? null }
          : {
            type,
            node_id: id,
            ok: true,
            discarded: before - after,
            blocked: block,
            new_state: r.newState ?? null,
          };
      } catch (e) {
        return { type, node_id: arg, ok: false, error: (e as Error).message };
      }
    }
    case "rotate_session": {
      const arg = str(msg, "peer_id", { required: true })!;
      const id = target(ctx, arg);
      const link = node.peers.get(id);
      if (!link) throw new ApiError(409, "PEER_OFFLINE", `Peer ${id} not online`, "wait for it");
      if (!link.rekey()) {
        throw new ApiError(
          409,
          "REKEY_IN_PROGRESS",
          `a session rotation with ${id} is already in progress`,
          "try again in a moment",
        );
      }
      return { type: "rotate_ack", peer_id: id };
    }
    case "broadcast_revocation": {
      const arg = str(msg, "target_node_id", { required: true })!;
      const reason = str(msg, "reason", { max: 500 }) ?? "";
      const view = node.meshView;
      if (!view.routingEnabled || !view.broadcastRevocation) {
        throw new ApiError(
          501,
          "MESH_DISABLED",
          MESH_DISABLED_MESSAGE,
          "revoke locally with `ironmesh trust revoke`; broadcasting needs mesh routing",
        );
      }
      const id = target(ctx, arg);
      await view.broadcastRevocation(id, reason);
      return { type: "revoke_ack", target: id };
    }
    case "start_dialogue":
      throw new ApiError(
        501,
        "UNSUPPORTED",
        "start_dialogue is not supported by this daemon",
        "LLM dialogues are not part of ironmesh",
      );
    default:
      throw new ApiError(
        400,
        "UNKNOWN_ACTION",
        `Unknown action: ${action.slice(0, 64)}`,
        `one of: ${ACTIONS.join(", ")}`,
      );
  }
}

async function sendMessage(ctx: DashboardContext, msg: Record<string, unknown>): Promise<Reply> {
  const node = ctx.node;
  const toNode = str(msg, "to_node");
  const toCap = str(msg, "to_capability");
  if ((toNode === undefined) === (toCap === undefined)) {
    throw bad(
      toNode === undefined ? "to_node required" : "give to_node or to_capability, not both",
      "name a peer (to_node) or a capability pattern (to_capability)",
    );
  }
  const msgType = str(msg, "msg_type") ?? "MSG";
  if (!(SEND_TYPES as readonly string[]).includes(msgType)) {
    throw bad(`msg_type must be one of ${SEND_TYPES.join(", ")}`);
  }
  const priority = str(msg, "priority") ?? "NORMAL";
  if (!PRIORITIES.includes(priority)) throw bad(`priority must be one of ${PRIORITIES.join(", ")}`);
  const payload = msg.payload;
  if (typeof payload !== "string") throw bad("payload required", "the message text, a string");
  const bytes = new TextEncoder().encode(payload);
  if (bytes.length > MAX_PAYLOAD_BYTES) {
    throw new ApiError(
      413,
      "MESSAGE_TOO_LARGE",
      `message of ${bytes.length} bytes exceeds the ${MAX_PAYLOAD_BYTES}-byte limit`,
      "split it into smaller messages",
    );
  }
  let to: string;
  let capability: string | null = null;
  if (toNode !== undefined) to = target(ctx, toNode);
  else {
    capability = toCap!;
    to = pickCapable(ctx, capability);
  }
  const r = await node.send(to, bytes, { msgType, priority: priority as Priority });
  return {
    type: "send_ack",
    msg_id: r.msgId,
    to,
    to_name: node.peers.get(to)?.peer.name ?? node.trust.namesOf(to)[0] ?? "",
    capability,
    status: r.status,
  };
}

/** The first node offering a capability matching `pattern` (online peers first). */
function pickCapable(ctx: DashboardContext, pattern: string): string {
  const node = ctx.node;
  const match = compileGlob(pattern);
  const ids = new Set<string>();
  for (const c of node.meshView.capabilities()) {
    if (!match(c.capability)) continue;
    for (const id of c.nodeIds) if (id !== node.nodeId) ids.add(id);
  }
  const list = [...ids].sort((a, b) => Number(!node.peers.get(a)) - Number(!node.peers.get(b)));
  if (!list.length) {
    throw new IronMeshError(
      "NO_CAPABILITY",
      `no known node offers a capability matching "${pattern}"`,
      node.meshView.routingEnabled
        ? "see the capability list on the dashboard (/api/capabilities)"
        : "capabilities are learned over mesh routing, which is not enabled yet",
      ExitCode.NOT_FOUND,
    );
  }
  return list[0];
}
