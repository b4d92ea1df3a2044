import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "../../support/assert.ts";
import { IronMeshError } from "../../../lib/errors.ts";
import { allowListMatch, loadAllowList, parseAllowList } from "../../../lib/trust/allow_list.ts";
import { freshPeer, withTempDir } from "./fixtures/trust_vectors.ts";

const a = freshPeer(), b = freshPeer(), c = freshPeer();

Deno.test("allow-list file: node ids (any case) and keys, comments and labels", () => {
  const list = parseAllowList(
    `# mesh members\n\n${a.nodeId.toUpperCase()}  alice's laptop\n  ${b.b64} # bob\r\n`,
    "peers.allow",
  );
  assertEquals(list.entries.length, 2);
  assertEquals(list.entries[0], {
    nodeId: a.nodeId,
    label: "alice's laptop",
    source: "peers.allow:3",
  });
  assertEquals(list.entries[1].nodeId, b.nodeId);
  assertEquals(list.entries[1].keyB64, b.b64);
  assert(allowListMatch(list, a.nodeId, a.key));
  assert(allowListMatch(list, b.nodeId, b.key));
  assertEquals(allowListMatch(list, c.nodeId, c.key), undefined);
});

Deno.test("allow-list key entries compare decoded key bytes", () => {
  const list = parseAllowList(b.b64);
  // A node id that claims b's id with another key does not match a key entry.
  assertEquals(allowListMatch(list, b.nodeId, c.key), undefined);
  assert(allowListMatch(list, b.nodeId, b.key));
});

Deno.test("allow-list rejects junk with file:line", () => {
  const e = assertThrows(
    () => parseAllowList(`${a.nodeId}\nnot-a-key\n`, "x.allow"),
    IronMeshError,
  );
  assertEquals((e as IronMeshError).code, "TRUST_ALLOW_LIST_INVALID");
  assert(e.message.startsWith("x.allow:2:"));
  assertThrows(() => parseAllowList(b.b64.slice(0, -4)), IronMeshError); // 29 bytes
  assertThrows(() => parseAllowList(a.nodeId.slice(1)), IronMeshError);
});

Deno.test("allow-list directory: one key per file, dotfiles skipped", async () => {
  await withTempDir(async (dir) => {
    const keys = join(dir, "authorized_keys");
    await Deno.mkdir(keys);
    await Deno.writeTextFile(join(keys, "alice.pub"), `# alice\n${a.b64}\n`);
    await Deno.writeTextFile(join(keys, "bob"), b.nodeId);
    await Deno.writeTextFile(join(keys, ".hidden"), "garbage");
    const list = await loadAllowList(keys);
    assertEquals(list.entries.map((e) => e.nodeId), [a.nodeId, b.nodeId]);
    await Deno.writeTextFile(join(keys, "two"), `${a.nodeId}\n${c.nodeId}\n`);
    await assertRejects(() => loadAllowList(keys), IronMeshError, "exactly one entry");
    const file = join(dir, "peers.allow");
    await Deno.writeTextFile(file, c.b64);
    assertEquals((await loadAllowList(file)).entries[0].nodeId, c.nodeId);
    await assertRejects(() => loadAllowList(join(dir, "missing")), IronMeshError, "does not exist");
  });
});
