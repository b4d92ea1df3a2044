import { assertEquals } from "../../support/assert.ts";
import { FakeClock } from "../../../lib/clock.ts";
import { type BrowseEvent, MdnsBrowser } from "../../../lib/discovery/browser.ts";
import {
  announcementRecords,
  type DnsRecord,
  makeAnnouncement,
} from "../../../lib/discovery/records.ts";

const enc = new TextEncoder();
const hex16 = (n: number) => n.toString(16).padStart(16, "0");

interface Peer {
  name: string;
  address?: string;
  port?: number;
  txtPort?: string;
  idhash?: string | null;
  txt?: string[];
  ttl?: number;
}

/** A decoded response (dns-packet shape) for one peer: PTR in answers, SRV/TXT/A additionals. */
function response(p: Peer): { answers: DnsRecord[]; additionals: DnsRecord[] } {
  const inst = `${p.name}._ironmesh._tcp.local`;
  const host = `${p.name}.local`;
  const ttl = p.ttl ?? 120;
  const txt = p.txt ?? [
    `agent=${p.name}`,
    `port=${p.txtPort ?? String(p.port ?? 8765)}`,
    "proto=ironmesh/0.6",
    ...(p.idhash === null ? [] : [`idhash=${p.idhash ?? hex16(7)}`]),
  ];
  return {
    answers: [{ name: "_ironmesh._tcp.local", type: "PTR", ttl, class: "IN", data: inst }],
    additionals: [
      {
        name: inst,
        type: "SRV",
        ttl,
        class: "IN",
        data: { priority: 0, weight: 0, port: p.port ?? 8765, target: host },
      },
      { name: inst, type: "TXT", ttl, class: "IN", data: txt.map((s) => enc.encode(s)) },
      { name: host, type: "A", ttl, class: "IN", data: p.address ?? "192.168.1.30" },
    ],
  };
}

function setup(opts: { pins?: Map<string, string>; maxSightings?: number } = {}) {
  const clock = new FakeClock();
  const own = makeAnnouncement({
    name: "alice",
    port: 8765,
    address: "192.168.1.20",
    idhash: hex16(1),
  });
  const browser = new MdnsBrowser({ clock, localName: "alice", own, ...opts });
  return { clock, own, browser };
}

function types(events: BrowseEvent[]): string[] {
  return events.map((e) => (e.type === "rejected" ? `rejected:${e.reason}` : e.type));
}

Deno.test("browser: a complete response becomes a sighting (port from TXT, first address)", () => {
  const { browser, clock } = setup();
  const r = response({ name: "bob", port: 9000, txtPort: "9100", idhash: hex16(2).toUpperCase() });
  r.additionals.push({ name: "bob.local", type: "A", ttl: 120, data: "192.168.1.31" });
  const { events, questions } = browser.handleResponse(r, "192.168.1.30");
  assertEquals(questions, []);
  assertEquals(types(events), ["sighting"]);
  const s = browser.get("bob")!;
  assertEquals(s, {
    name: "bob",
    instance: "bob._ironmesh._tcp.local",
    address: "192.168.1.30",
    port: 9100,
    idhash: hex16(2),
    source: "192.168.1.30",
    seenAt: clock.now(),
    lastSeen: clock.now(),
    departedAt: null,
  });
  assertEquals(browser.pinned("bob"), hex16(2));
});

Deno.test("browser: records split over packets are joined; missing ones are queried", () => {
  const { browser } = setup();
  const full = response({ name: "bob" });
  const first = browser.handleResponse({ answers: full.answers }, "192.168.1.30");
  assertEquals(first.events, []);
  assertEquals(first.questions, [
    { name: "bob._ironmesh._tcp.local", type: "SRV" },
    { name: "bob._ironmesh._tcp.local", type: "TXT" },
  ]);
  // SRV + TXT arrive; A still missing → asked (not again for SRV/TXT)
  const second = browser.handleResponse({ answers: full.additionals.slice(0, 2) }, "192.168.1.30");
  assertEquals(second.events, []);
  // asked less than a second ago: no repeat
  assertEquals(second.questions, []);
  const third = browser.handleResponse({ answers: [full.additionals[2]] }, "192.168.1.30");
  assertEquals(types(third.events), ["sighting"]);
  assertEquals(browser.get("bob")!.address, "192.168.1.30");
});

Deno.test("browser: our own announcement is ignored; another node using our name is rejected", () => {
  const { browser, own } = setup();
  const mine = announcementRecords(own);
  assertEquals(browser.handleResponse(mine, "192.168.1.20"), { events: [], questions: [] });
  assertEquals(browser.sightings(), []);
  // the same name from a different address with our idhash: still us (e.g. another interface)
  const alsoMe = response({ name: "alice", address: "10.0.0.9", idhash: hex16(1) });
  assertEquals(browser.handleResponse(alsoMe, "10.0.0.9").events, []);
  const impostor = response({ name: "alice", address: "192.168.1.66", idhash: hex16(9) });
  assertEquals(types(browser.handleResponse(impostor, "192.168.1.66").events), [
    "rejected:own_name",
  ]);
  assertEquals(browser.sightings(), []);
});

