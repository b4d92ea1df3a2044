import { assert, assertEquals } from "../../support/assert.ts";
import { loadVector, vectorPath } from "../../support/vectors.ts";
import { FakeClock } from "../../../lib/clock.ts";
import { capabilitiesKey, routesKey } from "../../../lib/crypto/kdf.ts";
import { fromHex, toHex } from "../../../lib/crypto/sodium.ts";
import { CapabilityRegistry } from "../../../lib/routing/capabilities.ts";
import { RoutingTable } from "../../../lib/routing/distance_vector.ts";
import {
  capabilitiesBody,
  decodeStateFile,
  encodeStateFile,
  loadCapabilitiesFile,
  loadRoutesFile,
  routesBody,
  routesFromBody,
  saveCapabilitiesFile,
  saveRoutesFile,
} from "../../../lib/routing/persist.ts";
import { nid } from "./helpers.ts";

interface StateFileVector {
  hmac_key_hex: string;
  file_text: string;
  body_text: string;
  hmac: string;
}

const STATE = loadVector<{
  owner_node_id: string;
  owner_seed_hex: string;
  files: Record<string, StateFileVector>;
}>("state", "state.expected.json");
const SEED = fromHex(STATE.owner_seed_hex);
const ALICE = STATE.owner_node_id;
const ROUTES = STATE.files["routes.json"];
const CAPS = STATE.files["capabilities.json"];
const [BOB, CAROL, DAVE] = [
  "a5f14a936d289f5d15e90fcaff39a373",
  "2c348b324e762618695f63bfdefdf6cd",
  "ea5404ba3b231221f6536b8488f52c65",
];
const NOW = 1736812800;

function aliceTable(): { t: RoutingTable; clock: FakeClock } {
  const clock = new FakeClock(NOW);
  const t = new RoutingTable({ selfId: ALICE, clock });
  t.restore([
    { destination: CAROL, nextHop: BOB, cost: 2, learnedFrom: BOB, updated: 1736812790.25 },
    { destination: DAVE, nextHop: DAVE, cost: 1, learnedFrom: DAVE, updated: 1736812795.0 },
  ]);
  return { t, clock };
}

function aliceRegistry(): CapabilityRegistry {
  return new CapabilityRegistry({
    selfId: ALICE,
    clock: new FakeClock(NOW),
    keyLookup: () => null,
  });
}

async function tmp(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "ironmesh-routing-" });
}

Deno.test("persist vectors: keys, bodies and file texts of routes.json and capabilities.json", () => {
  assertEquals(toHex(routesKey(SEED)), ROUTES.hmac_key_hex);
  assertEquals(toHex(capabilitiesKey(SEED)), CAPS.hmac_key_hex);
  const { t } = aliceTable();
  const body = routesBody(ALICE, t.routes(), t.routeTtlS);
  assertEquals(body, ROUTES.body_text);
  assertEquals(encodeStateFile(body, routesKey(SEED)), ROUTES.file_text);
  assertEquals(Deno.readTextFileSync(vectorPath("state", "routes.json")), ROUTES.file_text);
  const caps = capabilitiesBody(ALICE, ["tool:web-search", "chat", "llm:llama3"], {
    [BOB]: ["embed", "chat"],
    [CAROL]: ["llm:mistral"],
  });
  assertEquals(caps, CAPS.body_text);
  assertEquals(encodeStateFile(caps, capabilitiesKey(SEED)), CAPS.file_text);
  assertEquals(Deno.readTextFileSync(vectorPath("state", "capabilities.json")), CAPS.file_text);
});

Deno.test("persist vectors: the reference files load; routes are re-stamped to expire in 30 s", () => {
  const dec = decodeStateFile(ROUTES.file_text, routesKey(SEED), ALICE);
  assert(dec.ok);
  const routes = routesFromBody(dec.body, ALICE, NOW, 90);
  assertEquals(routes.map((r) => [r.destination, r.cost, r.learnedFrom, r.nextHop, r.updated]), [
    [CAROL, 2, BOB, BOB, NOW - 60],
    [DAVE, 1, DAVE, DAVE, NOW - 60],
  ]);
  const caps = decodeStateFile(CAPS.file_text, capabilitiesKey(SEED), ALICE);
  assert(caps.ok);
  assertEquals(caps.body.local, ["chat", "llm:llama3", "tool:web-search"]);
});

