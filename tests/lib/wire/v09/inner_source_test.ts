import { assert, assertEquals } from "../../../support/assert.ts";
import { fromHex, signDetached, toHex } from "../../../../lib/crypto/sodium.ts";
import { loadVector } from "../../../support/vectors.ts";
import { nodeSigner, nodeVerifier, sodiumVerifier } from "../../../../lib/wire/v09/frame.ts";
import { b64DecodeStrict } from "../../../../lib/wire/v09/envelope.ts";
import {
  canonicalInnerSourceBytes,
  evaluateInnerSource,
  type InnerSourceFrame,
  innerSourceSignedMessageV2,
  signInnerSourceV2,
  verifyInnerSourceSignature,
} from "../../../../lib/wire/v09/inner_source.ts";
import { CONTROL, FRAMES, ident } from "./fixtures.ts";

const alice = ident("alice"), bob = ident("bob"), carol = ident("carol");
const CANON = loadVector<{
  cases: {
    name: string;
    function: string;
    inputs: Record<string, string>;
    bytes_hex: string;
    signed_message_hex: string;
    signature_by_alice_hex: string;
  }[];
}>("canonical_json.json");

Deno.test("inner source: canonical bytes, signed message and signature match canonical_json.json", () => {
  const cases = CANON.cases.filter((c) => c.function === "protocol.canonical_inner_source_bytes");
  assertEquals(cases.length, 3);
  for (const c of cases) {
    const f = {
      source: c.inputs.source,
      destination: c.inputs.destination,
      msgId: c.inputs.msg_id,
      payload: fromHex(c.inputs.payload_hex),
    };
    assertEquals(toHex(canonicalInnerSourceBytes(f)), c.bytes_hex, c.name);
    assertEquals(toHex(innerSourceSignedMessageV2(f)), c.signed_message_hex, c.name);
    assertEquals(
      toHex(signInnerSourceV2(nodeSigner(alice.secretKey), f)),
      c.signature_by_alice_hex,
    );
  }
});

Deno.test("inner source: every vector frame's v2 signature is reproduced and verifies", () => {
  let n = 0;
  for (const fr of FRAMES.frames) {
    const s = fr.inner_source_signature;
    if (!s) continue;
    const i = fr.inputs;
    const f = {
      source: i.source,
      destination: i.destination,
      msgId: i.msg_id,
      payload: fromHex(i.payload_hex),
    };
    assertEquals(toHex(canonicalInnerSourceBytes(f)), s.canonical_inner_source_hex, fr.name);
    assertEquals(toHex(innerSourceSignedMessageV2(f)), s.signed_message_hex, fr.name);
    const signer = ident(i.source_signer!);
    assertEquals(toHex(signInnerSourceV2(nodeSigner(signer.secretKey), f)), s.signature_hex);
    const sig = { ...f, signature: fromHex(s.signature_hex), scheme: "v2" };
    assert(verifyInnerSourceSignature(sig, nodeVerifier(signer.publicKey), false));
    assert(!verifyInnerSourceSignature(sig, nodeVerifier(bob.publicKey), false));
    n++;
  }
  assertEquals(n, 7);
});

Deno.test("inner source: strict-mode and relayed control vectors verify over the plaintext", () => {
  const strict = CONTROL.payloads.find((c) => c.name === "MSG_send_message_strict")!;
  const inner = strict.frame.inner;
  const sig = {
    source: inner.source as string,
    destination: inner.destination as string,
    msgId: inner.msg_id as string,
    payload: fromHex(strict.e2e!.unsealed_hex!),
    signature: b64DecodeStrict(inner.source_signature as string),
    scheme: "v2",
  };
  assert(verifyInnerSourceSignature(sig, sodiumVerifier(alice.publicKey), false));
  assert(
    !verifyInnerSourceSignature(
      { ...sig, payload: new Uint8Array(0) },
      sodiumVerifier(alice.publicKey),
      false,
    ),
  );
  const relayed = CONTROL.payloads.find((c) => c.name === "MSG_relayed_by_bob")!.frame.inner;
  const rsig = {
    source: relayed.source as string,
    destination: relayed.destination as string,
    msgId: relayed.msg_id as string,
    payload: b64DecodeStrict(relayed.payload as string),
    signature: b64DecodeStrict(relayed.source_signature as string),
    scheme: "v2",
  };
  assert(verifyInnerSourceSignature(rsig, nodeVerifier(alice.publicKey), false));
  // ttl and hops are not covered, but destination is:
  assert(
    !verifyInnerSourceSignature(
      { ...rsig, destination: bob.nodeId },
      nodeVerifier(alice.publicKey),
      false,
    ),
  );
});

