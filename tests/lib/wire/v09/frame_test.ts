import { assert, assertEquals, assertThrows } from "../../../support/assert.ts";
import { fromHex, sha256, signDetached, sodium, toHex } from "../../../../lib/crypto/sodium.ts";
import {
  openBox,
  openBoxText,
  sealText,
  sha256Prefix8Into,
} from "../../../../lib/wire/v09/frame_box.ts";
import { InvalidKeyError } from "../../../../lib/errors.ts";
import {
  checkHeaderBinding,
  decodeFrame,
  type DecodeFrameOptions,
  encodeFrame,
  FLAG_SIGNED,
  MAX_SIGNED_CIPHERTEXT,
  MAX_WS_MESSAGE_BYTES,
  msgIdHash,
  nodeSigner,
  nodeVerifier,
  parseFrame,
  sodiumSigner,
  sodiumVerifier,
} from "../../../../lib/wire/v09/frame.ts";
import { type Envelope, envelopeJson } from "../../../../lib/wire/v09/envelope.ts";
import { FrameError, FrameErrorCode } from "../../../../lib/wire/v09/errors.ts";
import { signInnerSourceV2 } from "../../../../lib/wire/v09/inner_source.ts";
import {
  CONTROL,
  envelopeFromInner,
  flip,
  FRAMES,
  ident,
  KEY_AB,
  type ValidFrame,
  vf,
} from "./fixtures.ts";

const alice = ident("alice");
const VALID = FRAMES.frames.filter((f) => f.name !== "header_version_3");
const V3 = FRAMES.frames.find((f) => f.name === "header_version_3")!;
const FRAME1 = fromHex(VALID[0].frame_hex);

/** The reference's receiver (PROTOCOL-0.9 §6.4): none of our hardening. */
const COMPAT = {
  acceptVersion3: true,
  requireSigned: false,
  strictLayout: false,
  bindHeader: false,
  requireTimestamp: false,
} as const;

function envelopeFromInputs(f: ValidFrame): Envelope {
  const i = f.inputs;
  const env: Envelope = {
    type: i.msg_type,
    payload: fromHex(i.payload_hex),
    msgId: i.msg_id,
    source: i.source,
    sourceDisplay: i.source,
    destination: i.destination,
    timestamp: vf(i.timestamp),
    priority: i.priority,
    sequence: i.sequence,
    retries: 0,
    routing: {},
    ttl: i.ttl,
    hops: i.hops,
  };
  if (i.source_signer) {
    env.sourceSignature = signInnerSourceV2(sodiumSigner(ident(i.source_signer).secretKey), env);
    env.sourceSigScheme = "v2";
  }
  if (f.e2e) env.e2ePayload = fromHex(f.e2e.e2e_payload_hex);
  return env;
}

function rejects(fn: () => unknown, code: string, message?: string): FrameError {
  const e = assertThrows(fn, FrameError) as FrameError;
  assertEquals(e.code, code, `${e.code}: ${e.message}`);
  if (message !== undefined) assertEquals(e.message, message);
  assert(e.hint.length > 0);
  return e;
}

function strictOpts(key = KEY_AB): DecodeFrameOptions {
  return { key, verifier: nodeVerifier(alice.publicKey) };
}

Deno.test("frames_v4: every valid frame is reproduced byte for byte (sodium and node signers)", () => {
  assertEquals(VALID.length, 9);
  for (const f of VALID) {
    const env = envelopeFromInputs(f);
    assertEquals(envelopeJson(env), f.inner_json_text, f.name);
    if (f.inner_source_signature) {
      assertEquals(toHex(env.sourceSignature!), f.inner_source_signature.signature_hex, f.name);
    }
    const seed = f.inputs.outer_signer;
    for (const make of [sodiumSigner, nodeSigner]) {
      const signer = seed ? make(ident(seed).secretKey) : null;
      const bytes = encodeFrame(env, {
        key: fromHex(f.inputs.session_key_hex),
        nonce: fromHex(f.inputs.secretbox_nonce_hex),
        signer,
      });
      assertEquals(toHex(bytes), f.frame_hex, `${f.name} (${make.name})`);
    }
  }
});

