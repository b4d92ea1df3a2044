import { join } from "node:path";
import { assert, assertEquals } from "../../support/assert.ts";
import { vectorPath } from "../../support/vectors.ts";
import { verifyBytes, verifyLog } from "../../../lib/audit/verify.ts";
import { AuditLog } from "../../../lib/audit/log.ts";
import { encodeEntry, GENESIS_HMAC } from "../../../lib/audit/chain.ts";
import { ChainMac } from "../../../lib/audit/hmac.ts";
import { FakeClock } from "../../../lib/clock.ts";
import { utf8 } from "../../../lib/crypto/sodium.ts";
import { pyFloat } from "../../../lib/json/py_float.ts";
import { EXPECTED, KEY, readLines, VECTOR_KEY, withTempDir, writeLines } from "./helpers.ts";

const vec = (...p: string[]) => vectorPath("audit", ...p);

Deno.test("vector audit.log verifies: 32 entries, final hmac", () => {
  const r = verifyLog(vec("audit.log"), VECTOR_KEY);
  assert(r.ok, r.message);
  assertEquals(r.entries, 32);
  assertEquals(r.firstBadLine, null);
  assertEquals(r.headHmac, EXPECTED.main_log.final_hmac);
  assertEquals(r.checkpoint.status, "missing");
  assertEquals(r.tornLines, []);
  const wrongKey = verifyLog(vec("audit.log"), KEY);
  assertEquals([wrongKey.ok, wrongKey.firstBadLine], [false, 1]);
  assert(wrongKey.message.includes("another identity"), wrongKey.message);
});

Deno.test("every vector copy gives the reference's verdict (default and strict)", () => {
  for (const t of EXPECTED.tampered) {
    for (const strict of [false, true]) {
      const r = verifyLog(vec(t.file), VECTOR_KEY, { strict });
      const label = `${t.file} strict=${strict}`;
      assertEquals(r.ok, t.verify_result.ok, label);
      assertEquals(r.entries, t.verify_result.entries_checked, label);
      assertEquals(r.firstBadLine, t.verify_result.first_bad_line, label);
      const good = (r.firstBadLine ?? r.entries + 1) - 1; // last verified line
      assertEquals(
        r.headHmac,
        good ? EXPECTED.main_log.lines[good - 1].hmac : EXPECTED.genesis,
        label,
      );
    }
  }
});

Deno.test("vector copies: failure reasons name what happened", () => {
  const reason = (f: string) => verifyLog(vec(f), VECTOR_KEY).reason;
  assertEquals(reason("audit.tampered-edited-detail.log"), "hmac-mismatch");
  assertEquals(reason("audit.tampered-swapped-lines.log"), "hmac-mismatch");
  assertEquals(reason("audit.tampered-truncated-tail.log"), "torn-tail");
  assertEquals(reason("audit.truncated-whole-lines.log"), null);
  assertEquals(reason("audit.raw-utf8-line8.log"), null);
});

Deno.test("rotated vectors: --archives verifies 13 entries; each file alone as the reference says", () => {
  const r = verifyLog(vec("rotated", "audit.log"), VECTOR_KEY, { archives: true });
  assert(r.ok, r.message);
  assertEquals(r.entries, EXPECTED.rotated.verify_chain_across_archives.entries_checked);
  assertEquals(r.files.map((f) => f.path.split("/").pop()), [
    "audit.log.2",
    "audit.log.1",
    "audit.log",
  ]);
  for (const f of r.files) {
    const exp = EXPECTED.rotated.files_oldest_first[f.path.split("/").pop()!];
    assertEquals(f.lines, exp.entries);
    assertEquals(f.bytes, exp.bytes);
    assertEquals(f.lastHmac, exp.last_hmac);
  }
  for (const [name, exp] of Object.entries(EXPECTED.rotated.files_oldest_first)) {
    const one = verifyLog(vec("rotated", name), VECTOR_KEY);
    assertEquals([one.ok, one.entries, one.firstBadLine], exp.verify_single_file, name);
  }
});

Deno.test("rotated-tampered: fails at the global line the reference reports", () => {
  const r = verifyLog(vec("rotated-tampered", "audit.log"), VECTOR_KEY, { archives: true });
  const exp = EXPECTED.rotated.tampered_copy.verify_chain_across_archives;
  assertEquals(r.ok, false);
  assertEquals(r.firstBadLine, exp.first_bad_line_global);
  assertEquals(r.entries, exp.entries_checked);
});