Deno.test("inner source: scheme tags (v2, v1 only when allowed, untagged tries both, unknown fails)", () => {
  const f = {
    source: alice.nodeId,
    destination: bob.nodeId,
    msgId: "m",
    payload: new Uint8Array([1, 2]),
  };
  const v = nodeVerifier(alice.publicKey);
  const v2 = signInnerSourceV2(nodeSigner(alice.secretKey), f);
  const v1 = signDetached(f.payload, alice.secretKey);
  assert(verifyInnerSourceSignature({ ...f, signature: v2, scheme: "v2" }, v, false));
  assert(verifyInnerSourceSignature({ ...f, signature: v2 }, v, false));
  assert(!verifyInnerSourceSignature({ ...f, signature: v2, scheme: "v1" }, v, true));
  assert(!verifyInnerSourceSignature({ ...f, signature: v1, scheme: "v1" }, v, false));
  assert(verifyInnerSourceSignature({ ...f, signature: v1, scheme: "v1" }, v, true));
  assert(!verifyInnerSourceSignature({ ...f, signature: v1 }, v, false));
  assert(verifyInnerSourceSignature({ ...f, signature: v1 }, v, true));
  assert(!verifyInnerSourceSignature({ ...f, signature: v2, scheme: "v3" }, v, true));
  assert(!verifyInnerSourceSignature({ ...f, signature: v2.subarray(1), scheme: "v2" }, v, true));
});

Deno.test("inner source policy: accept / drop with the reference's reasons", () => {
  const known = new Map([[alice.nodeId, nodeVerifier(alice.publicKey)], [
    carol.nodeId,
    nodeVerifier(carol.publicKey),
  ]]);
  const lookup = (id: string) => known.get(id) ?? null;
  const mk = (source: string, signer?: typeof alice, type = "MSG"): InnerSourceFrame => {
    const f = { type, source, destination: bob.nodeId, msgId: "x", payload: new Uint8Array([9]) };
    return signer
      ? { ...f, signature: signInnerSourceV2(nodeSigner(signer.secretKey), f), scheme: "v2" }
      : f;
  };
  // peer = alice; carol is relayed through alice.
  const P = alice.nodeId;
  assertEquals(evaluateInnerSource(mk(P), P, lookup), { accept: true, authenticated: false });
  assertEquals(evaluateInnerSource(mk(P, alice), P, lookup), { accept: true, authenticated: true });
  assertEquals(evaluateInnerSource(mk(carol.nodeId, carol), P, lookup), {
    accept: true,
    authenticated: true,
  });
  assertEquals(evaluateInnerSource(mk(carol.nodeId), P, lookup), {
    accept: false,
    reason: "missing-on-relayed",
  });
  const dave = ident("dave");
  assertEquals(evaluateInnerSource(mk(dave.nodeId, dave), P, lookup), {
    accept: false,
    reason: "unknown-source",
  });
  assertEquals(evaluateInnerSource(mk(carol.nodeId, alice), P, lookup), {
    accept: false,
    reason: "verification-failed",
  });
  assertEquals(evaluateInnerSource(mk(P, carol), P, lookup), {
    accept: false,
    reason: "verification-failed",
  });
  // Direct with an unknown key is accepted (the outer signature covers it).
  assertEquals(evaluateInnerSource(mk(P, alice), P, () => null), {
    accept: true,
    authenticated: false,
  });
  // Control types are exempt.
  assertEquals(evaluateInnerSource(mk(carol.nodeId, undefined, "PING"), P, lookup), {
    accept: true,
    authenticated: false,
  });
  for (const t of ["REQ", "RESP", "CONV"]) {
    assertEquals(evaluateInnerSource(mk(carol.nodeId, undefined, t), P, lookup).accept, false, t);
  }
  // §19 U1 fallback: only direct frames are kept, flagged.
  assertEquals(evaluateInnerSource(mk(P, carol), P, lookup, { labelFallback: true }), {
    accept: true,
    authenticated: false,
    labelMismatch: true,
  });
  assertEquals(evaluateInnerSource(mk(carol.nodeId, alice), P, lookup, { labelFallback: true }), {
    accept: false,
    reason: "verification-failed",
  });
});
