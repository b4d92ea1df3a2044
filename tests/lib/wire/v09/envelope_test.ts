import { assert, assertEquals, assertThrows } from "../../../support/assert.ts";
import { fromHex } from "../../../../lib/crypto/sodium.ts";
import {
  b64DecodeStrict,
  encodeEnvelope,
  envelopeJson,
  hasFloatIntField,
  parseEnvelope,
} from "../../../../lib/wire/v09/envelope.ts";
import { FrameError, FrameErrorCode } from "../../../../lib/wire/v09/errors.ts";
import { CONTROL, FRAMES } from "./fixtures.ts";

const enc = new TextEncoder();
const BASE = {
  type: "MSG",
  payload: "aGk=",
  msg_id: "m-1",
  source: "a",
  source_display: "a",
  destination: "b",
  timestamp: 1736812800.5,
  priority: "NORMAL",
  sequence: 1,
  retries: 0,
  routing: {},
  ttl: 5,
  hops: [],
};

function parseText(text: string, opts = {}) {
  return parseEnvelope(enc.encode(text), opts);
}

function withField(key: string, valueJson: string | undefined): string {
  const o: Record<string, string> = {};
  for (const [k, v] of Object.entries(BASE)) o[k] = JSON.stringify(v);
  if (valueJson === undefined) delete o[key];
  else o[key] = valueJson;
  return "{" + Object.entries(o).map(([k, v]) => `"${k}":${v}`).join(",") + "}";
}

function malformed(text: string, message?: string, opts = {}): void {
  const e = assertThrows(() => parseText(text, opts), FrameError) as FrameError;
  assertEquals(e.code, FrameErrorCode.MALFORMED);
  if (message !== undefined) assertEquals(e.message, message);
}

Deno.test("envelope: every vector inner JSON parses and re-encodes to the same bytes", () => {
  const texts = [
    ...FRAMES.frames.filter((f) => f.inner_json_text).map((f) => f.inner_json_text),
    ...CONTROL.payloads.map((c) => c.frame.inner_json_text),
  ];
  assert(texts.length >= 24);
  for (const t of texts) {
    const env = parseText(t);
    assertEquals(envelopeJson(env), t);
    assertEquals(encodeEnvelope(env), enc.encode(t));
  }
});

Deno.test("envelope: fields decode to bytes and numbers", () => {
  const f = FRAMES.frames.find((x) => x.name === "relayed_e2e_sealed")!;
  const env = parseText(f.inner_json_text);
  assertEquals(env.payload, fromHex(f.inputs.payload_hex));
  assertEquals(env.hops, ["ea5404ba3b231221f6536b8488f52c65"]);
  assertEquals(env.sourceSigScheme, "v2");
  assertEquals(env.sourceSignature!.length, 64);
  assertEquals(env.e2ePayload, fromHex(f.e2e!.e2e_payload_hex));
  assertEquals(env.timestamp, 1736812802.5);
});

Deno.test("envelope: integral timestamps stay Python floats, routing survives", () => {
  const env = parseText(
    withField("timestamp", "1736812800").replace('"routing":{}', '"routing":{"compressed":true}'),
  );
  assertEquals(env.timestamp, 1736812800);
  const out = envelopeJson(env);
  assert(out.includes('"timestamp":1736812800.0,'));
  assert(out.includes('"routing":{"compressed":true}'));
});

Deno.test("envelope: an untagged signature is re-emitted with tag v1, unknown keys dropped", () => {
  const sig = "A".repeat(86) + "==";
  const env = parseText(
    withField("source_signature", JSON.stringify(sig)).replace(/}$/, ',"x":1}'),
  );
  assertEquals(env.sourceSigScheme, undefined);
  const out = envelopeJson(env);
  assert(out.endsWith(`"source_signature":"${sig}","source_sig_scheme":"v1"}`), out);
});

Deno.test("envelope: from_dict checks with the reference's messages", () => {
  malformed("[]", "Frame.from_dict requires a dict, got list");
  malformed(withField("type", undefined), "Invalid or missing 'type' field: None");
  malformed(withField("type", '""'), "Invalid or missing 'type' field: ''");
  malformed(withField("type", "123"), "Invalid or missing 'type' field: 123");
  malformed(withField("msg_id", "7"), "msg_id must be a string, got int");
  malformed(withField("source", "[]"), "source must be a string, got list");
  malformed(withField("destination", "1.5"), "destination must be a string, got float");
  malformed(withField("sequence", "-1"), "sequence must be a non-negative integer, got -1");
  malformed(withField("sequence", "2.0"), "sequence must be a non-negative integer, got 2.0");
  malformed(withField("ttl", "300"), "Invalid TTL: 300");
  malformed(withField("ttl", '"3"'), "Invalid TTL: '3'");
  malformed(withField("ttl", "true"), "Invalid TTL: True");
  malformed(withField("hops", "3"), "Invalid hops: 3");
  malformed(withField("hops", '["a",1]'), "Invalid hops: ['a', 1]");
  malformed(withField("source_sig_scheme", "2"), "source_sig_scheme must be a string, got int");
});

