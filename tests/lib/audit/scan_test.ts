import { assertEquals } from "../../support/assert.ts";
import { vectorPath } from "../../support/vectors.ts";
import {
  lineHmac,
  logicalLines,
  looksTorn,
  scanBytes,
  stripLine,
} from "../../../lib/audit/scan.ts";
import { utf8 } from "../../../lib/crypto/sodium.ts";
import { EXPECTED } from "./helpers.ts";

Deno.test("stripLine strips Python whitespace (not U+FEFF); logicalLines splits on \\r too", () => {
  assertEquals(stripLine(" \t\x1c{x}\x85\u3000\r"), "{x}");
  assertEquals(stripLine("\ufeff{x}"), "\ufeff{x}");
  assertEquals(logicalLines("a\rb\r\r  \rc"), ["a", "b", "c"]);
  assertEquals(logicalLines("   "), []);
});

Deno.test("looksTorn: entry-shaped fragments and NUL padding only", () => {
  for (const t of ['{"details":{"a":', "{", '{"det', "\0\0", '{"details":{}\0\0']) {
    assertEquals(looksTorn(t), true, JSON.stringify(t));
  }
  for (const t of ["garbage", "[1,2", '{"event":"X"', "}"]) assertEquals(looksTorn(t), false, t);
});

Deno.test("scanBytes counts lines and finds hmacs without MACs (vector log and torn tail)", () => {
  const lines = EXPECTED.main_log.lines;
  const s = scanBytes("a", Deno.readFileSync(vectorPath("audit", "audit.log")), () => [12, 40]);
  assertEquals([s.lines, s.firstHmac, s.lastHmac, s.lastHmacLine], [
    32,
    lines[0].hmac,
    lines[31].hmac,
    32,
  ]);
  assertEquals(s.wanted.get(12), lines[11].hmac);
  assertEquals(s.wanted.has(40), false);
  const t = scanBytes(
    "b",
    Deno.readFileSync(vectorPath("audit", "audit.tampered-truncated-tail.log")),
  );
  assertEquals([t.lines, t.lastHmac, t.lastHmacLine], [32, lines[30].hmac, 31]);
  const raw = Deno.readFileSync(vectorPath("audit", "audit.raw-utf8-line8.log"));
  assertEquals(scanBytes("c", raw, () => [8]).wanted.get(8), lines[7].hmac);
  const empty = scanBytes("d", utf8("\n\n"));
  assertEquals([empty.lines, empty.firstHmac], [0, null]);
  const line = utf8(`{"hmac":"${"f".repeat(64)}", "x": 1}`);
  assertEquals(lineHmac(line, 0, line.length), "f".repeat(64));
  assertEquals(lineHmac(utf8('{"hmac":"short"}'), 0, 16), null);
});
