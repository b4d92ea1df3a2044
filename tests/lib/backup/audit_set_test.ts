/** In-memory verification of a backed-up audit set (chain, rotation anchors, checkpoint). */
import { join } from "node:path";
import { AuditLog } from "../../../lib/audit/log.ts";
import { type AuditSetFile, verifyAuditSet } from "../../../lib/backup/audit_set.ts";
import { ARCHIVE_NAMES } from "../../../lib/backup/contents.ts";
import { auditKey } from "../../../lib/crypto/kdf.ts";
import { fromHex } from "../../../lib/crypto/sodium.ts";
import { Identity } from "../../../lib/identity/identity.ts";
import { assert, assertEquals, assertStringIncludes } from "../../support/assert.ts";
import { loadVector, vectorPath } from "../../support/vectors.ts";

const SEED = fromHex(
  loadVector<{ owner: { ed25519_seed_hex: string } }>("trust", "trust.expected.json").owner
    .ed25519_seed_hex,
);
const KEY = auditKey(SEED);

/** A rotated, checkpointed audit set written by our writer (3+ files). */
async function writeSet(): Promise<{ files: AuditSetFile[]; checkpoint: string }> {
  const dir = await Deno.makeTempDir({ prefix: "ironmesh-auditset-" });
  try {
    const id = new Identity(SEED, "alice", null);
    const log = new AuditLog(join(dir, "audit.log"), { key: KEY, signer: id, maxBytes: 1024 });
    for (let i = 0; i < 40; i++) await log.append("PEER_CONNECT", { peer_id: `peer-${i}`, n: i });
    log.close();
    const files: AuditSetFile[] = [];
    for (const name of [...ARCHIVE_NAMES, "audit.log"]) {
      try {
        files.push({ name, bytes: await Deno.readFile(join(dir, name)) });
      } catch { /* absent archive */ }
    }
    return { files, checkpoint: await Deno.readTextFile(join(dir, "audit.checkpoint")) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const SET = await writeSet();
const dec = new TextDecoder(), enc = new TextEncoder();

function lines(b: Uint8Array): string[] {
  return dec.decode(b).split("\n").filter((l) => l);
}

Deno.test("audit set: archives + live + checkpoint verify from genesis", () => {
  assert(SET.files.length >= 3, `expected rotations, got ${SET.files.length} files`);
  const r = verifyAuditSet(SET.files, SET.checkpoint, KEY, {
    publicKey: new Identity(SEED, "", null).publicKey,
  });
  assertEquals([r.ok, r.mode, r.checkpoint], [true, "genesis", "ok"], r.message);
  assertEquals(r.entries, SET.files.reduce((n, f) => n + lines(f.bytes).length, 0));
});

Deno.test("audit set: a line cut from the end of the live log is caught by the checkpoint", () => {
  const live = SET.files[SET.files.length - 1];
  const cut = lines(live.bytes).slice(0, -1).map((l) => l + "\n").join("");
  const files = [...SET.files.slice(0, -1), { name: "audit.log", bytes: enc.encode(cut) }];
  const r = verifyAuditSet(files, SET.checkpoint, KEY);
  assertEquals([r.ok, r.checkpoint], [false, "truncated"], r.message);
  // Without the checkpoint the cut is invisible (the reason checkpoints exist).
  assertEquals(verifyAuditSet(files, null, KEY).ok, true);
});

Deno.test("audit set: a missing middle archive breaks the LOG_ROTATED anchor", () => {
  const files = SET.files.filter((_, i) => i !== SET.files.length - 2);
  const r = verifyAuditSet(files, null, KEY);
  assertEquals(r.ok, false);
  assertStringIncludes(r.message, "LOG_ROTATED");
});

Deno.test("audit set: an edited entry fails at its global line number", () => {
  const first = SET.files[0];
  const ls = lines(first.bytes);
  ls[1] = ls[1].replace("peer-", "PEER-");
  const files = [
    { name: first.name, bytes: enc.encode(ls.map((l) => l + "\n").join("")) },
    ...SET.files.slice(1),
  ];
  const r = verifyAuditSet(files, SET.checkpoint, KEY);
  assertEquals([r.ok, r.firstBadLine], [false, 2], r.message);
});

Deno.test("audit set: a checkpoint MACed with another key is invalid", () => {
  const r = verifyAuditSet(SET.files, SET.checkpoint, auditKey(new Uint8Array(32)), {});
  assertEquals(r.ok, false); // the chain itself fails first under a wrong key
  const ok = verifyAuditSet(
    SET.files,
    SET.checkpoint.replace(/"mac": "[0-9a-f]/, '"mac": "x'),
    KEY,
  );
  assertEquals([ok.ok, ok.checkpoint], [false, "invalid"]);
});

Deno.test("audit set: a reference tail verifies only from its anchor, and only when allowed", () => {
  const full = Deno.readFileSync(vectorPath("audit", "audit.log"));
  const tail = enc.encode(lines(full).slice(5).map((l) => l + "\n").join(""));
  const strict = verifyAuditSet([{ name: "audit.log", bytes: tail }], null, KEY);
  assertEquals(strict.ok, false);
  const r = verifyAuditSet([{ name: "audit.log", bytes: tail }], null, KEY, { allowAnchor: true });
  assertEquals([r.ok, r.mode, r.entries], [true, "anchor", lines(full).length - 5], r.message);
  assert(r.anchor && r.anchor.hmac.length === 64);
  // The whole Python log verifies from genesis.
  assertEquals(verifyAuditSet([{ name: "audit.log", bytes: full }], null, KEY).mode, "genesis");
});
