import { assertEquals, assertThrows } from "../../support/assert.ts";
import { canonicalJson, codePointCompare, pyString } from "../../../lib/json/canonical.ts";
import { PyFloat, pyFloat, pyFloatRepr } from "../../../lib/json/py_float.ts";
import { JsonError, parseJson } from "../../../lib/json/parse.ts";
import { loadVector, type VectorFloat, vectorFloat } from "../../support/vectors.ts";
import {
  fromHex,
  signDetached,
  signKeyPairFromSeed,
  toHex,
  utf8,
} from "../../../lib/crypto/sodium.ts";
import { SIG_CTX_CAPABILITY_ANNOUNCE } from "../../../lib/crypto/contexts.ts";

interface CanonVectors {
  cases: {
    name: string;
    function: string;
    inputs: Record<string, unknown>;
    text?: string;
    bytes_hex: string;
    [k: string]: unknown;
  }[];
  float_formatting: {
    rows: { value: VectorFloat; python_json_text: string; canonical_bytes_text: string }[];
  };
  audit_entries: { timestamp: VectorFloat; entry_data_text: string; line_text: string }[];
}
const V = loadVector<CanonVectors>("canonical_json.json");

Deno.test("C-EN-01: CANON sorts keys at every level", () => {
  assertEquals(canonicalJson({ b: 1, a: { d: 2, c: 3 } }), '{"a":{"c":3,"d":2},"b":1}');
});

Deno.test("C-EN-02: ensure_ascii escaping with lowercase hex, surrogate pairs, DEL, no '/' escape", () => {
  assertEquals(pyString("é"), '"\\u00e9"');
  assertEquals(pyString("😀"), '"\\ud83d\\ude00"');
  assertEquals(pyString("\x7f"), '"\\u007f"');
  assertEquals(pyString("a/b"), '"a/b"');
  assertEquals(pyString('"\\\n\r\t\b\f\x01'), '"\\"\\\\\\n\\r\\t\\b\\f\\u0001"');
  assertEquals(pyString("\u2028"), '"\\u2028"');
});

Deno.test("C-EN-03: every recorded float formats like Python repr", () => {
  assertEquals(V.float_formatting.rows.length > 10, true);
  for (const row of V.float_formatting.rows) {
    const x = vectorFloat(row.value);
    assertEquals(pyFloatRepr(x), row.python_json_text, row.value.python_repr);
    const canon = canonicalJson({
      announced_at: pyFloat(x),
      capabilities: ["c"],
      origin: "n",
      version: 1,
    });
    assertEquals(canon, row.canonical_bytes_text);
  }
  assertEquals(pyFloatRepr(1e16), "1e+16");
  assertEquals(pyFloatRepr(1e-5), "1e-05");
  assertEquals(pyFloatRepr(0.0001), "0.0001");
  assertEquals(pyFloatRepr(-0), "-0.0");
});

function caseInputs(inputs: Record<string, unknown>, floats: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(inputs)) {
    out[k] = floats.includes(k) && typeof v === "object"
      ? pyFloat(vectorFloat(v as VectorFloat))
      : v;
  }
  return out;
}

Deno.test("canonical bytes of HELLO, capability announce and invite bodies match the reference", () => {
  let checked = 0;
  for (const c of V.cases) {
    if (c.function === "protocol.canonical_inner_source_bytes") continue;
    let inputs = caseInputs(c.inputs, ["announced_at", "issued_at", "expires_at"]);
    if (c.function === "protocol.canonical_invite_bytes") inputs = { ...inputs, version: 1 };
    // These fields go through float() in the reference, even when the input is an int.
    for (const k of ["announced_at", "issued_at", "expires_at"]) {
      if (k in inputs) inputs[k] = pyFloat(Number(inputs[k]));
    }
    assertEquals(toHex(utf8(canonicalJson(inputs))), c.bytes_hex, c.name);
    checked++;
  }
  assertEquals(checked, 8);
});

Deno.test("capability announce signature (zero seed, 36-byte context) matches the spec vector", () => {
  const c = V.cases.find((x) => x.name === "capability_announce_spec_example")!;
  const kp = signKeyPairFromSeed(fromHex(c.signer_seed_hex as string));
  assertEquals(SIG_CTX_CAPABILITY_ANNOUNCE.length, 36);
  assertEquals(
    toHex(signDetached(fromHex(c.bytes_hex), kp.secretKey, SIG_CTX_CAPABILITY_ANNOUNCE)),
    c.signature_hex,
  );
});

Deno.test("audit entry_data re-serializes to the same bytes through parse(preserveNumbers) → CANON", () => {
  for (const e of V.audit_entries) {
    const parsed = parseJson(e.entry_data_text, { preserveNumbers: true });
    assertEquals(canonicalJson(parsed), e.entry_data_text);
    const line = parseJson(e.line_text, { preserveNumbers: true });
    assertEquals(canonicalJson(line), e.line_text);
  }
});

Deno.test("C-EN-04: 64 nested arrays parse, 65 are refused", () => {
  parseJson("[".repeat(64) + "1" + "]".repeat(64));
  assertThrows(() => parseJson("[".repeat(65) + "1" + "]".repeat(65)), JsonError);
  // Brackets inside strings do not count.
  parseJson(JSON.stringify({ s: "[".repeat(200) }));
});

Deno.test("parseJson keeps the last duplicate key and preserves float-ness and big ints", () => {
  assertEquals(parseJson('{"a":1,"a":2}'), { a: 2 });
  const v = parseJson('{"f":1.0,"i":1,"big":18446744073709551616}', {
    preserveNumbers: true,
  }) as Record<string, unknown>;
  assertEquals(v.f instanceof PyFloat, true);
  assertEquals(v.i, 1);
  assertEquals(v.big, 18446744073709551616n);
  assertEquals(canonicalJson(v), '{"big":18446744073709551616,"f":1.0,"i":1}');
  assertThrows(() => parseJson("NaN"), JsonError);
});

Deno.test("code-point key order differs from UTF-16 order for astral vs U+E000+ keys", () => {
  const keys = ["\ue000", "😀"];
  assertEquals([...keys].sort(codePointCompare), ["\ue000", "😀"]);
  assertEquals([...keys].sort(), ["😀", "\ue000"]);
});
