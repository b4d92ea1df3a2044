/**
 * `ironmesh backup` / `ironmesh restore` as subprocesses: round trip with a rotated,
 * checkpointed audit set; the Python-written IMB1 vector; every refusal leaves nothing written.
 */
import { join } from "node:path";
import { AuditLog } from "../../lib/audit/log.ts";
import { writeTar } from "../../lib/backup/tar.ts";
import { gzip, sealBackup } from "../../lib/backup/imb1.ts";
import { STATE_FILES } from "../../lib/backup/contents.ts";
import { auditKey } from "../../lib/crypto/kdf.ts";
import { encodeKeyFile, generateIdentity } from "../../lib/identity/keyfile.ts";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../support/assert.ts";
import { tempDir } from "../support/cli.ts";
import { DAEMON_PASS, startDaemon } from "../support/daemon.ts";
import { vectorPath } from "../support/vectors.ts";
import {
  ALICE_ID,
  ALICE_SEED,
  aliceIdentity,
  cli,
  cliJson,
  makeState,
  PASS,
  passFile,
  snapshot,
} from "./trust_audit_support.ts";

const BACKUP_PASS = "a-long-backup-passphrase-1";
const PY_BACKUP = vectorPath("backup", "node-backup.imb");
const PY_BACKUP_PASS = "backup-passphrase-for-vectors-01";

/** alice's encrypted keys, the vector trust store and a rotated, checkpointed audit set. */
async function sourceState(dir: string, entries = 20): Promise<string> {
  const state = await makeState(dir, "src", { keys: "encrypted", trust: "known_peers.json" });
  const log = new AuditLog(join(state, "audit.log"), {
    key: auditKey(ALICE_SEED),
    signer: aliceIdentity(),
    maxBytes: 1024,
  });
  for (let i = 0; i < entries; i++) {
    await log.append("PEER_CONNECT", { peer_id: `peer-${i}`, note: "é", n: i });
  }
  log.close();
  return state;
}

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.lstat(p);
    return true;
  } catch {
    return false;
  }
}

async function mode(p: string): Promise<number> {
  return (await Deno.stat(p)).mode! & 0o777;
}