Deno.test("control_payloads: every captured frame is reproduced byte for byte by the codec", () => {
  let n = 0;
  for (const c of CONTROL.payloads) {
    const env = envelopeFromInner(c.frame.inner);
    assertEquals(envelopeJson(env), c.frame.inner_json_text, c.name);
    const nonces = c.random_draws.filter((d) => d.purpose === "secretbox_nonce");
    const bytes = encodeFrame(env, {
      key: fromHex(c.session_key_hex),
      nonce: fromHex(nonces[nonces.length - 1].hex),
      signer: nodeSigner(ident(c.sent_by).secretKey),
    });
    assertEquals(toHex(bytes), c.frame.frame_hex, c.name);
    n++;
  }
  assertEquals(n, CONTROL.payloads.length);
});

Deno.test("frames_v4: headers parse to the recorded fields and bind to the envelope", () => {
  for (const f of VALID) {
    const raw = parseFrame(fromHex(f.frame_hex), { requireSigned: false });
    assertEquals(raw.header.version, f.header.version);
    assertEquals(raw.header.flags, f.header.flags, f.name);
    assertEquals(raw.header.sequence, f.header.sequence);
    assertEquals(raw.header.timestampMs, f.header.timestamp_ms, f.name);
    assertEquals(toHex(raw.header.msgIdHash), f.header.msg_id_hash_hex);
    assertEquals(toHex(msgIdHash(f.inputs.msg_id)), f.header.msg_id_hash_hex);
    assertEquals(raw.header.length, f.header.ciphertext_length);
    assertEquals(raw.signature === null, (f.header.flags & FLAG_SIGNED) === 0);
    checkHeaderBinding(raw.header, envelopeFromInputs(f));
  }
});

Deno.test("frames_v4: every valid signed frame decodes under our strict rules", () => {
  for (const f of VALID) {
    if (!f.inputs.outer_signer) continue;
    const signer = ident(f.inputs.outer_signer);
    for (const verifier of [nodeVerifier(signer.publicKey), sodiumVerifier(signer.publicKey)]) {
      const { header, envelope } = decodeFrame(fromHex(f.frame_hex), {
        key: fromHex(f.inputs.session_key_hex),
        verifier,
      });
      assertEquals(header.sequence, f.inputs.sequence);
      assertEquals(envelopeJson(envelope), f.inner_json_text, f.name);
      assertEquals(toHex(envelope.payload), f.inputs.payload_hex);
      assertEquals(envelope.timestamp, vf(f.inputs.timestamp));
    }
  }
});

Deno.test("frames_v4: the unsigned frame is refused (FR_UNSIGNED) but decodes in reference mode", () => {
  const f = VALID.find((x) => x.name === "unsigned_no_inner_sig")!;
  const bytes = fromHex(f.frame_hex);
  rejects(() => decodeFrame(bytes, strictOpts()), FrameErrorCode.UNSIGNED);
  const { envelope } = decodeFrame(bytes, { ...strictOpts(), ...COMPAT });
  assertEquals(envelopeJson(envelope), f.inner_json_text);
});

Deno.test("frames_v4: header version 3 only behind acceptVersion3", () => {
  const bytes = fromHex(V3.frame_hex);
  rejects(
    () => decodeFrame(bytes, strictOpts()),
    FrameErrorCode.MALFORMED,
    "Unsupported version: 3 (expected 4)",
  );
  const { header, envelope } = decodeFrame(bytes, { ...strictOpts(), acceptVersion3: true });
  assertEquals(header.version, 3);
  assertEquals(envelope.msgId, V3.inner.msg_id);
});

