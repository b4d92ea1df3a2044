/**
 * Network checks on data gathered by the caller (no sockets here): can mDNS work (an IPv4
 * interface other than loopback that is up and multicast-capable, and a route that covers
 * 224.0.0.251), and what a failed port probe means. Nothing is ever sent: mDNS possibility
 * is judged from the interface list, and from `/proc/net/route` and `/sys/class/net/<if>/flags`
 * when they can be read (Deno grants /proc and /sys only with --allow-all; the shipped
 * least-privilege flags leave them out, and the check then rests on the interface list).
 */
import { type CheckResult, fail, pass, skip } from "./report.ts";

/** The mDNS group address. */
export const MDNS_GROUP = "224.0.0.251";
/** Interface flags (Linux `<net/if.h>`). */
export const IFF_UP = 0x1;
/** Interface supports multicast. */
export const IFF_MULTICAST = 0x1000;
const RTF_UP = 0x1;

/** An interface address (the fields of `Deno.networkInterfaces()` used here). */
export interface NetIface {
  name: string;
  family: "IPv4" | "IPv6";
  address: string;
}

/** One IPv4 route from `/proc/net/route`. */
export interface RouteEntry {
  iface: string;
  /** Destination and mask as dotted quads. */
  destination: string;
  mask: string;
  flags: number;
}

function hexToIp(hex: string): string {
  const v = parseInt(hex, 16) >>> 0;
  // The kernel prints the address as a host-order (little-endian) 32-bit number.
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24].join(".");
}

function ipToInt(ip: string): number {
  return ip.split(".").reduce((n, o) => ((n << 8) | (Number(o) & 0xff)) >>> 0, 0);
}

/** Parse `/proc/net/route` (header line, then whitespace-separated columns). */
export function parseProcNetRoute(text: string): RouteEntry[] {
  const out: RouteEntry[] = [];
  const lines = text.split("\n").filter((l) => l.trim());
  for (const line of lines.slice(1)) {
    const c = line.trim().split(/\s+/);
    if (c.length < 8 || !/^[0-9A-Fa-f]{8}$/.test(c[1]) || !/^[0-9A-Fa-f]{8}$/.test(c[7])) continue;
    out.push({
      iface: c[0],
      destination: hexToIp(c[1]),
      flags: parseInt(c[3], 16) || 0,
      mask: hexToIp(c[7]),
    });
  }
  return out;
}

/** Parse `/sys/class/net/<if>/flags` text (`0x1003`). */
export function parseIfaceFlags(text: string): number | null {
  const t = text.trim();
  return /^0x[0-9a-fA-F]+$/.test(t) ? parseInt(t, 16) : null;
}

/** True when `route` is up and covers `ip`. */
export function routeCovers(route: RouteEntry, ip: string): boolean {
  if ((route.flags & RTF_UP) === 0) return false;
  const mask = ipToInt(route.mask);
  return (ipToInt(ip) & mask) >>> 0 === (ipToInt(route.destination) & mask) >>> 0;
}

/** What the mDNS check looks at. */
export interface MdnsInput {
  interfaces: NetIface[];
  /** null when `/proc/net/route` cannot be read (not Linux, or Deno without --allow-all). */
  routes: RouteEntry[] | null;
  /** Interface flags by name; null when unknown. */
  ifaceFlags: Map<string, number> | null;
  /** `--no-mdns`: the check is skipped. */
  disabled?: boolean;
}

const STATIC_PEERS = "or run without discovery: 'ironmesh run --no-mdns --connect HOST:PORT'";

/** Could this host announce and browse `_ironmesh._tcp.local`? Judged without sending anything. */
export function checkMdns(input: MdnsInput): CheckResult {
  const id = "mdns", title = "mDNS possible";
  if (input.disabled) {
    return skip(
      id,
      title,
      "not checked (--no-mdns): static peers only",
      "drop --no-mdns to check it",
    );
  }
  const v4 = input.interfaces.filter((i) => i.family === "IPv4" && !i.address.startsWith("127."));
  const usable = v4.filter((i) => {
    const f = input.ifaceFlags?.get(i.name);
    return f === undefined || ((f & IFF_UP) !== 0 && (f & IFF_MULTICAST) !== 0);
  });
  if (!usable.length) {
    const why = v4.length
      ? `no IPv4 interface is up and multicast-capable (${
        v4.map((i) => i.name).join(", ")
      } are not)`
      : "no IPv4 network interface besides loopback";
    return fail(
      id,
      title,
      why,
      `connect this host to a LAN (mDNS needs one; 'ip link set <if> multicast on' enables it on an interface), ${STATIC_PEERS}`,
    );
  }
  const names = usable.map((i) => `${i.name} ${i.address}`).join(", ");
  if (input.routes === null) {
    const flagsKnown = usable.every((i) => input.ifaceFlags?.has(i.name));
    return pass(
      id,
      title,
      `${names}${flagsKnown ? " (up, multicast-capable)" : ""}; ` +
        `${
          flagsKnown ? "" : "interface flags and "
        }the route table are not readable here, so the route for ${MDNS_GROUP} was not checked; nothing was sent`,
    );
  }
  const usableNames = new Set(usable.map((i) => i.name));
  const route = input.routes.find((r) => usableNames.has(r.iface) && routeCovers(r, MDNS_GROUP));
  if (!route) {
    const first = usable[0].name;
    return fail(
      id,
      title,
      `${names}, but no route covers ${MDNS_GROUP} (no default route and no 224.0.0.0/4 route)`,
      `add one: 'sudo ip route add 224.0.0.0/4 dev ${first}', ${STATIC_PEERS}`,
    );
  }
  const how = route.mask === "0.0.0.0" ? "the default route" : `${route.destination}/${route.mask}`;
  return pass(
    id,
    title,
    `${names}; ${MDNS_GROUP} goes out ${route.iface} (${how}); nothing was sent`,
  );
}

/** What probing the listen port found. */
export type PortProbe =
  | { kind: "free" }
  | { kind: "in-use" }
  | { kind: "denied"; message: string }
  | { kind: "error"; message: string }
  | { kind: "ours"; pid: number | null; listen: string };

/** The port check from a probe of `bind:port`. */
export function checkPort(bind: string, port: number, probe: PortProbe): CheckResult {
  const id = "port", title = "listen port";
  const where = `${bind}:${port}`;
  switch (probe.kind) {
    case "free":
      return pass(id, title, `${where} is free`);
    case "ours":
      return pass(
        id,
        title,
        `port ${port} is held by this node's daemon${
          probe.pid ? ` (pid ${probe.pid})` : ""
        }, listening on ${probe.listen}`,
      );
    case "in-use":
      return fail(
        id,
        title,
        `${where} is in use by another process`,
        `find it with 'ss -ltnp "sport = :${port}"' and stop it, or run on another port: 'ironmesh run --port N' (check it with 'ironmesh doctor --port N')`,
      );
    case "denied":
      return fail(
        id,
        title,
        `cannot bind ${where}: ${probe.message}`,
        port < 1024
          ? "ports below 1024 need privileges: use a port ≥ 1024 (the default is 8765)"
          : `check that ${bind} is an address of this host (--bind)`,
      );
    default:
      return fail(
        id,
        title,
        `cannot bind ${where}: ${probe.message}`,
        `check that ${bind} is an address of this host (--bind), or choose another --port`,
      );
  }
}
