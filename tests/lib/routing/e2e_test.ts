import { assert, assertEquals, assertThrows } from "../../support/assert.ts";
import { FakeClock, type Rng, ScriptedRng } from "../../../lib/clock.ts";
import { ed25519PkToCurve25519, fromHex, toHex } from "../../../lib/crypto/sodium.ts";
import type { Identity } from "../../../lib/identity/identity.ts";
import { DedupCache } from "../../../lib/wire/dedup.ts";
import type { InboundMessage, OpenOk, OpenResult } from "../../../lib/wire/session.ts";
import { b64DecodeStrict } from "../../../lib/wire/v09/envelope.ts";
import { FrameErrorCode } from "../../../lib/wire/v09/errors.ts";
import { V09Session, type V09SessionOptions } from "../../../lib/wire/v09/session.ts";
import {
  buildE2eMessage,
  confidentialityFor,
  E2E_OVERHEAD,
  makeUnsealer,
  openE2e,
  openE2eInbound,
  recipientX25519,
  sealE2e,
  sealE2eWithEphemeral,
} from "../../../lib/routing/e2e.ts";
import { Forwarder } from "../../../lib/routing/forwarding.ts";
import { CONTROL, type ControlCase, FRAMES, ident, TestRng } from "../wire/v09/fixtures.ts";
import { bytes, identity, legacyIdentity } from "./helpers.ts";

const alice = ident("alice"), bob = ident("bob"), carol = ident("carol");
const T0 = 1736812800;

function controlCase(name: string): ControlCase & Record<string, unknown> {
  return CONTROL.payloads.find((c) => c.name === name)! as ControlCase & Record<string, unknown>;
}

function e2eOf(c: ControlCase): Record<string, string> {
  return (c as unknown as { e2e: Record<string, string> }).e2e;
}

// ---------------------------------------------------------------------------------------------
// Golden vectors

Deno.test("e2e vectors: the recorded SealedBoxes are reproduced from their ephemeral secrets", () => {
  const f = FRAMES.frames.find((x) => x.name === "relayed_e2e_sealed")! as unknown as {
    e2e: Record<string, string>;
  };
  const e = f.e2e;
  const sealed = sealE2eWithEphemeral(
    fromHex(e.plaintext_hex),
    fromHex(e.recipient_x25519_public_hex),
    fromHex(e.ephemeral_secret_hex),
  );
  assertEquals(toHex(sealed), e.e2e_payload_hex);
  assertEquals(toHex(sealed.subarray(0, 32)), e.ephemeral_public_hex);
  const opened = openE2e(sealed, {
    publicKey: fromHex(e.recipient_x25519_public_hex),
    secretKey: fromHex(e.recipient_x25519_secret_hex),
  });
  assertEquals(toHex(opened!), e.plaintext_hex);

  // The daemon's send paths: to bob (direct and strict) and alice → carol relayed by bob.
  const cases: [string, typeof bob, string][] = [
    ["MSG_send_message_direct", bob, "unsealed_hex"],
    ["MSG_send_message_strict", bob, "unsealed_hex"],
    ["MSG_relayed_by_bob", carol, "unsealed_text"],
  ];
  for (const [name, to, field] of cases) {
    const c = controlCase(name);
    const e2e = e2eOf(c);
    const plain = field === "unsealed_hex" ? fromHex(e2e[field]) : bytes(e2e[field]);
    const expected = b64DecodeStrict(c.frame.inner.e2e_payload as string);
    const got = sealE2eWithEphemeral(plain, to.x25519Public, fromHex(e2e.ephemeral_secret_hex));
    assertEquals(toHex(got), toHex(expected), name);
    assertEquals(
      openE2e(expected, { publicKey: to.x25519Public, secretKey: to.x25519Secret }),
      plain,
    );
    assertEquals(expected.length, plain.length + E2E_OVERHEAD);
  }
});

