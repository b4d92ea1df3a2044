import { join } from "node:path";
import { assert, assertEquals, assertThrows } from "../../support/assert.ts";
import { vectorPath } from "../../support/vectors.ts";
import {
  computeStats,
  filterEntries,
  follow,
  parseEventFilter,
  parseSince,
  readEntries,
  stats,
  tail,
  utcDay,
} from "../../../lib/audit/query.ts";
import { AuditLog } from "../../../lib/audit/log.ts";
import { FakeClock } from "../../../lib/clock.ts";
import { ExitCode, IronMeshError } from "../../../lib/errors.ts";
import { KEY, withTempDir } from "./helpers.ts";

const LOG = vectorPath("audit", "audit.log");
const NOW = 1736812800; // 2025-01-14T00:00:00Z

Deno.test("parseSince: durations back from now", () => {
  assertEquals(parseSince("30s", NOW), NOW - 30);
  assertEquals(parseSince("5m", NOW), NOW - 300);
  assertEquals(parseSince("2h", NOW), NOW - 7200);
  assertEquals(parseSince("7d", NOW), NOW - 7 * 86400);
  assertEquals(parseSince("1w", NOW), NOW - 604800);
  assertEquals(parseSince("1.5H", NOW), NOW - 5400);
  assertEquals(parseSince(" 10m ", NOW), NOW - 600);
});

Deno.test("parseSince: ISO-8601 dates and times (no offset = UTC)", () => {
  assertEquals(parseSince("2025-01-14", 0), NOW);
  assertEquals(parseSince("2025-01-14T00:00:00Z", 0), NOW);
  assertEquals(parseSince("2025-01-14T00:00", 0), NOW);
  assertEquals(parseSince("2025-01-14 08:30:15", 0), NOW + 8 * 3600 + 30 * 60 + 15);
  assertEquals(parseSince("2025-01-14T02:00:00+02:00", 0), NOW);
  assertEquals(parseSince("2025-01-13T19:00:00-0500", 0), NOW);
  assertEquals(parseSince("2025-01-14T00:00:00.25z", 0), NOW + 0.25);
  assertEquals(parseSince("2024-02-29", 0), Date.UTC(2024, 1, 29) / 1000);
});

Deno.test("parseSince: nonsense is a usage error with a hint", () => {
  for (
    const bad of [
      "",
      "yesterday",
      "5x",
      "-5m",
      "2025-02-30",
      "2025-13-01",
      "2025-01-14T25:00",
      "2025-01-14T10:00+25:00",
      "14/01/2025",
    ]
  ) {
    const e = assertThrows(() => parseSince(bad, NOW), IronMeshError) as IronMeshError;
    assertEquals(e.code, "AUDIT_BAD_SINCE", bad);
    assertEquals(e.exitCode, ExitCode.USAGE);
    assert(e.hint.includes("7d"));
  }
});

Deno.test("tail: limit keeps the most recent, oldest first, with global line numbers", () => {
  const t = tail(LOG, { limit: 5 });
  assertEquals(t.map((e) => e.line), [28, 29, 30, 31, 32]);
  assertEquals(t[4].event, "SHUTDOWN");
  assertEquals(tail(LOG).length, 20);
  assertEquals(tail(LOG, { limit: 0 }).length, 32);
  assertThrows(() => tail(LOG, { limit: -1 }), IronMeshError, "limit");
});

Deno.test("tail: event filter (comma list, any case) and since", () => {
  const auth = tail(LOG, { events: "AUTH_FAILURE" });
  assertEquals(auth.map((e) => [e.line, e.details.failure_count]), [[4, 1], [5, 2], [6, 3]]);
  const two = tail(LOG, { events: "auth_failure, Peer_Connect", limit: 0 });
  assertEquals(two.map((e) => e.line), [2, 4, 5, 6, 8]);
  assertEquals([...parseEventFilter(["a", " b ", ""])], ["A", "B"]);
  const since = tail(LOG, { since: 1736813000, limit: 0 });
  assertEquals(since.map((e) => e.line), [30, 31, 32]);
  // One minute before the last entry's time: entries 24 (…961.33) to 32; 23 (…954.0) is older.
  const recent = tail(LOG, { since: "1m", now: 1736813017.3333333, limit: 0 });
  assertEquals(recent.map((e) => e.line), [24, 25, 26, 27, 28, 29, 30, 31, 32]);
  assertEquals(tail(LOG, { since: "2025-01-15", limit: 0 }), []);
});

