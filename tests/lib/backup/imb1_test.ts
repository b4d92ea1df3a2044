/** IMB1 container and archive, against the Python-written backup vector (vectors/backup/). */
import { packBackup, packTar, unpackBackup, unpackTarGz } from "../../../lib/backup/archive.ts";
import { MANIFEST_NAME } from "../../../lib/backup/contents.ts";
import {
  DECRYPT_FAILED_MESSAGE,
  gunzip,
  gzip,
  IMB1_HEADER_LEN,
  openBackup,
  parseImb1,
  sealBackup,
} from "../../../lib/backup/imb1.ts";
import { readTar } from "../../../lib/backup/tar.ts";
import { fromHex, sha256, toHex } from "../../../lib/crypto/sodium.ts";
import { IronMeshError } from "../../../lib/errors.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../../support/assert.ts";
import { loadVector, vectorPath } from "../../support/vectors.ts";

interface BackupExpected {
  passphrase: string;
  salt_hex: string;
  secretbox_nonce_hex: string;
  secretbox_tag_hex: string;
  file_sha256: string;
  file_length: number;
  tar_gz_sha256: string;
  tar_gz_length: number;
  manifest_text: string;
  manifest: { node_id: string; created_at: number };
  members_in_order: { name: string; size: number; sha256: string }[];
  restore_with_wrong_passphrase_error: string;
}

const EXP = loadVector<BackupExpected>("backup", "backup.expected.json");
const FILE = Deno.readFileSync(vectorPath("backup", "node-backup.imb"));
/** Cheap Argon2id parameters for tests that do not need the reference's (libsodium minimums). */
const FAST = { opsLimit: 1, memLimit: 8192 };

Deno.test("IMB1: the Python backup decrypts to the recorded tar.gz and re-seals byte for byte", () => {
  assertEquals(FILE.length, EXP.file_length);
  assertEquals(toHex(sha256(FILE)), EXP.file_sha256);
  const parts = parseImb1(FILE);
  assertEquals(toHex(parts.salt), EXP.salt_hex);
  assertEquals(toHex(parts.boxed.subarray(0, 24)), EXP.secretbox_nonce_hex);
  assertEquals(toHex(parts.boxed.subarray(24, 40)), EXP.secretbox_tag_hex);
  const tarGz = openBackup(FILE, EXP.passphrase);
  assertEquals(tarGz.length, EXP.tar_gz_length);
  assertEquals(toHex(sha256(tarGz)), EXP.tar_gz_sha256);
  const again = sealBackup(tarGz, EXP.passphrase, {
    salt: fromHex(EXP.salt_hex),
    nonce: fromHex(EXP.secretbox_nonce_hex),
  });
  assertEquals(toHex(sha256(again)), EXP.file_sha256);
});

Deno.test("IMB1: the Python backup's members (pax headers included) and manifest read back", async () => {
  const tarGz = openBackup(FILE, EXP.passphrase);
  const entries = readTar(await gunzip(tarGz));
  assertEquals(
    entries.map((e) => [e.name, e.kind, e.size, toHex(sha256(e.data))]),
    EXP.members_in_order.map((m) => [m.name, "file", m.size, m.sha256]),
  );
  const c = await unpackTarGz(tarGz);
  assertEquals(c.manifest.text, EXP.manifest_text);
  assertEquals(c.manifest.nodeId, EXP.manifest.node_id);
  assertEquals(c.manifest.createdAt, EXP.manifest.created_at);
  assertEquals(c.manifest.includes, { keys: true, trust: true, audit: true });
  assertEquals(c.manifest.auditComplete, false); // a reference backup: audit tail only
  assertEquals(c.manifest.files, null);
  assertEquals([...c.files.keys()].sort(), ["audit.log", "keys.json", "known_peers.json"]);
  assertEquals(
    c.files.get("keys.json"),
    Deno.readFileSync(vectorPath("keys", "keys.json")),
  );
});

Deno.test("IMB1: a wrong passphrase fails with the reference's message and exit code 3", () => {
  const e = assertThrows(() => openBackup(FILE, "not-the-backup-passphrase"), IronMeshError);
  assert(e.message.startsWith(DECRYPT_FAILED_MESSAGE), e.message);
  assertEquals(DECRYPT_FAILED_MESSAGE, EXP.restore_with_wrong_passphrase_error);
  assertEquals((e as IronMeshError).exitCode, 3);
});