Deno.test("e2e vectors: the recipient key is the advertised one only when its binding verifies", () => {
  const r = CONTROL.identities.bob;
  const binding = fromHex(r.x25519_binding_signature_hex);
  assertEquals(
    recipientX25519({
      identityPublic: bob.publicKey,
      x25519Public: bob.x25519Public,
      x25519BindingSignature: binding,
    }),
    bob.x25519Public,
  );
  const converted = ed25519PkToCurve25519(bob.publicKey);
  assert(toHex(converted) !== toHex(bob.x25519Public)); // a v3 identity's two keys differ
  const bad = binding.slice();
  bad[0] ^= 1;
  assertEquals(
    recipientX25519({
      identityPublic: bob.publicKey,
      x25519Public: bob.x25519Public,
      x25519BindingSignature: bad,
    }),
    converted,
  );
  assertEquals(
    recipientX25519({
      identityPublic: bob.publicKey,
      x25519Public: bob.x25519Public,
      x25519BindingValid: true,
    }),
    bob.x25519Public,
  );
  assertEquals(
    recipientX25519({
      identityPublic: bob.publicKey,
      x25519Public: bob.x25519Public,
      x25519BindingValid: false,
    }),
    converted,
  );
  assertEquals(recipientX25519({ identityPublic: bob.publicKey, x25519Public: null }), converted);
});

function vectorSession(
  local: typeof alice,
  peer: typeof alice,
  keyHex: string,
  timestamp: number,
  draws: Uint8Array[],
): V09Session {
  return new V09Session({
    sessionKey: fromHex(keyHex),
    localSecretKey: local.secretKey,
    localNodeId: local.nodeId,
    peerPublicKey: peer.publicKey,
    peerNodeId: peer.nodeId,
    clock: new FakeClock(timestamp),
    rng: new ScriptedRng(draws),
  });
}

function draw(c: ControlCase, purpose: string): Uint8Array {
  return fromHex(c.random_draws.find((d) => d.purpose === purpose)!.hex);
}

Deno.test("e2e vectors: send_message frames (strict and plaintext form) are reproduced byte for byte", () => {
  const recipient = {
    identityPublic: bob.publicKey,
    x25519Public: bob.x25519Public,
    x25519BindingValid: true,
  };
  for (
    const [name, confidentiality] of [
      ["MSG_send_message_strict", "strict"],
      ["MSG_send_message_direct", "plaintext"],
    ] as const
  ) {
    const c = controlCase(name);
    const e2e = e2eOf(c);
    const seq = c.frame.header.sequence;
    const nonces = [...Array(seq - 1).fill(new Uint8Array(24)), draw(c, "secretbox_nonce")];
    const s = vectorSession(
      alice,
      bob,
      c.session_key_hex,
      c.frame.inner.timestamp as number,
      nonces,
    );
    for (let i = 1; i < seq; i++) s.seal({ type: "PING", msgId: `burn-${i}` });
    const out = buildE2eMessage({
      destination: bob.nodeId,
      payload: fromHex(e2e.unsealed_hex),
      recipient,
      rng: new ScriptedRng([draw(c, "uuid4")]),
      confidentiality,
      ephemeralSecret: fromHex(e2e.ephemeral_secret_hex),
    });
    assertEquals(out.msgId, c.frame.inner.msg_id);
    assertEquals(toHex(s.seal(out)), c.frame.frame_hex, name);
  }
});

