/**
 * The peer table: at most one live link per node id. When two connections to the
 * same peer complete (both sides dialed at once, or a reconnect raced a live link),
 * both ends keep the same one without talking about it: the connection dialed by the
 * node with the smaller node id wins; if both were dialed by the same node, the newer
 * wins (the dialer would not dial again over a working link). The loser is closed.
 */
import type { PeerLink } from "./peer_link.ts";

/** Which side dialed a link. */
export type Role = "client" | "server";

/** A registered link and how it came to be. */
export interface LinkEntry {
  link: PeerLink;
  role: Role;
  /** Node id of the side that dialed. */
  dialer: string;
  since: number;
  /** Address we dialed (client role) or the peer's source address (server role). */
  address: string;
}

/** Outcome of `register`. */
export type RegisterResult =
  | { kept: true; replaced?: LinkEntry }
  | { kept: false; existing: LinkEntry };

/** Which of two links to the same peer survives (pure; both ends compute the same answer). */
export function preferNew(
  localId: string,
  peerId: string,
  existing: LinkEntry,
  incoming: LinkEntry,
): boolean {
  if (existing.dialer !== incoming.dialer) {
    const smaller = localId < peerId ? localId : peerId;
    return incoming.dialer === smaller;
  }
  return true;
}

/** Live links by node id. */
export class PeerTable {
  readonly #links = new Map<string, LinkEntry>();

  constructor(readonly localId: string) {}

  /** Add a link; returns what happened (the caller closes the loser). */
  register(entry: Omit<LinkEntry, "dialer" | "since">, now = Date.now()): RegisterResult {
    const peerId = entry.link.nodeId;
    const full: LinkEntry = {
      ...entry,
      dialer: entry.role === "client" ? this.localId : peerId,
      since: now,
    };
    const existing = this.#links.get(peerId);
    if (existing && existing.link.open) {
      if (!preferNew(this.localId, peerId, existing, full)) return { kept: false, existing };
      this.#links.set(peerId, full);
      return { kept: true, replaced: existing };
    }
    this.#links.set(peerId, full);
    return { kept: true };
  }

  /** Remove `link` if it is still the registered one; true when it was. */
  unregister(link: PeerLink): boolean {
    const e = this.#links.get(link.nodeId);
    if (e?.link !== link) return false;
    this.#links.delete(link.nodeId);
    return true;
  }

  /** The live link to `nodeId`, if any. */
  get(nodeId: string): PeerLink | undefined {
    const e = this.#links.get(nodeId);
    return e?.link.open ? e.link : undefined;
  }

  /** The entry of `nodeId`, if any. */
  entry(nodeId: string): LinkEntry | undefined {
    return this.#links.get(nodeId);
  }

  /** Every registered entry. */
  entries(): LinkEntry[] {
    return [...this.#links.values()];
  }

  /** Number of live links. */
  get size(): number {
    return this.#links.size;
  }
}
