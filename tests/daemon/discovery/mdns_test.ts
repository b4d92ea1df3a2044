/**
 * MdnsDiscovery over a fake LAN (no sockets): the real multicast-dns codec
 * encodes what we send and decodes what we receive.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "../../support/assert.ts";
import { FakeClock } from "../../../lib/clock.ts";
import { IronMeshError } from "../../../lib/errors.ts";
import { signKeyPairFromSeed, toHex } from "../../../lib/crypto/sodium.ts";
import { idHashOf } from "../../../lib/identity/node_id.ts";
import {
  announceAddressFor,
  MdnsDiscovery,
  type MdnsDiscoveryEvents,
  type MdnsDiscoveryOptions,
  type MdnsLike,
  requiredPermissionFlags,
  shouldAutoDial,
} from "../../../daemon/discovery/mdns.ts";
import { FakeLan } from "./fake_lan.ts";
import { pythonPacket } from "./python_packets.ts";

const hex16 = (n: number) => n.toString(16).padStart(16, "0");
const dec = new TextDecoder();

// deno-lint-ignore no-explicit-any
type Packet = any;

function observer(lan: FakeLan, ip = "192.168.7.99") {
  const m = lan.instance(ip);
  const responses: Packet[] = [];
  const queries: Packet[] = [];
  m.on("response", (p: Packet) => responses.push(p));
  m.on("query", (p: Packet) => queries.push(p));
  return { m, responses, queries };
}

interface Recorded {
  sighting: MdnsDiscoveryEvents["sighting"][];
  conflict: MdnsDiscoveryEvents["conflict"][];
  rejected: MdnsDiscoveryEvents["rejected"][];
  departed: MdnsDiscoveryEvents["departed"][];
}

function node(
  lan: FakeLan,
  name: string,
  ip: string,
  clock: FakeClock,
  extra: Partial<MdnsDiscoveryOptions> = {},
): { d: MdnsDiscovery; ev: Recorded } {
  const d = new MdnsDiscovery({
    name,
    port: 8765,
    address: ip,
    idhash: extra.idhash ?? hex16(name.length * 1000 + name.charCodeAt(0)),
    clock,
    mdnsFactory: lan.factory(ip),
    browseIntervalMs: 3_600_000,
    ...extra,
  });
  const ev: Recorded = { sighting: [], conflict: [], rejected: [], departed: [] };
  d.on("sighting", (e) => ev.sighting.push(e));
  d.on("conflict", (e) => ev.conflict.push(e));
  d.on("rejected", (e) => ev.rejected.push(e));
  d.on("departed", (e) => ev.departed.push(e));
  return { d, ev };
}

function txtOf(p: Packet, name: string): string[] {
  const all = [...(p.answers ?? []), ...(p.additionals ?? [])];
  const t = all.find((r: Packet) => r.type === "TXT" && r.name === name);
  return t ? t.data.map((b: Uint8Array) => dec.decode(b)) : [];
}

function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

Deno.test("start: announces PTR/SRV/TXT/A on the wire and browses for _ironmesh._tcp.local", async () => {
  const lan = new FakeLan();
  const clock = new FakeClock();
  const obs = observer(lan);
  const seed = new Uint8Array(32).fill(7);
  const pub = signKeyPairFromSeed(seed).publicKey;
  const idhash = idHashOf(pub);
  // the reference: hashlib.sha256(identity_pubkey_bytes).hexdigest()[:16]
  const sha = new Uint8Array(await crypto.subtle.digest("SHA-256", Uint8Array.from(pub)));
  assertEquals(idhash, toHex(sha).slice(0, 16));
  const { d } = node(lan, "alice", "192.168.7.10", clock, { idhash });
  await d.start();
  await lan.settle();
  const ann = obs.responses[0];
  assertEquals([ann.type, ann.flags & 0x400], ["response", 0x400]); // authoritative response
  const byType = Object.fromEntries(ann.answers.map((r: Packet) => [r.type, r]));
  assertEquals(byType.PTR.name, "_ironmesh._tcp.local");
  assertEquals(byType.PTR.data, "alice._ironmesh._tcp.local");
  assertEquals(byType.PTR.ttl, 4500);
  assertEquals(byType.SRV.data.port, 8765);
  assertEquals(byType.SRV.data.target, "alice.local");
  assertEquals([byType.SRV.ttl, byType.SRV.flush], [120, true]);
  assertEquals(byType.A.name, "alice.local");
  assertEquals(byType.A.data, "192.168.7.10");
  assertEquals(txtOf(ann, "alice._ironmesh._tcp.local"), [
    "agent=alice",
    "port=8765",
    "proto=ironmesh/0.6",
    `idhash=${idhash}`,
  ]);
  // raw bytes: the TXT strings, length-prefixed; never the public key
  const raw = lan.log.find((p) =>
    p.from.address === "192.168.7.10" && indexOfBytes(p.bytes, pub) < 0
  )!;
  assert(raw, "our packet must not contain the public key");
  const enc = new TextEncoder();
  assert(
    indexOfBytes(raw.bytes, enc.encode("\x0bagent=alice\x09port=8765\x12proto=ironmesh/0.6")) > 0,
  );
  for (const p of lan.log) {
    assertEquals(indexOfBytes(p.bytes, pub), -1);
    assertEquals(indexOfBytes(p.bytes, enc.encode(toHex(pub))), -1);
  }
  // the browse query
  assertEquals(
    obs.queries.some((q) =>
      q.questions.some((x: Packet) => x.name === "_ironmesh._tcp.local" && x.type === "PTR")
    ),
    true,
  );
  await d.stop();
  obs.m.destroy();
});

Deno.test("answers PTR/SRV/TXT/A queries; not foreign ones; a record at most once per second", async () => {
  const lan = new FakeLan();
  const clock = new FakeClock();
  const { d } = node(lan, "alice", "192.168.7.10", clock, { browse: false });
  await d.start();
  await lan.settle();
  const obs = observer(lan);
  clock.advance(2);
  obs.m.query({ questions: [{ name: "_ironmesh._tcp.local", type: "PTR" }] });
  await lan.settle();
  assertEquals(obs.responses.length, 1);
  const r = obs.responses[0];
  assertEquals(r.answers.map((x: Packet) => x.type), ["PTR"]);
  assertEquals(r.additionals.map((x: Packet) => x.type), ["SRV", "TXT", "A"]);
  assertEquals(txtOf(r, "alice._ironmesh._tcp.local")[0], "agent=alice");
  // the same question within a second: suppressed
  obs.m.query({ questions: [{ name: "_ironmesh._tcp.local", type: "PTR" }] });
  await lan.settle();
  assertEquals(obs.responses.length, 1);
  clock.advance(1);
  obs.m.query({ questions: [{ name: "_ironmesh._tcp.local", type: "PTR" }] });
  await lan.settle();
  assertEquals(obs.responses.length, 2);
  // direct questions
  clock.advance(1);
  obs.m.query({
    questions: [
      { name: "alice._ironmesh._tcp.local", type: "SRV" },
      { name: "alice._ironmesh._tcp.local", type: "TXT" },
      { name: "alice.local", type: "A" },
    ],
  });
  await lan.settle();
  assertEquals(obs.responses[2].answers.map((x: Packet) => x.type).sort(), ["A", "SRV", "TXT"]);
  // foreign questions: silence
  clock.advance(1);
  obs.m.query({
    questions: [{ name: "bob._ironmesh._tcp.local", type: "SRV" }, {
      name: "_http._tcp.local",
      type: "PTR",
    }],
  });
  await lan.settle();
  assertEquals(obs.responses.length, 3);
  await d.stop();
  obs.m.destroy();
});

Deno.test("stop: sends a goodbye (TTL 0) and closes the socket", async () => {
  const lan = new FakeLan();
  const clock = new FakeClock();
  const { d } = node(lan, "alice", "192.168.7.10", clock);
  await d.start();
  await lan.settle();
  const obs = observer(lan);
  await d.stop();
  await lan.settle();
  assertEquals(obs.responses.length, 1);
  assertEquals(obs.responses[0].answers.map((x: Packet) => [x.type, x.ttl]), [
    ["PTR", 0],
    ["SRV", 0],
    ["TXT", 0],
    ["A", 0],
  ]);
  assertEquals(lan.sockets[0].closed, true);
  await d.stop(); // idempotent
  obs.m.destroy();
});

Deno.test("two nodes find each other; neither sees itself; the tie-break picks one dialer", async () => {
  const lan = new FakeLan();
  const clock = new FakeClock();
  const a = node(lan, "alice", "192.168.7.10", clock);
  const b = node(lan, "bob", "192.168.7.11", clock, { port: 9000 });
  await a.d.start();
  await b.d.start();
  await lan.settle();
  assertEquals(a.d.sightings().map((s) => [s.name, s.address, s.port]), [[
    "bob",
    "192.168.7.11",
    9000,
  ]]);
  assertEquals(b.d.sightings().map((s) => [s.name, s.address, s.port]), [[
    "alice",
    "192.168.7.10",
    8765,
  ]]);
  assertEquals(a.ev.sighting.length, 1);
  assertEquals(a.ev.sighting[0].isNew, true);
  assertEquals(a.ev.rejected, []);
  assertEquals(b.ev.rejected, []);
  assertEquals(a.d.sightings()[0].idhash, b.d.announcement.idhash);
  assertEquals(a.d.pinnedIdhash("bob"), b.d.announcement.idhash);
  const allowBoth = (localName: string) => ({
    allowedPeers: new Set(["alice", "bob"]),
    openDiscovery: false,
    localName,
  });
  assertEquals(shouldAutoDial(a.d.sightings()[0], allowBoth("alice")), true);
  assertEquals(shouldAutoDial(b.d.sightings()[0], allowBoth("bob")), false);
  const denyAll = (localName: string) => ({
    allowedPeers: new Set<string>(),
    openDiscovery: false,
    localName,
  });
  assertEquals(shouldAutoDial(a.d.sightings()[0], denyAll("alice")), false);
  // bob leaves: alice keeps the sighting, marked departed
  await b.d.stop();
  await lan.settle();
  assertEquals(a.ev.departed.map((e) => e.sighting.name), ["bob"]);
  assertEquals(a.d.sightings()[0].departedAt, clock.now());
  await a.d.stop();
});

Deno.test("a Python-style announcement (bytes as python-zeroconf writes them) is parsed", async () => {
  for (const layout of ["broadcast", "answer"] as const) {
    const lan = new FakeLan();
    const clock = new FakeClock();
    const { d, ev } = node(lan, "alice", "192.168.7.10", clock);
    await d.start();
    await lan.settle();
    lan.inject(
      pythonPacket({
        name: "pynode",
        srvPort: 8765,
        txtPort: 8770, // the TXT port wins
        idhash: "FEDCBA9876543210",
        addresses: ["192.168.7.40", "192.168.7.41"], // the first address only
        layout,
      }),
      { address: "192.168.7.40", port: 5353 },
    );
    await lan.settle();
    assertEquals(ev.rejected, [], layout);
    assertEquals(
      d.sightings().map(({ name, address, port, idhash, instance, source }) => ({
        name,
        address,
        port,
        idhash,
        instance,
        source,
      })),
      [{
        name: "pynode",
        address: "192.168.7.40",
        port: 8770,
        idhash: "fedcba9876543210",
        instance: "pynode._ironmesh._tcp.local",
        source: "192.168.7.40",
      }],
      layout,
    );
    // Python's unregister: TTL 0 everywhere
    lan.inject(
      pythonPacket({
        name: "pynode",
        srvPort: 8765,
        idhash: "fedcba9876543210",
        addresses: ["192.168.7.40"],
        goodbye: true,
      }),
      { address: "192.168.7.40", port: 5353 },
    );
    await lan.settle();
    assertEquals(ev.departed.map((e) => e.sighting.name), ["pynode"], layout);
    assertEquals(d.sightings().length, 1);
    await d.stop();
  }
});

Deno.test("responses not from port 5353 are ignored", async () => {
  const lan = new FakeLan();
  const clock = new FakeClock();
  const { d } = node(lan, "alice", "192.168.7.10", clock);
  await d.start();
  lan.inject(pythonPacket({ name: "pynode", srvPort: 8765, addresses: ["192.168.7.40"] }), {
    address: "192.168.7.40",
    port: 40000,
  });
  await lan.settle();
  assertEquals(d.sightings(), []);
  await d.stop();
});

Deno.test("limits on the wire: rate, TXT size, agent charset, port, idhash", async () => {
  const lan = new FakeLan();
  const clock = new FakeClock();
  const { d, ev } = node(lan, "alice", "192.168.7.10", clock);
  await d.start();
  await lan.settle();
  const inject = (o: Parameters<typeof pythonPacket>[0]) =>
    lan.inject(pythonPacket(o), { address: "192.168.7.50", port: 5353 });
  // Σ key + value = 8 + 5 + 4 × 253 = 1025
  const pad = [1, 2, 3, 4].map((i) => `x${i}=${"a".repeat(251)}`);
  inject({
    name: "big",
    srvPort: 1,
    txt: ["agent=big", "port=1", ...pad],
    addresses: ["192.168.7.50"],
  });
  inject({ name: "sp", srvPort: 1, txt: ["agent=s p", "port=1"], addresses: ["192.168.7.50"] });
  inject({
    name: "utf",
    srvPort: 1,
    txt: [new Uint8Array([0x61, 0x67, 0x65, 0x6e, 0x74, 0x3d, 0xff]), "port=1"],
    addresses: ["192.168.7.50"],
  });
  inject({ name: "p", srvPort: 1, txt: ["agent=p", "port=70000"], addresses: ["192.168.7.50"] });
  inject({
    name: "idh",
    srvPort: 1,
    txt: ["agent=idh", "port=5", `idhash=${"a".repeat(65)}`],
    addresses: ["192.168.7.50"],
  });
  inject({ name: "uni", srvPort: 1, txt: ["agent=Ωmega", "port=5"], addresses: ["192.168.7.50"] });
  await lan.settle();
  assertEquals(ev.rejected.map((e) => e.reason), [
    "txt_too_large",
    "bad_agent",
    "bad_agent",
    "bad_port",
  ]);
  assertEquals(d.sightings().map((s) => [s.name, s.idhash]), [["idh", null], ["Ωmega", null]]);
  // rate: 6 events used; 20 more in the same instant → 4 pass, one rate_limited report
  for (let i = 0; i < 20; i++) {
    inject({ name: `n${i}`, srvPort: 1, idhash: hex16(i), addresses: [`10.1.0.${i + 1}`] });
  }
  await lan.settle();
  assertEquals(d.sightings().length, 6);
  assertEquals(ev.rejected.filter((e) => e.reason === "rate_limited").length, 1);
  clock.advance(1);
  inject({ name: "after", srvPort: 1, addresses: ["10.1.1.1"] });
  await lan.settle();
  assertEquals(d.sightings().some((s) => s.name === "after"), true);
  await d.stop();
});

Deno.test("idhash conflict: a second node announcing a pinned name with another idhash", async () => {
  const lan = new FakeLan();
  const clock = new FakeClock();
  const pins = new Map<string, string>();
  const a = node(lan, "alice", "192.168.7.10", clock, { idhashPins: pins });
  await a.d.start();
  const bob = node(lan, "bob", "192.168.7.11", clock, { idhash: hex16(0xb0b) });
  await bob.d.start();
  await lan.settle();
  assertEquals(pins.get("bob"), hex16(0xb0b));
  await bob.d.stop();
  await lan.settle();
  clock.advance(2);
  const fake = node(lan, "bob", "192.168.7.66", clock, { idhash: hex16(0xbad) });
  await fake.d.start();
  await lan.settle();
  assertEquals(a.ev.conflict.length >= 1, true);
  assertEquals(a.ev.conflict[0].pinned, hex16(0xb0b));
  assertEquals(a.ev.conflict[0].seen, hex16(0xbad));
  assertEquals(a.ev.conflict[0].address, "192.168.7.66");
  assertEquals(a.d.sightings()[0].address, "192.168.7.11");
  await fake.d.stop();
  await a.d.stop();
});

Deno.test("constructor: clear errors for names we must not announce", () => {
  const lan = new FakeLan();
  for (const name of ["", "a b", "ü", "x".repeat(64), "a..b"]) {
    const e = assertThrows(
      () =>
        new MdnsDiscovery({
          name,
          port: 1,
          address: "10.0.0.1",
          idhash: hex16(1),
          mdnsFactory: lan.factory("10.0.0.1"),
        }),
      IronMeshError,
    ) as IronMeshError;
    assertEquals(e.code, "MDNS_BAD_NAME");
  }
  const e = assertThrows(
    () => new MdnsDiscovery({ name: "a", port: 1, address: "0.0.0.0", idhash: hex16(1) }),
    IronMeshError,
  ) as IronMeshError;
  assertEquals(e.code, "MDNS_BAD_ADDRESS");
  assertThrows(
    () =>
      new MdnsDiscovery({
        name: "a",
        port: 1,
        address: "10.0.0.1",
        idhash: hex16(1),
        interfaceAddress: "eth0",
      }),
    IronMeshError,
  );
  assertEquals(lan.sockets.length, 0);
});

Deno.test("start: interface option binds 0.0.0.0; a socket error rejects start with MDNS_BIND", async () => {
  const lan = new FakeLan();
  const { d } = node(lan, "alice", "192.168.7.10", new FakeClock(), {
    interfaceAddress: "192.168.7.10",
  });
  await d.start();
  assertEquals(lan.factoryOptions[0].interface, "192.168.7.10");
  assertEquals(lan.factoryOptions[0].bind, "0.0.0.0");
  await d.stop();
  assertEquals(requiredPermissionFlags("192.168.7.10"), [
    "--allow-net=0.0.0.0:5353,224.0.0.251:5353",
  ]);
  assertEquals(requiredPermissionFlags(), [
    "--allow-net=0.0.0.0:5353,224.0.0.251:5353",
    "--allow-sys=networkInterfaces",
  ]);

  let destroyed = false;
  const failing: MdnsLike = {
    on(event: string, cb: (e: Error) => void) {
      if (event === "error") {
        queueMicrotask(() =>
          cb(Object.assign(new Error("bind EADDRINUSE"), { code: "EADDRINUSE" }))
        );
      }
    },
    query() {},
    respond() {},
    destroy(cb?: () => void) {
      destroyed = true;
      cb?.();
    },
  };
  const f = new MdnsDiscovery({
    name: "a",
    port: 1,
    address: "10.0.0.1",
    idhash: hex16(1),
    mdnsFactory: () => failing,
  });
  const err = await assertRejects(() => f.start(), IronMeshError) as IronMeshError;
  assertEquals(err.code, "MDNS_BIND");
  assertEquals(destroyed, true);
});

Deno.test("a throwing subscriber does not break discovery", async () => {
  const lan = new FakeLan();
  const clock = new FakeClock();
  const a = node(lan, "alice", "192.168.7.10", clock);
  a.d.on("sighting", () => {
    throw new Error("boom");
  });
  const b = node(lan, "bob", "192.168.7.11", clock);
  await a.d.start();
  await b.d.start();
  await lan.settle();
  assertEquals(a.ev.sighting.length, 1);
  await a.d.stop();
  await b.d.stop();
});

Deno.test("browse: on start, again after a second, then every browseIntervalMs; nothing after stop", async () => {
  const lan = new FakeLan();
  const { d } = node(lan, "alice", "192.168.7.10", new FakeClock(), {
    browseIntervalMs: 1000,
    announce: false,
  });
  const obs = observer(lan);
  const browses = () =>
    obs.queries.filter((q) =>
      q.questions.some((x: Packet) => x.name === "_ironmesh._tcp.local" && x.type === "PTR")
    )
      .length;
  await d.start();
  await lan.settle();
  assertEquals(browses(), 1);
  await new Promise((r) => setTimeout(r, 1300));
  await lan.settle();
  assertEquals(browses(), 3); // startup repeat + first interval
  assertEquals(obs.responses.length, 0); // announce: false → silent
  await d.stop();
  await new Promise((r) => setTimeout(r, 1100));
  await lan.settle();
  assertEquals(browses(), 3);
  obs.m.destroy();
});

Deno.test("announceAddressFor: the bind address, or an interface address for a wildcard bind", () => {
  assertEquals(announceAddressFor("10.1.2.3"), "10.1.2.3");
  const picked = announceAddressFor("0.0.0.0");
  assert(/^\d+\.\d+\.\d+\.\d+$/.test(picked) && picked !== "0.0.0.0", picked);
});

Deno.test("stop while the socket is still binding: nothing is sent, the socket is closed", async () => {
  let ready: (() => void) | undefined;
  let sent = 0;
  let destroyed = false;
  const slow: MdnsLike = {
    on(event: string, cb: () => void) {
      if (event === "ready") ready = cb;
    },
    query: () => void sent++,
    respond: () => void sent++,
    destroy(cb?: () => void) {
      destroyed = true;
      cb?.();
    },
  };
  const d = new MdnsDiscovery({
    name: "a",
    port: 1,
    address: "10.0.0.1",
    idhash: hex16(1),
    mdnsFactory: () => slow,
  });
  const starting = d.start();
  await d.stop();
  ready!();
  await starting;
  assertEquals([sent, destroyed], [0, true]);
  // a factory that throws (e.g. missing permissions) rejects start
  const bad = new MdnsDiscovery({
    name: "a",
    port: 1,
    address: "10.0.0.1",
    idhash: hex16(1),
    mdnsFactory: () => {
      throw new IronMeshError("MDNS_PERMISSION", "no");
    },
  });
  assertEquals(
    (await assertRejects(() => bad.start(), IronMeshError) as IronMeshError).code,
    "MDNS_PERMISSION",
  );
  await bad.stop();
});