Deno.test("e2e vectors: bob's relay of alice's frame to carol is reproduced byte for byte", () => {
  const c = controlCase("MSG_relayed_by_bob");
  const inner = c.frame.inner;
  const ts = inner.timestamp as number;
  const clock = new FakeClock(ts);
  const f = new Forwarder({
    selfId: bob.nodeId,
    clock,
    routes: { nextHop: (d) => (d === carol.nodeId ? carol.nodeId : null) },
  });
  // What bob received from alice: ttl 5, no hops, everything else as relayed.
  const received: InboundMessage = {
    type: "MSG",
    payload: b64DecodeStrict(inner.payload as string),
    msgId: inner.msg_id as string,
    source: inner.source as string,
    sourceDisplay: inner.source_display as string,
    destination: inner.destination as string,
    timestamp: ts,
    priority: "NORMAL",
    sequence: 9,
    ttl: 5,
    hops: [],
    routing: {},
    retries: 0,
    sourceSignature: b64DecodeStrict(inner.source_signature as string),
    sourceSigScheme: "v2",
    e2ePayload: b64DecodeStrict(inner.e2e_payload as string),
    sourceAuthenticated: true,
    terminal: false,
    e2ePending: false,
    previousKey: false,
  };
  const d = f.decide(received, alice.nodeId);
  assertEquals([d.action, d.nextHop], ["relay", carol.nodeId]);
  const s = vectorSession(bob, carol, c.session_key_hex, ts, [draw(c, "secretbox_nonce")]);
  assertEquals(toHex(s.seal(d.outbound!)), c.frame.frame_hex);
});

// ---------------------------------------------------------------------------------------------
// Building messages

Deno.test("e2e: strict messages carry no plaintext; the reference form keeps it beside the seal", () => {
  const c = identity("carol-e2e");
  const body = bytes("the secret body");
  const strict = buildE2eMessage({
    destination: c.nodeId,
    payload: body,
    recipient: c.e2e.publicKey,
    rng: new TestRng("uuid"),
    routing: { compressed: true, other: 1 },
  });
  assertEquals([strict.type, strict.payload!.length, strict.ttl, strict.hops], ["MSG", 0, 5, []]);
  assertEquals(strict.e2ePlaintext, body);
  assertEquals(strict.routing, { other: 1 });
  assertEquals(openE2e(strict.e2ePayload!, c.e2e), body);
  assert(
    /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(strict.msgId!),
  );
  const plain = buildE2eMessage({
    destination: c.nodeId,
    payload: body,
    recipient: c.e2e.publicKey,
    msgId: "m",
    ttl: 9,
    confidentiality: "plaintext",
    routing: { compressed: true },
    timestamp: 5,
  });
  assertEquals([plain.payload, plain.e2ePlaintext, plain.msgId, plain.ttl], [
    body,
    undefined,
    "m",
    9,
  ]);
  assertEquals([plain.routing, plain.timestamp], [{ compressed: true }, 5]);
  assertThrows(
    () =>
      buildE2eMessage({
        type: "GROUP_BROADCAST",
        destination: "*",
        payload: body,
        recipient: c.e2e.publicKey,
      }),
    RangeError,
  );
  // Two seals of the same body differ (fresh ephemeral keys).
  assert(toHex(sealE2e(body, c.e2e.publicKey)) !== toHex(sealE2e(body, c.e2e.publicKey)));
});

Deno.test("e2e: strict toward ≥ 0.9 destinations, the plaintext form below", () => {
  assertEquals(confidentialityFor("ironmesh/0.9"), "strict");
  assertEquals(confidentialityFor("ironmesh/0.10"), "strict");
  assertEquals(confidentialityFor("ironmesh/0.8"), "plaintext");
  assertEquals(confidentialityFor(undefined), "plaintext");
});

Deno.test("e2e: a legacy identity is sealed to and opened with the converted keys", () => {
  const l = legacyIdentity("legacy-e2e");
  assertEquals(l.e2e.kind, "legacy");
  const pk = recipientX25519({ identityPublic: l.publicKey });
  assertEquals(pk, l.e2e.publicKey);
  assertEquals(openE2e(sealE2e(bytes("hi"), pk), l.e2e), bytes("hi"));
  assertEquals(openE2e(bytes("short"), l.e2e), null);
});

// ---------------------------------------------------------------------------------------------
// A → B → C through real sessions

interface Line {
  a: Identity;
  b: Identity;
  c: Identity;
  clock: FakeClock;
  sAB: V09Session;
  sBA: V09Session;
  sBC: V09Session;
  sCB: V09Session;
  forwarder: Forwarder;
}

