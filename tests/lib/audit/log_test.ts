import { join } from "node:path";
import { assert, assertEquals, assertThrows } from "../../support/assert.ts";
import { vectorPath } from "../../support/vectors.ts";
import { AuditLog, readTail } from "../../../lib/audit/log.ts";
import { verifyLog } from "../../../lib/audit/verify.ts";
import { GENESIS_HMAC } from "../../../lib/audit/chain.ts";
import { checkpointPathFor, logFilesOldestFirst } from "../../../lib/audit/files.ts";
import { readCheckpoint } from "../../../lib/audit/checkpoint.ts";
import { type Clock, FakeClock } from "../../../lib/clock.ts";
import { utf8 } from "../../../lib/crypto/sodium.ts";
import { IronMeshError } from "../../../lib/errors.ts";
import { parseJson } from "../../../lib/json/parse.ts";
import {
  KEY,
  readLines,
  SEED_HEX,
  signerFor,
  spawnWriter,
  VECTOR_KEY,
  waitForLine,
  withTempDir,
} from "./helpers.ts";

/** Replays recorded timestamps in order. */
class ScriptedClock implements Clock {
  constructor(private ts: number[]) {}
  now(): number {
    const t = this.ts.shift();
    if (t === undefined) throw new Error("clock exhausted");
    return t;
  }
  monotonicMs(): number {
    return 0;
  }
}

function entriesOf(path: string): Record<string, unknown>[] {
  return readLines(path).map((l) =>
    parseJson(l, { preserveNumbers: true }) as Record<string, unknown>
  );
}

Deno.test("C-ST-08: replaying the vector events reproduces audit.log byte for byte", async () => {
  await withTempDir((dir) => {
    const objs = entriesOf(vectorPath("audit", "audit.log"));
    const clock = new ScriptedClock(objs.map((o) => Number(o.timestamp)));
    const path = join(dir, "audit.log");
    const log = new AuditLog(path, { key: VECTOR_KEY, clock, checkpoint: false });
    for (const o of objs) log.appendSync(o.event as string, o.details as Record<string, unknown>);
    log.close();
    assertEquals(
      Deno.readTextFileSync(path),
      Deno.readTextFileSync(vectorPath("audit", "audit.log")),
    );
  });
});

Deno.test("C-ST-09: rotation at max_bytes=1024 reproduces rotated/ byte for byte (LOG_ROTATED anchors)", async () => {
  await withTempDir((dir) => {
    const files = ["audit.log.2", "audit.log.1", "audit.log"];
    const objs = files.flatMap((f) => entriesOf(vectorPath("audit", "rotated", f)));
    const clock = new ScriptedClock(objs.map((o) => Number(o.timestamp)));
    const path = join(dir, "audit.log");
    const log = new AuditLog(path, { key: VECTOR_KEY, clock, checkpoint: false, maxBytes: 1024 });
    const anchors: string[] = [];
    for (const o of objs) {
      if (o.event === "LOG_ROTATED") continue;
      const r = log.appendSync(o.event as string, o.details as Record<string, unknown>);
      if (r.anchor) anchors.push(r.anchor.hmac);
    }
    log.close();
    assertEquals(anchors.length, 2);
    for (const f of files) {
      assertEquals(
        Deno.readTextFileSync(join(dir, f)),
        Deno.readTextFileSync(vectorPath("audit", "rotated", f)),
        f,
      );
    }
    assert(verifyLog(path, VECTOR_KEY, { archives: true }).ok);
  });
});

Deno.test("append: mode 0600, one line per entry, chain resumes across instances", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "audit.log");
    const clock = new FakeClock(1736812800.5);
    const a = new AuditLog(path, { key: KEY, clock });
    const first = await a.append("STARTUP", { node_id: "n", port: 8765 });
    assertEquals(first.entry.prevHmac, GENESIS_HMAC);
    assertEquals((Deno.statSync(path).mode ?? 0) & 0o777, 0o600);
    assertEquals(
      Deno.readTextFileSync(path),
      `{"details":{"node_id":"n","port":8765},"event":"STARTUP","hmac":"${first.entry.hmac}",` +
        `"timestamp":1736812800.5}\n`,
    );
    a.close();
    assertThrows(() => a.appendSync("X", {}), IronMeshError, "closed");
    const b = new AuditLog(path, { key: KEY, clock });
    clock.advance(1);
    const second = b.appendSync("SHUTDOWN");
    assertEquals(second.entry.prevHmac, first.entry.hmac);
    assertEquals(JSON.parse(readLines(path)[1]).timestamp, 1736812801.5);
    assertEquals(b.tail().hmac, second.entry.hmac);
    b.close();
    assertEquals(verifyLog(path, KEY).entries, 2);
  });
});

