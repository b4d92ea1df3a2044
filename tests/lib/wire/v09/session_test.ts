import { assert, assertEquals, assertThrows } from "../../../support/assert.ts";
import { FakeClock, type Rng, ScriptedRng } from "../../../../lib/clock.ts";
import {
  fromHex,
  sealedBoxOpen,
  sealedBoxSeal,
  sha256,
  toHex,
} from "../../../../lib/crypto/sodium.ts";
import { InvalidKeyError, IronMeshError } from "../../../../lib/errors.ts";
import { DedupCache } from "../../../../lib/wire/dedup.ts";
import type { OpenOk, OpenResult, OutboundMessage } from "../../../../lib/wire/session.ts";
import {
  controlMessage,
  goodbyeMessage,
  pingMessage,
  pongMessage,
  rateLimitedMessage,
  rekeyResponseMessage,
  revocationMessage,
  routeUnreachableMessage,
} from "../../../../lib/wire/v09/control.ts";
import { b64DecodeStrict, type Envelope } from "../../../../lib/wire/v09/envelope.ts";
import { FrameError, FrameErrorCode } from "../../../../lib/wire/v09/errors.ts";
import { encodeFrame, nodeSigner, parseFrame } from "../../../../lib/wire/v09/frame.ts";
import { signInnerSourceV2 } from "../../../../lib/wire/v09/inner_source.ts";
import { V09Session, type V09SessionOptions } from "../../../../lib/wire/v09/session.ts";
import {
  CONTROL,
  type ControlCase,
  envelopeFromInner,
  flip,
  type Ident,
  ident,
  KEY_AB,
  TestRng,
  vf,
} from "./fixtures.ts";

const alice = ident("alice"), bob = ident("bob"), carol = ident("carol"), dave = ident("dave");
const T0 = 1736812800;
const dec = new TextDecoder();

function session(
  local: Ident,
  peer: Ident,
  clock: FakeClock,
  rng: Rng = new TestRng(local.name),
  options: V09SessionOptions = {},
  key = KEY_AB,
): V09Session {
  return new V09Session({
    sessionKey: key,
    localSecretKey: local.secretKey,
    localNodeId: local.nodeId,
    peerPublicKey: peer.publicKey,
    peerNodeId: peer.nodeId,
    clock,
    rng,
    options,
  });
}

function pair(options: V09SessionOptions = {}) {
  const clock = new FakeClock(T0);
  return {
    clock,
    a: session(alice, bob, clock, undefined, options),
    b: session(bob, alice, clock, undefined, options),
  };
}

function ok(r: OpenResult): OpenOk {
  if (!r.ok) throw new Error(`rejected: ${r.error.code} ${r.error.message}`);
  return r;
}

function rejected(r: OpenResult, code: string, message?: string): IronMeshError {
  assert(!r.ok, `expected ${code}, frame was accepted`);
  assertEquals(r.error.code, code, r.error.message);
  if (message !== undefined) assertEquals(r.error.message, message);
  return r.error;
}

const msg = (text: string, extra: Partial<OutboundMessage> = {}): OutboundMessage => ({
  type: "MSG",
  payload: new TextEncoder().encode(text),
  destination: bob.nodeId,
  ttl: 5,
  ...extra,
});

/** Seal `n` throw-away frames so the next one gets sequence n + 1. */
function burn(s: V09Session, n: number): void {
  for (let i = 0; i < n; i++) s.seal(pingMessage(s.localNodeId));
}

// ---------------------------------------------------------------------------------------------
// Golden vectors through the session

const PEER_OF: Record<string, string> = { PONG: "alice", MSG_relayed_by_bob: "carol" };

