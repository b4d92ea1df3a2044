import { assertEquals } from "../../support/assert.ts";
import {
  autoDialDecision,
  compareNames,
  shouldAutoDial,
  weDial,
} from "../../../lib/discovery/policy.ts";

const none = new Set<string>();

Deno.test("default deny: without an allow-list or open discovery nobody is dialed", () => {
  assertEquals(
    shouldAutoDial({ name: "zed" }, {
      allowedPeers: none,
      openDiscovery: false,
      localName: "alice",
    }),
    false,
  );
  assertEquals(
    autoDialDecision({ name: "zed" }, {
      allowedPeers: none,
      openDiscovery: false,
      localName: "alice",
    }),
    { action: "deny", reason: "not_allowed" },
  );
});

Deno.test("allow-list: only listed names; open discovery: anyone", () => {
  const p = { allowedPeers: new Set(["bob"]), openDiscovery: false, localName: "alice" };
  assertEquals(shouldAutoDial({ name: "bob" }, p), true);
  assertEquals(shouldAutoDial({ name: "carol" }, p), false);
  assertEquals(shouldAutoDial({ name: "carol" }, { ...p, openDiscovery: true }), true);
});

Deno.test("tie-break: only the smaller name dials; the other remembers", () => {
  const open = (localName: string) => ({ allowedPeers: none, openDiscovery: true, localName });
  assertEquals(shouldAutoDial({ name: "bob" }, open("alice")), true);
  assertEquals(shouldAutoDial({ name: "alice" }, open("bob")), false);
  assertEquals(autoDialDecision({ name: "alice" }, open("bob")), {
    action: "remember",
    reason: "peer_dials",
  });
  // exactly one side of any pair dials
  for (const [a, b] of [["a", "b"], ["Z", "a"], ["node-1", "node-10"], ["x", "x.y"]]) {
    assertEquals(
      shouldAutoDial({ name: b }, open(a)) !== shouldAutoDial({ name: a }, open(b)),
      true,
      `${a}/${b}`,
    );
  }
  // upper case sorts before lower case (byte/code-point order, like Python)
  assertEquals(weDial("Zed", "alice"), true);
  assertEquals(shouldAutoDial({ name: "alice" }, open("alice")), false);
  assertEquals(autoDialDecision({ name: "alice" }, open("alice")), {
    action: "deny",
    reason: "self",
  });
});

Deno.test("tie-break compares code points like Python, not UTF-16 units", () => {
  // U+FF5E vs U+1F600: Python says "\uff5e" < "\U0001f600"; JS `<` says the opposite.
  assertEquals("\uff5e" < "\u{1F600}", false);
  assertEquals(compareNames("\uff5e", "\u{1F600}"), -1);
  assertEquals(weDial("\uff5e", "\u{1F600}"), true);
  assertEquals(compareNames("ab", "ab"), 0);
  assertEquals(compareNames("ab", "abc"), -1);
  assertEquals(compareNames("b", "abc"), 1);
});

Deno.test("a departed peer is remembered, not dialed, until it announces again", () => {
  const p = { allowedPeers: new Set(["bob"]), openDiscovery: false, localName: "alice" };
  assertEquals(autoDialDecision({ name: "bob", departedAt: 5 }, p), {
    action: "remember",
    reason: "departed",
  });
  assertEquals(shouldAutoDial({ name: "bob", departedAt: null }, p), true);
});
