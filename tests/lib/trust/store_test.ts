import { join } from "node:path";
import {
  assert,
  assertEquals,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
} from "../../support/assert.ts";
import { vectorPath } from "../../support/vectors.ts";
import { FakeClock, ScriptedRng } from "../../../lib/clock.ts";
import { fromHex, toHex } from "../../../lib/crypto/sodium.ts";
import { legacyTrustMacKey } from "../../../lib/crypto/kdf.ts";
import { IronMeshError } from "../../../lib/errors.ts";
import { decodeEnvelope, encodeInner, macHex, trustKeys } from "../../../lib/trust/envelope.ts";
import type { TrustChange } from "../../../lib/trust/records.ts";
import { TrustStore } from "../../../lib/trust/store.ts";
import {
  ALICE_SEED,
  freshPeer,
  ID_BY_NAME,
  T,
  vectorIdentity,
  vectorKey,
  withTempDir,
} from "./fixtures/trust_vectors.ts";

const OPTS = { legacyHomeDir: null };

async function copyVector(dir: string, name: string): Promise<string> {
  const path = join(dir, "known_peers.json");
  await Deno.copyFile(vectorPath("trust", name), path);
  return path;
}

function innerOf(text: string, seed = ALICE_SEED): string {
  const res = decodeEnvelope(text, trustKeys(seed));
  if (!res.ok) throw new Error(res.reason);
  return encodeInner(res.plain);
}

Deno.test("replaying the recorded history reproduces known_peers.json byte for byte", async () => {
  await withTempDir(async (dir) => {
    const clock = new FakeClock(0);
    const draws = T.history.flatMap((h) => h.random_draws.map((d) => fromHex(d.hex)));
    const rng = new ScriptedRng(draws);
    const path = join(dir, "known_peers.json");
    const s = await TrustStore.open(path, ALICE_SEED, { ...OPTS, clock, rng });
    const id = (n: string) => vectorIdentity(n).nodeId;
    const key = (n: string) => vectorIdentity(n).b64;
    const revoked = T.inner.revoked;
    const ops: (() => Promise<TrustChange & { observation?: unknown }>)[] = [
      () => s.pin(id("bob"), key("bob")),
      () => s.pin(id("carol"), key("carol"), { state: "pending" }),
      () => s.pin(id("dave"), key("dave")),
      () => s.setState(id("dave"), "blocked"),
      () => s.pin(id("erin"), key("erin"), { state: "pending", pinnedVia: "invite" }),
      () => s.pin(id("frank"), key("frank")),
      () => s.observeCapabilities(id("frank"), ["chat", "embed"]),
      () => s.observeCapabilities(id("frank"), ["chat", "embed", "shell:exec"]),
      () => s.stashPendingCapabilities(id("frank"), ["chat", "embed", "shell:exec"]),
      () => s.setState(id("frank"), "pending-cap-change"),
      () => s.pin(id("grace"), key("grace")),
      () => s.observeCapabilities(id("grace"), ["llm:llama3"]),
      () => s.observeCapabilities(id("grace"), ["llm:llama3", "llm:mistral"]),
      () => s.stashPendingCapabilities(id("grace"), ["llm:llama3", "llm:mistral"]),
      () => s.acceptCapabilityChange(id("grace")),
      () => s.pin(id("mallory"), key("mallory")),
      () =>
        s.recordRevocation(id("mallory"), {
          revoker: id("alice"),
          timestamp: 1736812900.75,
          reason: "key compromised",
        }),
      () =>
        s.recordRevocation("0123456789abcdef0123456789abcdef", {
          revoker: id("bob"),
          timestamp: 1736812901,
          reason: revoked["0123456789abcdef0123456789abcdef"].reason as string,
          timestampKind: "int",
        }),
    ];
    assertEquals(ops.length, T.history.length);
    for (const [i, step] of T.history.entries()) {
      clock.set(step.clock);
      const res = await ops[i]();
      const obs = res.observation as Record<string, unknown> | undefined;
      if (obs && step.result && typeof step.result === "object") {
        const r = step.result as Record<string, unknown>;
        assertEquals(obs.status, r.status, step.action);
        if (r.status === "changed") {
          assertEquals(obs.newHash, r.new_hash);
          assertEquals(obs.added, r.added);
          assertEquals(obs.removed, r.removed);
        } else assertEquals(obs.hash, r.hash);
      }
    }
    assertEquals(rng.remaining, 0);
    assertEquals(await Deno.readTextFile(path), T.envelope.file_text);
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
  });
});