Deno.test("browser: at most 10 announcements per second; drops reported once per second", () => {
  const { browser, clock } = setup();
  const all: BrowseEvent[] = [];
  for (let i = 0; i < 25; i++) {
    all.push(
      ...browser.handleResponse(
        response({ name: `peer${i}`, address: `10.0.0.${i + 1}` }),
        "10.0.0.1",
      ).events,
    );
  }
  assertEquals(types(all).filter((t) => t === "sighting").length, 10);
  assertEquals(types(all).filter((t) => t === "rejected:rate_limited").length, 1);
  assertEquals(browser.sightings().length, 10);
  // half a second refills 5 tokens
  clock.advance(0.5);
  const more: BrowseEvent[] = [];
  for (let i = 25; i < 35; i++) {
    more.push(
      ...browser.handleResponse(response({ name: `peer${i}`, address: `10.0.1.${i}` }), "10.0.0.1")
        .events,
    );
  }
  assertEquals(types(more).filter((t) => t === "sighting").length, 5);
  assertEquals(types(more).filter((t) => t === "rejected:rate_limited").length, 0); // reported < 1 s ago
  clock.advance(0.6);
  const later = browser.handleResponse(response({ name: "late", address: "10.0.2.1" }), "10.0.0.1");
  assertEquals(types(later.events), ["sighting"]);
});

Deno.test("browser: an unchanged re-announcement refreshes lastSeen without an event or a token", () => {
  const { browser, clock } = setup();
  browser.handleResponse(response({ name: "bob" }), "192.168.1.30");
  clock.advance(1); // the bucket is full again
  for (let i = 0; i < 50; i++) {
    clock.set(clock.now() + 1); // wall clock only: no token refill
    assertEquals(browser.handleResponse(response({ name: "bob" }), "192.168.1.30").events, []);
  }
  assertEquals(browser.get("bob")!.lastSeen, browser.get("bob")!.seenAt + 51);
  // the bucket is still full: ten new peers pass at once
  const evs: BrowseEvent[] = [];
  for (let i = 0; i < 10; i++) {
    evs.push(...browser.handleResponse(response({ name: `p${i}` }), "x").events);
  }
  assertEquals(types(evs).filter((t) => t === "sighting").length, 10);
});

Deno.test("browser: a changed address updates the sighting (same idhash)", () => {
  const { browser, clock } = setup();
  browser.handleResponse(response({ name: "bob", idhash: hex16(2) }), "192.168.1.30");
  const seenAt = browser.get("bob")!.seenAt;
  clock.advance(5);
  const r = browser.handleResponse(
    response({ name: "bob", idhash: hex16(2), address: "192.168.1.77" }),
    "192.168.1.77",
  );
  assertEquals(r.events.length, 1);
  assertEquals(r.events[0].type === "sighting" && r.events[0].isNew, false);
  assertEquals(browser.get("bob")!.address, "192.168.1.77");
  assertEquals(browser.get("bob")!.seenAt, seenAt);
});

Deno.test("browser: idhash pinned per name; a different idhash is a conflict and changes nothing", () => {
  const { browser } = setup();
  browser.handleResponse(response({ name: "bob", idhash: hex16(2) }), "192.168.1.30");
  const r = browser.handleResponse(
    response({ name: "bob", idhash: hex16(3), address: "192.168.1.66" }),
    "192.168.1.66",
  );
  assertEquals(r.events, [{
    type: "conflict",
    name: "bob",
    pinned: hex16(2),
    seen: hex16(3),
    address: "192.168.1.66",
    port: 8765,
    instance: "bob._ironmesh._tcp.local",
    source: "192.168.1.66",
  }]);
  assertEquals(browser.get("bob")!.address, "192.168.1.30");
  assertEquals(browser.pinned("bob"), hex16(2));
  // an announcement without idhash (or with an invalid one) for a pinned name is a conflict too
  const noId = browser.handleResponse(
    response({ name: "bob", idhash: null, address: "192.168.1.67" }),
    "x",
  );
  assertEquals(types(noId.events), ["conflict"]);
  const badId = browser.handleResponse(
    response({ name: "bob", idhash: "zz", address: "192.168.1.68" }),
    "x",
  );
  assertEquals(badId.events[0].type === "conflict" && badId.events[0].seen, null);
  assertEquals(browser.get("bob")!.address, "192.168.1.30");
});