Deno.test("bad details touch no file; without checkpoints no checkpoint file; a missing log verifies empty", async () => {
  await withTempDir((dir) => {
    const path = join(dir, "audit.log");
    const log = new AuditLog(path, { key: KEY, checkpoint: false });
    const e = assertThrows(() => log.appendSync("X", { n: NaN }), IronMeshError) as IronMeshError;
    assertEquals(e.code, "AUDIT_BAD_DETAILS");
    assertEquals([...Deno.readDirSync(dir)].map((d) => d.name), []);
    const v = verifyLog(path, KEY);
    assertEquals([v.ok, v.entries, v.headHmac], [true, 0, GENESIS_HMAC]);
    assertEquals(log.appendSync("X", {}).checkpoint, "disabled");
    log.close();
    assertEquals([...Deno.readDirSync(dir)].map((d) => d.name).sort(), [
      "audit.log",
      "audit.log.lock",
    ]);
  });
});

Deno.test("readTail: long last lines, torn tails and files without entries", async () => {
  await withTempDir((dir) => {
    const path = join(dir, "audit.log");
    assertEquals(readTail(path), {
      exists: false,
      size: 0,
      hmac: GENESIS_HMAC,
      endsWithNewline: true,
    });
    const log = new AuditLog(path, { key: KEY, checkpoint: false });
    const big = log.appendSync("X", { blob: "b".repeat(100_000) });
    assertEquals(readTail(path).hmac, big.entry.hmac);
    Deno.writeFileSync(path, utf8('{"details":{"blob":"' + "c".repeat(50_000)), { append: true });
    const t = readTail(path);
    assertEquals([t.hmac, t.endsWithNewline], [big.entry.hmac, false]);
    const next = log.appendSync("Y", {});
    assertEquals(next.entry.prevHmac, big.entry.hmac);
    assertEquals(Deno.readTextFileSync(path).split("\n").length, 4);
    log.close();
    Deno.writeTextFileSync(path, "junk\n\n");
    assertEquals(readTail(path).hmac, GENESIS_HMAC);
  });
});

Deno.test("rotation keeps exactly five archives, each anchored to the previous tail", async () => {
  await withTempDir((dir) => {
    const path = join(dir, "audit.log");
    const log = new AuditLog(path, { key: KEY, maxBytes: 10, signer: signerFor() });
    assertEquals(log.maxBytes, 1024);
    let rotations = 0;
    while (rotations < 9) if (log.appendSync("X", { pad: "z".repeat(300) }).anchor) rotations++;
    log.close();
    const files = logFilesOldestFirst(path, true).map((p) => p.slice(dir.length + 1));
    assertEquals(files, [
      "audit.log.5",
      "audit.log.4",
      "audit.log.3",
      "audit.log.2",
      "audit.log.1",
      "audit.log",
    ]);
    assert(!files.includes("audit.log.6"));
    for (let i = 1; i <= 5; i++) {
      const newer = i === 1 ? path : `${path}.${i - 1}`;
      const first = JSON.parse(readLines(newer)[0]);
      assertEquals(first.event, "LOG_ROTATED");
      assertEquals(first.details.previous_tail_hmac, readTail(`${path}.${i}`).hmac);
      assert(Deno.statSync(`${path}.${i}`).size >= 1024);
    }
    const r = verifyLog(path, KEY, { archives: true, checkpointPublicKey: signerFor().publicKey });
    assert(r.ok, r.message);
    assertEquals(r.checkpoint.status, "ok");
    assertEquals(r.files.length, 6);
  });
});

Deno.test("an interrupted rotation (live file missing) is finished with its anchor", async () => {
  await withTempDir((dir) => {
    const path = join(dir, "audit.log");
    const log = new AuditLog(path, { key: KEY });
    for (let i = 0; i < 4; i++) log.appendSync("X", { i });
    const tail = log.tail().hmac;
    Deno.renameSync(path, `${path}.1`); // crash after the rename, before the anchor
    const r = log.appendSync("STARTUP", {});
    assertEquals(r.anchor?.event, "LOG_ROTATED");
    assertEquals(r.anchor?.details, { previous_tail_hmac: tail });
    assertEquals(r.entry.prevHmac, r.anchor?.hmac);
    log.close();
    const v = verifyLog(path, KEY, { archives: true });
    assert(v.ok, v.message);
    assertEquals([v.entries, v.checkpoint.status], [6, "ok"]);
  });
});