Deno.test("envelope: ours — timestamp and msg_id required, strict types and base64", () => {
  malformed(withField("timestamp", undefined), "Inner envelope has no timestamp");
  assertEquals(
    parseText(withField("timestamp", undefined), { requireTimestamp: false, now: 7.5 }).timestamp,
    7.5,
  );
  malformed(withField("msg_id", undefined), "Inner envelope has no msg_id");
  malformed(withField("timestamp", '"1736812800"'), "timestamp must be a number, got str");
  malformed(withField("timestamp", "1e400"));
  malformed(withField("payload", '"aGk"'), "payload is not valid base64");
  malformed(withField("payload", '"aG k="'), "payload is not valid base64");
  malformed(withField("payload", "5"), "payload must be a string, got int");
  malformed(withField("msg_id", '"\\ud800x"'), "msg_id contains a lone surrogate");
  malformed(withField("source", '"\\udc00"'), "source contains a lone surrogate");
  malformed(withField("routing", "[]"), "routing must be a dict, got list");
  malformed(withField("retries", "-1"));
  malformed(withField("timestamp", "NaN"));
});

Deno.test("envelope: depth guard, UTF-8 and duplicate keys", () => {
  const deep = (n: number) => withField("routing", `{"x":${"[".repeat(n)}1${"]".repeat(n)}}`);
  parseText(deep(62)); // top-level object + routing + 62 arrays = 64 containers: accepted
  malformed(deep(63), "JSON nesting exceeds max depth 64");
  const e = assertThrows(() => parseEnvelope(new Uint8Array([0x7b, 0xff, 0x7d])), FrameError);
  assertEquals((e as FrameError).message, "Inner envelope is not valid UTF-8");
  const dup = withField("ttl", "1").replace(/}$/, ',"ttl":4}');
  assertEquals(parseText(dup).ttl, 4); // last one wins, as Python's json.loads
});

Deno.test('envelope: empty payload is written as "" and absent e2e_payload is omitted', () => {
  const env = parseText(withField("payload", '""'));
  assertEquals(env.payload.length, 0);
  const out = envelopeJson(env);
  assert(out.includes('"payload":""'));
  assert(!out.includes("e2e_payload"));
  assertEquals(b64DecodeStrict(""), new Uint8Array(0));
  assertThrows(() => b64DecodeStrict("aGk=\n"), TypeError);
  assertThrows(() => b64DecodeStrict("aGl="), TypeError); // non-zero padding bits
});

Deno.test("hasFloatIntField agrees with the plain regex on short and long texts", () => {
  const re = /"(?:sequence|ttl|retries)"\s*:\s*-?\d+[.eE]/;
  const pad = "A".repeat(10_000);
  for (
    const body of [
      '"sequence":1,"ttl":3',
      '"sequence":1.0',
      '"ttl" : -2e3',
      '"retries":\t0.5',
      '"x":"\\"ttl\\":1.0"',
      '"sequence":12,"hops":["ttl"]',
      '"ttl":3,"routing":{"ttl":1.5}',
    ]
  ) {
    for (const text of [`{${body}}`, `{"payload":"${pad}",${body}}`]) {
      assertEquals(hasFloatIntField(text), re.test(text), text.slice(-40));
    }
  }
});

Deno.test("b64DecodeStrict refuses whitespace anywhere, accepts canonical padding", () => {
  assertEquals(b64DecodeStrict("QUJD"), new Uint8Array([65, 66, 67]));
  assertEquals(b64DecodeStrict("QQ=="), new Uint8Array([65]));
  assertEquals(b64DecodeStrict(""), new Uint8Array(0));
  for (const bad of ["QUJD    ", "QU JD   ", "QQ==    ", " QQ=", "QUJ\nRA==", "QR==", "QQ="]) {
    let threw = false;
    try {
      b64DecodeStrict(bad);
    } catch {
      threw = true;
    }
    assertEquals(threw, true, JSON.stringify(bad));
  }
});