Deno.test("the vector store reports the reference's trust states", async () => {
  await withTempDir(async (dir) => {
    const s = await TrustStore.open(await copyVector(dir, "known_peers.json"), ALICE_SEED, OPTS);
    assertEquals(s.loadedFormat, "v2");
    assert(!s.readOnly);
    for (const [who, state] of Object.entries(T.trust_state_by_reference)) {
      const id = who.startsWith("<unknown revoked")
        ? "0123456789abcdef0123456789abcdef"
        : who.startsWith("<never seen")
        ? "f".repeat(32)
        : ID_BY_NAME[who];
      assertEquals(s.trustState(id), state, who);
    }
    assertEquals(s.listPeers().length, 6);
    assertEquals(s.listRevoked().map((r) => r.timestamp), [1736812901, 1736812900.75]);
    const frank = s.getPeer(ID_BY_NAME.frank)!;
    assertEquals(frank.capabilitySetPending, ["chat", "embed", "shell:exec"]);
    assertEquals(s.getPeer(ID_BY_NAME.erin)!.pinnedVia, "invite");
  });
});

Deno.test("C-ST-04: our save reloads to the same content with a fresh nonce", async () => {
  await withTempDir(async (dir) => {
    const path = await copyVector(dir, "known_peers.json");
    const s = await TrustStore.open(path, ALICE_SEED, OPTS);
    await s.save();
    const text = await Deno.readTextFile(path);
    assertNotEquals(text, T.envelope.file_text);
    assert(!text.endsWith("\n"));
    const env = JSON.parse(text);
    assertEquals(Object.keys(env), ["version", "ciphertext", "_mac"]);
    assertEquals(env._mac, macHex(trustKeys(ALICE_SEED).mac, "v=2|c=" + env.ciphertext));
    assertEquals(innerOf(text), T.inner_json_text);
    const again = await TrustStore.open(path, ALICE_SEED, OPTS);
    assertEquals(again.listPeers(), s.listPeers());
  });
});

for (
  const [label, file, seed] of [
    ["tampered copy", "known_peers.tampered.json", ALICE_SEED],
    ["wrong agent key", "known_peers.json", fromHex(T.wrong_agent_key.agent_key_hex)],
  ] as const
) {
  Deno.test(`C-ST-06: ${label} loads empty, latches read-only and refuses to save`, async () => {
    await withTempDir(async (dir) => {
      const path = await copyVector(dir, file);
      const before = await Deno.readTextFile(path);
      const s = await TrustStore.open(path, seed, OPTS);
      assert(s.readOnly);
      assertEquals(s.loadedFormat, "failed");
      assertEquals(s.listPeers().length, 0);
      assertStringIncludes(s.readOnlyReason!, "failed its MAC check");
      const p = freshPeer();
      const e = await assertRejects(() => s.pin(p.nodeId, p.b64), IronMeshError) as IronMeshError;
      assertEquals(e.code, "TRUST_STORE_READ_ONLY");
      assertStringIncludes(
        e.hint,
        "known_peers.json failed its MAC check — it was tampered with or written by another " +
          "identity; inspect it, then move it aside to start fresh",
      );
      await assertRejects(() => s.save(), IronMeshError, "read-only");
      assertEquals(await Deno.readTextFile(path), before);
      // The latch lasts until the file is moved aside.
      await Deno.rename(path, path + ".bad");
      await s.reload();
      assert(!s.readOnly);
      await s.pin(p.nodeId, p.b64);
      assertEquals(s.trustState(p.nodeId), "trusted");
    });
  });
}

Deno.test("unparsable file latches read-only too (ours; the reference would overwrite it)", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "known_peers.json");
    await Deno.writeTextFile(path, "{ garbage");
    const s = await TrustStore.open(path, ALICE_SEED, OPTS);
    assert(s.readOnly);
    await assertRejects(() => s.save(), IronMeshError, "read-only");
    assertEquals(await Deno.readTextFile(path), "{ garbage");
  });
});

Deno.test("C-ST-05: v1 loads and the next save rewrites it as v2", async () => {
  await withTempDir(async (dir) => {
    const path = await copyVector(dir, "known_peers.v1.json");
    const s = await TrustStore.open(path, ALICE_SEED, OPTS);
    assertEquals(s.loadedFormat, "v1");
    assert(s.needsMigration && !s.readOnly);
    assertEquals(s.listPeers().length, T.v1_legacy.reference_loader_result.peers_loaded);
    assertEquals(s.listRevoked().length, T.v1_legacy.reference_loader_result.revoked_loaded);
    const res = await s.save();
    assertEquals(res.events.map((e) => e.event), ["TRUST_STORE_ENCRYPTED"]);
    const text = await Deno.readTextFile(path);
    assertEquals(JSON.parse(text).version, 2);
    assertEquals(innerOf(text), T.inner_json_text);
    assertEquals(s.loadedFormat, "v2");
  });
});