function outboundFor(c: ControlCase): OutboundMessage {
  const inner = c.frame.inner;
  const sender = ident(c.sent_by);
  const payload = c.payload_hex ? fromHex(c.payload_hex) : b64DecodeStrict(inner.payload as string);
  switch (c.name) {
    case "PING":
      return pingMessage(sender.nodeId);
    case "PONG":
      return pongMessage(sender.nodeId);
    case "GOODBYE":
      return goodbyeMessage(sender.nodeId);
    case "RATE_LIMITED":
      return rateLimitedMessage(sender.nodeId);
    case "REVOCATION": {
      const p = c.payload_json!;
      return revocationMessage(
        nodeSigner(sender.secretKey),
        sender.nodeId,
        p.target_node_id as string,
        vf(c.clock!),
        p.reason as string,
      );
    }
    case "ROUTE_UNREACHABLE": {
      const p = c.payload_json!;
      return routeUnreachableMessage(
        inner.destination as string,
        p.destination as string,
        p.original_msg_id as string,
      );
    }
    case "CAPABILITY_ANNOUNCE":
      return {
        type: c.name,
        payload,
        destination: inner.destination as string,
        msgId: inner.msg_id as string,
      };
    case "ROUTE_ANNOUNCE":
      return { type: c.name, payload, destination: inner.destination as string };
    case "MSG_send_message_direct":
    case "MSG_send_message_strict":
      return {
        type: "MSG",
        payload,
        msgId: inner.msg_id as string,
        destination: inner.destination as string,
        ttl: 5,
        e2ePayload: b64DecodeStrict(inner.e2e_payload as string),
        e2ePlaintext: fromHex(c.e2e!.unsealed_hex!),
      };
    case "MSG_relayed_by_bob": {
      const env = envelopeFromInner(inner);
      return {
        type: "MSG",
        payload,
        msgId: env.msgId,
        source: env.source,
        destination: env.destination,
        timestamp: env.timestamp,
        ttl: env.ttl,
        hops: env.hops,
        sourceSignature: env.sourceSignature,
        sourceSigScheme: env.sourceSigScheme,
        e2ePayload: env.e2ePayload,
      };
    }
  }
  throw new Error(`no builder for ${c.name}`);
}

Deno.test("session: every control_payloads frame is reproduced byte for byte by seal()", () => {
  let n = 0;
  for (const c of CONTROL.payloads) {
    if (c.name.startsWith("REKEY_")) continue; // below, through startRekey/open
    const sender = ident(c.sent_by);
    const peerName = PEER_OF[c.name] ??
      (c.frame.inner.destination === dave.nodeId ? "dave" : "bob");
    const seq = c.frame.header.sequence;
    const out = outboundFor(c);
    // The frame's own draws: its msg_id (unless given) and its SecretBox nonce.
    const draws = c.random_draws.filter((d) =>
      d.purpose === "frame_msg_id" || d.purpose === "uuid4" ||
      (d.purpose === "secretbox_nonce" && !JSON.stringify(d).includes("trust."))
    ).filter((d) => !(out.msgId && (d.purpose === "uuid4" || d.purpose === "frame_msg_id")));
    const dummy = new TestRng("dummy").bytes(40 * (seq - 1));
    const scripted: Uint8Array[] = [];
    for (let i = 0; i < seq - 1; i++) {
      scripted.push(dummy.slice(i * 40, i * 40 + 16), dummy.slice(i * 40 + 16, i * 40 + 40));
    }
    for (const d of draws) scripted.push(fromHex(d.hex));
    const clock = new FakeClock(c.frame.inner.timestamp as number);
    const key = fromHex(c.session_key_hex);
    const s = session(sender, ident(peerName), clock, new ScriptedRng(scripted), {}, key);
    burn(s, seq - 1);
    assertEquals(toHex(s.seal(out)), c.frame.frame_hex, c.name);
    n++;
  }
  assertEquals(n, 13);
});

