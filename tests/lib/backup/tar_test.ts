/** The hand-written tar subset: round trip, refusals, and Python's tarfile reading our output. */
import {
  parsePaxRecords,
  readTar,
  RECORD_SIZE,
  TarError,
  writeTar,
} from "../../../lib/backup/tar.ts";
import { assert, assertEquals, assertThrows } from "../../support/assert.ts";

const enc = new TextEncoder();

/** Rewrite header field bytes of the entry at `off` and fix its checksum. */
function patchHeader(tar: Uint8Array, off: number, patch: (h: Uint8Array) => void): Uint8Array {
  const out = tar.slice();
  const h = out.subarray(off, off + 512);
  patch(h);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
  h.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return out;
}

Deno.test("tar: write → read round trip, record padding, modes and mtimes", () => {
  const files = [
    { name: "manifest.json", data: enc.encode("{}"), mtime: 1737000000.9 },
    { name: "empty", data: new Uint8Array(0), mtime: 5 },
    { name: "big.bin", data: new Uint8Array(70_000).map((_, i) => i & 0xff), mtime: 7 },
  ];
  const tar = writeTar(files);
  assertEquals(tar.length % RECORD_SIZE, 0);
  const back = readTar(tar);
  assertEquals(back.map((e) => [e.name, e.kind, e.size, e.mode, e.mtime]), [
    ["manifest.json", "file", 2, 0o600, 1737000000],
    ["empty", "file", 0, 0o600, 5],
    ["big.bin", "file", 70_000, 0o600, 7],
  ]);
  assertEquals(back[2].data, files[2].data);
});

Deno.test("tar: bad checksum, truncation and an oversized size field are refused", () => {
  const tar = writeTar([{ name: "a", data: enc.encode("hello"), mtime: 1 }]);
  const broken = tar.slice();
  broken[0] = "b".charCodeAt(0); // name changed, checksum not
  assertThrows(() => readTar(broken), TarError, "checksum");
  assertThrows(() => readTar(tar.subarray(0, 512 + 2)), TarError);
  const huge = patchHeader(tar, 0, (h) => h.set(enc.encode("77777777777\0"), 124));
  assertThrows(() => readTar(huge), TarError, "truncated");
  assertThrows(() => readTar(new Uint8Array(100)), TarError);
});

Deno.test("tar: links, devices and directories are read as such (the caller refuses them)", () => {
  const tar = writeTar([
    { name: "keys.json", data: new Uint8Array(0), mtime: 1 },
    { name: "dev", data: new Uint8Array(0), mtime: 1 },
    { name: "dir", data: new Uint8Array(0), mtime: 1 },
  ]);
  let t = patchHeader(tar, 0, (h) => {
    h[156] = "2".charCodeAt(0);
    h.set(enc.encode("/etc/passwd"), 157);
  });
  t = patchHeader(t, 512, (h) => (h[156] = "3".charCodeAt(0)));
  t = patchHeader(t, 1024, (h) => (h[156] = "5".charCodeAt(0)));
  const e = readTar(t);
  assertEquals(e.map((x) => [x.name, x.kind, x.linkname]), [
    ["keys.json", "symlink", "/etc/passwd"],
    ["dev", "device", ""],
    ["dir", "directory", ""],
  ]);
});

Deno.test("tar: pax path/size records and GNU long names apply to the next entry", () => {
  const body = " path=../../etc/shadow\n";
  const pax = enc.encode(`${body.length + 2}${body}`); // the length counts its own two digits
  assertEquals(parsePaxRecords(pax).get("path"), "../../etc/shadow");
  const tar = writeTar([
    { name: "PaxHeader", data: pax, mtime: 1 },
    { name: "plain", data: enc.encode("x"), mtime: 1 },
    { name: "././@LongLink", data: enc.encode("very/long/name\0"), mtime: 1 },
    { name: "short", data: enc.encode("y"), mtime: 1 },
  ]);
  let t = patchHeader(tar, 0, (h) => (h[156] = "x".charCodeAt(0)));
  t = patchHeader(t, 512 * 4, (h) => (h[156] = "L".charCodeAt(0)));
  assertEquals(readTar(t).map((e) => e.name), ["../../etc/shadow", "very/long/name"]);
  assertThrows(() => parsePaxRecords(enc.encode("99 path=x\n")), TarError);
});

const python = await (async () => {
  try {
    const o = await new Deno.Command("python3", {
      args: ["-c", "import tarfile"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    return o.success;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "tar: Python's tarfile (the reference's reader) reads our gzip'd archive",
  ignore: !python,
  async fn() {
    const { gzip } = await import("../../../lib/backup/imb1.ts");
    const dir = await Deno.makeTempDir({ prefix: "ironmesh-tar-" });
    try {
      const data = enc.encode("audit line\n".repeat(1000));
      await Deno.writeFile(
        `${dir}/b.tar.gz`,
        await gzip(writeTar([
          { name: "manifest.json", data: enc.encode('{"version": 1}'), mtime: 1737000000 },
          { name: "audit.log", data, mtime: 1737000000 },
          { name: "audit.log.1", data: enc.encode("x"), mtime: 1737000000 },
        ])),
      );
      const script = [
        "import tarfile, sys, hashlib",
        "t = tarfile.open(sys.argv[1], 'r:gz')",
        "for m in t.getmembers():",
        "    print(m.name, m.isfile(), m.size, hashlib.sha256(t.extractfile(m).read()).hexdigest())",
      ].join("\n");
      const o = await new Deno.Command("python3", { args: ["-c", script, `${dir}/b.tar.gz`] })
        .output();
      assert(o.success, new TextDecoder().decode(o.stderr));
      const lines = new TextDecoder().decode(o.stdout).trim().split("\n");
      assertEquals(lines.map((l) => l.split(" ").slice(0, 3).join(" ")), [
        "manifest.json True 14",
        `audit.log True ${data.length}`,
        "audit.log.1 True 1",
      ]);
      const digest = Array.from(
        new Uint8Array(await crypto.subtle.digest("SHA-256", data)),
        (b) => b.toString(16).padStart(2, "0"),
      ).join("");
      assertEquals(lines[1].split(" ")[3], digest);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