function session(
  local: Identity,
  peer: Identity,
  key: number,
  clock: FakeClock,
  rng: Rng,
  options: V09SessionOptions = {},
) {
  return new V09Session({
    sessionKey: new Uint8Array(32).fill(key),
    localSecretKey: local.secretKey,
    localNodeId: local.nodeId,
    peerPublicKey: peer.publicKey,
    peerNodeId: peer.nodeId,
    clock,
    rng,
    options,
  });
}

function line(cOptions: (ids: { a: Identity; c: Identity }) => V09SessionOptions): Line {
  const a = identity("line-a"), b = identity("line-b"), c = identity("line-c");
  const clock = new FakeClock(T0);
  const rng = new TestRng("line");
  return {
    a,
    b,
    c,
    clock,
    sAB: session(a, b, 1, clock, rng),
    sBA: session(b, a, 1, clock, rng),
    sBC: session(b, c, 2, clock, rng),
    sCB: session(c, b, 2, clock, rng, cOptions({ a, c })),
    forwarder: new Forwarder({
      selfId: b.nodeId,
      clock,
      routes: { nextHop: (d) => (d === c.nodeId ? c.nodeId : null) },
    }),
  };
}

function ok(r: OpenResult): OpenOk {
  if (!r.ok) throw new Error(`rejected: ${r.error.code} ${r.error.message}`);
  return r;
}

function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

const SECRET = bytes("meet at the usual place, 9pm");

function send(l: Line, confidentiality: "strict" | "plaintext" = "strict") {
  const out = buildE2eMessage({
    destination: l.c.nodeId,
    payload: SECRET,
    recipient: {
      identityPublic: l.c.publicKey,
      x25519Public: l.c.e2e.publicKey,
      x25519BindingSignature: l.c.e2e.bindingSignature,
    },
    rng: new TestRng("msgid"),
    confidentiality,
  });
  const atB = ok(l.sBA.open(l.sAB.seal(out))).message;
  const d = l.forwarder.decide(atB, l.a.nodeId);
  assertEquals(d.action, "relay");
  return { atB, d };
}

Deno.test("e2e line: the relay sees no plaintext and the destination verifies and unseals", () => {
  const l = line(({ a, c }) => ({
    unsealE2e: makeUnsealer(c.e2e),
    sourceKeyLookup: (id) => (id === a.nodeId ? a.publicKey : null),
  }));
  const { atB, d } = send(l);
  assertEquals([atB.terminal, atB.payload.length, atB.e2ePending], [false, 0, false]);
  assert(!contains(atB.e2ePayload!, SECRET));
  const frameToC = l.sBC.seal(d.outbound!);
  assert(!contains(frameToC, SECRET));
  const atC = ok(l.sCB.open(frameToC)).message;
  assertEquals(atC.payload, SECRET);
  assertEquals([atC.source, atC.sourceAuthenticated, atC.hops, atC.ttl], [
    l.a.nodeId,
    true,
    [l.b.nodeId],
    4,
  ]);
});

Deno.test("e2e line: the reference's plaintext form is readable by the relay (why strict is default)", () => {
  const l = line(({ a, c }) => ({
    unsealE2e: makeUnsealer(c.e2e),
    sourceKeyLookup: (id) => (id === a.nodeId ? a.publicKey : null),
  }));
  const { atB, d } = send(l, "plaintext");
  assertEquals(atB.payload, SECRET);
  assertEquals(ok(l.sCB.open(l.sBC.seal(d.outbound!))).message.payload, SECRET);
});