Deno.test("appendSync refuses while an async append to the same log is pending (no deadlock)", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "audit.log");
    const a = new AuditLog(path, { key: KEY });
    const b = new AuditLog(path, { key: KEY });
    const pending = a.append("X", {});
    const e = assertThrows(() => b.appendSync("Y", {}), IronMeshError) as IronMeshError;
    assertEquals(e.code, "AUDIT_BUSY");
    await pending;
    b.appendSync("Y", {});
    a.close();
    b.close();
    assertEquals(verifyLog(path, KEY).entries, 2);
  });
});

Deno.test("two instances in one process interleaving async appends keep one chain", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "audit.log");
    const a = new AuditLog(path, { key: KEY, signer: signerFor() });
    const b = new AuditLog(path, { key: KEY, signer: signerFor() });
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      jobs.push(a.append("PEER_CONNECT", { w: "a", i }), b.append("PEER_CONNECT", { w: "b", i }));
    }
    await Promise.all(jobs);
    a.close();
    b.close();
    const r = verifyLog(path, KEY);
    assert(r.ok, r.message);
    assertEquals([r.entries, r.checkpoint.status, r.checkpoint.entryCount], [120, "ok", 120]);
  });
});

Deno.test("two processes appending 1,000 entries each leave one valid chain of 2,000", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "audit.log");
    const kids = ["A", "B"].map((tag) =>
      spawnWriter({ path, count: 1000, tag, seedHex: SEED_HEX, maxBytes: 200 * 1024 })
    );
    const results = await Promise.all(kids.map((k) => k.output()));
    for (const r of results) {
      assert(r.success, new TextDecoder().decode(r.stderr));
      assert(new TextDecoder().decode(r.stdout).includes("done 1000"));
    }
    const v = verifyLog(path, KEY, { archives: true, checkpointPublicKey: signerFor().publicKey });
    assert(v.ok, v.message);
    const rotations = v.files.length - 1;
    assert(rotations >= 1 && rotations <= 5, `${rotations} rotations`);
    assertEquals(v.entries, 2000 + rotations);
    assertEquals(v.checkpoint.status, "ok");
    // Each writer's entries are all there, in its own order.
    const seen: Record<string, number[]> = { A: [], B: [] };
    for (const f of logFilesOldestFirst(path, true)) {
      for (const l of readLines(f)) {
        const o = JSON.parse(l);
        if (o.event === "PEER_CONNECT") seen[o.details.writer].push(o.details.seq);
      }
    }
    for (const tag of ["A", "B"]) {
      assertEquals(seen[tag], Array.from({ length: 1000 }, (_, i) => i), tag);
    }
  });
});

Deno.test("a writer killed with SIGKILL mid-append: the next append recovers and everything verifies", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "audit.log");
    let killedWith = 0;
    for (let round = 0; round < 6; round++) {
      const child = spawnWriter({
        path,
        count: -1,
        tag: `r${round}`,
        seedHex: SEED_HEX,
        maxBytes: 2048,
      });
      const reader = await waitForLine(child, "ready");
      await new Promise((r) => setTimeout(r, 30 + Math.floor(Math.random() * 120)));
      child.kill("SIGKILL");
      const status = await child.status;
      reader.releaseLock();
      await child.stdout.cancel();
      await child.stderr.cancel();
      if (status.signal === "SIGKILL") killedWith++;
      // A restarted node: new instance, one append, then the whole log must verify.
      const log = new AuditLog(path, { key: KEY, signer: signerFor() });
      const r = log.appendSync("STARTUP", { round });
      log.close();
      assert(r.checkpoint === "updated", `round ${round}: checkpoint ${r.checkpoint}`);
      const v = verifyLog(path, KEY, {
        archives: true,
        checkpointPublicKey: signerFor().publicKey,
      });
      assert(v.ok, `round ${round}: ${v.message}`);
      assertEquals(v.checkpoint.status, "ok", `round ${round}`);
      assertEquals(v.headHmac, r.entry.hmac);
      const temps = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".tmp"));
      assertEquals(temps.map((e) => e.name), [], `round ${round}: stale temp files`);
    }
    assert(killedWith >= 1);
    assert(Deno.statSync(checkpointPathFor(path)).isFile);
    assertEquals(readCheckpoint(checkpointPathFor(path), KEY).status, "ok");
  });
});
