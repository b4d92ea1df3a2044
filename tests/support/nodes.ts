// In-process nodes for daemon tests: throw-away identities and state dirs, the in-memory
// network (or real WebSocket on 127.0.0.1), and a fast storage key (no Argon2id per node).
import { generateIdentity } from "../../lib/identity/keyfile.ts";
import { storageKeyFromIkm } from "../../lib/store/storage_key.ts";
import { sha256 } from "../../lib/crypto/sodium.ts";
import { Logger } from "../../lib/log.ts";
import { MeshNode, type NodeOptions } from "../../daemon/node.ts";
import type { NodeEvent } from "../../daemon/events.ts";
import { waitFor } from "./wait.ts";

export const MESH_PASS = "a-mesh-passphrase-for-tests";

/** Start a node named `name` in a fresh temp dir (or `stateDir`). */
export async function startNode(
  name: string,
  opts: Partial<NodeOptions> = {},
): Promise<MeshNode> {
  const stateDir = opts.stateDir ?? await Deno.makeTempDir({ prefix: `ironmesh-${name}-` });
  return await MeshNode.start({
    stateDir,
    identity: opts.identity ?? generateIdentity(name),
    passphrase: MESH_PASS,
    listen: { hostname: "127.0.0.1", port: 0 },
    storeCredential: {
      derive: (salt) => ({
        storageKey: storageKeyFromIkm(sha256(new TextEncoder().encode(MESH_PASS)), salt),
        legacyKey: null,
      }),
    },
    log: new Logger(Deno.env.get("IRONMESH_TEST_LOG") === "1" ? "debug" : "error"),
    reconnectTickS: 0.2,
    ...opts,
  });
}

/** Resolve with the first event matching `pred` (rejects after `ms`). */
export function nextEvent(
  node: MeshNode,
  pred: (e: NodeEvent) => boolean,
  ms = 5000,
): Promise<NodeEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsub();
      reject(new Error(`no matching event on ${node.name} within ${ms} ms`));
    }, ms);
    const unsub = node.bus.subscribe((e) => {
      if (!pred(e)) return;
      clearTimeout(timer);
      unsub();
      resolve(e);
    });
  });
}

/** Wait until `cond()` holds (polling), or throw after `ms`. */
export async function until(cond: () => boolean, ms = 5000, what = "condition"): Promise<void> {
  await waitFor(cond, what, ms, { intervalMs: 10 });
}

/** Address of a node's listener. */
export function addrOf(n: MeshNode): string {
  return `127.0.0.1:${n.listener!.port}`;
}