const EXPECTED_CODE: Record<string, string> = {
  bad_magic: FrameErrorCode.MALFORMED,
  truncated_header: FrameErrorCode.MALFORMED,
  truncated_ciphertext: FrameErrorCode.MALFORMED,
  truncated_signature: FrameErrorCode.SIGNATURE,
  bad_outer_signature: FrameErrorCode.SIGNATURE,
  tampered_ciphertext_signed: FrameErrorCode.SIGNATURE,
  tampered_ciphertext_resigned: FrameErrorCode.DECRYPT,
  wrong_session_key: FrameErrorCode.DECRYPT,
  length_over_1mib: FrameErrorCode.TOO_LARGE,
  unsupported_version: FrameErrorCode.MALFORMED,
  unencrypted_flag: FrameErrorCode.MALFORMED,
  signed_but_no_verify_key: FrameErrorCode.SIGNATURE,
  bad_inner_source_signature: FrameErrorCode.INNER_SIGNATURE,
  inner_hops_not_a_list: FrameErrorCode.MALFORMED,
  inner_ttl_out_of_range: FrameErrorCode.MALFORMED,
};

Deno.test("frames_v4: all 15 invalid frames are rejected with the reference's reason", () => {
  assertEquals(FRAMES.invalid_frames.length, 15);
  for (const f of FRAMES.invalid_frames) {
    const srcKey = f.inner_source_verify_key_hex;
    const base: DecodeFrameOptions = {
      key: fromHex(f.session_key_hex),
      verifier: f.outer_verify_key_hex ? sodiumVerifier(fromHex(f.outer_verify_key_hex)) : null,
      sourceVerifier: srcKey ? () => sodiumVerifier(fromHex(srcKey)) : undefined,
    };
    const bytes = fromHex(f.frame_hex);
    // Reference mode: same rejection and the same text (PyNaCl texts compared by prefix).
    const e = rejects(() => decodeFrame(bytes, { ...base, ...COMPAT }), EXPECTED_CODE[f.name]);
    const want = f.expect.python_error;
    if (want.startsWith("Signature verification failed") || want.startsWith("Decryption failed")) {
      assertEquals(e.message.split(":")[0], want.split(":")[0], f.name);
    } else {
      assertEquals(e.message, want, f.name);
    }
    // Our strict mode rejects every one of them too.
    assertThrows(() => decodeFrame(bytes, base), FrameError);
  }
});

Deno.test("hardening: each header field altered is rejected with its reason", () => {
  const cases: [string, Uint8Array, string][] = [
    ["magic", flip(FRAME1, 1), FrameErrorCode.MALFORMED],
    ["version 5", flip(FRAME1, 2, 0x01), FrameErrorCode.MALFORMED],
    ["HIGH bit set", flip(FRAME1, 3, 0x01), FrameErrorCode.HEADER_MISMATCH],
    ["CRITICAL bit set", flip(FRAME1, 3, 0x02), FrameErrorCode.HEADER_MISMATCH],
    ["ENCRYPTED cleared", flip(FRAME1, 3, 0x04), FrameErrorCode.MALFORMED],
    ["SIGNED cleared", flip(FRAME1, 3, 0x08), FrameErrorCode.UNSIGNED],
    ["unknown flag bit", flip(FRAME1, 3, 0x40), FrameErrorCode.MALFORMED],
    ["sequence", flip(FRAME1, 11), FrameErrorCode.HEADER_MISMATCH],
    ["sequence high byte", flip(FRAME1, 4, 0x80), FrameErrorCode.REPLAY],
    ["timestamp", flip(FRAME1, 19), FrameErrorCode.HEADER_MISMATCH],
    ["msg_id hash", flip(FRAME1, 20), FrameErrorCode.HEADER_MISMATCH],
    ["length + 2 (eats the signature)", flip(FRAME1, 31, 0x02), FrameErrorCode.SIGNATURE],
    ["length - 1", flip(FRAME1, 31, 0x01), FrameErrorCode.MALFORMED],
  ];
  for (const [name, bytes, code] of cases) {
    const e = rejects(() => decodeFrame(bytes, strictOpts()), code);
    assert(e.message.length > 0, name);
  }
});

Deno.test("hardening: nonce, ciphertext and signature bytes altered fail the outer signature", () => {
  const n = FRAME1.length;
  for (const i of [32, 55, 56, 72, 200, n - 65, n - 64, n - 1]) {
    rejects(() => decodeFrame(flip(FRAME1, i), strictOpts()), FrameErrorCode.SIGNATURE);
  }
});

