import { assert, assertEquals, assertThrows } from "../../support/assert.ts";
import { loadVector, type VectorFloat, vectorFloat, vectorPath } from "../../support/vectors.ts";
import {
  AUDIT_MAX_DEPTH,
  chainHmac,
  encodeEntry,
  entryDataText,
  GENESIS_HMAC,
  HMAC_FIELD_LEN,
  lineOf,
  locateHmacField,
  parseLineForVerify,
} from "../../../lib/audit/chain.ts";
import { ChainMac } from "../../../lib/audit/hmac.ts";
import { auditKey } from "../../../lib/crypto/kdf.ts";
import { fromHex, signKeyPairFromSeed, toHex, utf8 } from "../../../lib/crypto/sodium.ts";
import { nodeIdOf } from "../../../lib/identity/node_id.ts";
import { canonicalJson } from "../../../lib/json/canonical.ts";
import { parseJson } from "../../../lib/json/parse.ts";
import { PyFloat, pyFloat } from "../../../lib/json/py_float.ts";
import { IronMeshError } from "../../../lib/errors.ts";
import { EXPECTED, readLines, VECTOR_KEY } from "./helpers.ts";

Deno.test("C-ST-10: §3.4 first audit entry (zero seed, STARTUP) has the spec hmac", () => {
  const seed = new Uint8Array(32);
  const key = auditKey(seed);
  assertEquals(toHex(key), "6f745187a1eee402a6369e0eec37e2f8d9d5c6033568ad2e1d786f3cd09cda72");
  const nodeId = nodeIdOf(signKeyPairFromSeed(seed).publicKey);
  const mac = new ChainMac(key);
  const e = encodeEntry(mac, GENESIS_HMAC, "STARTUP", {
    node_id: nodeId,
    name: "alice",
    port: 8765,
  }, 1736812800.5);
  mac.dispose();
  assertEquals(e.hmac, "9b8f91dd408a16934f9f13799339c17a46946302e7b6627a6c2bc4285c6f0247");
  assertEquals(e.prevHmac, GENESIS_HMAC);
});

Deno.test("audit key of the vector identity matches", () => {
  assertEquals(toHex(auditKey(fromHex(EXPECTED.owner.ed25519_seed_hex))), EXPECTED.hmac_key_hex);
});

Deno.test("every vector line: entry_data, prev_hmac, hmac and line bytes reproduce exactly", () => {
  const lines = readLines(vectorPath("audit", "audit.log"));
  assertEquals(lines.length, EXPECTED.main_log.entry_count);
  const mac = new ChainMac(VECTOR_KEY);
  let prev = GENESIS_HMAC;
  for (const [i, exp] of EXPECTED.main_log.lines.entries()) {
    const obj = parseJson(lines[i], { preserveNumbers: true }) as Record<string, unknown>;
    const ts = Number(obj.timestamp);
    assertEquals(String(ts === Math.trunc(ts) ? ts.toFixed(1) : ts), exp.timestamp_repr);
    assertEquals(prev, exp.prev_hmac, `prev of line ${exp.line}`);
    const e = encodeEntry(mac, prev, exp.event, obj.details as Record<string, unknown>, ts);
    assertEquals(e.entryData, exp.entry_data_text, `entry_data of line ${exp.line}`);
    assertEquals(e.hmac, exp.hmac, `hmac of line ${exp.line}`);
    assertEquals(e.line, lines[i], `line ${exp.line}`);
    prev = e.hmac;
  }
  assertEquals(prev, EXPECTED.main_log.final_hmac);
  mac.dispose();
});

Deno.test("canonical_json.json audit entries: big ints, -0.0, 1e+16, U+2028 survive byte-exact", () => {
  const V = loadVector<{
    audit_hmac_key_hex: string;
    audit_entries: {
      timestamp: VectorFloat;
      event: string;
      prev_hmac: string;
      entry_data_text: string;
      hmac: string;
      line_text: string;
    }[];
  }>("canonical_json.json");
  const mac = new ChainMac(fromHex(V.audit_hmac_key_hex));
  for (const c of V.audit_entries) {
    const obj = parseJson(c.line_text, { preserveNumbers: true }) as Record<string, unknown>;
    const e = encodeEntry(
      mac,
      c.prev_hmac,
      c.event,
      obj.details as Record<string, unknown>,
      vectorFloat(c.timestamp),
    );
    assertEquals(e.entryData, c.entry_data_text);
    assertEquals(e.hmac, c.hmac);
    assertEquals(e.line, c.line_text);
  }
  mac.dispose();
});

