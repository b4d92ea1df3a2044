/** Member checks of a backup archive: unsafe names and kinds, the manifest's listing. */
import {
  buildManifest,
  checkEntries,
  parseManifest,
  sha256Hex,
  STATE_FILES,
  unsafeMemberReason,
} from "../../../lib/backup/contents.ts";
import type { TarEntry } from "../../../lib/backup/tar.ts";
import { IronMeshError } from "../../../lib/errors.ts";
import { assertEquals, assertThrows } from "../../support/assert.ts";

const enc = new TextEncoder();

function entry(name: string, data: string | Uint8Array, kind: TarEntry["kind"] = "file"): TarEntry {
  const bytes = typeof data === "string" ? enc.encode(data) : data;
  return {
    name,
    kind,
    typeflag: kind === "file" ? "0" : kind === "symlink" ? "2" : "5",
    mode: 0o600,
    size: bytes.length,
    mtime: 0,
    linkname: kind === "symlink" ? "/etc/passwd" : "",
    data: kind === "file" ? bytes : new Uint8Array(0),
  };
}

function ours(files: Record<string, string | null>): TarEntry[] {
  const map = new Map<string, Uint8Array | null>(
    Object.entries(files).map(([k, v]) => [k, v === null ? null : enc.encode(v)]),
  );
  const manifest = buildManifest({ createdAt: 1737000000, nodeId: null, writer: "t", files: map });
  return [
    entry("manifest.json", manifest),
    ...Object.entries(files).filter(([, v]) => v !== null).map(([k, v]) => entry(k, v!)),
  ];
}

function code(f: () => unknown): string {
  return (assertThrows(f, IronMeshError) as IronMeshError).code;
}

Deno.test("backup members: unsafe names", () => {
  for (
    const n of [
      "",
      "/etc/passwd",
      "../keys.json",
      "a/../../b",
      "x..y",
      "C:/x",
      "a\\b",
      "a\x00b",
      "nl\n",
    ]
  ) {
    assertEquals(
      typeof unsafeMemberReason(n),
      "string",
      `expected ${JSON.stringify(n)} to be unsafe`,
    );
  }
  for (const n of ["keys.json", "audit.log.1", "sub/dir.txt", "manifest.json"]) {
    assertEquals(unsafeMemberReason(n), null, n);
  }
});

Deno.test("backup members: unsafe paths, links, devices, directories and duplicates are refused", () => {
  const good = ours({ "keys.json": "k" });
  assertEquals(code(() => checkEntries([...good, entry("../evil", "x")])), "BACKUP_UNSAFE_MEMBER");
  assertEquals(code(() => checkEntries([...good, entry("/abs", "x")])), "BACKUP_UNSAFE_MEMBER");
  assertEquals(
    code(() => checkEntries([good[0], entry("keys.json", "", "symlink")])),
    "BACKUP_UNSAFE_MEMBER",
  );
  assertEquals(
    code(() => checkEntries([...good, entry("d", "", "device")])),
    "BACKUP_UNSAFE_MEMBER",
  );
  assertEquals(
    code(() => checkEntries([...good, entry("dir", "", "directory")])),
    "BACKUP_UNSAFE_MEMBER",
  );
  assertEquals(code(() => checkEntries([...good, entry("keys.json", "k")])), "BACKUP_TAMPERED");
  assertEquals(code(() => checkEntries([entry("keys.json", "k")])), "BACKUP_BAD_MANIFEST");
});

Deno.test("backup members: our manifest's listing must match exactly", () => {
  const base = ours({ "keys.json": "k", "known_peers.json": null, "audit.log": "a\n" });
  const c = checkEntries(base);
  assertEquals([...c.files.keys()].sort(), ["audit.log", "keys.json"]);
  // changed bytes
  const changed = base.map((e) => e.name === "audit.log" ? entry("audit.log", "b\n") : e);
  assertEquals(code(() => checkEntries(changed)), "BACKUP_TAMPERED");
  // listed as absent, but present
  assertEquals(
    code(() => checkEntries([...base, entry("known_peers.json", "t")])),
    "BACKUP_TAMPERED",
  );
  // listed as present, but missing
  assertEquals(
    code(() => checkEntries(base.filter((e) => e.name !== "audit.log"))),
    "BACKUP_TAMPERED",
  );
  // every state file is listed, present or not
  assertEquals(
    parseManifest(new TextDecoder().decode(base[0].data)).files!.length,
    STATE_FILES.length,
  );
  // a managed file the manifest does not list at all
  const partial = JSON.stringify({
    version: 1,
    files: [{ name: "keys.json", present: true, size: 1, sha256: sha256Hex(enc.encode("k")) }],
  });
  assertEquals(
    checkEntries([entry("manifest.json", partial), entry("keys.json", "k")]).files.size,
    1,
  );
  assertEquals(
    code(() =>
      checkEntries([
        entry("manifest.json", partial),
        entry("keys.json", "k"),
        entry("audit.log", "a"),
      ])
    ),
    "BACKUP_TAMPERED",
  );
  // unknown safe members are ignored (as the reference does)
  const extra = checkEntries([...base, entry("future-file.json", "{}")]);
  assertEquals(extra.ignored, ["future-file.json"]);
  assertEquals(extra.files.has("future-file.json"), false);
});

Deno.test("backup manifest: the reference's form parses; bad versions and shapes are refused", () => {
  const ref = parseManifest(
    '{\n  "version": 1,\n  "created_at": 1737000000.0,\n  "node_id": null,\n  "includes": {"keys": true, "trust": false, "audit": true}\n}',
  );
  assertEquals(ref.nodeId, null);
  assertEquals(ref.includes, { keys: true, trust: false, audit: true });
  assertEquals(ref.auditComplete, false);
  assertEquals(code(() => parseManifest('{"version": 2}')), "BACKUP_UNSUPPORTED_VERSION");
  assertEquals(code(() => parseManifest("[]")), "BACKUP_BAD_MANIFEST");
  assertEquals(code(() => parseManifest("{nope")), "BACKUP_BAD_MANIFEST");
  assertEquals(
    code(() => parseManifest('{"version": 1, "files": [{"name": "keys.json", "present": true}]}')),
    "BACKUP_BAD_MANIFEST",
  );
});
