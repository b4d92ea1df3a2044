import { assertEquals, assertThrows } from "../../support/assert.ts";
import { IronMeshError } from "../../../lib/errors.ts";
import {
  announcementRecords,
  answerQuery,
  type DnsRecord,
  HOST_TTL,
  isDialableIpv4,
  makeAnnouncement,
  OTHER_TTL,
  SERVICE_TYPE,
  SERVICES_META,
  validateAnnounceName,
} from "../../../lib/discovery/records.ts";

const IDH = "0123456789abcdef";
const ann = makeAnnouncement({ name: "alice", port: 8765, address: "192.168.1.20", idhash: IDH });

function summary(recs: DnsRecord[]) {
  return recs.map((r) => `${r.type} ${r.name}`);
}

Deno.test("announcement: instance, host, SRV port, A, TXT as the reference", () => {
  assertEquals(ann.instance, "alice._ironmesh._tcp.local");
  assertEquals(ann.host, "alice.local");
  const { answers, additionals } = announcementRecords(ann);
  assertEquals(additionals, []);
  assertEquals(answers, [
    { name: SERVICE_TYPE, type: "PTR", ttl: OTHER_TTL, data: "alice._ironmesh._tcp.local" },
    {
      name: "alice._ironmesh._tcp.local",
      type: "SRV",
      ttl: HOST_TTL,
      flush: true,
      data: { priority: 0, weight: 0, port: 8765, target: "alice.local" },
    },
    {
      name: "alice._ironmesh._tcp.local",
      type: "TXT",
      ttl: OTHER_TTL,
      flush: true,
      data: ["agent=alice", "port=8765", "proto=ironmesh/0.6", `idhash=${IDH}`],
    },
    { name: "alice.local", type: "A", ttl: HOST_TTL, flush: true, data: "192.168.1.20" },
  ]);
});

Deno.test("goodbye: the same records with TTL 0", () => {
  const bye = announcementRecords(ann, true);
  assertEquals(bye.answers.map((r) => r.ttl), [0, 0, 0, 0]);
  assertEquals(summary(bye.answers), summary(announcementRecords(ann).answers));
});

Deno.test("names we announce: [A-Za-z0-9._-]{1,63}, otherwise a clear error", () => {
  for (const ok of ["a", "alice", "node-1", "my_agent.v2", "A".repeat(63)]) {
    validateAnnounceName(ok);
  }
  for (const bad of ["", "A".repeat(64), "a b", "ü", "a/b", "a:b", ".a", "a.", "a..b", "😀"]) {
    const e = assertThrows(() => validateAnnounceName(bad), IronMeshError) as IronMeshError;
    assertEquals(e.code, "MDNS_BAD_NAME", bad);
    assertEquals(e.hint.includes("1–63"), true);
  }
});

Deno.test("makeAnnouncement refuses bad port, address and idhash", () => {
  const base = { name: "alice", port: 8765, address: "10.0.0.2", idhash: IDH };
  const code = (o: Partial<typeof base>) =>
    (assertThrows(() => makeAnnouncement({ ...base, ...o }), IronMeshError) as IronMeshError).code;
  assertEquals(code({ port: 0 }), "MDNS_BAD_PORT");
  assertEquals(code({ port: 65536 }), "MDNS_BAD_PORT");
  assertEquals(code({ address: "0.0.0.0" }), "MDNS_BAD_ADDRESS");
  assertEquals(code({ address: "224.0.0.251" }), "MDNS_BAD_ADDRESS");
  assertEquals(code({ address: "::1" }), "MDNS_BAD_ADDRESS");
  assertEquals(code({ address: "10.0.0.02" }), "MDNS_BAD_ADDRESS");
  assertEquals(code({ idhash: "0123" }), "MDNS_BAD_IDHASH");
  assertEquals(code({ idhash: IDH.toUpperCase() }), "MDNS_BAD_IDHASH");
  assertEquals(code({ idhash: "ab".repeat(32) }), "MDNS_BAD_IDHASH"); // the public key is never accepted
  assertEquals(isDialableIpv4("127.0.0.1"), true);
  assertEquals(isDialableIpv4("255.255.255.255"), false);
});

Deno.test("answerQuery: PTR → PTR + SRV/TXT/A additionals", () => {
  const r = answerQuery(ann, [{ name: "_ironmesh._tcp.local", type: "PTR", class: "IN" }])!;
  assertEquals(summary(r.answers), [`PTR ${SERVICE_TYPE}`]);
  assertEquals(summary(r.additionals), [
    "SRV alice._ironmesh._tcp.local",
    "TXT alice._ironmesh._tcp.local",
    "A alice.local",
  ]);
  // case-insensitive names, trailing dot, unicast-response bit, ANY type
  const qu = answerQuery(ann, [{
    name: "_IronMesh._TCP.local.",
    type: "ANY",
    class: "UNKNOWN_32769",
  }])!;
  assertEquals(summary(qu.answers), [`PTR ${SERVICE_TYPE}`]);
});

Deno.test("answerQuery: SRV, TXT, A, ANY for our names; enumeration; nothing for others", () => {
  const q = (name: string, type: string) => answerQuery(ann, [{ name, type }]);
  assertEquals(summary(q("alice._ironmesh._tcp.local", "SRV")!.answers), [
    "SRV alice._ironmesh._tcp.local",
  ]);
  assertEquals(summary(q("alice._ironmesh._tcp.local", "SRV")!.additionals), ["A alice.local"]);
  assertEquals(summary(q("alice._ironmesh._tcp.local", "TXT")!.answers), [
    "TXT alice._ironmesh._tcp.local",
  ]);
  assertEquals(summary(q("alice._ironmesh._tcp.local", "ANY")!.answers), [
    "SRV alice._ironmesh._tcp.local",
    "TXT alice._ironmesh._tcp.local",
  ]);
  assertEquals(summary(q("alice.local", "A")!.answers), ["A alice.local"]);
  assertEquals(q(SERVICES_META, "PTR")!.answers[0].data, SERVICE_TYPE);
  assertEquals(q("bob._ironmesh._tcp.local", "SRV"), null);
  assertEquals(q("alice.local", "AAAA"), null);
  assertEquals(q("_http._tcp.local", "PTR"), null);
  assertEquals(answerQuery(ann, [{ name: SERVICE_TYPE, type: "PTR", class: "CH" }]), null);
  assertEquals(answerQuery(ann, "garbage"), null);
  assertEquals(answerQuery(ann, [null, 5, { name: 1 }]), null);
});

Deno.test("answerQuery: known-answer suppression of our PTR (RFC 6762 §7.1)", () => {
  const qs = [{ name: SERVICE_TYPE, type: "PTR" }];
  const known = (
    ttl: number,
  ) => [{ name: SERVICE_TYPE, type: "PTR", ttl, data: "alice._ironmesh._tcp.local" }];
  assertEquals(answerQuery(ann, qs, known(OTHER_TTL)), null);
  assertEquals(answerQuery(ann, qs, known(OTHER_TTL / 2 - 1))!.answers.length, 1);
  const other = [{
    name: SERVICE_TYPE,
    type: "PTR",
    ttl: OTHER_TTL,
    data: "bob._ironmesh._tcp.local",
  }];
  assertEquals(answerQuery(ann, qs, other)!.answers.length, 1);
});
