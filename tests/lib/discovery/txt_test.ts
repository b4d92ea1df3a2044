import { assertEquals } from "../../support/assert.ts";
import {
  announcementTxt,
  isValidAgentName,
  MAX_TXT_TOTAL,
  parseTxt,
  parseTxtIdhash,
  parseTxtPort,
  validateAnnouncementTxt,
} from "../../../lib/discovery/txt.ts";

const enc = new TextEncoder();
const b = (s: string) => enc.encode(s);

function txt(agent: string, port = "8765", extra: string[] = []): Uint8Array[] {
  return [b(`agent=${agent}`), b(`port=${port}`), b("proto=ironmesh/0.6"), ...extra.map(b)];
}

function reason(data: unknown): string {
  const v = validateAnnouncementTxt(data);
  return v.ok ? "ok" : v.reason;
}

Deno.test("announcementTxt: the reference's four strings, in order, proto fixed at ironmesh/0.6", () => {
  assertEquals(announcementTxt("alice", 8765, "0123456789abcdef"), [
    "agent=alice",
    "port=8765",
    "proto=ironmesh/0.6",
    "idhash=0123456789abcdef",
  ]);
});

Deno.test("parseTxt: first key wins, bare key has no value, empty key skipped, split at first '='", () => {
  const { props, total } = parseTxt([b("agent=a=b"), b("agent=zzz"), b("flag"), b("=x"), b("k=")]);
  assertEquals(new TextDecoder().decode(props.get("agent")!), "a=b");
  assertEquals(props.get("flag"), null);
  assertEquals(props.has(""), false);
  assertEquals(props.get("k")!.length, 0);
  // Σ key + value over the kept properties: agent(5)+3, flag(4), k(1)
  assertEquals(total, 13);
  // keys are case-sensitive, as in the reference
  assertEquals(parseTxt([b("AGENT=x")]).props.has("agent"), false);
});

Deno.test("validate: a reference announcement passes; idhash lowercased", () => {
  const v = validateAnnouncementTxt(txt("bob", "9000", ["idhash=0123456789ABCDEF"]));
  assertEquals(v, { ok: true, fields: { agent: "bob", port: 9000, idhash: "0123456789abcdef" } });
  // strings are accepted as well as bytes
  assertEquals(reason(["agent=bob", "port=1"]), "ok");
});

Deno.test("validate: TXT total of 1024 passes, 1025 is refused", () => {
  // agent=bob (5+3), port=8765 (4+4), proto (5+12) = 33; pad key "x" to reach the limit
  const base = 33;
  const pad = (n: number) => `x=${"a".repeat(n - 1)}`; // contributes n
  assertEquals(reason(txt("bob", "8765", [pad(MAX_TXT_TOTAL - base)])), "ok");
  assertEquals(reason(txt("bob", "8765", [pad(MAX_TXT_TOTAL - base + 1)])), "txt_too_large");
});

Deno.test("validate: agent charset, length and UTF-8", () => {
  assertEquals(reason(txt("Ωmega-ü_1.x")), "ok"); // Unicode letters are isalnum()
  assertEquals(reason(txt("agent٣")), "ok"); // Unicode digit
  assertEquals(reason(txt("a".repeat(256))), "ok");
  assertEquals(reason(txt("é".repeat(256))), "ok"); // 256 code points, 512 bytes
  assertEquals(reason(txt("a".repeat(257))), "bad_agent");
  assertEquals(reason(txt("")), "bad_agent");
  assertEquals(reason([b("port=1")]), "bad_agent"); // missing
  assertEquals(reason(txt("bad name")), "bad_agent");
  assertEquals(reason(txt("semi;colon")), "bad_agent");
  assertEquals(reason(txt("slash/")), "bad_agent");
  assertEquals(reason(txt("emoji😀")), "bad_agent");
  assertEquals(reason(txt("zero\u200bwidth")), "bad_agent");
  // invalid UTF-8: a lone continuation byte, an overlong encoding, an encoded surrogate
  for (const bad of [[0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80]]) {
    const agent = new Uint8Array([...b("agent=ab"), ...bad]);
    assertEquals(reason([agent, b("port=1")]), "bad_agent", JSON.stringify(bad));
  }
  // a BOM is not stripped: it is not alphanumeric
  assertEquals(
    reason([new Uint8Array([...b("agent="), 0xef, 0xbb, 0xbf, 0x61]), b("port=1")]),
    "bad_agent",
  );
  assertEquals(isValidAgentName("a.b-c_d"), true);
  assertEquals(isValidAgentName("a b"), false);
});

Deno.test("validate: port from TXT must be an ASCII integer 1–65535", () => {
  assertEquals(reason(txt("bob", "1")), "ok");
  assertEquals(reason(txt("bob", "65535")), "ok");
  for (
    const p of ["0", "65536", "99999", "", "abc", "+80", " 80", "80 ", "8_0", "-1", "1e3", "١٢"]
  ) {
    assertEquals(reason(txt("bob", p)), "bad_port", JSON.stringify(p));
  }
  assertEquals(reason([b("agent=bob")]), "bad_port"); // missing
  assertEquals(reason([b("agent=bob"), b("port")]), "bad_port"); // bare key
  assertEquals(parseTxtPort(b("8765")), 8765);
  assertEquals(parseTxtPort(null), null);
});

Deno.test("validate: idhash kept only when 1–64 hex characters", () => {
  const idh = (v: string) => {
    const r = validateAnnouncementTxt(txt("bob", "1", [`idhash=${v}`]));
    return r.ok ? r.fields.idhash : "REJECTED";
  };
  assertEquals(idh("a".repeat(64)), "a".repeat(64));
  assertEquals(idh("A".repeat(16)), "a".repeat(16));
  assertEquals(idh("a".repeat(65)), null);
  assertEquals(idh("xyz"), null);
  assertEquals(idh(""), null);
  assertEquals(idh("ａ"), null); // fullwidth, not ASCII hex
  assertEquals(validateAnnouncementTxt(txt("bob")).ok && true, true);
  assertEquals(parseTxtIdhash(undefined), null);
});