/** A hand-made IMB1 (reference-style manifest) with the given members. */
async function craft(
  file: string,
  members: { name: string; data: Uint8Array; type?: string; link?: string }[],
  pass = BACKUP_PASS,
): Promise<void> {
  const manifest = new TextEncoder().encode(
    `{\n  "version": 1,\n  "created_at": 1737000000.0,\n  "node_id": "${ALICE_ID}",\n  "includes": {\n    "keys": true,\n    "trust": false,\n    "audit": false\n  }\n}`,
  );
  const tar = writeTar([
    { name: "manifest.json", data: manifest, mtime: 1737000000 },
    ...members.map((m) => ({ name: m.name, data: m.data, mtime: 1737000000 })),
  ]);
  // Patch type flags / link names the writer does not produce (symlinks).
  let off = 512 + Math.ceil(manifest.length / 512) * 512;
  for (const m of members) {
    if (m.type) {
      const h = tar.subarray(off, off + 512);
      h[156] = m.type.charCodeAt(0);
      if (m.link) h.set(new TextEncoder().encode(m.link), 157);
      let sum = 0;
      for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
      h.set(new TextEncoder().encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
    }
    off += 512 + Math.ceil(m.data.length / 512) * 512;
  }
  await Deno.writeFile(file, sealBackup(await gzip(tar), pass), { mode: 0o600 });
}

const PLAIN_KEYS = () => Deno.readFileSync(vectorPath("keys", "keys.plaintext.json"));

Deno.test("backup → restore: same node, byte-identical state, audit verifies from genesis", async () => {
  await using tmp = await tempDir();
  const src = await sourceState(tmp.path);
  assert(await exists(join(src, "audit.log.1")) && await exists(join(src, "audit.checkpoint")));
  const bp = await passFile(tmp.path, BACKUP_PASS);
  const kp = await passFile(tmp.path, PASS);
  const out = join(tmp.path, "node.imb");
  const b = await cliJson(src, ["backup", "--out", out, "--backup-passphrase-file", bp]);
  assertEquals(b.r.code, 0, b.r.stderr);
  assertEquals(b.j.node_id, ALICE_ID);
  assertEquals(await mode(out), 0o600);
  const listed = Object.fromEntries(
    b.j.files.map((f: { name: string; present: boolean }) => [f.name, f.present]),
  );
  assertEquals(listed["audit.log.5"], false); // absent files are listed, not skipped
  assertEquals(listed["audit.checkpoint"], true);
  assertEquals(new TextDecoder().decode((await Deno.readFile(out)).subarray(0, 4)), "IMB1");

  const dst = join(tmp.path, "dst");
  const r = await cliJson(dst, [
    "restore",
    "--in",
    out,
    "--backup-passphrase-file",
    bp,
    "--passphrase-file",
    kp,
  ]);
  assertEquals(r.r.code, 0, r.r.stderr);
  assertEquals(r.j.node_id, ALICE_ID);
  assertEquals(r.j.audit.mode, "genesis");
  assertEquals(r.j.audit.checkpoint, "ok");
  assertEquals(await mode(dst), 0o700);
  for (const name of STATE_FILES) {
    const a = join(src, name), d = join(dst, name);
    assertEquals(await exists(d), await exists(a), name);
    if (await exists(a)) {
      assertEquals(await Deno.readFile(d), await Deno.readFile(a), name);
      assertEquals(await mode(d), 0o600, name);
    }
  }
  const v = await cliJson(dst, ["audit", "verify", "--archives", "--passphrase-file", kp]);
  assertEquals(v.r.code, 0, v.r.stderr);
  assertEquals(v.j.checkpoint.status, "ok");
  assert(v.j.files.length >= 3, "archives restored");
  assertEquals(v.j.entries, r.j.audit.entries);
  const f = await cliJson(dst, ["keys", "fingerprint"]);
  assertEquals(f.j.node_id, ALICE_ID);
  for await (const e of Deno.readDir(dst)) assert(!e.name.includes(".tmp"), e.name);
});

Deno.test("restore: wrong passphrases, a tampered or truncated file — refused, nothing written", async () => {
  await using tmp = await tempDir();
  const src = await makeState(tmp.path, "src", { keys: "encrypted", trust: "known_peers.json" });
  const bp = await passFile(tmp.path, BACKUP_PASS);
  const kp = await passFile(tmp.path, PASS);
  const out = join(tmp.path, "node.imb");
  assertEquals((await cli(src, ["backup", "--out", out, "--backup-passphrase-file", bp])).code, 0);
  const bytes = await Deno.readFile(out);
  const dst = join(tmp.path, "dst");
  const restore = (file: string, b = bp, k = kp) =>
    cli(dst, ["restore", "--in", file, "--backup-passphrase-file", b, "--passphrase-file", k]);

  const wrong = await restore(out, await passFile(tmp.path, "not-the-right-one"));
  assertEquals(wrong.code, 3);
  assertStringIncludes(wrong.stderr, "Decryption failed — wrong passphrase?");
  const tampered = join(tmp.path, "tampered.imb");
  const t = bytes.slice();
  t[Math.floor(t.length / 2)] ^= 0x40;
  await Deno.writeFile(tampered, t);
  assertEquals((await restore(tampered)).code, 3);
  const cut = join(tmp.path, "cut.imb");
  await Deno.writeFile(cut, bytes.subarray(0, bytes.length - 100));
  assertEquals((await restore(cut)).code, 3);
  const notImb = join(tmp.path, "not.imb");
  await Deno.writeFile(notImb, new TextEncoder().encode("PK\x03\x04 a zip file, not a backup"));
  const n = await restore(notImb);
  assertEquals(n.code, 13);
  assertStringIncludes(n.stderr, "not an IronMesh backup");
  const badKey = await restore(out, bp, await passFile(tmp.path, "wrong-key-passphrase"));
  assertEquals(badKey.code, 3);
  assertStringIncludes(badKey.stderr, "Wrong passphrase or corrupted key file");
  assertEquals(await exists(dst), false, "nothing may be written on failure");
});

Deno.test("restore: unsafe member paths, links, a foreign trust store, an edited audit log — refused", async () => {
  await using tmp = await tempDir();
  const bp = await passFile(tmp.path, BACKUP_PASS);
  const dst = join(tmp.path, "dst");
  const enc = new TextEncoder();
  const cases: [
    string,
    { name: string; data: Uint8Array; type?: string; link?: string }[],
    number,
    string,
  ][] = [
    [
      "dotdot",
      [{ name: "keys.json", data: PLAIN_KEYS() }, { name: "../evil", data: enc.encode("x") }],
      13,
      "unsafe path",
    ],
    [
      "abs",
      [{ name: "keys.json", data: PLAIN_KEYS() }, { name: "/tmp/evil", data: enc.encode("x") }],
      13,
      "unsafe path",
    ],
    [
      "link",
      [{ name: "keys.json", data: new Uint8Array(0), type: "2", link: "/etc/passwd" }],
      13,
      "symlink",
    ],
    [
      "trust",
      [
        { name: "keys.json", data: PLAIN_KEYS() },
        {
          name: "known_peers.json",
          data: Deno.readFileSync(vectorPath("trust", "known_peers.tampered.json")),
        },
      ],
      10,
      "does not verify",
    ],
    [
      "audit",
      [
        { name: "keys.json", data: PLAIN_KEYS() },
        {
          name: "audit.log",
          data: Deno.readFileSync(vectorPath("audit", "audit.tampered-edited-line12.log")),
        },
      ],
      10,
      "audit log",
    ],
  ];
  for (const [label, members, code, text] of cases) {
    const file = join(tmp.path, `${label}.imb`);
    await craft(file, members);
    const r = await cli(dst, ["restore", "--in", file, "--backup-passphrase-file", bp]);
    assertEquals(r.code, code, `${label}: ${r.stderr}`);
    assertStringIncludes(r.stderr, text, label);
    assertMatch(r.stderr, /^error: .+ — .+\n$/, label);
  }
  assertEquals(await exists(dst), false);
  assertEquals(await exists(join(tmp.path, "evil")), false);
});

Deno.test("restore: existing state needs --force; --force keeps the old keys and drops stale audit files", async () => {
  await using tmp = await tempDir();
  const src = await sourceState(tmp.path, 12);
  const bp = await passFile(tmp.path, BACKUP_PASS);
  const kp = await passFile(tmp.path, PASS);
  const out = join(tmp.path, "node.imb");
  assertEquals((await cli(src, ["backup", "--out", out, "--backup-passphrase-file", bp])).code, 0);

  const dst = await makeState(tmp.path, "dst", { keys: null });
  const other = encodeKeyFile(generateIdentity("other"), { passphrase: null });
  await Deno.writeTextFile(join(dst, "keys.json"), other, { mode: 0o600 });
  await Deno.writeTextFile(join(dst, "audit.log.5"), "stale archive\n", { mode: 0o600 });
  await Deno.writeTextFile(join(dst, "audit.checkpoint"), "{}", { mode: 0o600 });
  const before = await snapshot(dst);
  const args = ["restore", "--in", out, "--backup-passphrase-file", bp, "--passphrase-file", kp];
  const refused = await cli(dst, args);
  assertEquals(refused.code, 6, refused.stderr);
  assertStringIncludes(refused.stderr, "--force");
  assertEquals(await snapshot(dst), before);

  const forced = await cliJson(dst, [...args, "--force"]);
  assertEquals(forced.r.code, 0, forced.r.stderr);
  assertEquals(await Deno.readTextFile(join(dst, "keys.json.bak")), other);
  assert(forced.j.removed.includes("audit.log.5"), JSON.stringify(forced.j.removed));
  assertEquals(await exists(join(dst, "audit.log.5")), false);
  assertEquals(
    await Deno.readFile(join(dst, "audit.checkpoint")),
    await Deno.readFile(join(src, "audit.checkpoint")),
  );
  const v = await cli(dst, ["audit", "verify", "--archives", "--quiet", "--passphrase-file", kp]);
  assertEquals([v.code, v.stdout, v.stderr], [0, "", ""]);
});

Deno.test("restore: refused while a daemon runs on the state dir; backup of a live daemon verifies", async () => {
  await using tmp = await tempDir();
  const bp = await passFile(tmp.path, BACKUP_PASS);
  const dp = await passFile(tmp.path, DAEMON_PASS);
  const live = join(tmp.path, "live");
  const d = await startDaemon("bk-live", live);
  try {
    const out = join(tmp.path, "live.imb");
    const b = await cli(live, ["backup", "--out", out, "--backup-passphrase-file", bp]);
    assertEquals(b.code, 0, b.stderr);
    const keysBefore = await Deno.readFile(join(live, "keys.json"));
    const r = await cli(live, [
      "restore",
      "--in",
      out,
      "--force",
      "--backup-passphrase-file",
      bp,
      "--passphrase-file",
      dp,
    ]);
    assertEquals(r.code, 5, r.stderr);
    assertStringIncludes(r.stderr, "a daemon is running");
    assertStringIncludes(r.stderr, `pid ${d.child.pid}`);
    assertEquals(await Deno.readFile(join(live, "keys.json")), keysBefore);
    for await (const e of Deno.readDir(live)) assert(!e.name.includes(".restore-"), e.name);
    // The live backup is consistent: its audit set (written by the daemon) verifies.
    const dry = await cliJson(join(tmp.path, "drill"), [
      "restore",
      "--in",
      out,
      "--dry-run",
      "--backup-passphrase-file",
      bp,
      "--passphrase-file",
      dp,
    ]);
    assertEquals(dry.r.code, 0, dry.r.stderr);
    assertEquals(dry.j.node_id, d.nodeId);
    assertEquals(dry.j.audit.checkpoint, "ok");
    assertEquals(await exists(join(tmp.path, "drill")), false, "--dry-run writes nothing");
  } finally {
    await d.stop();
  }
});

Deno.test("restore: the Python-written IMB1 vector restores and its audit log verifies", async () => {
  await using tmp = await tempDir();
  const bp = await passFile(tmp.path, PY_BACKUP_PASS);
  const kp = await passFile(tmp.path, PASS);
  const dst = join(tmp.path, "py");
  const r = await cliJson(dst, [
    "restore",
    "--in",
    PY_BACKUP,
    "--backup-passphrase-file",
    bp,
    "--passphrase-file",
    kp,
  ]);
  assertEquals(r.r.code, 0, r.r.stderr);
  assertEquals(r.j.node_id, ALICE_ID);
  assertEquals(r.j.writer, "python-ironmesh");
  assertEquals(r.j.trust.format, "v2");
  assertEquals(
    await Deno.readFile(join(dst, "keys.json")),
    await Deno.readFile(vectorPath("keys", "keys.json")),
  );
  assertEquals(
    await Deno.readFile(join(dst, "known_peers.json")),
    await Deno.readFile(vectorPath("trust", "known_peers.json")),
  );
  assertEquals(
    await Deno.readFile(join(dst, "audit.log")),
    await Deno.readFile(vectorPath("audit", "audit.log")),
  );
  const v = await cliJson(dst, ["audit", "verify", "--passphrase-file", kp]);
  assertEquals(v.r.code, 0, v.r.stderr);
  assertEquals(v.j.entries, 32);
});

Deno.test("backup: refuses an existing --out, a short or missing passphrase, a missing node", async () => {
  await using tmp = await tempDir();
  const src = await makeState(tmp.path, "src", { keys: "plaintext" });
  const bp = await passFile(tmp.path, BACKUP_PASS);
  const out = join(tmp.path, "b.imb");
  await Deno.writeTextFile(out, "keep me");
  const e = await cli(src, ["backup", "--out", out, "--backup-passphrase-file", bp]);
  assertEquals(e.code, 6);
  assertEquals(await Deno.readTextFile(out), "keep me");
  const out2 = join(tmp.path, "b2.imb");
  const short = await cli(src, [
    "backup",
    "--out",
    out2,
    "--backup-passphrase-file",
    await passFile(tmp.path, "short"),
  ]);
  assertEquals(short.code, 9);
  assertStringIncludes(short.stderr, "too short");
  const none = await cli(src, ["backup", "--out", out2]);
  assertEquals(none.code, 9);
  assertStringIncludes(none.stderr, "--backup-passphrase-file");
  // The mesh passphrase is never used for backups.
  const mesh = await cli(src, ["backup", "--out", out2], { IRONMESH_PASSPHRASE: BACKUP_PASS });
  assertEquals(mesh.code, 9);
  assertEquals(await exists(out2), false);
  const missing = await cli(join(tmp.path, "nope"), [
    "backup",
    "--out",
    out2,
    "--backup-passphrase-file",
    bp,
  ]);
  assertEquals(missing.code, 7);
  const env = await cli(src, ["backup", "--out", out2], {
    IRONMESH_BACKUP_PASSPHRASE: BACKUP_PASS,
  });
  assertEquals(env.code, 0, env.stderr);
  assertStringIncludes(env.stderr, "warning: using IRONMESH_BACKUP_PASSPHRASE");
  const forced = await cli(src, [
    "backup",
    "--out",
    out,
    "--force",
    "--backup-passphrase-file",
    bp,
  ]);
  assertEquals(forced.code, 0, forced.stderr);
  assertEquals(new TextDecoder().decode((await Deno.readFile(out)).subarray(0, 4)), "IMB1");
});