Deno.test("hardening: truncation, trailing bytes and junk", () => {
  for (const len of [0, 1, 31, 32, 100, FRAME1.length - 65, FRAME1.length - 1]) {
    assertThrows(() => decodeFrame(FRAME1.subarray(0, len), strictOpts()), FrameError);
  }
  rejects(() => decodeFrame(FRAME1.subarray(0, 31), strictOpts()), FrameErrorCode.MALFORMED);
  const longer = new Uint8Array(FRAME1.length + 1);
  longer.set(FRAME1);
  rejects(() => decodeFrame(longer, strictOpts()), FrameErrorCode.MALFORMED);
  // The reference ignores trailing bytes; so does reference mode.
  decodeFrame(longer, { ...strictOpts(), strictLayout: false });
  const junk = new Uint8Array(200).map((_, i) => (i * 37 + 11) & 0xff);
  rejects(() => decodeFrame(junk, strictOpts()), FrameErrorCode.MALFORMED);
  const text = new TextEncoder().encode('{"type":"MSG","payload":"aGk="}');
  rejects(() => decodeFrame(text, strictOpts()), FrameErrorCode.MALFORMED);
});

Deno.test("hardening: a declared length above 1 MiB is refused before anything is sliced", () => {
  const h = FRAME1.slice(0, 32);
  new DataView(h.buffer).setUint32(28, 0xffffffff, false);
  rejects(
    () => parseFrame(h),
    FrameErrorCode.TOO_LARGE,
    "Declared frame length 4294967295 bytes exceeds MAX_FRAME_BYTES ceiling 1048576",
  );
});

Deno.test("hardening: a wrong session key or wrong signer is rejected", () => {
  rejects(() => decodeFrame(FRAME1, strictOpts(new Uint8Array(32))), FrameErrorCode.DECRYPT);
  const bob = ident("bob");
  rejects(
    () => decodeFrame(FRAME1, { key: KEY_AB, verifier: nodeVerifier(bob.publicKey) }),
    FrameErrorCode.SIGNATURE,
  );
});

function bigEnvelope(payloadLen: number, msgId: string): Envelope {
  return {
    ...envelopeFromInner(VALID[0].inner),
    payload: new Uint8Array(payloadLen),
    msgId,
    sourceSignature: undefined,
    sourceSigScheme: undefined,
  };
}

Deno.test("send limit: the whole signed frame never exceeds one 1 MiB WebSocket message", () => {
  const opts = { key: KEY_AB, nonce: new Uint8Array(24), signer: nodeSigner(alice.secretKey) };
  const payloadLen = 786_000; // base64 grows it to 1,048,000 characters
  const overhead = envelopeJson(bigEnvelope(payloadLen, "")).length + 40;
  const room = MAX_SIGNED_CIPHERTEXT - overhead; // fill exactly with msg_id characters
  assert(room > 0 && room < 2000, `room ${room}`);
  const exact = encodeFrame(bigEnvelope(payloadLen, "m".repeat(room)), opts);
  assertEquals(exact.length, MAX_WS_MESSAGE_BYTES);
  const e = assertThrows(
    () => encodeFrame(bigEnvelope(payloadLen, "m".repeat(room + 1)), opts),
    FrameError,
  ) as FrameError;
  assertEquals(e.code, FrameErrorCode.TOO_LARGE);
  // It still decodes (N = 1,048,480 is within the receive ceiling).
  const { envelope } = decodeFrame(exact, { key: KEY_AB, verifier: nodeVerifier(alice.publicKey) });
  assertEquals(envelope.payload.length, payloadLen);
});

