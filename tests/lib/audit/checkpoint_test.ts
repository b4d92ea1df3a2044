import { join } from "node:path";
import { assert, assertEquals, assertNotEquals } from "../../support/assert.ts";
import {
  type Checkpoint,
  comparePins,
  encodeCheckpoint,
  makeCheckpoint,
  parseCheckpoint,
  readCheckpoint,
} from "../../../lib/audit/checkpoint.ts";
import { AuditLog } from "../../../lib/audit/log.ts";
import { verifyLog } from "../../../lib/audit/verify.ts";
import { encodeEntry } from "../../../lib/audit/chain.ts";
import { ChainMac } from "../../../lib/audit/hmac.ts";
import type { FileScan } from "../../../lib/audit/scan.ts";
import { FakeClock } from "../../../lib/clock.ts";
import { toB64 } from "../../../lib/crypto/sodium.ts";
import { KEY, readLines, SEED, signerFor, withTempDir, writeLines } from "./helpers.ts";

const OTHER_SEED = new Uint8Array(32).fill(9);
const H = (c: string) => c.repeat(64);

function sample(signed: boolean): Checkpoint {
  return makeCheckpoint(
    {
      log: "audit.log",
      files: [{ name: "audit.log", first_hmac: H("a"), entries: 3, last_hmac: H("b"), lines: 3 }],
      live_bytes: 600,
      rotations: 0,
      time: 1736812800,
    },
    KEY,
    signed ? signerFor() : undefined,
  );
}

Deno.test("checkpoint round trip: MACed, signed, INDENT2 with a Python-float time", () => {
  const cp = sample(true);
  const text = encodeCheckpoint(cp);
  assert(text.includes('"time": 1736812800.0'));
  assert(text.startsWith('{\n  "version": 1,\n  "body": {'));
  const r = parseCheckpoint(text, KEY);
  assertEquals(r.status, "ok");
  if (r.status !== "ok") return;
  assert(r.signed);
  assertEquals(r.checkpoint.body.entry_count, 3);
  assertEquals(r.checkpoint.body.head_hmac, H("b"));
  assertEquals(r.checkpoint.body.signer_pubkey, toB64(signerFor().publicKey));
  assertEquals(
    parseCheckpoint(text, KEY, { expectedPublicKey: signerFor().publicKey }).status,
    "ok",
  );
  assertEquals(parseCheckpoint(encodeCheckpoint(sample(false)), KEY).status, "ok");
});

Deno.test("checkpoint: edits, another key, another signer and a missing signature are refused", () => {
  const text = encodeCheckpoint(sample(true));
  const problem = (t: string, key = KEY, pub?: Uint8Array) => {
    const r = parseCheckpoint(t, key, { expectedPublicKey: pub });
    assertEquals(r.status, "invalid");
    return r.status === "invalid" ? r.problem : "";
  };
  assert(problem(text.replace('"entries": 3', '"entries": 2')).includes("MAC"));
  assert(problem(text, new Uint8Array(32)).includes("MAC"));
  assert(problem(text, KEY, signerFor(OTHER_SEED).publicKey).includes("another key"));
  assert(
    problem(encodeCheckpoint(sample(false)), KEY, signerFor().publicKey).includes("not signed"),
  );
  const sig = JSON.parse(text).signature as string;
  const flipped = (sig[0] === "A" ? "B" : "A") + sig.slice(1);
  assert(problem(text.replace(sig, flipped)).includes("signature"));
  assertEquals(problem("{not json"), problem("{not json"));
  assert(
    problem(text.replace('"version": 1,\n  "body"', '"version": 2,\n  "body"')).includes("version"),
  );
});

function scan(
  path: string,
  firstHmac: string | null,
  lines: number,
  wanted: [number, string][],
): FileScan {
  return {
    path,
    lines,
    firstHmac,
    lastHmac: null,
    lastHmacLine: lines,
    bytes: 0,
    wanted: new Map(wanted),
  };
}