Deno.test("e2e line: a relay flipping a sealed byte causes a drop with E2E_DECRYPT_FAILURE", () => {
  const viaSession = line(({ a, c }) => ({
    unsealE2e: makeUnsealer(c.e2e),
    sourceKeyLookup: (id) => (id === a.nodeId ? a.publicKey : null),
  }));
  let { d } = send(viaSession);
  const tampered = d.outbound!.e2ePayload!.slice();
  tampered[60] ^= 0x01;
  const r = viaSession.sCB.open(viaSession.sBC.seal({ ...d.outbound!, e2ePayload: tampered }));
  assert(!r.ok && r.error.code === FrameErrorCode.E2E);

  // Unsealing left to the caller: the audit event names the source and msg_id.
  const pending = line(() => ({}));
  ({ d } = send(pending));
  const bad = d.outbound!.e2ePayload!.slice();
  bad[60] ^= 0x01;
  const atC = ok(pending.sCB.open(pending.sBC.seal({ ...d.outbound!, e2ePayload: bad }))).message;
  assert(atC.e2ePending);
  const res = openE2eInbound(atC, {
    peerNodeId: pending.b.nodeId,
    keys: pending.c.e2e,
    sourceKeyLookup: (id) => (id === pending.a.nodeId ? pending.a.publicKey : null),
  });
  assertEquals(res, {
    ok: false,
    reason: "e2e-decrypt",
    auditEvents: [{
      event: "E2E_DECRYPT_FAILURE",
      details: { source: pending.a.nodeId, msg_id: d.outbound!.msgId },
    }],
  });
});

Deno.test("e2e line: openE2eInbound verifies the originator, refuses unknown ones, dedups", () => {
  const l = line(() => ({}));
  const { d } = send(l);
  const frame = l.sBC.seal(d.outbound!);
  const atC = ok(l.sCB.open(frame)).message;
  assertEquals([atC.e2ePending, atC.payload.length], [true, 0]);
  const lookup = (id: string) => (id === l.a.nodeId ? l.a.publicKey : null);
  const dedup = new DedupCache();
  const good = openE2eInbound(atC, {
    peerNodeId: l.b.nodeId,
    keys: l.c.e2e,
    sourceKeyLookup: lookup,
    dedup,
    nowMs: 0,
  });
  assert(good.ok);
  assertEquals([good.message.payload, good.message.sourceAuthenticated, good.message.e2ePending], [
    SECRET,
    true,
    false,
  ]);
  const again = openE2eInbound(atC, {
    peerNodeId: l.b.nodeId,
    keys: l.c.e2e,
    sourceKeyLookup: lookup,
    dedup,
    nowMs: 1,
  });
  assertEquals(again, { ok: false, reason: "duplicate", auditEvents: [] });
  assertThrows(
    () =>
      openE2eInbound(atC, {
        peerNodeId: l.b.nodeId,
        keys: l.c.e2e,
        sourceKeyLookup: lookup,
        dedup,
      }),
    RangeError,
  );
  const unknown = openE2eInbound(atC, {
    peerNodeId: l.b.nodeId,
    keys: l.c.e2e,
    sourceKeyLookup: () => null,
  });
  assertEquals(unknown, {
    ok: false,
    reason: "unknown-source",
    auditEvents: [{
      event: "INNER_SOURCE_SIG_DROP",
      details: { peer: l.b.nodeId, source: l.a.nodeId, msg_type: "MSG", reason: "unknown-source" },
    }],
  });
  // A relay that rewrites the (signed) msg_id breaks the originator's signature.
  const forged = openE2eInbound({ ...atC, msgId: "rewritten" }, {
    peerNodeId: l.b.nodeId,
    keys: l.c.e2e,
    sourceKeyLookup: lookup,
  });
  assertEquals(forged.ok ? "" : forged.reason, "verification-failed");
  // A plaintext copy that differs from the sealed body is refused (§18.8).
  const mismatch = openE2eInbound({ ...atC, payload: bytes("something else") }, {
    peerNodeId: l.b.nodeId,
    keys: l.c.e2e,
    sourceKeyLookup: lookup,
  });
  assertEquals(mismatch.ok ? "" : mismatch.reason, "plaintext-mismatch");
  // Not pending: passed through untouched.
  const plain = { ...atC, e2ePending: false };
  assertEquals(
    openE2eInbound(plain, { peerNodeId: l.b.nodeId, keys: l.c.e2e, sourceKeyLookup: lookup }),
    {
      ok: true,
      message: plain,
    },
  );
});
