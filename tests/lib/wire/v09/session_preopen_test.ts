// preOpenFrame + openPreOpened (the worker-pool path) must give exactly what open gives, frame
// for frame, including when the pre-open used keys that changed before completion.
import { assert, assertEquals } from "../../../support/assert.ts";
import { FakeClock } from "../../../../lib/clock.ts";
import { pyFloat } from "../../../../lib/json/py_float.ts";
import type { OpenResult, OutboundMessage } from "../../../../lib/wire/session.ts";
import { FrameErrorCode } from "../../../../lib/wire/v09/errors.ts";
import { nodeSigner, nodeVerifier } from "../../../../lib/wire/v09/frame.ts";
import { signInnerSourceV2 } from "../../../../lib/wire/v09/inner_source.ts";
import { pingMessage } from "../../../../lib/wire/v09/control.ts";
import {
  type PreOpened,
  preOpenFrame,
  V09Session,
  type V09SessionOptions,
} from "../../../../lib/wire/v09/session.ts";
import { flip, type Ident, ident, KEY_AB, TestRng } from "./fixtures.ts";

const alice = ident("alice"), bob = ident("bob"), carol = ident("carol");
const T0 = 1736812800;
const enc = new TextEncoder();

function session(local: Ident, peer: Ident, clock: FakeClock, options: V09SessionOptions = {}) {
  return new V09Session({
    sessionKey: KEY_AB,
    localSecretKey: local.secretKey,
    localNodeId: local.nodeId,
    peerPublicKey: peer.publicKey,
    peerNodeId: peer.nodeId,
    clock,
    rng: new TestRng(local.name),
    options,
  });
}

/** What must be equal between the two paths. */
function summary(r: OpenResult): unknown {
  if (!r.ok) return { ok: false, code: r.error.code, message: r.error.message };
  const { payload, ...rest } = r.message;
  return {
    ok: true,
    payload: [...payload],
    ...rest,
    send: r.send.map((f) => [...f]),
    notice: r.notice,
  };
}

/**
 * Two identical receivers (alice, peer bob): `sync` opens with `open`, `pooled` pre-opens each
 * batch with the context of the moment the batch is dispatched, then completes in order.
 */
function twins(options: V09SessionOptions = {}) {
  const clock = new FakeClock(T0);
  const sync = session(alice, bob, clock, options);
  const pooled = session(alice, bob, clock, options);
  const verifier = nodeVerifier(bob.publicKey);
  return {
    clock,
    sync,
    pooled,
    /** Feed one batch; asserts both paths agree; returns the sync results. */
    batch(frames: Uint8Array[], between?: () => void): OpenResult[] {
      const ctx = pooled.preOpenContext();
      const pre: PreOpened[] = frames.map((f) => preOpenFrame(f, ctx, verifier));
      between?.();
      return frames.map((f, i) => {
        const a = sync.open(f), b = pooled.openPreOpened(f, pre[i]);
        assertEquals(summary(b), summary(a), `frame ${i} of the batch`);
        return a;
      });
    },
  };
}

const msg = (text: string, extra: Partial<OutboundMessage> = {}): OutboundMessage => ({
  type: "MSG",
  payload: enc.encode(text),
  destination: alice.nodeId,
  ...extra,
});

Deno.test("pre-opened frames give open's results: stream, tampering, replays, bad inner signature", () => {
  const t = twins();
  const bobS = session(bob, alice, t.clock);
  const good = [msg("one"), msg("two", { priority: "HIGH" }), pingMessage(bob.nodeId), msg("")]
    .map((m) => bobS.seal(m));
  const results = t.batch(good);
  assert(results.every((r) => r.ok));
  const f = bobS.seal(msg("victim"));
  const badInner = bobS.seal(msg("forged", {
    sourceSignature: new Uint8Array(64).fill(3),
    sourceSigScheme: "v2",
  }));
  const rs = t.batch([
    flip(f, 40), // ciphertext
    flip(f, f.length - 1), // outer signature
    flip(f, 11), // header sequence
    f.subarray(0, f.length - 3),
    f,
    f, // replay
    badInner,
    new Uint8Array([1, 2, 3]),
  ]);
  assertEquals(rs.map((r) => r.ok ? "ok" : r.error.code), [
    FrameErrorCode.SIGNATURE,
    FrameErrorCode.SIGNATURE,
    FrameErrorCode.HEADER_MISMATCH,
    FrameErrorCode.SIGNATURE,
    "ok",
    FrameErrorCode.REPLAY,
    FrameErrorCode.INNER_SIGNATURE,
    FrameErrorCode.MALFORMED,
  ]);
  assertEquals(t.pooled.counters, t.sync.counters);
});

