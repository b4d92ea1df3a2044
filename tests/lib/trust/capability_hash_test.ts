import { assert, assertEquals, assertThrows } from "../../support/assert.ts";
import { loadVector } from "../../support/vectors.ts";
import { toHex } from "../../../lib/crypto/sodium.ts";
import { pyFloat } from "../../../lib/json/py_float.ts";
import {
  canonicalCapabilitySet,
  capabilityHash,
  capabilityHashPreimage,
  observedCapabilitySet,
  pyStr,
  pyStrip,
} from "../../../lib/trust/capability_hash.ts";

interface CapCase {
  name: string;
  input: unknown[] | null;
  canonical_sorted: string[];
  preimage_hex: string;
  hash_hex: string;
}
const V = loadVector<{ cases: CapCase[] }>("capability_hash.json");

Deno.test("capability hash: every vector case (set, preimage, hash)", () => {
  assert(V.cases.length >= 15);
  for (const c of V.cases) {
    assertEquals(canonicalCapabilitySet(c.input), c.canonical_sorted, c.name);
    assertEquals(toHex(capabilityHashPreimage(c.input)), c.preimage_hex, c.name);
    assertEquals(capabilityHash(c.input), c.hash_hex, c.name);
  }
});

Deno.test("C-CA-04: [embed, chat, ' chat '] hashes like [chat, embed]", () => {
  const basic = V.cases.find((c) => c.name === "basic")!;
  assertEquals(capabilityHash(["embed", "chat", " chat "]), basic.hash_hex);
});

Deno.test("capability hash: sorts by code point, not UTF-16 units", () => {
  const input = ["\u{1F680}-rocket", "\uff5a-fullwidth-z", "a"];
  // JavaScript's default sort puts the astral character (surrogate 0xD83D) first.
  assertEquals([...input].sort()[1], "\u{1F680}-rocket");
  assertEquals(canonicalCapabilitySet(input), ["a", "\uff5a-fullwidth-z", "\u{1F680}-rocket"]);
});

Deno.test("pyStrip uses Python's whitespace set, not JavaScript's trim()", () => {
  assertEquals(pyStrip("\x1c\x85 chat \u3000"), "chat");
  assertEquals(pyStrip("\ufeffchat"), "\ufeffchat"); // BOM is not whitespace in Python
  assertEquals("\ufeffchat".trim(), "chat");
});

Deno.test("pyStr mirrors Python str() of JSON scalars", () => {
  assertEquals(pyStr(1), "1");
  assertEquals(pyStr(2.5), "2.5");
  assertEquals(pyStr(pyFloat(1)), "1.0");
  assertEquals(pyStr(1e-5), "1e-05");
  assertEquals(pyStr(true), "True");
  assertEquals(pyStr(10n ** 20n), "100000000000000000000");
  assertThrows(() => pyStr({}), TypeError);
});

Deno.test("observed set also drops falsy entries (Python `if c`)", () => {
  assertEquals(canonicalCapabilitySet([0, false, "x"]), ["0", "False", "x"]);
  assertEquals(observedCapabilitySet([0, false, pyFloat(0), "", null, "x", " x "]), ["x"]);
});