Deno.test("persist: save writes exactly the reference's bytes and load restores the table", async () => {
  const dir = await tmp();
  try {
    const path = `${dir}/routes.json`;
    const { t } = aliceTable();
    assert(t.persistDirty === false);
    await saveRoutesFile(path, routesKey(SEED), t);
    assertEquals(await Deno.readTextFile(path), ROUTES.file_text);
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);

    const clock = new FakeClock(NOW);
    const fresh = new RoutingTable({ selfId: ALICE, clock });
    const out = await loadRoutesFile(path, routesKey(SEED), fresh, clock.now());
    assertEquals(out, { loaded: true, count: 2 });
    fresh.linkUp(BOB);
    assertEquals(fresh.nextHop(CAROL), BOB);
    clock.advance(30);
    fresh.expire();
    assertEquals(fresh.size, 2);
    clock.advance(0.5);
    fresh.expire();
    assertEquals(fresh.size, 0); // loaded routes live 30 s unless refreshed
    assertEquals(
      await loadRoutesFile(`${dir}/missing.json`, routesKey(SEED), fresh, NOW),
      { loaded: false, reason: "missing", count: 0 },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("persist: a tampered file is refused; another identity's file is ignored or deleted", async () => {
  const dir = await tmp();
  try {
    const path = `${dir}/routes.json`;
    const key = routesKey(SEED);
    const t = new RoutingTable({ selfId: ALICE, clock: new FakeClock(NOW) });
    await Deno.writeTextFile(path, ROUTES.file_text.replace('\\"cost\\":2', '\\"cost\\":1'));
    assertEquals(await loadRoutesFile(path, key, t, NOW), {
      loaded: false,
      reason: "bad-hmac",
      count: 0,
    });
    assert((await Deno.stat(path)).isFile); // a tamper is kept for inspection

    // Valid HMAC but another node's file: ignored, kept.
    const other = nid("other");
    await Deno.writeTextFile(path, encodeStateFile(routesBody(other, [], 90), key));
    assertEquals((await loadRoutesFile(path, key, t, NOW)).reason, "other-node");
    assert((await Deno.stat(path)).isFile);

    // Bad HMAC and another node id: the "keys rotated" case, deleted silently.
    await Deno.writeTextFile(path, encodeStateFile(routesBody(other, [], 90), new Uint8Array(32)));
    assertEquals(await loadRoutesFile(path, key, t, NOW), {
      loaded: false,
      reason: "other-node",
      deleted: true,
      count: 0,
    });
    assertEquals(await Deno.stat(path).then(() => true, () => false), false);

    await Deno.writeTextFile(path, "not json");
    assertEquals((await loadRoutesFile(path, key, t, NOW)).reason, "malformed");
    assertEquals(t.size, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("persist: capabilities.json round-trips the registry byte for byte", async () => {
  const dir = await tmp();
  try {
    const path = `${dir}/capabilities.json`;
    const key = capabilitiesKey(SEED);
    await Deno.writeTextFile(path, CAPS.file_text);
    const r = aliceRegistry();
    assertEquals(await loadCapabilitiesFile(path, key, r), { loaded: true, count: 2 });
    assertEquals(r.localCapabilities(), ["chat", "llm:llama3", "tool:web-search"]);
    assertEquals(r.remoteCapabilities(BOB), ["chat", "embed"]);
    assertEquals(r.find("llm:*").map((m) => m.nodeId), [ALICE, CAROL]);
    await saveCapabilitiesFile(`${dir}/out.json`, key, r);
    assertEquals(await Deno.readTextFile(`${dir}/out.json`), CAPS.file_text);

    // --capability values replace the persisted local set: keepLocal loads only the remotes.
    const r2 = aliceRegistry();
    r2.setLocal(["gpu:a100"]);
    await loadCapabilitiesFile(path, key, r2, { keepLocal: true });
    assertEquals([r2.localCapabilities(), r2.remoteNodes().length], [["gpu:a100"], 2]);

    // A bad HMAC is refused and, unlike routes.json, never deleted.
    await Deno.writeTextFile(
      path,
      encodeStateFile(capabilitiesBody(nid("x"), [], {}), new Uint8Array(32)),
    );
    assertEquals(await loadCapabilitiesFile(path, key, aliceRegistry()), {
      loaded: false,
      reason: "other-node",
      count: 0,
    });
    assert((await Deno.stat(path)).isFile);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
