import { assert, assertEquals, assertThrows } from "../../support/assert.ts";
import { ChainMac } from "../../../lib/audit/hmac.ts";
import {
  hmacSha256,
  hmacSha256Node,
  randomBytes,
  toHex,
  utf8,
} from "../../../lib/crypto/sodium.ts";
import { IronMeshError } from "../../../lib/errors.ts";

Deno.test("ChainMac.mac equals HMAC-SHA256 for many lengths and part splits", () => {
  const key = randomBytes(32);
  const mac = new ChainMac(key);
  for (
    const n of [0, 1, 31, 32, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 4095, 4096, 4097, 70000]
  ) {
    const msg = randomBytes(n);
    const want = toHex(hmacSha256Node(key, msg));
    assertEquals(toHex(mac.mac(msg)), want, `length ${n}`);
    const cut = Math.floor(n / 3);
    assertEquals(toHex(mac.mac(msg.subarray(0, cut), msg.subarray(cut))), want, `split ${n}`);
  }
  assertEquals(toHex(mac.mac(utf8("abc"))), toHex(hmacSha256(key, utf8("abc"))));
  mac.dispose();
});

Deno.test("ChainMac.verifyStaged checks prev ‖ a ‖ b against hex held in the heap", () => {
  const key = randomBytes(32);
  const mac = new ChainMac(key);
  const prev = utf8("0".repeat(64));
  const a = utf8('{"details":{},"event":"X",'), b = utf8('"timestamp":1.0}');
  const tag = utf8(toHex(hmacSha256(key, new Uint8Array([...prev, ...a, ...b]))));
  const staged = new Uint8Array([...a, ...b, ...tag]);
  const base = mac.stage(staged);
  const p = mac.setPrev(prev);
  assertEquals(p, mac.prevSlot);
  assert(
    mac.verifyStaged(p, base, a.length, base + a.length, b.length, base + a.length + b.length),
  );
  // One flipped bit anywhere fails: message, prev, tag.
  const bad = staged.slice();
  bad[3] ^= 1;
  const base2 = mac.stage(bad);
  assert(
    !mac.verifyStaged(p, base2, a.length, base2 + a.length, b.length, base2 + a.length + b.length),
  );
  const base3 = mac.stage(staged);
  mac.setPrev(utf8("1" + "0".repeat(63)));
  assert(
    !mac.verifyStaged(p, base3, a.length, base3 + a.length, b.length, base3 + a.length + b.length),
  );
  mac.setPrev(prev);
  const upper = new Uint8Array([...a, ...b, ...utf8(new TextDecoder().decode(tag).toUpperCase())]);
  const base4 = mac.stage(upper);
  assert(
    !mac.verifyStaged(p, base4, a.length, base4 + a.length, b.length, base4 + a.length + b.length),
  );
  mac.dispose();
});

Deno.test("ChainMac refuses keys that are not 32 bytes and use after dispose", () => {
  const e = assertThrows(() => new ChainMac(new Uint8Array(16)), IronMeshError) as IronMeshError;
  assertEquals(e.code, "AUDIT_BAD_KEY");
  const mac = new ChainMac(new Uint8Array(32));
  mac.dispose();
  mac.dispose();
  assertThrows(() => mac.mac(utf8("x")), Error, "dispose");
});