Deno.test("pre-opened frames: relayed sources, float-written integers and wrong keys fall back correctly", () => {
  const lookup = (id: string) => id === carol.nodeId ? carol.publicKey : null;
  const t = twins({ sourceKeyLookup: lookup });
  const bobS = session(bob, alice, t.clock);
  const signed = { source: carol.nodeId, destination: alice.nodeId, msgId: "relayed-1" };
  const carolSig = signInnerSourceV2(nodeSigner(carol.secretKey), {
    ...signed,
    payload: enc.encode("relayed"),
  });
  const rs = t.batch([
    bobS.seal(msg("relayed", { ...signed, sourceSignature: carolSig, sourceSigScheme: "v2" })),
    bobS.seal(msg("relayed, unsigned", { source: carol.nodeId })),
    bobS.seal(msg("float ttl in routing", { routing: { ttl: pyFloat(1) } })),
    session(carol, alice, t.clock).seal(msg("signed by someone else")),
  ]);
  assert(rs[0].ok && rs[0].message.sourceAuthenticated);
  assertEquals(rs.map((r) => r.ok ? "ok" : r.error.code), [
    "ok",
    FrameErrorCode.INNER_SIGNATURE,
    "ok",
    FrameErrorCode.SIGNATURE,
  ]);
});

Deno.test("pre-opened frames across a rekey: stale contexts and grace expiry behave as open", () => {
  // bob has the smaller node id: he initiates.
  const t = twins();
  const bobS = session(bob, alice, t.clock);
  const req = bobS.startRekey()!;
  const oldKey = [bobS.seal(msg("in flight 1")), bobS.seal(msg("in flight 2"))];
  // One batch: the request and old-key frames, all pre-opened before the switch.
  const rs = t.batch([req, ...oldKey]);
  assert(rs.every((r) => r.ok));
  assert(rs.slice(1).every((r) => r.ok && r.message.previousKey));
  const response = (rs[0] as { send: Uint8Array[] }).send[0];
  assert(bobS.open(response).ok);
  // New-key frames pre-opened with the old context (worker behind), then completed.
  const lateOld = [bobS.seal(msg("new key 1")), bobS.seal(msg("new key 2"))];
  assertEquals(t.batch(lateOld).map((r) => r.ok && r.message.previousKey), [false, false]);

  // Grace expiry between pre-open and completion.
  const u = twins();
  const bob2 = session(bob, alice, u.clock);
  const req2 = bob2.startRekey()!;
  const straggler = bob2.seal(msg("straggler"));
  u.batch([req2]);
  const r = u.batch([straggler], () => u.clock.advance(31));
  assertEquals(r.map((x) => x.ok ? "ok" : x.error.code), [FrameErrorCode.DECRYPT]);
});

Deno.test("a closed session refuses pre-open contexts and pre-opened frames alike", () => {
  const t = twins();
  const f = session(bob, alice, t.clock).seal(msg("late"));
  const pre = preOpenFrame(f, t.pooled.preOpenContext(), nodeVerifier(bob.publicKey));
  assert(pre.ok);
  t.pooled.close();
  const r = t.pooled.openPreOpened(f, pre);
  assertEquals(r.ok ? "ok" : r.error.code, FrameErrorCode.CLOSED);
  let threw = false;
  try {
    t.pooled.preOpenContext();
  } catch {
    threw = true;
  }
  assert(threw);
});
