import { assert, assertEquals, assertThrows } from "../../../support/assert.ts";
import { fromHex, toHex, x25519Base } from "../../../../lib/crypto/sodium.ts";
import {
  controlMessage,
  controlPayload,
  goodbyeMessage,
  parseControlPayload,
  parseRekeyPayload,
  parseRevocation,
  parseRouteUnreachable,
  pingMessage,
  pongMessage,
  rateLimitedMessage,
  rekeyRequestMessage,
  rekeyResponseMessage,
  revocationMessage,
  revocationPayload,
  revocationSignedMessage,
  routeUnreachableMessage,
  uuid4FromBytes,
  verifyRevocation,
} from "../../../../lib/wire/v09/control.ts";
import { FrameError, FrameErrorCode } from "../../../../lib/wire/v09/errors.ts";
import { nodeSigner, nodeVerifier } from "../../../../lib/wire/v09/frame.ts";
import { CONTROL, ident, vf } from "./fixtures.ts";

const alice = ident("alice"), bob = ident("bob"), mallory = ident("mallory");
const enc = new TextEncoder(), dec = new TextDecoder();
const byName = (n: string) => CONTROL.payloads.filter((c) => c.name === n);

Deno.test("control: PING/PONG/GOODBYE/RATE_LIMITED payloads are the reference's bytes", () => {
  const builders: Record<string, (from: string) => ReturnType<typeof pingMessage>> = {
    PING: pingMessage,
    PONG: pongMessage,
    GOODBYE: goodbyeMessage,
    RATE_LIMITED: rateLimitedMessage,
  };
  for (const [name, build] of Object.entries(builders)) {
    const c = byName(name)[0];
    const from = ident(c.sent_by).nodeId;
    const m = build(from);
    assertEquals(dec.decode(m.payload!), c.payload_text, name);
    assertEquals(toHex(m.payload!), c.payload_hex);
    assertEquals([m.type, m.destination, m.ttl, m.priority], [name, "*", 3, "NORMAL"]);
    assertEquals(parseControlPayload(m.payload!), c.payload_json);
  }
  assertEquals(
    dec.decode(controlPayload("X", "n", { a: 1, b: "é" })),
    '{"type":"X","from":"n","a":1,"b":"\\u00e9"}',
  );
});

Deno.test("control: REVOCATION payloads, signed bytes and signatures match both vectors", () => {
  const cases = byName("REVOCATION");
  assertEquals(cases.length, 2);
  for (const c of cases) {
    const p = c.payload_json!;
    const m = revocationMessage(
      nodeSigner(alice.secretKey),
      alice.nodeId,
      p.target_node_id as string,
      vf(c.clock!), // int(time.time()) of the recorded clock
      p.reason as string,
    );
    assertEquals(toHex(m.payload!), c.payload_hex, c.name);
    assertEquals(
      dec.decode(revocationSignedMessage(mallory.nodeId, alice.nodeId, p.timestamp as number)),
      c.signed_message_text,
    );
    const r = parseRevocation(m.payload!);
    assertEquals(toHex(r.signature), c.signature_hex);
    assertEquals([r.targetNodeId, r.revokerNodeId, r.timestamp, r.reason], [
      mallory.nodeId,
      alice.nodeId,
      p.timestamp,
      p.reason,
    ]);
    assert(verifyRevocation(r, nodeVerifier(alice.publicKey)));
    assert(!verifyRevocation(r, nodeVerifier(bob.publicKey)));
    assert(!verifyRevocation({ ...r, timestamp: r.timestamp + 1 }, nodeVerifier(alice.publicKey)));
    assert(!verifyRevocation({ ...r, targetNodeId: bob.nodeId }, nodeVerifier(alice.publicKey)));
    assertEquals(toHex(revocationPayload(alice.nodeId, r)), c.payload_hex);
  }
});