Deno.test("session: REKEY_REQUEST/RESPONSE vectors — frames, new key, and traffic after", () => {
  const req = CONTROL.payloads.find((c) => c.name === "REKEY_REQUEST")!;
  const res = CONTROL.payloads.find((c) => c.name === "REKEY_RESPONSE")!;
  const clock = new FakeClock(req.frame.inner.timestamp as number);
  const dummy = () => [new Uint8Array(16).fill(1), new Uint8Array(24).fill(2)];
  // bob (smaller node id) initiates at sequence 2.
  const bobRng = new ScriptedRng([
    ...dummy(),
    ...req.random_draws.map((d) => fromHex(d.hex)),
    ...dummy(),
    ...dummy(),
  ]);
  const b = session(bob, alice, clock, bobRng);
  assertEquals(b.isRekeyInitiator, true);
  burn(b, 1);
  const reqFrame = b.startRekey()!;
  assertEquals(toHex(reqFrame), req.frame.frame_hex);
  assertEquals(b.startRekey(), null); // already pending
  // alice answers at sequence 6, at the recorded clock.
  const aliceDraws = [1, 2, 3, 4, 5].flatMap(() => dummy());
  const a = session(
    alice,
    bob,
    clock,
    new ScriptedRng([...aliceDraws, ...res.random_draws.map((d) => fromHex(d.hex)), ...dummy()]),
  );
  assertEquals(a.isRekeyInitiator, false);
  burn(a, 5);
  clock.set(res.frame.inner.timestamp as number);
  const opened = ok(a.open(reqFrame));
  assertEquals(opened.message.type, "REKEY_REQUEST");
  assertEquals(opened.send.length, 1);
  assertEquals(toHex(opened.send[0]), res.frame.frame_hex);
  const newKeyId = toHex(sha256(fromHex(res.rekey_result!.new_session_key_hex)).subarray(0, 8));
  assertEquals([a.keyId, a.rekeyCount, a.nextSequence], [newKeyId, 1, 1]);
  // bob completes.
  const done = ok(b.open(opened.send[0]));
  assertEquals(done.send, []);
  assertEquals([b.keyId, b.rekeyCount, b.nextSequence, b.rekeyPending], [newKeyId, 1, 1, false]);
  // Traffic under the new key, sequences from 1, both ways.
  const f1 = a.seal(pingMessage(alice.nodeId));
  assertEquals(parseFrame(f1).header.sequence, 1);
  assertEquals(ok(b.open(f1)).message.previousKey, false);
  assertEquals(
    ok(a.open(b.seal(msg("after rekey", { destination: alice.nodeId })))).message.sequence,
    1,
  );
  // A third party holding the new key can read it: the key is exactly the recorded one.
  const check = session(
    alice,
    bob,
    clock,
    new TestRng("x"),
    {},
    fromHex(res.rekey_result!.new_session_key_hex),
  );
  assertEquals(
    dec.decode(ok(check.open(b.seal(msg("k", { destination: alice.nodeId })))).message.payload),
    "k",
  );
});

Deno.test("session: the recorded first-hop frame with sequence 0 is refused", () => {
  const c = CONTROL.payloads.find((x) => x.name === "MSG_relayed_by_bob")! as ControlCase & {
    first_hop_frame_hex: string;
  };
  const clock = new FakeClock(c.frame.inner.timestamp as number);
  const b = session(bob, alice, clock);
  rejected(
    b.open(fromHex(c.first_hop_frame_hex)),
    FrameErrorCode.REPLAY,
    "Invalid sequence 0 — post-handshake messages require seq > 0",
  );
});

// ---------------------------------------------------------------------------------------------
// Normal operation

Deno.test("session: seal/open round trip with sequences 1, 2, 3 and the v2 inner signature", () => {
  const { a, b } = pair();
  for (let i = 1; i <= 3; i++) {
    const frame = a.seal(msg(`hello ${i}`));
    const r = ok(b.open(frame));
    assertEquals(r.send, []);
    const m = r.message;
    assertEquals([m.sequence, m.type, dec.decode(m.payload)], [i, "MSG", `hello ${i}`]);
    assertEquals([m.source, m.destination, m.ttl, m.priority], [
      alice.nodeId,
      bob.nodeId,
      5,
      "NORMAL",
    ]);
    assertEquals([m.sourceSigScheme, m.sourceSignature?.length], ["v2", 64]);
    assertEquals([m.sourceAuthenticated, m.terminal, m.e2ePending, m.previousKey], [
      true,
      true,
      false,
      false,
    ]);
    assertEquals(m.timestamp, T0);
  }
  assertEquals(a.counters.sealed, 3);
  assertEquals(b.counters.opened, 3);
  assertEquals(a.nextSequence, 4);
});

Deno.test("session: priorities set header flags 0x0C/0x0D/0x0E and survive the trip", () => {
  const { a, b } = pair();
  for (
    const [p, flags] of [["LOW", 0x0c], ["NORMAL", 0x0c], ["HIGH", 0x0d], [
      "CRITICAL",
      0x0e,
    ]] as const
  ) {
    const f = a.seal(msg("p", { priority: p }));
    assertEquals(f[3], flags);
    assertEquals(ok(b.open(f)).message.priority, p);
  }
});

Deno.test("session: node:crypto and libsodium sessions produce identical frames", () => {
  const clock = new FakeClock(T0);
  const s1 = session(alice, bob, clock, new TestRng("same"), { ed25519: "node" });
  const s2 = session(alice, bob, clock, new TestRng("same"), { ed25519: "sodium" });
  const b = session(bob, alice, clock, undefined, { ed25519: "sodium" });
  for (let i = 0; i < 3; i++) {
    const f = s1.seal(msg(`m${i}`));
    assertEquals(toHex(f), toHex(s2.seal(msg(`m${i}`))));
    ok(b.open(f));
  }
});