Deno.test("comparePins: longer files pass; shorter, re-chained, missing and reordered files fail", () => {
  const pins = [
    { name: "audit.log.1", first_hmac: H("1"), entries: 4, last_hmac: H("2"), lines: 4 },
    { name: "audit.log", first_hmac: H("3"), entries: 5, last_hmac: H("4"), lines: 5 },
  ];
  const scope = { complete: true, full: false, firstEvents: [null, null] };
  const a = scan("a.1", H("1"), 4, [[4, H("2")]]);
  assertEquals(comparePins(pins, [a, scan("a", H("3"), 9, [[5, H("4")]])], scope).status, "ok");
  const short = comparePins(pins, [a, scan("a", H("3"), 4, [])], scope);
  assertEquals(short.status, "truncated");
  assertEquals(short.bad, { scan: 1, line: 5 });
  const rechained = comparePins(pins, [a, scan("a", H("3"), 7, [[5, H("9")]])], scope);
  assertEquals([rechained.status, rechained.bad?.line], ["truncated", 5]);
  const noArchive = comparePins(pins, [scan("a", H("3"), 5, [[5, H("4")]])], scope);
  assertEquals(noArchive.status, "truncated");
  const swapped = comparePins(pins, [scan("a", H("3"), 5, [[5, H("4")]]), a], scope);
  assertEquals(swapped.status, "truncated");
  // Live file only: archives are not checked.
  const liveOnly = { complete: false, full: false, firstEvents: [null] };
  assertEquals(comparePins(pins, [scan("a", H("3"), 5, [[5, H("4")]])], liveOnly).status, "ok");
  assertEquals(comparePins(pins, [a], liveOnly).status, "truncated"); // rolled back to an archive
  assertEquals(
    comparePins(pins, [scan("a", H("7"), 2, [])], { ...liveOnly, firstEvents: ["LOG_ROTATED"] })
      .status,
    "needs-archives",
  );
  assertEquals(comparePins(pins, [scan("a", H("7"), 2, [])], liveOnly).status, "truncated");
  // All pinned files rotated out of a full set: cannot check.
  const six = [1, 2, 3, 4, 5, 6].map((i) => scan(`f${i}`, H(String.fromCharCode(96 + i)), 1, []));
  assertEquals(
    comparePins(pins, six, { complete: true, full: true, firstEvents: [] }).status,
    "stale",
  );
  // The oldest pinned archive may rotate out of a full set.
  const rotatedOut = comparePins(pins, [...six.slice(1), scan("a", H("3"), 5, [[5, H("4")]])], {
    complete: true,
    full: true,
    firstEvents: [],
  });
  assertEquals(rotatedOut.status, "ok");
});

function openLog(path: string, extra: Partial<ConstructorParameters<typeof AuditLog>[1]> = {}) {
  return new AuditLog(path, { key: KEY, clock: new FakeClock(), signer: signerFor(), ...extra });
}

function fill(log: AuditLog, n: number, tag = "x"): void {
  for (let i = 0; i < n; i++) log.appendSync("PEER_CONNECT", { i, tag, pad: "p".repeat(40) });
}

Deno.test("writer keeps the checkpoint on the newest entry; verify checks its signature", async () => {
  await withTempDir((dir) => {
    const path = join(dir, "audit.log");
    const log = openLog(path);
    fill(log, 6);
    const last = log.appendSync("SHUTDOWN", {});
    assertEquals(last.checkpoint, "updated");
    log.close();
    const cp = readCheckpoint(join(dir, "audit.checkpoint"), KEY);
    assertEquals(cp.status, "ok");
    if (cp.status !== "ok") return;
    assertEquals(cp.checkpoint.body.entry_count, 7);
    assertEquals(cp.checkpoint.body.head_hmac, last.entry.hmac);
    assertEquals(cp.checkpoint.body.live_bytes, Deno.statSync(path).size);
    const r = verifyLog(path, KEY, { checkpointPublicKey: signerFor().publicKey });
    assert(r.ok, r.message);
    assertEquals([r.checkpoint.status, r.checkpoint.signed, r.checkpoint.entryCount], [
      "ok",
      true,
      7,
    ]);
    const wrong = verifyLog(path, KEY, { checkpointPublicKey: signerFor(OTHER_SEED).publicKey });
    assertEquals([wrong.ok, wrong.reason], [false, "checkpoint-invalid"]);
    assertEquals(verifyLog(path, KEY, { checkpoint: false }).checkpoint.status, "disabled");
    assertEquals((Deno.statSync(join(dir, "audit.checkpoint")).mode ?? 0) & 0o777, 0o600);
  });
});

