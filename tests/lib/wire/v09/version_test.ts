import { assert, assertEquals } from "../../../support/assert.ts";
import {
  compareProtocolVersions,
  parseProtocolVersion,
  supportsHelloContext,
  supportsMesh,
  supportsRekey,
  versionAtLeast,
} from "../../../../lib/wire/v09/version.ts";

Deno.test("parseProtocolVersion follows the reference's parser", () => {
  const cases: [unknown, [number, number]][] = [
    ["ironmesh/0.9", [0, 9]],
    ["ironmesh/0.10", [0, 10]],
    ["ironmesh/1.2.3", [1, 2]],
    ["anything/0.6", [0, 6]],
    ["/0.9", [0, 9]],
    ["ironmesh/ 0 . 9 ", [0, 9]],
    ["ironmesh/1_0.0", [10, 0]],
    ["ironmesh/+1.-2", [1, -2]],
    ["ironmesh/0.9rc1", [0, 0]],
    ["ironmesh/0", [0, 0]],
    ["ironmesh0.9", [0, 0]],
    ["a/b/0.9", [0, 0]],
    ["ironmesh/0x1.0", [0, 0]],
    ["ironmesh/1__0.0", [0, 0]],
    ["", [0, 0]],
    [null, [0, 0]],
    [9, [0, 0]],
  ];
  for (const [v, want] of cases) assertEquals([...parseProtocolVersion(v)], want, String(v));
});

Deno.test("versions compare numerically, not as strings", () => {
  assert(compareProtocolVersions("ironmesh/0.10", "ironmesh/0.9") > 0);
  assert(compareProtocolVersions("ironmesh/0.6", "ironmesh/0.9") < 0);
  assert(compareProtocolVersions("ironmesh/1.0", "ironmesh/0.99") > 0);
  assertEquals(compareProtocolVersions("x/0.9", "ironmesh/0.9.7"), 0);
  assert(versionAtLeast("ironmesh/0.9", "ironmesh/0.9"));
  assert(!versionAtLeast("ironmesh/0.6", "ironmesh/0.9"));
  assert(!versionAtLeast("garbage", "ironmesh/0.3"));
});

Deno.test("capability thresholds: context HELLO ≥ 0.9, mesh ≥ 0.4, rekey ≥ 0.5", () => {
  assert(supportsHelloContext("ironmesh/0.9"));
  assert(!supportsHelloContext("ironmesh/0.8"));
  assert(supportsMesh("ironmesh/0.4") && !supportsMesh("ironmesh/0.3"));
  assert(supportsRekey("ironmesh/0.5") && !supportsRekey("ironmesh/0.4"));
});