Deno.test("session: relays — non-terminal frames, inner signature passed through, hops", () => {
  const { a, b } = pair();
  const m = ok(b.open(a.seal(msg("for carol", { destination: carol.nodeId, hops: [] })))).message;
  assertEquals([m.terminal, m.destination], [false, carol.nodeId]);
  // bob forwards it to carol keeping alice's signature; carol authenticates alice.
  const clock = new FakeClock(T0);
  const keyBC = new Uint8Array(32).fill(7);
  const toCarol = session(bob, carol, clock, new TestRng("bc"), {}, keyBC);
  const atCarol = session(carol, bob, clock, new TestRng("cb"), {
    sourceKeyLookup: (id) => (id === alice.nodeId ? alice.publicKey : null),
  }, keyBC);
  const fwd = toCarol.seal({
    type: m.type,
    payload: m.payload,
    msgId: m.msgId,
    source: m.source,
    destination: m.destination,
    timestamp: m.timestamp,
    ttl: m.ttl - 1,
    hops: [...m.hops, bob.nodeId],
    sourceSignature: m.sourceSignature,
    sourceSigScheme: m.sourceSigScheme,
  });
  const got = ok(atCarol.open(fwd)).message;
  assertEquals([got.source, got.terminal, got.sourceAuthenticated, got.ttl, got.hops], [
    alice.nodeId,
    true,
    true,
    4,
    [bob.nodeId],
  ]);
});

Deno.test("session: e2e — unsealed with the callback, deferred without, mismatch refused", () => {
  const clock = new FakeClock(T0);
  const unsealE2e = (s: Uint8Array) => sealedBoxOpen(s, bob.x25519Public, bob.x25519Secret);
  const a = session(alice, bob, clock);
  const b = session(bob, alice, clock, undefined, { unsealE2e });
  const body = new TextEncoder().encode("sealed body");
  const sealed = sealedBoxSeal(body, bob.x25519Public);
  // strict confidentiality: payload stripped, the inner signature covers the plaintext.
  const strict = ok(
    b.open(
      a.seal(msg("", { payload: new Uint8Array(0), e2ePayload: sealed, e2ePlaintext: body })),
    ),
  ).message;
  assertEquals([dec.decode(strict.payload), strict.sourceAuthenticated, strict.e2ePending], [
    "sealed body",
    true,
    false,
  ]);
  // default mode: identical plaintext next to the sealed copy.
  ok(b.open(a.seal(msg("sealed body", { e2ePayload: sealed }))));
  // a plaintext that differs from the sealed one is refused (§18.8).
  rejected(b.open(a.seal(msg("something else", { e2ePayload: sealed }))), FrameErrorCode.E2E);
  // not sealed to us
  rejected(
    b.open(
      a.seal(
        msg("", {
          payload: new Uint8Array(0),
          e2ePayload: sealedBoxSeal(body, carol.x25519Public),
          e2ePlaintext: body,
        }),
      ),
    ),
    FrameErrorCode.E2E,
    "E2E unseal failed",
  );
  // no unsealer: handed to the caller
  const b2 = session(bob, alice, clock);
  const pending = ok(
    b2.open(
      a.seal(msg("", { payload: new Uint8Array(0), e2ePayload: sealed, e2ePlaintext: body })),
    ),
  ).message;
  assertEquals([pending.e2ePending, pending.payload.length], [true, 0]);
});

// ---------------------------------------------------------------------------------------------
// Rejections

Deno.test("reject: replayed frame, sequence backwards, sequence 0", () => {
  const { a, b } = pair();
  const f1 = a.seal(msg("1")), f2 = a.seal(msg("2"));
  ok(b.open(f2));
  rejected(b.open(f2), FrameErrorCode.REPLAY, "Sequence 2 <= last seen 2");
  rejected(b.open(f1), FrameErrorCode.REPLAY, "Sequence 1 <= last seen 2");
  const env: Envelope = {
    type: "MSG",
    payload: new Uint8Array(0),
    msgId: "zero",
    source: alice.nodeId,
    sourceDisplay: alice.nodeId,
    destination: bob.nodeId,
    timestamp: T0,
    priority: "NORMAL",
    sequence: 0,
    retries: 0,
    routing: {},
    ttl: 3,
    hops: [],
  };
  const zero = encodeFrame(env, {
    key: KEY_AB,
    nonce: new Uint8Array(24),
    signer: nodeSigner(alice.secretKey),
  });
  const { b: fresh } = pair();
  rejected(
    fresh.open(zero),
    FrameErrorCode.REPLAY,
    "Invalid sequence 0 — post-handshake messages require seq > 0",
  );
  assertEquals(b.counters.rejected[FrameErrorCode.REPLAY], 2);
});