Deno.test("IMB1: header errors — magic, version, truncation — and a flipped byte", () => {
  const code = (f: () => unknown) => (assertThrows(f, IronMeshError) as IronMeshError).code;
  assertEquals(
    code(() => parseImb1(new TextEncoder().encode("PK\x03\x04 not a backup"))),
    "BACKUP_NOT_IMB1",
  );
  const v2 = FILE.slice();
  v2[4] = 2;
  assertEquals(code(() => parseImb1(v2)), "BACKUP_UNSUPPORTED_VERSION");
  assertEquals(code(() => parseImb1(FILE.subarray(0, IMB1_HEADER_LEN + 20))), "BACKUP_TRUNCATED");
  const sealed = sealBackup(new Uint8Array([1, 2, 3]), "passphrase-long-enough", { kdf: FAST });
  const flipped = sealed.slice();
  flipped[flipped.length - 1] ^= 1;
  assertEquals(
    code(() => openBackup(flipped, "passphrase-long-enough", "x", FAST)),
    "BACKUP_DECRYPT_FAILED",
  );
  const cut = sealed.subarray(0, sealed.length - 1);
  assertEquals(
    code(() => openBackup(cut, "passphrase-long-enough", "x", FAST)),
    "BACKUP_DECRYPT_FAILED",
  );
  assertEquals([...openBackup(sealed, "passphrase-long-enough", "x", FAST)], [1, 2, 3]);
});

Deno.test("archive: pack → unpack round trip lists absent files and keeps bytes", async () => {
  const files = new Map<string, Uint8Array | null>([
    ["keys.json", new TextEncoder().encode('{"k":1}')],
    ["known_peers.json", null],
    ["audit.log", new TextEncoder().encode("line\n")],
    ["audit.log.1", new TextEncoder().encode("older\n")],
  ]);
  const sealed = await packBackup(
    { files, nodeId: "ab".repeat(16), createdAt: 1737000000.5, writer: "ironmesh test" },
    "passphrase-long-enough",
    { kdf: FAST },
  );
  const c = await unpackBackup(sealed, "passphrase-long-enough", "t", FAST);
  assertEquals(c.manifest.nodeId, "ab".repeat(16));
  assertEquals(c.manifest.auditComplete, true);
  assertEquals(c.manifest.includes, { keys: true, trust: false, audit: true });
  const listed = Object.fromEntries(c.manifest.files!.map((f) => [f.name, f.present]));
  assertEquals(listed["known_peers.json"], false);
  assertEquals(listed["audit.checkpoint"], false);
  assertEquals(listed["audit.log.1"], true);
  assertEquals(listed["audit.log.5"], false);
  assertEquals(new TextDecoder().decode(c.files.get("audit.log.1")), "older\n");
  assertEquals(c.files.has("known_peers.json"), false);
  // Member order: manifest first, then archives oldest first before the live log.
  const names = readTar(await gunzip(openBackup(sealed, "passphrase-long-enough", "t", FAST)))
    .map((e) => e.name);
  assertEquals(names, [MANIFEST_NAME, "keys.json", "audit.log.1", "audit.log"]);
  // The manifest starts with the reference's four keys, in its order, created_at a float.
  assert(
    c.manifest.text.startsWith('{\n  "version": 1,\n  "created_at": 1737000000.5,\n  "node_id": '),
  );
});

Deno.test("archive: a gzip bomb and a non-gzip payload are refused", async () => {
  const big = await gzip(new Uint8Array(4 * 1024 * 1024));
  const e = await assertRejects(() => gunzip(big, 1024 * 1024), IronMeshError);
  assertEquals((e as IronMeshError).code, "BACKUP_TOO_LARGE");
  const bad = await assertRejects(() => gunzip(new Uint8Array([1, 2, 3, 4])), IronMeshError);
  assertEquals((bad as IronMeshError).code, "BACKUP_CORRUPT");
  const noManifest = await assertRejects(() => unpackTarGz(big), IronMeshError);
  assertEquals((noManifest as IronMeshError).code, "BACKUP_BAD_MANIFEST"); // an empty tar
  const junk = await gzip(new Uint8Array(2048).fill(0x41));
  const notTar = await assertRejects(() => unpackTarGz(junk), IronMeshError);
  assertEquals((notTar as IronMeshError).code, "BACKUP_CORRUPT");
  assert(
    packTar({ files: new Map(), nodeId: null, createdAt: 1, writer: "w" }).length % 10240 === 0,
  );
});