Deno.test("lineOf equals CANON of the full object, and deleting the hmac field gives entry_data", () => {
  const mac = new ChainMac(VECTOR_KEY);
  const samples: Record<string, unknown>[] = [
    {},
    { hmac: "nested-key-named-hmac", timestamp: 5 },
    { a: [1, pyFloat(2), "x"], z: { timestamp: "t" } },
    { s: '"hmac":"' + "a".repeat(64) + '",' },
    { big: 2n ** 70n, f: pyFloat(1e-7), neg: pyFloat(-0) },
  ];
  for (const [i, d] of samples.entries()) {
    const e = encodeEntry(mac, GENESIS_HMAC, "STARTUP", d, 1736812800 + i / 3);
    assertEquals(
      e.line,
      canonicalJson({
        details: d,
        event: "STARTUP",
        hmac: e.hmac,
        timestamp: new PyFloat(e.timestamp),
      }),
    );
    const bytes = utf8(e.line);
    const k = locateHmacField(bytes, 0, bytes.length);
    assert(k > 0, `field found in sample ${i}`);
    const cut = new TextDecoder().decode(bytes.subarray(0, k)) +
      new TextDecoder().decode(bytes.subarray(k + HMAC_FIELD_LEN));
    assertEquals(cut, e.entryData);
    assertEquals(lineOf(e.entryData, e.hmac), e.line);
    // The line is a fixed point of parse → CANON (what the reference verifier relies on).
    assertEquals(parseLineForVerify(e.line).entryData, e.entryData);
  }
  mac.dispose();
});

Deno.test("locateHmacField rejects lines that are not CANON-shaped", () => {
  const h = "ab".repeat(32);
  const ok = `{"details":{},"event":"X","hmac":"${h}","timestamp":1.5}`;
  const at = (s: string) => {
    const b = utf8(s);
    return locateHmacField(b, 0, b.length);
  };
  assertEquals(at(ok), ok.indexOf('"hmac"'));
  assertEquals(at(ok.replace(h, h.toUpperCase())), -1);
  assertEquals(at(ok.replace(h, h.slice(2))), -1);
  assertEquals(at(ok + " "), -1);
  assertEquals(at(ok.slice(0, -1)), -1);
  assertEquals(at(ok.replace('"timestamp":1.5', '"timestamp":"1.5"')), -1);
  assertEquals(at(ok.replace(',"hmac"', '"hmac"')), -1);
  assertEquals(at(`{"details":{},"event":"X","timestamp":1.5}`), -1);
});

Deno.test("parseLineForVerify re-serializes like the reference (raw UTF-8, reordered keys)", () => {
  const raw = readLines(vectorPath("audit", "audit.raw-utf8-line8.log"))[7];
  assertEquals(parseLineForVerify(raw).entryData, EXPECTED.main_log.lines[7].entry_data_text);
  const reordered = '{"timestamp":1.0,"hmac":"x","event":"E","details":{"b":1,"a":2}}';
  const p = parseLineForVerify(reordered);
  assertEquals(p.entryData, '{"details":{"a":2,"b":1},"event":"E","timestamp":1.0}');
  assertEquals(p.storedHmac, "x");
  assertEquals(parseLineForVerify('{"event":"E"}').storedHmac, "");
  assertThrows(() => parseLineForVerify("[1,2]"));
  assertThrows(() => parseLineForVerify('{"details":{},"event":"E","hm'));
  assertThrows(() => parseLineForVerify('{"x":NaN}'));
});

Deno.test("entry encoding refuses what Python could not re-read identically", () => {
  const mac = new ChainMac(VECTOR_KEY);
  const bad = (d: unknown, event = "STARTUP", ts = 1) =>
    assertThrows(
      () => encodeEntry(mac, GENESIS_HMAC, event, d as Record<string, unknown>, ts),
      IronMeshError,
    );
  bad({ x: NaN });
  bad({ x: Infinity });
  bad({ b: new Uint8Array(2) });
  bad([1, 2]);
  bad(null);
  bad({}, "");
  bad({}, "STARTUP", NaN);
  let deep: unknown = 1;
  for (let i = 0; i < AUDIT_MAX_DEPTH + 1; i++) deep = [deep];
  bad({ deep });
  const err = assertThrows(() => entryDataText("X", { x: NaN }, 1), IronMeshError) as IronMeshError;
  assertEquals(err.code, "AUDIT_BAD_DETAILS");
  mac.dispose();
});

Deno.test("floats in details stay Python floats; integral JS numbers stay ints", () => {
  const text = entryDataText(
    "X",
    { f: pyFloat(2), i: 2, tiny: pyFloat(1e-5), big: pyFloat(1e16) },
    1736812800,
  );
  assertEquals(
    text,
    '{"details":{"big":1e+16,"f":2.0,"i":2,"tiny":1e-05},"event":"X","timestamp":1736812800.0}',
  );
});

Deno.test("chainHmac is HMAC-SHA256(key, prev ‖ entry_data)", () => {
  const mac = new ChainMac(VECTOR_KEY);
  const l = EXPECTED.main_log.lines[4];
  assertEquals(chainHmac(mac, l.prev_hmac, l.entry_data_text), l.hmac);
  mac.dispose();
});