Deno.test("reject: stale and future timestamps (FR_CLOCK_SKEW), configurable tolerance", () => {
  const { a, b, clock } = pair();
  const old = a.seal(msg("old"));
  clock.advance(31);
  const e = rejected(
    b.open(old),
    FrameErrorCode.CLOCK_SKEW,
    "Frame too old: 31.0s (max 30.0s)",
  ) as FrameError;
  assertEquals(e.skewSeconds, -31);
  assertEquals(b.counters.lastSkewSeconds, -31);
  rejected(
    b.open(a.seal(msg("future", { timestamp: clock.now() + 6 }))),
    FrameErrorCode.CLOCK_SKEW,
    "Frame from future: 6.0s ahead",
  );
  ok(b.open(a.seal(msg("edge", { timestamp: clock.now() + 5 }))));
  // ours: a wider window with --clock-skew-tolerance
  const wide = pair({ replay: { maxAge: 300, maxFuture: 300 } });
  const late = wide.a.seal(msg("late"));
  wide.clock.advance(120);
  ok(wide.b.open(late));
  ok(wide.b.open(wide.a.seal(msg("ahead", { timestamp: wide.clock.now() + 200 }))));
});

Deno.test("reject: each header field altered, nonce/ciphertext/signature flipped, truncated, junk", () => {
  const { a, b } = pair();
  const f = a.seal(msg("x"));
  const cases: [Uint8Array, string][] = [
    [flip(f, 0), FrameErrorCode.MALFORMED],
    [flip(f, 2, 0x07), FrameErrorCode.MALFORMED],
    [flip(f, 3, 0x01), FrameErrorCode.HEADER_MISMATCH],
    [flip(f, 11), FrameErrorCode.HEADER_MISMATCH],
    [flip(f, 13), FrameErrorCode.HEADER_MISMATCH],
    [flip(f, 27), FrameErrorCode.HEADER_MISMATCH],
    [flip(f, 30), FrameErrorCode.MALFORMED],
    [flip(f, 40), FrameErrorCode.SIGNATURE],
    [flip(f, 80), FrameErrorCode.SIGNATURE],
    [flip(f, f.length - 3), FrameErrorCode.SIGNATURE],
    [f.subarray(0, f.length - 1), FrameErrorCode.SIGNATURE],
    [f.subarray(0, 20), FrameErrorCode.MALFORMED],
    [new Uint8Array(0), FrameErrorCode.MALFORMED],
    [new TextEncoder().encode("not a frame at all, just some text"), FrameErrorCode.MALFORMED],
  ];
  for (const [bytes, code] of cases) rejected(b.open(bytes), code);
  ok(b.open(f)); // none of the rejections consumed the sequence
});

Deno.test("reject: header sequence differs from the inner sequence", () => {
  const { a, b } = pair();
  const f = a.seal(msg("x")).slice();
  f[11] = 9; // header says 9, inner says 1
  rejected(
    b.open(f),
    FrameErrorCode.HEADER_MISMATCH,
    "Header sequence 9 does not match inner sequence 1",
  );
});

Deno.test("reject: unsigned frame, frame signed by someone else, reflected frame", () => {
  const { a, b } = pair();
  const env = envelopeFromInner(
    JSON.parse(
      `{"type":"MSG","payload":"","msg_id":"u","source":"${alice.nodeId}","source_display":"x","destination":"*","timestamp":${T0},"priority":"NORMAL","sequence":1,"retries":0,"routing":{},"ttl":3,"hops":[]}`,
    ),
  );
  const unsigned = encodeFrame(env, { key: KEY_AB, nonce: new Uint8Array(24), signer: null });
  rejected(b.open(unsigned), FrameErrorCode.UNSIGNED);
  const byCarol = encodeFrame(env, {
    key: KEY_AB,
    nonce: new Uint8Array(24),
    signer: nodeSigner(carol.secretKey),
  });
  rejected(b.open(byCarol), FrameErrorCode.SIGNATURE);
  // alice's own frame reflected back to her fails the peer-key signature check.
  rejected(a.open(a.seal(msg("mine"))), FrameErrorCode.SIGNATURE);
});

Deno.test("reject: a frame whose inner source is our own node id", () => {
  const { a, b } = pair();
  rejected(b.open(a.seal(msg("spoof", { source: bob.nodeId }))), FrameErrorCode.OWN_SOURCE);
});