Deno.test("browser: a caller-supplied pin map is used and filled", () => {
  const pins = new Map([["bob", hex16(2)]]);
  const { browser } = setup({ pins });
  assertEquals(
    types(browser.handleResponse(response({ name: "bob", idhash: hex16(5) }), "x").events),
    ["conflict"],
  );
  assertEquals(browser.get("bob"), undefined);
  browser.handleResponse(response({ name: "carol", idhash: hex16(6) }), "x");
  assertEquals(pins.get("carol"), hex16(6));
});

Deno.test("browser: limits reach the sighting path (TXT size, name, port, idhash, address)", () => {
  const { browser } = setup();
  const reasons = (p: Peer) => types(browser.handleResponse(response(p), "x").events);
  assertEquals(reasons({ name: "big", txt: ["agent=big", "port=1", `x=${"a".repeat(1100)}`] }), [
    "rejected:txt_too_large",
  ]);
  assertEquals(reasons({ name: "bad", txt: ["agent=bad name", "port=1"] }), ["rejected:bad_agent"]);
  assertEquals(reasons({ name: "p0", txtPort: "0" }), ["rejected:bad_port"]);
  assertEquals(reasons({ name: "mc", address: "224.0.0.251" }), ["rejected:bad_address"]);
  assertEquals(reasons({ name: "zero", address: "0.0.0.0" }), ["rejected:bad_address"]);
  assertEquals(reasons({ name: "long", idhash: "a".repeat(65) }), ["sighting"]);
  assertEquals(browser.get("long")!.idhash, null);
  assertEquals(browser.sightings().map((s) => s.name), ["long"]);
});

Deno.test("browser: the TXT agent names the sighting, not the instance label", () => {
  const { browser } = setup();
  const r = response({ name: "label", txt: ["agent=realname", "port=7000"] });
  assertEquals(types(browser.handleResponse(r, "x").events), ["sighting"]);
  assertEquals(browser.get("realname")!.instance, "label._ironmesh._tcp.local");
  assertEquals(browser.get("realname")!.port, 7000);
});

Deno.test("browser: goodbye marks the sighting departed; it is kept; it returns when announced again", () => {
  const { browser, clock } = setup();
  browser.handleResponse(response({ name: "bob" }), "192.168.1.30");
  clock.advance(10);
  const bye = browser.handleResponse(response({ name: "bob", ttl: 0 }), "192.168.1.30");
  assertEquals(types(bye.events), ["departed"]);
  assertEquals(browser.get("bob")!.departedAt, clock.now());
  assertEquals(browser.sightings().length, 1);
  // a second goodbye reports nothing new
  assertEquals(
    browser.handleResponse(response({ name: "bob", ttl: 0 }), "192.168.1.30").events,
    [],
  );
  const back = browser.handleResponse(response({ name: "bob" }), "192.168.1.30");
  assertEquals(types(back.events), ["sighting"]);
  assertEquals(browser.get("bob")!.departedAt, null);
});

Deno.test("browser: quiet peers are kept; the table is bounded by least recently seen", () => {
  const { browser, clock } = setup({ maxSightings: 3 });
  for (const n of ["a1", "a2", "a3"]) {
    browser.handleResponse(response({ name: n }), "x");
    clock.advance(1);
  }
  clock.advance(3600); // an hour of silence drops nobody
  assertEquals(browser.sightings().map((s) => s.name), ["a1", "a2", "a3"]);
  browser.handleResponse(response({ name: "a1" }), "x"); // refresh a1
  browser.handleResponse(response({ name: "a4" }), "x");
  assertEquals(browser.sightings().map((s) => s.name), ["a1", "a3", "a4"]);
});

Deno.test("browser: malformed packets and foreign records are ignored", () => {
  const { browser } = setup();
  const junk: unknown[] = [
    null,
    42,
    "x",
    { answers: "no" },
    { answers: [null, 1, { name: 5, type: "PTR" }] },
    { answers: [{ name: "_ironmesh._tcp.local", type: "PTR", data: { no: 1 } }] },
    { answers: [{ name: "_ironmesh._tcp.local", type: "PTR", data: "evil.example.com" }] },
    { answers: [{ name: "_http._tcp.local", type: "PTR", data: "x._http._tcp.local" }] },
    {
      answers: [{
        name: "_ironmesh._tcp.local",
        type: "PTR",
        class: "CH",
        data: "c._ironmesh._tcp.local",
      }],
    },
  ];
  for (const j of junk) assertEquals(browser.handleResponse(j, "x"), { events: [], questions: [] });
  // SRV data without a target, A with a non-IPv4 value
  const r = response({ name: "bob" });
  r.additionals[0].data = { port: 1 };
  r.additionals[2].data = "not-an-ip";
  const out = browser.handleResponse(r, "x");
  assertEquals(out.events, []);
  assertEquals(out.questions.map((q) => q.type), ["SRV"]);
});