Deno.test("readEntries skips torn lines; archives are read oldest first", () => {
  const torn = readEntries(vectorPath("audit", "audit.tampered-truncated-tail.log"));
  assertEquals(torn.length, 31);
  const all = readEntries(vectorPath("audit", "rotated", "audit.log"), { archives: true });
  assertEquals(all.length, 13);
  assertEquals(all.map((e) => e.line), Array.from({ length: 13 }, (_, i) => i + 1));
  assertEquals(all.filter((e) => e.event === "LOG_ROTATED").map((e) => e.line), [7, 12]);
});

Deno.test("stats: counts per event and per UTC day", () => {
  const s = stats(LOG);
  assertEquals(s.total, 32);
  assertEquals(s.byEvent.AUTH_FAILURE, 3);
  assertEquals(s.byEvent.PEER_CONNECT, 2);
  assertEquals(Object.values(s.byEvent).reduce((a, b) => a + b, 0), 32);
  assertEquals(s.byDay, { "2025-01-14": 32 });
  assertEquals([s.first, s.last], [1736812800, 1736813017.3333333]);
  const r = stats(vectorPath("audit", "rotated", "audit.log"), { archives: true });
  assertEquals(r.byEvent.LOG_ROTATED, 2);
  assertEquals(
    Object.keys(r.byDay),
    [
      ...new Set(
        readEntries(vectorPath("audit", "rotated", "audit.log"), { archives: true }).map((e) =>
          utcDay(e.timestamp)
        ),
      ),
    ].sort(),
  );
  const mixed = computeStats([
    { event: "B", details: {}, timestamp: 86400 * 2 + 5, hmac: "" },
    { event: "A", details: {}, timestamp: 86399, hmac: "" },
    { event: "B", details: {}, timestamp: 86400, hmac: "" },
  ]);
  assertEquals(mixed.byEvent, { A: 1, B: 2 });
  assertEquals(mixed.byDay, { "1970-01-01": 1, "1970-01-02": 1, "1970-01-03": 1 });
  assertEquals(Object.keys(mixed.byEvent), ["A", "B"]);
  assertEquals(filterEntries([], { events: "X" }), []);
});

Deno.test("follow yields new entries as they are appended, across rotations, until aborted", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "audit.log");
    const log = new AuditLog(path, {
      key: KEY,
      clock: new FakeClock(),
      maxBytes: 1024,
      checkpoint: false,
    });
    log.appendSync("OLD", { n: -1 });
    const ctl = new AbortController();
    let next = 0;
    let polls = 0;
    // Each poll appends up to two entries (padded so the log rotates every few entries).
    const sleep = () => {
      polls++;
      for (let k = 0; k < 2 && next < 20; k++) {
        log.appendSync("NEW", { n: next++, pad: "x".repeat(150) });
      }
      return Promise.resolve();
    };
    const got: { event: string; n?: number }[] = [];
    for await (const e of follow(path, { signal: ctl.signal, sleep })) {
      got.push({ event: e.event, n: e.details.n as number | undefined });
      if (got.filter((g) => g.event === "NEW").length === 20) ctl.abort();
    }
    log.close();
    assertEquals(
      got.filter((g) => g.event === "NEW").map((g) => g.n),
      Array.from({ length: 20 }, (_, i) => i),
    );
    assert(!got.some((g) => g.event === "OLD"), "starts at the end by default");
    assert(got.filter((g) => g.event === "LOG_ROTATED").length >= 2, "rotations were followed");
    assert(polls >= 10);
  });
});

Deno.test("follow fromStart replays existing entries and waits for a missing file", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "audit.log");
    const ctl = new AbortController();
    let polls = 0;
    const log = new AuditLog(path, { key: KEY, checkpoint: false });
    const sleep = () => {
      if (++polls === 3) {
        log.appendSync("A", {});
        log.appendSync("B", {});
      }
      if (polls > 50) ctl.abort();
      return Promise.resolve();
    };
    const got: string[] = [];
    for await (const e of follow(path, { signal: ctl.signal, sleep, fromStart: true })) {
      got.push(e.event);
      if (got.length === 2) ctl.abort();
    }
    log.close();
    assertEquals(got, ["A", "B"]);
  });
});

Deno.test("follow with the real timer stops promptly when aborted", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "audit.log");
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 40);
    const started = performance.now();
    let n = 0;
    for await (const _ of follow(path, { signal: ctl.signal, pollMs: 10_000 })) n++;
    assertEquals(n, 0);
    assert(performance.now() - started < 5_000);
  });
});