Deno.test("archives: a missing middle archive breaks the LOG_ROTATED anchor", async () => {
  await withTempDir((dir) => {
    for (const f of ["audit.log.2", "audit.log"]) {
      Deno.copyFileSync(vec("rotated", f), join(dir, f));
    }
    const r = verifyLog(join(dir, "audit.log"), VECTOR_KEY, { archives: true });
    assertEquals(r.ok, false);
    assertEquals(r.reason, "bad-anchor");
    assertEquals(r.firstBadLine, 7);
    // The live file alone still verifies (each file chains from genesis).
    assert(verifyLog(join(dir, "audit.log"), VECTOR_KEY).ok);
  });
});

Deno.test("blank lines are skipped and not counted; CRLF lines verify like Python's universal newlines", () => {
  const lines = readLines(vec("audit.log"));
  const withBlanks = ["", ...lines.slice(0, 3), "   ", "\t", ...lines.slice(3)].join("\n") + "\n\n";
  const r = verifyBytes(utf8(withBlanks), VECTOR_KEY);
  assert(r.ok, r.message);
  assertEquals(r.entries, 32);
  const edited = withBlanks.replace('"port":8765', '"port":8766');
  assertEquals(verifyBytes(utf8(edited), VECTOR_KEY).firstBadLine, 1);
  const crlf = lines.join("\r\n") + "\r\n";
  const c = verifyBytes(utf8(crlf), VECTOR_KEY);
  assert(c.ok, c.message);
  assertEquals(c.entries, 32);
});

Deno.test("lenient like Python: reordered keys and spaces still verify; NaN and bad UTF-8 do not", () => {
  const lines = readLines(vec("audit.log"));
  const o = JSON.parse(lines[2]);
  lines[2] = JSON.stringify({ timestamp: 0, hmac: o.hmac, event: o.event, details: o.details })
    .replace('"timestamp":0', `"timestamp": ${lines[2].match(/"timestamp":([0-9.]+)/)![1]}`);
  const r = verifyBytes(utf8(lines.join("\n")), VECTOR_KEY);
  assert(r.ok, r.message);
  const nan = readLines(vec("audit.log"));
  nan[4] = nan[4].replace('"failure_count":2', '"failure_count":NaN');
  assertEquals(verifyBytes(utf8(nan.join("\n")), VECTOR_KEY).firstBadLine, 5);
  const bytes = utf8(readLines(vec("audit.log")).join("\n"));
  const i = bytes.indexOf(utf8("alice")[0], 20);
  bytes[i] = 0xff;
  const b = verifyBytes(bytes, VECTOR_KEY);
  assertEquals(b.ok, false);
  assertEquals(b.reason, "malformed");
});

Deno.test("anchored (restored tail, §18.9): trust line 1, verify the rest", () => {
  const lines = readLines(vec("audit.log")).slice(9);
  const bytes = utf8(lines.join("\n") + "\n");
  assertEquals(verifyBytes(bytes, VECTOR_KEY).firstBadLine, 1);
  const r = verifyBytes(bytes, VECTOR_KEY, { anchored: true });
  assert(r.ok, r.message);
  assertEquals(r.entries, 23);
  assertEquals(r.anchor?.hmac, EXPECTED.main_log.lines[9].hmac);
  assertEquals(r.anchor?.timestamp, 1736812863.5);
  const bad = lines.slice();
  bad[2] = bad[2].replace('"cost":2', '"cost":3');
  assert(bad[2] !== lines[2]);
  assertEquals(verifyBytes(utf8(bad.join("\n")), VECTOR_KEY, { anchored: true }).firstBadLine, 3);
});

/** Our own log of n entries (no checkpoint; chain-only tampering checks). */
function ownLog(dir: string, n: number): string {
  const path = join(dir, "audit.log");
  const log = new AuditLog(path, {
    key: KEY,
    clock: new FakeClock(1736812800.25),
    checkpoint: false,
  });
  for (let i = 0; i < n; i++) {
    log.appendSync(i % 2 ? "PEER_CONNECT" : "ROUTE_LEARNED", {
      i,
      name: `n\u00e9-${i}`,
      rtt: pyFloat(i / 4),
    });
  }
  log.close();
  return path;
}