Deno.test("reject: duplicate (source, msg_id) within 300 s, also across sessions sharing a cache", () => {
  const dedup = new DedupCache();
  const { a, b, clock } = pair({ dedup });
  ok(b.open(a.seal(msg("once", { msgId: "fixed-id" }))));
  rejected(b.open(a.seal(msg("once", { msgId: "fixed-id" }))), FrameErrorCode.DUPLICATE);
  // The same message relayed by carol arrives through another session: still a duplicate.
  const keyBC = new Uint8Array(32).fill(3);
  const viaCarol = session(carol, bob, clock, new TestRng("c"), {}, keyBC);
  const atBob = session(bob, carol, clock, new TestRng("b"), {
    dedup,
    sourceKeyLookup: (id) => (id === alice.nodeId ? alice.publicKey : null),
  }, keyBC);
  const first = ok(b.open(a.seal(msg("relayed", { msgId: "m-2" })))).message;
  const relayed = viaCarol.seal({
    type: "MSG",
    payload: first.payload,
    msgId: first.msgId,
    source: first.source,
    destination: first.destination,
    timestamp: first.timestamp,
    hops: [carol.nodeId],
    sourceSignature: first.sourceSignature,
    sourceSigScheme: "v2",
  });
  rejected(atBob.open(relayed), FrameErrorCode.DUPLICATE);
  // After the window the id is new again.
  clock.advance(301);
  ok(b.open(a.seal(msg("once", { msgId: "fixed-id" }))));
  // Without a cache nothing is deduplicated.
  const none = pair({ dedup: null });
  ok(none.b.open(none.a.seal(msg("x", { msgId: "d" }))));
  ok(none.b.open(none.a.seal(msg("x", { msgId: "d" }))));
});

Deno.test("reject: inner-source policy reasons on relayed and direct frames", () => {
  const clock = new FakeClock(T0);
  const a = session(alice, bob, clock);
  const lookup = (id: string) => (id === carol.nodeId ? carol.publicKey : null);
  const b = session(bob, alice, clock, undefined, { sourceKeyLookup: lookup });
  const relayedFromCarol = (sig?: Uint8Array) => ({
    ...msg("from carol"),
    source: carol.nodeId,
    sourceSignature: sig,
    sourceSigScheme: sig ? "v2" : undefined,
  });
  const fields = (id: string) => ({
    source: carol.nodeId,
    destination: bob.nodeId,
    msgId: id,
    payload: new TextEncoder().encode("from carol"),
  });
  const e1 = rejected(
    b.open(a.seal(relayedFromCarol())),
    FrameErrorCode.INNER_SIGNATURE,
  ) as FrameError;
  assertEquals(e1.detail, "missing-on-relayed");
  const good = signInnerSourceV2(nodeSigner(carol.secretKey), fields("c-1"));
  const m = ok(b.open(a.seal({ ...relayedFromCarol(good), msgId: "c-1" }))).message;
  assertEquals([m.source, m.sourceAuthenticated], [carol.nodeId, true]);
  const forged = signInnerSourceV2(nodeSigner(alice.secretKey), fields("c-2"));
  const e2 = rejected(
    b.open(a.seal({ ...relayedFromCarol(forged), msgId: "c-2" })),
    FrameErrorCode.INNER_SIGNATURE,
  ) as FrameError;
  assertEquals(e2.detail, "verification-failed");
  const daveSig = signInnerSourceV2(nodeSigner(dave.secretKey), {
    ...fields("d-1"),
    source: dave.nodeId,
  });
  const e3 = rejected(
    b.open(a.seal({ ...relayedFromCarol(daveSig), source: dave.nodeId, msgId: "d-1" })),
    FrameErrorCode.INNER_SIGNATURE,
  ) as FrameError;
  assertEquals(e3.detail, "unknown-source");
  // A direct frame with a bad inner signature is dropped too (C-FR-15)...
  const bad = msg("direct", { sourceSignature: new Uint8Array(64), sourceSigScheme: "v2" });
  assertEquals(
    (rejected(b.open(a.seal(bad)), FrameErrorCode.INNER_SIGNATURE) as FrameError).detail,
    "verification-failed",
  );
  // ...unless the §19 U1 fallback is on: kept and counted.
  const lenient = session(bob, alice, clock, undefined, { innerLabelFallback: true });
  const kept = ok(lenient.open(a.seal(bad))).message;
  assertEquals([kept.sourceAuthenticated, lenient.counters.innerLabelMismatches], [true, 1]);
  // Control types are exempt from the policy.
  ok(b.open(a.seal({ ...controlMessage("PING", carol.nodeId), source: carol.nodeId })));
});

