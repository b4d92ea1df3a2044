/**
 * Joins LAN discovery to the node: every accepted sighting is remembered as a dial
 * target (so `ironmesh peers` shows it even when unreachable); the default-deny policy
 * decides which ones the node dials (`--allowed-peers`, `--open-discovery`, and only the
 * side with the smaller name dials). idhash conflicts are logged and audited, never dialed.
 */
import { autoDialDecision } from "../../lib/discovery/policy.ts";
import { idHashOf } from "../../lib/identity/node_id.ts";
import { announceAddressFor, MdnsDiscovery, type MdnsFactory } from "./mdns.ts";
import type { MeshNode } from "../node.ts";

/** Discovery settings of `ironmesh run`. */
export interface DiscoveryOptions {
  allowedPeers: ReadonlySet<string>;
  openDiscovery: boolean;
  /** Bind address of the node (the announced address unless `interfaceAddress`). */
  bind: string;
  interfaceAddress?: string;
  browseIntervalMs?: number;
  mdnsFactory?: MdnsFactory;
}

/** Start mDNS for `node`; returns the running discovery (stop it before the node). */
export async function startDiscovery(node: MeshNode, o: DiscoveryOptions): Promise<MdnsDiscovery> {
  const d = new MdnsDiscovery({
    name: node.name,
    port: node.listener?.port ?? 0,
    address: o.interfaceAddress ?? announceAddressFor(o.bind),
    idhash: idHashOf(node.identity.publicKey),
    interfaceAddress: o.interfaceAddress,
    browseIntervalMs: o.browseIntervalMs,
    mdnsFactory: o.mdnsFactory,
  });
  d.on("sighting", ({ sighting: s }) => {
    const address = `${s.address}:${s.port}`;
    const decision = autoDialDecision(
      { name: s.name, departedAt: s.departedAt },
      { allowedPeers: o.allowedPeers, openDiscovery: o.openDiscovery, localName: node.name },
    );
    if (decision.action === "deny" && decision.reason === "self") return;
    const t = node.addTarget(address, {
      name: s.name,
      autoDial: decision.action === "dial",
      source: "mdns",
    });
    if (decision.action === "deny") t.lastError = "discovered; not dialed (not in --allowed-peers)";
  });
  d.on("conflict", (c) => {
    node.log.warn("mDNS: a known name is announced with another identity hash; not dialed", {
      name: c.name,
      pinned: c.pinned,
      seen: c.seen,
      address: c.address,
    });
    node.recordAudit("TOFU_MISMATCH", {
      peer_name: c.name,
      reason: "mdns-idhash-conflict",
      pinned_idhash: c.pinned,
      seen_idhash: c.seen,
      address: c.address,
    });
  });
  d.on("warning", ({ error }) => node.log.warn("mDNS", { error: error.message }));
  await d.start();
  return d;
}