Deno.test("our log: every edit, deletion, swap, move and duplication is found at its line", async () => {
  await withTempDir((dir) => {
    const path = ownLog(dir, 10);
    const lines = readLines(path);
    const check = (mutated: string[], want: number, what: string) => {
      const r = verifyBytes(utf8(mutated.join("\n") + "\n"), KEY);
      assertEquals(r.ok, false, what);
      assertEquals(r.firstBadLine, want, what);
    };
    assert(verifyLog(path, KEY).ok);
    for (let i = 0; i < lines.length; i++) {
      const edited = lines.slice();
      edited[i] = edited[i].replace(`"i":${i}`, `"i":${i + 100}`);
      check(edited, i + 1, `edit ${i + 1}`);
      const ts = lines.slice();
      ts[i] = ts[i].replace(/"timestamp":([0-9.]+)/, (_m, t) => `"timestamp":${Number(t) + 1}`);
      check(ts, i + 1, `timestamp ${i + 1}`);
      const ev = lines.slice();
      ev[i] = ev[i].replace(/"event":"[A-Z_]+"/, '"event":"SHUTDOWN"');
      check(ev, i + 1, `event ${i + 1}`);
      if (i < lines.length - 1) {
        check(lines.filter((_, j) => j !== i), i + 1, `delete ${i + 1}`);
        const sw = lines.slice();
        [sw[i], sw[i + 1]] = [sw[i + 1], sw[i]];
        check(sw, i + 1, `swap ${i + 1}`);
        check([...lines.slice(0, i + 1), lines[i], ...lines.slice(i + 1)], i + 2, `dup ${i + 1}`);
      }
    }
    check([...lines.slice(1), lines[0]], 1, "move first to end");
    // Deleting whole trailing lines is invisible to the chain alone (README quirk 13).
    assert(verifyBytes(utf8(lines.slice(0, 7).join("\n") + "\n"), KEY).ok);
  });
});

Deno.test("our log: a cut inside any line is found (torn tail) at that line", async () => {
  await withTempDir((dir) => {
    const path = ownLog(dir, 6);
    const bytes = Deno.readFileSync(path);
    let line = 1;
    for (let cut = 1; cut < bytes.length; cut++) {
      if (bytes[cut - 1] === 10) {
        line++;
        continue;
      }
      if (bytes[cut] === 10) continue; // the line is complete, only its newline is cut
      const r = verifyBytes(bytes.subarray(0, cut), KEY);
      assertEquals(r.ok, false, `cut at ${cut}`);
      assertEquals(r.firstBadLine, line, `cut at ${cut}`);
    }
  });
});

Deno.test("torn line recovered by the writer: tolerated and listed; strict gives the reference verdict", async () => {
  await withTempDir((dir) => {
    const path = ownLog(dir, 5);
    const full = readLines(path)[4];
    Deno.writeFileSync(path, utf8(full.slice(0, 40)), { append: true });
    const before = verifyLog(path, KEY);
    assertEquals([before.ok, before.firstBadLine, before.reason], [false, 6, "torn-tail"]);
    const log = new AuditLog(path, { key: KEY, checkpoint: false });
    const res = log.appendSync("STARTUP", { recovered: true });
    log.close();
    const lines = Deno.readTextFileSync(path).split("\n");
    assertEquals(lines[5], full.slice(0, 40));
    assertEquals(JSON.parse(lines[6]).hmac, res.entry.hmac);
    const r = verifyLog(path, KEY);
    assert(r.ok, r.message);
    assertEquals(r.entries, 7);
    assertEquals(r.tornLines, [6]);
    assertEquals(r.headHmac, res.entry.hmac);
    const strict = verifyLog(path, KEY, { strict: true });
    assertEquals([strict.ok, strict.firstBadLine], [false, 6]);
  });
});

Deno.test("torn-looking lines are only tolerated when the next entry chains past them", async () => {
  await withTempDir((dir) => {
    const path = ownLog(dir, 6);
    const lines = readLines(path);
    // A torn fragment in place of entry 3: entry 4 chains from 3, which is gone.
    const replaced = lines.slice();
    replaced[2] = lines[2].slice(0, 30);
    const r = verifyBytes(utf8(replaced.join("\n")), KEY);
    assertEquals([r.ok, r.firstBadLine, r.reason], [false, 3, "malformed"]);
    // Junk that does not look like an interrupted entry is never tolerated.
    const junk = [...lines.slice(0, 3), "garbage", ...lines.slice(3)];
    assertEquals(verifyBytes(utf8(junk.join("\n")), KEY).firstBadLine, 4);
    // NUL padding (power loss) counts as torn.
    const nul = [...lines.slice(0, 3), "\0\0\0\0", ...lines.slice(3)];
    const n = verifyBytes(utf8(nul.join("\n")), KEY);
    assert(n.ok, n.message);
    assertEquals(n.tornLines, [4]);
  });
});

Deno.test("tail cut and re-chained with the key passes the chain (needs the checkpoint)", async () => {
  await withTempDir((dir) => {
    const path = ownLog(dir, 8);
    const lines = readLines(path).slice(0, 5);
    const mac = new ChainMac(KEY);
    let prev = JSON.parse(lines[4]).hmac;
    for (let i = 0; i < 4; i++) {
      const e = encodeEntry(mac, prev, "SHUTDOWN", { forged: i }, 1736900000 + i);
      lines.push(e.line);
      prev = e.hmac;
    }
    mac.dispose();
    writeLines(path, lines);
    assert(verifyLog(path, KEY).ok);
    assert(prev !== GENESIS_HMAC);
  });
});
