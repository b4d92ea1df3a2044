/**
 * Child process for the real-multicast tests: runs one or more MdnsDiscovery
 * nodes and prints JSON lines. Only ever started inside a network namespace
 * the test created (see mdns_netns_test.ts); it refuses to run when it can see
 * an interface it was not told about.
 *
 * Lines: {"t":"started"}, {"t":"event",...}, {"t":"found","node":...},
 * {"t":"all-found"}, {"t":"stopped","sightings":{...}}, {"t":"fatal",...}.
 * It stops (sending goodbyes) when a node name, or "all", arrives on stdin.
 */
import dgram from "node:dgram";
import { Buffer } from "node:buffer";
import { MdnsDiscovery } from "../../../daemon/discovery/mdns.ts";
import { autoDialDecision } from "../../../lib/discovery/policy.ts";
import { IronMeshError } from "../../../lib/errors.ts";

/** What the test asks the child to do. */
export interface ChildConfig {
  nodes: {
    name: string;
    port: number;
    address: string;
    idhash: string;
    interfaceAddress?: string;
  }[];
  /** node name → peer names it must see. */
  expect: Record<string, string[]>;
  /** Interfaces allowed to exist (checked when --allow-sys=networkInterfaces is granted). */
  allowedInterfaces?: string[];
  allowedPeers?: string[];
  /** Hex of a raw packet to multicast once the nodes run (a Python-style announcement). */
  injectHex?: string;
  timeoutMs?: number;
}

const out = (o: unknown) => console.log(JSON.stringify(o));

async function main(): Promise<number> {
  const cfg = JSON.parse(Deno.args[0]) as ChildConfig;
  if (cfg.allowedInterfaces) {
    const sys = Deno.permissions.querySync({ name: "sys", kind: "networkInterfaces" }).state;
    if (sys === "granted") {
      const names = [...new Set(Deno.networkInterfaces().map((i) => i.name))];
      const foreign = names.filter((n) => !cfg.allowedInterfaces!.includes(n));
      if (foreign.length) {
        out({
          t: "fatal",
          code: "NOT_ISOLATED",
          msg: `refusing to multicast: interfaces ${foreign}`,
        });
        return 3;
      }
    }
  }
  const timer = setTimeout(() => {
    out({ t: "fatal", code: "TIMEOUT" });
    Deno.exit(2);
  }, cfg.timeoutMs ?? 20_000);

  const nodes = new Map<string, MdnsDiscovery>();
  const found = new Set<string>();
  for (const n of cfg.nodes) {
    const d = new MdnsDiscovery({ ...n, browseIntervalMs: 2000 });
    const check = () => {
      const seen = new Set(d.sightings().map((s) => s.name));
      if (!found.has(n.name) && (cfg.expect[n.name] ?? []).every((x) => seen.has(x))) {
        found.add(n.name);
        out({ t: "found", node: n.name });
        if (found.size === cfg.nodes.length) out({ t: "all-found" });
      }
    };
    d.on("sighting", (e) => {
      const policy = (allowed: string[]) => ({
        allowedPeers: new Set(allowed),
        openDiscovery: false,
        localName: n.name,
      });
      out({
        t: "event",
        node: n.name,
        type: "sighting",
        sighting: e.sighting,
        withAllowList: autoDialDecision(e.sighting, policy(cfg.allowedPeers ?? [])).action,
        defaultDeny: autoDialDecision(e.sighting, policy([])).action,
      });
      check();
    });
    for (const type of ["conflict", "rejected", "departed", "warning"] as const) {
      d.on(
        type,
        (e) => out({ t: "event", node: n.name, type, e: "error" in e ? String(e.error) : e }),
      );
    }
    try {
      await d.start();
    } catch (e) {
      out({
        t: "fatal",
        code: e instanceof IronMeshError ? e.code : "START",
        msg: String(e),
        hint: (e as IronMeshError).hint,
      });
      return 4;
    }
    nodes.set(n.name, d);
    check();
  }
  out({ t: "started" });

  if (cfg.injectHex) {
    const bytes = Buffer.from(cfg.injectHex, "hex");
    const sock = dgram.createSocket({ type: "udp4", reuseAddr: true });
    await new Promise<void>((r) => sock.bind(5353, "0.0.0.0", () => r()));
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((r) => sock.send(bytes, 5353, "224.0.0.251", () => r()));
      await new Promise((r) => setTimeout(r, 300));
    }
    sock.close();
  }

  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of Deno.stdin.readable) {
    buf += decoder.decode(chunk);
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const cmd = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      for (const [name, d] of nodes) {
        if (cmd === "all" || cmd === name) {
          const sightings = d.sightings();
          await d.stop();
          nodes.delete(name);
          out({ t: "stopped", node: name, sightings });
        }
      }
    }
    if (nodes.size === 0) break;
  }
  for (const d of nodes.values()) await d.stop();
  clearTimeout(timer);
  return 0;
}

if (import.meta.main) Deno.exit(await main());