Deno.test("reject: oversize message is refused on send without consuming a sequence", () => {
  const { a, b } = pair();
  const e = assertThrows(
    () => a.seal(msg("", { payload: new Uint8Array(800_000) })),
    FrameError,
  ) as FrameError;
  assertEquals(e.code, FrameErrorCode.TOO_LARGE);
  assertEquals(a.nextSequence, 1);
  const big = a.seal(msg("", { payload: new Uint8Array(700_000) }));
  assert(big.length <= 1_048_576);
  assertEquals(ok(b.open(big)).message.sequence, 1);
});

Deno.test("seal: invalid messages are refused", () => {
  const { a } = pair();
  assertThrows(() => a.seal({ type: "" }), IronMeshError);
  assertThrows(() => a.seal(msg("x", { ttl: 256 })), IronMeshError);
  assertThrows(() => a.seal(msg("x", { priority: "URGENT" as "HIGH" })), IronMeshError);
  assertThrows(() => a.seal(msg("x", { msgId: "\ud800" })), IronMeshError);
  assertEquals(a.nextSequence, 1);
});

Deno.test("session: version 3 frames only with acceptVersion3; REKEY from a non-peer source refused", () => {
  const { a, b, clock } = pair();
  const f = a.seal(msg("v3")).slice();
  f[2] = 3;
  rejected(b.open(f), FrameErrorCode.MALFORMED, "Unsupported version: 3 (expected 4)");
  const b3 = session(bob, alice, clock, undefined, { acceptVersion3: true });
  ok(b3.open(f));
  const spoofed = {
    ...rekeyResponseMessage(carol.nodeId, new Uint8Array(32).fill(9), "x"),
    source: carol.nodeId,
  };
  rejected(b.open(a.seal(spoofed)), FrameErrorCode.MALFORMED);
});

Deno.test("session: construction checks the keys and node ids; close wipes and refuses", () => {
  const clock = new FakeClock(T0);
  const base = {
    sessionKey: KEY_AB,
    localSecretKey: alice.secretKey,
    localNodeId: alice.nodeId,
    peerPublicKey: bob.publicKey,
    peerNodeId: bob.nodeId,
    clock,
    rng: new TestRng(),
  };
  assertThrows(() => new V09Session({ ...base, peerNodeId: carol.nodeId }), InvalidKeyError);
  assertThrows(() => new V09Session({ ...base, localNodeId: bob.nodeId }), InvalidKeyError);
  assertThrows(() => new V09Session({ ...base, sessionKey: new Uint8Array(16) }), InvalidKeyError);
  assertThrows(
    () => new V09Session({ ...base, peerPublicKey: alice.publicKey, peerNodeId: alice.nodeId }),
    InvalidKeyError,
  );
  const s = new V09Session(base);
  const { a } = pair();
  const f = a.seal(msg("x"));
  s.close();
  rejected(s.open(f), FrameErrorCode.CLOSED);
  assertThrows(() => s.seal(msg("x")), FrameError, "closed");
  assertThrows(() => s.startRekey(), FrameError);
});

// ---------------------------------------------------------------------------------------------
// Rekey

function rekeyPair(options: V09SessionOptions = {}) {
  const p = pair(options);
  // bob's node id is the smaller one: bob initiates.
  return { ...p, init: p.b, resp: p.a };
}

Deno.test("rekey: no frame lost mid-stream; old-key frames open during the grace window", () => {
  const { init, resp } = rekeyPair();
  const before = init.keyId;
  const req = init.startRekey()!;
  const inflight = [
    init.seal(msg("in flight 1", { destination: alice.nodeId })),
    init.seal(msg("in flight 2", { destination: alice.nodeId })),
  ];
  const r = ok(resp.open(req));
  assertEquals([resp.rekeyCount, resp.nextSequence, r.send.length], [1, 1, 1]);
  assert(resp.keyId !== before);
  const afterSwitch = resp.seal(msg("new key 1")); // responder already on the new key
  for (const [i, f] of inflight.entries()) {
    const m = ok(resp.open(f)).message;
    assertEquals([dec.decode(m.payload), m.previousKey, m.sequence], [
      `in flight ${i + 1}`,
      true,
      i + 2,
    ]);
  }
  assert(resp.inRekeyGrace);
  ok(init.open(r.send[0]));
  assertEquals([init.keyId, init.rekeyCount], [resp.keyId, 1]);
  assertEquals(dec.decode(ok(init.open(afterSwitch)).message.payload), "new key 1");
  const n1 =
    ok(resp.open(init.seal(msg("new key from initiator", { destination: alice.nodeId })))).message;
  assertEquals([n1.previousKey, n1.sequence], [false, 1]);
  // The first new-key frame retired the old key.
  assertEquals(resp.inRekeyGrace, false);
});