Deno.test("tail truncation of whole lines is reported as truncated (the chain alone passes)", async () => {
  await withTempDir((dir) => {
    const path = join(dir, "audit.log");
    const log = openLog(path);
    fill(log, 8);
    log.close();
    const lines = readLines(path);
    for (const keep of [7, 5, 1]) {
      writeLines(path, lines.slice(0, keep));
      assert(verifyLog(path, KEY, { checkpoint: false }).ok);
      const r = verifyLog(path, KEY);
      assertEquals(
        [r.ok, r.reason, r.firstBadLine],
        [false, "truncated", keep + 1],
        `keep ${keep}`,
      );
      assertEquals(r.checkpoint.status, "truncated");
    }
    Deno.removeSync(path);
    const gone = verifyLog(path, KEY);
    assertEquals([gone.ok, gone.reason], [false, "truncated"]);
  });
});

Deno.test("tail truncation + re-chain with the key is caught at entry #count", async () => {
  await withTempDir((dir) => {
    const path = join(dir, "audit.log");
    const log = openLog(path);
    fill(log, 8);
    log.close();
    const lines = readLines(path).slice(0, 5);
    const mac = new ChainMac(KEY);
    let prev = JSON.parse(lines[4]).hmac;
    for (let i = 0; i < 6; i++) {
      const e = encodeEntry(mac, prev, "PEER_CONNECT", { forged: i }, 1736900000 + i);
      lines.push(e.line);
      prev = e.hmac;
    }
    mac.dispose();
    writeLines(path, lines);
    assert(verifyLog(path, KEY, { checkpoint: false }).ok);
    const r = verifyLog(path, KEY);
    assertEquals([r.ok, r.reason, r.firstBadLine], [false, "truncated", 8]);
  });
});

Deno.test("after a truncation the writer keeps logging, freezes the checkpoint as evidence, reset re-baselines", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "audit.log");
    const problems: string[][] = [];
    let reported: Promise<unknown> = Promise.resolve();
    const log = openLog(path, {
      onCheckpointProblem: (p) => {
        problems.push(p);
        reported = log.append("SIGNATURE_FAILURE", { audit_checkpoint: p[0] }); // may append itself
      },
    });
    fill(log, 6);
    writeLines(path, readLines(path).slice(0, 3));
    const a = log.appendSync("STARTUP", {});
    const b = await log.append("PEER_CONNECT", {});
    assertEquals([a.checkpoint, b.checkpoint], ["frozen", "frozen"]);
    await reported;
    assertEquals(problems.length, 1);
    assertEquals(readLines(path).length, 6);
    assert(problems[0][0].includes("truncated"), problems[0][0]);
    assertNotEquals(log.checkpointProblems(), null);
    const r = verifyLog(path, KEY);
    assertEquals([r.ok, r.reason], [false, "truncated"]);
    await log.resetCheckpoint();
    assertEquals(log.checkpointProblems(), null);
    assertEquals(log.appendSync("PEER_CONNECT", {}).checkpoint, "updated");
    const after = verifyLog(path, KEY);
    assert(after.ok, after.message);
    assertEquals(after.checkpoint.entryCount, 7);
    log.close();
  });
});

Deno.test("a deleted or forged checkpoint freezes the writer; verify reports it", async () => {
  await withTempDir((dir) => {
    const path = join(dir, "audit.log");
    const log = openLog(path);
    fill(log, 3);
    Deno.removeSync(log.checkpointPath);
    assertEquals(log.appendSync("X", {}).checkpoint, "frozen");
    assertEquals(verifyLog(path, KEY).checkpoint.status, "missing");
    log.close();
    const other = openLog(path);
    assertEquals(other.appendSync("X", {}).checkpoint, "updated"); // a new process adopts the log
    const text = Deno.readTextFileSync(other.checkpointPath);
    Deno.writeTextFileSync(other.checkpointPath, text.replace('"rotations": 0', '"rotations": 1'));
    assertEquals(other.appendSync("X", {}).checkpoint, "frozen");
    const r = verifyLog(path, KEY);
    assertEquals([r.ok, r.reason], [false, "checkpoint-invalid"]);
    other.close();
  });
});

