import { assert, assertEquals, assertThrows } from "../../support/assert.ts";
import { loadVector, type VectorFloat, vectorFloat } from "../../support/vectors.ts";
import {
  formatFixed1,
  MAX_SEQUENCE,
  ReplayGuard,
  type ReplayRejection,
  ReplayWindow,
} from "../../../lib/wire/replay.ts";

interface Step {
  op: "check" | "reset_peer" | "bulk";
  peer: string;
  sequence?: number;
  timestamp?: VectorFloat;
  now?: VectorFloat;
  accepted?: boolean;
  reason?: string | null;
  note: string;
}
const V = loadVector<{ steps: Step[] }>("replay.json");

Deno.test("replay.json: every decision and reason text, in order", () => {
  const guard = new ReplayGuard({ maxAge: 30, maxFuture: 5 });
  let checks = 0;
  for (const step of V.steps) {
    if (step.op === "reset_peer") {
      guard.resetPeer(step.peer);
      continue;
    }
    if (step.op === "bulk") {
      // "1028 checks with seq 2..1029 all accepted"
      assertEquals(step.note.includes("seq 2..1029"), true);
      for (let seq = 2; seq <= 1029; seq++) {
        assertEquals(guard.check(step.peer, seq, 1736812800.0, 1736812800.0), null);
      }
      continue;
    }
    const r = guard.check(
      step.peer,
      step.sequence!,
      vectorFloat(step.timestamp!),
      vectorFloat(step.now!),
    );
    assertEquals(r === null, step.accepted, `${step.peer} seq ${step.sequence}: ${step.note}`);
    assertEquals(r?.reason ?? null, step.reason ?? null, step.note);
    checks++;
  }
  assert(checks >= 25, `only ${checks} checks replayed`);
});

Deno.test("replay: timestamp reasons are clock-skew, sequence reasons are replay", () => {
  const w = new ReplayWindow();
  const old = w.check(1, 100, 200) as ReplayRejection;
  assertEquals(old.kind, "clock-skew");
  assertEquals(old.skewSeconds, -100);
  const future = w.check(1, 210, 200) as ReplayRejection;
  assertEquals(future.kind, "clock-skew");
  assertEquals(future.reason, "Frame from future: 10.0s ahead");
  assertEquals(future.skewSeconds, 10);
  assertEquals(w.check(1, 200, 200), null);
  assertEquals(w.check(1, 200, 200)!.kind, "replay");
  assertEquals(w.check(0, 200, 200)!.kind, "replay");
  assertEquals(w.check(MAX_SEQUENCE + 1, 200, 200)!.kind, "replay");
});

Deno.test("replay: a rejected frame does not move the high-water mark", () => {
  const w = new ReplayWindow();
  assertEquals(w.check(5, 1000, 2000)?.kind, "clock-skew");
  assertEquals(w.lastSeq, 0);
  assertEquals(w.check(2, 2000, 2000), null);
  assertEquals(w.lastSeq, 2);
});

Deno.test("replay: configurable tolerance up to 300 s, reason shows the configured bound", () => {
  const w = new ReplayWindow({ maxAge: 300, maxFuture: 300 });
  assertEquals(w.check(1, 1000 - 299.9, 1000), null);
  assertEquals(w.check(2, 1000 + 299.9, 1000), null);
  assertEquals(w.check(3, 1000 - 300.5, 1000)?.reason, "Frame too old: 300.5s (max 300.0s)");
  assertThrows(() => new ReplayWindow({ maxAge: 301 }), RangeError);
  assertThrows(() => new ReplayWindow({ maxFuture: -1 }), RangeError);
  assertThrows(() => new ReplayGuard({ maxAge: Number.NaN }), RangeError);
});

Deno.test("replay: snapshot/restore continues the old epoch independently", () => {
  const w = new ReplayWindow();
  assertEquals(w.check(7, 100, 100), null);
  const old = w.restore(w.snapshot());
  const fresh = new ReplayWindow();
  assertEquals(fresh.check(1, 100, 100), null); // the new epoch restarts at 1
  assertEquals(old.check(7, 100, 100)?.reason, "Sequence 7 <= last seen 7");
  assertEquals(old.check(8, 100, 100), null);
  assertEquals(w.lastSeq, 7); // the original is untouched by the copy
  const g = new ReplayGuard();
  assertEquals(g.check("p", 3, 100, 100), null);
  g.snapshotPeer("p", "p#rekey0");
  g.resetPeer("p");
  assertEquals(g.check("p", 1, 100, 100), null);
  assertEquals(g.check("p#rekey0", 3, 100, 100)?.reason, "Sequence 3 <= last seen 3");
  assertEquals(g.check("p#rekey0", 4, 100, 100), null);
});

Deno.test("formatFixed1 matches Python '%.1f' (half-even on exact ties, inf, nan, huge)", () => {
  const cases: [number, string][] = [
    [30.04, "30.0"],
    [30.05, "30.1"], // 30.05 is slightly above the tie in binary
    [0.25, "0.2"],
    [0.75, "0.8"],
    [30.25, "30.2"],
    [-30.25, "-30.2"],
    [-0.04, "-0.0"],
    [0, "0.0"],
    [Infinity, "inf"],
    [-Infinity, "-inf"],
    [Number.NaN, "nan"],
    [1e22, "10000000000000000000000.0"],
    [3600, "3600.0"],
    [2.5e-7, "0.0"],
  ];
  for (const [x, want] of cases) assertEquals(formatFixed1(x), want, String(x));
});