Deno.test("rekey: old-key frames are rejected after 30 s and replays are checked per epoch", () => {
  const { init, resp, clock } = rekeyPair({ replay: { maxAge: 300 } });
  const req = init.startRekey()!;
  const late1 = init.seal(msg("late 1", { destination: alice.nodeId }));
  const late2 = init.seal(msg("late 2", { destination: alice.nodeId }));
  ok(resp.open(req));
  ok(resp.open(late1));
  rejected(resp.open(late1), FrameErrorCode.REPLAY, "Sequence 2 <= last seen 2"); // old epoch's state
  clock.advance(30.001);
  rejected(resp.open(late2), FrameErrorCode.DECRYPT);
  assertEquals(resp.inRekeyGrace, false);
});

Deno.test("rekey: crossed requests end on the same key (both delivery orders)", () => {
  for (const order of ["responder-first", "initiator-first"]) {
    const { a, b } = pair();
    const reqA = a.startRekey()!; // alice is the larger node id
    const reqB = b.startRekey()!;
    let fromA: OpenOk, fromB: OpenOk;
    if (order === "responder-first") {
      fromB = ok(a.open(reqB)); // alice abandons her own and answers bob's
      fromA = ok(b.open(reqA)); // bob, the initiator, ignores alice's
    } else {
      fromA = ok(b.open(reqA));
      fromB = ok(a.open(reqB));
    }
    assertEquals(fromA.send, [], order);
    assertEquals(fromA.notice, "Crossed REKEY_REQUEST ignored (we initiate)");
    assertEquals(fromB.send.length, 1);
    assertEquals(a.rekeyPending, false);
    ok(b.open(fromB.send[0]));
    assertEquals(a.keyId, b.keyId, order);
    assertEquals([a.rekeyCount, b.rekeyCount], [1, 1]);
    assertEquals(dec.decode(ok(b.open(a.seal(msg("same key")))).message.payload), "same key");
    assertEquals(
      dec.decode(
        ok(a.open(b.seal(msg("both ways", { destination: alice.nodeId })))).message.payload,
      ),
      "both ways",
    );
  }
});

Deno.test("rekey: unknown rekey_id and invalid keys are ignored with a notice", () => {
  const { a, b } = pair();
  b.startRekey();
  const wrong = ok(
    b.open(a.seal(rekeyResponseMessage(alice.nodeId, new Uint8Array(32).fill(9), "not-the-id"))),
  );
  assertEquals([wrong.notice, b.rekeyCount, b.rekeyPending], ["Rekey ID mismatch", 0, true]);
  const { a: a2, b: b2 } = pair();
  const smallOrder = new Uint8Array(32).toBase64(); // the all-zero X25519 point
  const r = ok(
    a2.open(
      b2.seal(
        controlMessage("REKEY_REQUEST", bob.nodeId, {
          new_ephemeral_public: smallOrder,
          rekey_id: "z",
        }),
      ),
    ),
  );
  assertEquals([r.send.length, a2.rekeyCount], [0, 0]);
  assertEquals(r.notice, "REKEY_REQUEST carries an invalid key");
  const garbage = ok(
    a2.open(b2.seal(controlMessage("REKEY_REQUEST", bob.nodeId, { new_ephemeral_public: 5 }))),
  );
  assert(garbage.notice!.startsWith("Invalid REKEY_REQUEST"));
});

Deno.test("rekey: repeated rekeys keep working and sequences restart each time", () => {
  const { a, b } = pair();
  for (let round = 1; round <= 3; round++) {
    const req = b.startRekey()!;
    const r = ok(a.open(req));
    ok(b.open(r.send[0]));
    assertEquals([a.rekeyCount, b.rekeyCount, a.keyId === b.keyId], [round, round, true]);
    const f = a.seal(msg(`round ${round}`));
    assertEquals(parseFrame(f).header.sequence, 1);
    ok(b.open(f));
  }
});