Deno.test("entries appended by a writer without checkpoints (the reference) only make the log longer", async () => {
  await withTempDir((dir) => {
    const path = join(dir, "audit.log");
    const ours = openLog(path);
    fill(ours, 3);
    const python = new AuditLog(path, { key: KEY, checkpoint: false });
    fill(python, 4, "py");
    python.close();
    const r = verifyLog(path, KEY);
    assert(r.ok, r.message);
    assertEquals([r.checkpoint.status, r.checkpoint.entryCount, r.entries], ["ok", 3, 7]);
    assertEquals(ours.appendSync("X", {}).checkpoint, "updated");
    const cp = readCheckpoint(ours.checkpointPath, KEY);
    assertEquals(cp.status === "ok" && cp.checkpoint.body.entry_count, 8);
    ours.close();
  });
});

Deno.test("rotation: pins follow files across renames; archive deletion and rollback are caught", async () => {
  await withTempDir((dir) => {
    const path = join(dir, "audit.log");
    const log = openLog(path, { maxBytes: 1024 });
    let rotations = 0;
    while (rotations < 7) {
      if (log.appendSync("PEER_CONNECT", { pad: "r".repeat(200) }).anchor) rotations++;
    }
    log.close();
    for (let i = 1; i <= 5; i++) assert(Deno.statSync(`${path}.${i}`).isFile);
    assert(!readLines(path).some((l) => l.length === 0));
    const all = verifyLog(path, KEY, { archives: true });
    assert(all.ok, all.message);
    assertEquals(all.checkpoint.status, "ok");
    const cp = readCheckpoint(log.checkpointPath, KEY);
    assertEquals(cp.status === "ok" && cp.checkpoint.body.files.length, 6);
    assertEquals(cp.status === "ok" && cp.checkpoint.body.rotations, 7);
    assert(verifyLog(path, KEY).ok);
    // Deleting the oldest archive keeps the chain valid (the next file is simply first)…
    const oldest = Deno.readFileSync(`${path}.5`);
    Deno.removeSync(`${path}.5`);
    const noOldest = verifyLog(path, KEY, { archives: true });
    assertEquals([noOldest.ok, noOldest.reason], [false, "truncated"]);
    assert(verifyLog(path, KEY, { archives: true, checkpoint: false }).ok);
    Deno.writeFileSync(`${path}.5`, oldest);
    // …replacing the live file by an older one is a rollback.
    const live = Deno.readFileSync(path);
    Deno.copyFileSync(`${path}.1`, path);
    const rolled = verifyLog(path, KEY);
    assertEquals([rolled.ok, rolled.reason], [false, "truncated"]);
    assertEquals(verifyLog(path, KEY, { archives: true }).reason, "bad-anchor");
    Deno.writeFileSync(path, live);
    assert(verifyLog(path, KEY, { archives: true }).ok);
  });
});

Deno.test("a rotation by a writer without checkpoints: live-only verify asks for archives", async () => {
  await withTempDir((dir) => {
    const path = join(dir, "audit.log");
    const ours = openLog(path, { maxBytes: 4096 });
    fill(ours, 3);
    const python = new AuditLog(path, { key: KEY, checkpoint: false, maxBytes: 1024 });
    let rotated = false;
    while (!rotated) rotated = !!python.appendSync("X", { pad: "q".repeat(300) }).anchor;
    python.close();
    const live = verifyLog(path, KEY);
    assert(live.ok, live.message);
    assertEquals(live.checkpoint.status, "needs-archives");
    const all = verifyLog(path, KEY, { archives: true });
    assert(all.ok, all.message);
    assertEquals(all.checkpoint.status, "ok");
    assertEquals(ours.appendSync("X", {}).checkpoint, "updated");
    assertEquals(verifyLog(path, KEY).checkpoint.status, "ok");
    ours.close();
  });
});

Deno.test("checkpointEvery batches rewrites; flush and close write the pending one", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "audit.log");
    const log = openLog(path, { checkpointEvery: 4 });
    const states = [0, 1, 2, 3, 4].map(() => log.appendSync("X", {}).checkpoint);
    assertEquals(states, ["updated", "deferred", "deferred", "deferred", "updated"]);
    const count = () => {
      const c = readCheckpoint(log.checkpointPath, KEY);
      return c.status === "ok" ? c.checkpoint.body.entry_count : -1;
    };
    assertEquals(count(), 5);
    log.appendSync("X", {});
    assertEquals(count(), 5);
    assert(await log.flushCheckpoint());
    assertEquals(count(), 6);
    assert(!(await log.flushCheckpoint()));
    log.appendSync("X", {});
    log.close();
    assertEquals(count(), 7);
    assert(verifyLog(path, KEY).ok);
    assertEquals(SEED.length, 32);
  });
});
