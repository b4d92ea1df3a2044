/**
 * Resolve an operator's peer argument (CLI, dashboard) to a node id: a full node
 * id, a unique node-id prefix (≥ 4 hex characters), an exact bound name, or a
 * unique name prefix. Names resolve only through the name bindings (§18.2), so a
 * peer that presented someone else's name is never returned for it.
 */
import { ExitCode, IronMeshError } from "../errors.ts";
import { isNodeId } from "../identity/node_id.ts";
import type { TrustView } from "./state.ts";

/** Shortest node-id prefix accepted. */
export const MIN_ID_PREFIX = 4;

/** How an argument matched. */
export type ResolvedVia = "node-id" | "name" | "node-id-prefix" | "name-prefix";

/** A resolved peer. */
export interface ResolvedPeer {
  nodeId: string;
  via: ResolvedVia;
  /** The name matched (name / name-prefix). */
  name?: string;
}

/** Options for `resolvePeer`. */
export interface ResolveOptions {
  /** Also match revoked node ids (default true, e.g. for `clear-revocation`). */
  includeRevoked?: boolean;
}

function knownIds(view: TrustView, includeRevoked: boolean): Set<string> {
  const ids = new Set([...view.peerIds(), ...view.revokedIds()]);
  for (const [, id] of view.nameBindings()) ids.add(id);
  if (!includeRevoked) { for (const id of view.revokedIds()) ids.delete(id); }
  return ids;
}

function describe(view: TrustView, id: string): string {
  const names = view.namesOf(id);
  return names.length ? `${id} (${names.join(", ")})` : id;
}

/** Resolve `arg`; throws TRUST_AMBIGUOUS_PEER (listing candidates) or TRUST_UNKNOWN_PEER. */
export function resolvePeer(view: TrustView, arg: string, opts: ResolveOptions = {}): ResolvedPeer {
  const a = arg.trim();
  if (!a) {
    throw new IronMeshError(
      "TRUST_BAD_INPUT",
      "empty peer argument",
      "give a node id, a node-id prefix or a peer name",
      ExitCode.USAGE,
    );
  }
  const ids = knownIds(view, opts.includeRevoked ?? true);
  const lower = a.toLowerCase();
  if (isNodeId(lower) && ids.has(lower)) return { nodeId: lower, via: "node-id" };
  const owner = view.nameOwner(a);
  if (owner !== undefined && ids.has(owner)) return { nodeId: owner, via: "name", name: a };

  const candidates = new Map<string, ResolvedPeer>();
  if (!isNodeId(lower) && lower.length >= MIN_ID_PREFIX && /^[0-9a-f]+$/.test(lower)) {
    for (const id of ids) {
      if (id.startsWith(lower)) candidates.set(id, { nodeId: id, via: "node-id-prefix" });
    }
  }
  for (const [name, id] of view.nameBindings()) {
    if (name.startsWith(a) && ids.has(id) && !candidates.has(id)) {
      candidates.set(id, { nodeId: id, via: "name-prefix", name });
    }
  }
  if (candidates.size === 1) return [...candidates.values()][0];
  if (candidates.size > 1) {
    const list = [...candidates.keys()].sort().map((id) => describe(view, id));
    throw new IronMeshError(
      "TRUST_AMBIGUOUS_PEER",
      `"${a}" matches ${candidates.size} peers: ${list.join("; ")}`,
      "give more characters of the node id, or the full name",
      ExitCode.USAGE,
    );
  }
  throw new IronMeshError(
    "TRUST_UNKNOWN_PEER",
    `no known peer matches "${a}"`,
    "run `ironmesh trust list` to see pinned peers and their names",
    ExitCode.NOT_FOUND,
  );
}
