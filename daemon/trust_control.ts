/**
 * Trust on a running daemon: the same operations as `ironmesh trust` on the files, served
 * over the control socket (`trust.*` methods) on the daemon's open trust store, so changes
 * take effect live: promoting a peer releases its held messages, blocking drops them,
 * revoking or forgetting a peer closes its link; `trust.revoke` with `broadcast` also sends
 * the signed revocation through the mesh.
 */
import { ExitCode, IronMeshError } from "../lib/errors.ts";
import type { TrustEvent, TrustState } from "../lib/trust/records.ts";
import { type ChangeEnv, StoreTrustBackend, type TrustOpResult } from "../lib/trust/backend.ts";
import { requireTrustState } from "../lib/trust/records.ts";
import { type ControlServer, optionalBool, optionalString, requireString } from "./control.ts";
import type { MeshNode } from "./node.ts";

/** The daemon's change environment: it holds the state-dir lock and its own audit writer. */
function daemonEnv(node: MeshNode): ChangeEnv {
  let chain: Promise<unknown> = Promise.resolve();
  return {
    auditPath: node.audit.path,
    lock() {
      // One trust change at a time (the store lock serialises writes; this keeps resolve + act together).
      let release!: () => void;
      const held = new Promise<void>((r) => release = r);
      const before = chain;
      chain = chain.then(() => held);
      return before.then(() => ({ release }));
    },
    precheck() {},
    async audit(events: TrustEvent[]) {
      for (const e of events) await node.recordAudit(e.event, e.details);
      const problems = node.audit.checkpointProblems();
      return problems
        ? ["the audit checkpoint no longer matches the log: run `ironmesh audit verify`"]
        : [];
    },
  };
}

/** Apply a change's consequences to live links and held messages. */
function afterChange(node: MeshNode, r: TrustOpResult): TrustOpResult {
  for (const id of r.nodeIds) {
    const state = r.newState;
    if (state === "trusted") node.releaseHeld(id);
    if (state === "blocked") node.store.pendingTrust.discard(id);
    if (state === "revoked" || state === "forgotten") {
      node.peers.get(id)?.close(state === "revoked" ? "revoked" : "trust forgotten");
    }
  }
  return r;
}

/** Register the `trust.*` methods. */
export function registerTrustMethods(server: ControlServer, node: MeshNode): StoreTrustBackend {
  const b = new StoreTrustBackend("daemon", node.trust, daemonEnv(node));
  const id = (p: Record<string, unknown>) => requireString(p, "id");
  server.handle("trust.snapshot", () => b.snapshot());
  server.handle("trust.conflicts", () => b.conflicts());
  server.handle("trust.resolve", (p) => b.resolve(id(p)));
  server.handle(
    "trust.setState",
    async (p) =>
      afterChange(node, await b.setState(id(p), requireTrustState(requireString(p, "state")))),
  );
  server.handle("trust.pin", async (p) => {
    const state = optionalString(p, "state");
    return afterChange(
      node,
      await b.pin(requireString(p, "node_id"), requireString(p, "pubkey"), {
        name: optionalString(p, "name"),
        ...(state ? { state: requireTrustState(state) as TrustState } : {}),
      }),
    );
  });
  server.handle("trust.revoke", async (p) => {
    const reason = optionalString(p, "reason") ?? "";
    const broadcast = optionalBool(p, "broadcast") ?? false;
    if (broadcast && !node.mesh.routingEnabled) {
      throw new IronMeshError(
        "MESH_DISABLED",
        "cannot broadcast a revocation: mesh routing is off on this daemon",
        "restart it without --mesh-routing off, or revoke locally (without --broadcast)",
        ExitCode.USAGE,
      );
    }
    const r = afterChange(node, await b.revoke(id(p), reason));
    if (!broadcast) return r;
    // A signed REVOCATION to every neighbour; it spreads through the mesh to nodes pinning us.
    const target = r.nodeIds[0];
    const peers = node.mesh.sendRevocation(target, reason);
    return {
      ...r,
      events: [...r.events, {
        event: "REVOCATION_BROADCAST",
        details: { target_node_id: target, peers },
      }],
      broadcast: { peers },
    };
  });
  server.handle(
    "trust.clearRevocation",
    async (p) => afterChange(node, await b.clearRevocation(id(p))),
  );
  server.handle("trust.forget", async (p) => afterChange(node, await b.forget(id(p))));
  server.handle("trust.capPromote", async (p) => afterChange(node, await b.capPromote(id(p))));
  server.handle("trust.capPromoteAll", async () => afterChange(node, await b.capPromoteAll()));
  server.handle("trust.capReject", async (p) => {
    const r = await b.capReject(id(p), { block: optionalBool(p, "block") ?? false });
    // Rejecting the new capability set drops what the peer sent under it.
    for (const n of r.nodeIds) node.store.pendingTrust.discard(n);
    return afterChange(node, r);
  });
  return b;
}