Deno.test("control: REVOCATION parsing requires every field; float timestamps truncate", () => {
  const good = parseControlPayload(fromHex(byName("REVOCATION")[0].payload_hex!));
  const text = (o: Record<string, unknown>) => enc.encode(JSON.stringify(o));
  for (const k of ["target_node_id", "revoker_node_id", "timestamp", "signature"]) {
    const o = { ...good };
    delete o[k];
    assertThrows(() => parseRevocation(text(o)), FrameError, "Invalid revocation");
  }
  assertThrows(() => parseRevocation(text({ ...good, timestamp: 0 })), FrameError);
  assertThrows(() => parseRevocation(text({ ...good, timestamp: "1" })), FrameError);
  assertThrows(() => parseRevocation(text({ ...good, signature: "%%%" })), FrameError);
  assertThrows(() => parseRevocation(text({ ...good, reason: 5 })), FrameError);
  const r = parseRevocation(
    enc.encode(dec.decode(text(good)).replace("1736812900", "1736812900.9")),
  );
  assertEquals(r.timestamp, 1736812900);
  assert(verifyRevocation(r, nodeVerifier(alice.publicKey)));
  assertEquals(parseRevocation(text({ ...good, reason: undefined })).reason, "");
});

Deno.test("control: REKEY_REQUEST/RESPONSE payloads from the recorded draws", () => {
  const req = byName("REKEY_REQUEST")[0];
  const secret = fromHex(req.random_draws[0].hex);
  const rekeyId = uuid4FromBytes(fromHex(req.random_draws[1].hex));
  assertEquals(rekeyId, "face2e28-0ae6-4da7-8dc8-dad49aa7700d");
  const m = rekeyRequestMessage(bob.nodeId, x25519Base(secret), rekeyId);
  assertEquals(dec.decode(m.payload!), req.payload_text);
  const p = parseRekeyPayload(m.payload!);
  assertEquals([p.from, p.rekeyId, toHex(p.newEphemeralPublic)], [
    bob.nodeId,
    rekeyId,
    toHex(x25519Base(secret)),
  ]);

  const res = byName("REKEY_RESPONSE")[0];
  const r = rekeyResponseMessage(
    alice.nodeId,
    x25519Base(fromHex(res.random_draws[0].hex)),
    rekeyId,
  );
  assertEquals(dec.decode(r.payload!), res.payload_text);
  assertEquals(r.type, "REKEY_RESPONSE");
});

Deno.test("control: REKEY payload parsing is strict", () => {
  const mk = (o: Record<string, unknown>) => enc.encode(JSON.stringify(o));
  const pub = "A".repeat(43) + "=";
  assertEquals(parseRekeyPayload(mk({ new_ephemeral_public: pub })).rekeyId, "");
  for (
    const bad of [
      {},
      { new_ephemeral_public: "" },
      { new_ephemeral_public: "AAAA" },
      { new_ephemeral_public: pub.slice(0, 40) },
      { new_ephemeral_public: pub, rekey_id: 7 },
    ]
  ) {
    const e = assertThrows(() => parseRekeyPayload(mk(bad)), FrameError) as FrameError;
    assertEquals(e.code, FrameErrorCode.MALFORMED);
  }
  assertThrows(() => parseRekeyPayload(enc.encode("[1]")), FrameError, "not a JSON object");
  assertThrows(() => parseRekeyPayload(new Uint8Array([0xff])), FrameError);
});

Deno.test("control: uuid4 from 16 random bytes (send_message msg_ids)", () => {
  for (const name of ["MSG_send_message_direct", "MSG_send_message_strict"]) {
    const c = byName(name)[0] as unknown as {
      random_draws: { hex: string }[];
      returned_msg_id: string;
    };
    assertEquals(uuid4FromBytes(fromHex(c.random_draws[0].hex)), c.returned_msg_id);
  }
  assertThrows(() => uuid4FromBytes(new Uint8Array(15)), RangeError);
});

Deno.test("control: ROUTE_UNREACHABLE payload and frame fields", () => {
  const c = byName("ROUTE_UNREACHABLE")[0];
  const m = routeUnreachableMessage(
    bob.nodeId,
    "00000000000000000000000000000000",
    "lost-msg-0001",
  );
  assertEquals(dec.decode(m.payload!), c.payload_text);
  assertEquals([m.destination, m.ttl], [bob.nodeId, 3]);
  assertEquals(parseRouteUnreachable(m.payload!), {
    destination: "00000000000000000000000000000000",
    originalMsgId: "lost-msg-0001",
    reason: "no_route",
  });
  assertThrows(() => parseRouteUnreachable(enc.encode('{"destination":"x"}')), FrameError);
  assertEquals(controlMessage("PING", "n").destination, "*");
});