Deno.test("signers: node:crypto and libsodium signatures are identical; verifiers agree", () => {
  const s1 = sodiumSigner(alice.secretKey), s2 = nodeSigner(alice.secretKey);
  const v1 = sodiumVerifier(alice.publicKey), v2 = nodeVerifier(alice.publicKey);
  for (const f of VALID) {
    if (!f.outer_signature_hex) continue;
    const raw = parseFrame(fromHex(f.frame_hex));
    const signer = ident(f.inputs.outer_signer!);
    assertEquals(toHex(nodeSigner(signer.secretKey).sign(raw.ciphertext)), f.outer_signature_hex);
    assertEquals(nodeVerifier(signer.publicKey).verify(raw.signature!, raw.ciphertext), true);
  }
  for (const len of [0, 1, 64, 1000]) {
    const m = new Uint8Array(len).fill(len & 0xff);
    const sig = s2.sign(m);
    assertEquals(toHex(sig), toHex(s1.sign(m)));
    assertEquals(toHex(sig), toHex(signDetached(m, alice.secretKey)));
    assertEquals([v1.verify(sig, m), v2.verify(sig, m)], [true, true]);
    const bad = flip(sig, 63, 0x80);
    assertEquals([v1.verify(bad, m), v2.verify(bad, m)], [false, false]);
    assertEquals([v1.verify(sig.subarray(0, 63), m), v2.verify(sig.subarray(0, 63), m)], [
      false,
      false,
    ]);
  }
});

Deno.test("signers: a malleated signature (S + L) is refused by both verifiers", () => {
  const m = new Uint8Array([1, 2, 3]);
  const sig = nodeSigner(alice.secretKey).sign(m);
  const L = fromHex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
  const mal = sig.slice();
  let carry = 0;
  for (let i = 0; i < 32; i++) {
    const v = mal[32 + i] + L[i] + carry;
    mal[32 + i] = v & 0xff;
    carry = v >> 8;
  }
  assertEquals(sodiumVerifier(alice.publicKey).verify(mal, m), false);
  assertEquals(nodeVerifier(alice.publicKey).verify(mal, m), false);
});

Deno.test("signers: invalid keys are refused up front", () => {
  const smallOrder = new Uint8Array(32);
  smallOrder[0] = 1; // the identity point
  assertThrows(() => nodeVerifier(smallOrder), InvalidKeyError);
  assertThrows(() => sodiumVerifier(new Uint8Array(31)), InvalidKeyError);
  const wrongHalf = alice.secretKey.slice();
  wrongHalf[40] ^= 1;
  assertThrows(() => nodeSigner(wrongHalf), InvalidKeyError);
  assertThrows(() => sodiumSigner(alice.secretKey.subarray(0, 32)), InvalidKeyError);
});

Deno.test("frame_box: SecretBox on the wasm heap gives libsodium's bytes and wipes its scratch", () => {
  const key = new Uint8Array(32).fill(5), nonce = new Uint8Array(24).fill(9);
  for (const text of ["", '{"a":1}', "x".repeat(70_000), "naïve ✓ non-ASCII"]) {
    const pt = new TextEncoder().encode(text);
    const expected = sodium.crypto_secretbox_easy(pt, nonce, key);
    const frame = sealText(text, nonce, key, (len) => {
      assertEquals(len, pt.length + 16);
      const out = new Uint8Array(len + 24);
      out.set(nonce);
      return { out, offset: 24 };
    });
    assertEquals(frame.subarray(24), expected);
    assertEquals(openBoxText(frame, key), text);
    assertEquals(openBox(frame, key), pt);
    assertEquals(openBoxText(flipByte(frame, 30), key), null);
  }
  // A refusal from `place` leaves nothing behind and does not break the next call.
  assertThrows(() =>
    sealText("secret", nonce, key, () => {
      throw new RangeError("too big");
    })
  );
  const ok = sealText("ok", nonce, key, (len) => {
    const out = new Uint8Array(24 + len);
    out.set(nonce);
    return { out, offset: 24 };
  });
  assertEquals(openBoxText(ok, key), "ok");
  const h = new Uint8Array(8);
  sha256Prefix8Into("msg-id ✓", h, 0);
  assertEquals(h, sha256(new TextEncoder().encode("msg-id ✓")).subarray(0, 8));
});

function flipByte(b: Uint8Array, i: number): Uint8Array {
  const c = b.slice();
  c[i] ^= 1;
  return c;
}