Deno.test("v1 under the legacy home-dir key is accepted once and rewritten at open", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "known_peers.json");
    const inner = T.inner_json_text;
    const mac = macHex(legacyTrustMacKey("/home/op"), inner);
    await Deno.writeTextFile(path, inner.slice(0, -1) + `,"_mac":"${mac}"}`);
    const denied = await TrustStore.open(path, ALICE_SEED, { legacyHomeDir: "/elsewhere" });
    assert(denied.readOnly);
    const s = await TrustStore.open(path, ALICE_SEED, { legacyHomeDir: "/home/op" });
    assert(!s.readOnly);
    assertEquals(s.loadedFormat, "v2");
    const text = await Deno.readTextFile(path);
    assertEquals(JSON.parse(text).version, 2);
    assertEquals(innerOf(text), T.inner_json_text);
  });
});

Deno.test("reload-before-modify: a stale instance does not lose another's pin", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "known_peers.json");
    const a = await TrustStore.open(path, ALICE_SEED, OPTS);
    const b = await TrustStore.open(path, ALICE_SEED, OPTS);
    const [p, q] = [freshPeer(), freshPeer()];
    await a.pin(p.nodeId, p.b64);
    await b.pin(q.nodeId, q.b64, { state: "pending" });
    await a.setState(q.nodeId, "blocked");
    const c = await TrustStore.open(path, ALICE_SEED, OPTS);
    assertEquals(c.trustState(p.nodeId), "trusted");
    assertEquals(c.trustState(q.nodeId), "blocked");
    // Concurrent mutations inside one process are serialised too.
    const many = Array.from({ length: 20 }, () => freshPeer());
    await Promise.all(many.map((x, i) => (i % 2 ? a : b).pin(x.nodeId, x.b64)));
    await c.reload();
    assertEquals(c.listPeers().length, 22);
  });
});

Deno.test("a failing operation writes nothing", async () => {
  await withTempDir(async (dir) => {
    const path = await copyVector(dir, "known_peers.json");
    const s = await TrustStore.open(path, ALICE_SEED, OPTS);
    await assertRejects(
      () => s.setState("e".repeat(32), "trusted"),
      IronMeshError,
      "not in the trust store",
    );
    await assertRejects(
      () => s.pin(ID_BY_NAME.bob, vectorKey("carol")),
      IronMeshError,
      "belongs to node",
    );
    assertEquals(await Deno.readTextFile(path), T.envelope.file_text);
    // A no-op state change writes nothing either.
    const res = await s.setState(ID_BY_NAME.bob, "trusted");
    assertEquals(res.changed, false);
    assertEquals(await Deno.readTextFile(path), T.envelope.file_text);
  });
});

Deno.test("local revoke records a revocation by our own node id", async () => {
  await withTempDir(async (dir) => {
    const path = await copyVector(dir, "known_peers.json");
    const clock = new FakeClock(1736813000.5);
    const s = await TrustStore.open(path, ALICE_SEED, { ...OPTS, clock });
    assertEquals(s.ownNodeId, T.owner.node_id);
    const res = await s.revokeLocal(ID_BY_NAME.bob, { reason: "lost laptop", actor: "cli" });
    assertEquals(res.events, [{
      event: "PEER_REVOKED_LOCAL",
      details: { peer_id: ID_BY_NAME.bob, reason: "lost laptop", actor: "cli" },
    }]);
    assertEquals(s.revocation(ID_BY_NAME.bob), {
      nodeId: ID_BY_NAME.bob,
      revoker: T.owner.node_id,
      timestamp: 1736813000.5,
      reason: "lost laptop",
    });
    assertEquals(s.trustState(ID_BY_NAME.bob), "blocked");
    assertStringIncludes(innerOf(await Deno.readTextFile(path)), '"timestamp":1736813000.5');
  });
});

Deno.test("two processes pinning 50 peers each end with all 100 pinned", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "known_peers.json");
    const child = new URL("./fixtures/pin_child.ts", import.meta.url).pathname;
    const run = () =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-write",
          "--allow-env",
          child,
          path,
          toHex(ALICE_SEED),
          "50",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
    const outs = await Promise.all([run(), run()]);
    const ids: string[] = [];
    for (const o of outs) {
      assert(o.success, new TextDecoder().decode(o.stderr));
      ids.push(...JSON.parse(new TextDecoder().decode(o.stdout)));
    }
    assertEquals(new Set(ids).size, 100);
    const s = await TrustStore.open(path, ALICE_SEED, OPTS);
    assertEquals(s.peerIds(), [...ids].sort());
  });
});
