import { assert, assertEquals } from "../../../support/assert.ts";
import { fromHex } from "../../../../lib/crypto/sodium.ts";
import { PyFloat } from "../../../../lib/json/py_float.ts";
import {
  challengeText,
  errorText,
  parseHandshakeMessage,
  passphraseProof,
  proofMatches,
  proofText,
  pyStr,
  quoteForLog,
  rejectedText,
  serverPassphraseProof,
  unexpectedTypeError,
  verifiedText,
} from "../../../../lib/wire/v09/handshake_stage1.ts";
import { TRANSCRIPTS } from "./handshake_fixtures.ts";

const NONCE = fromHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");

Deno.test("C-HS-03/04: proofs match the §3.4 vectors", () => {
  assertEquals(
    passphraseProof("correct-horse-battery-staple", NONCE),
    "4ba6b8d8089b07bb53f6bc9038825ddeab3a445e9ecbba53cea824829f826254",
  );
  assertEquals(
    serverPassphraseProof("correct-horse-battery-staple", NONCE),
    "4bb00e3b3626640f224ef4e44a6f9ff30855582f0836fb086cf90b30f0a8672e",
  );
  // The nonce itself is not reversed in place.
  assertEquals(NONCE[0], 0);
});

Deno.test("proofs match every transcript (client proof with the client's passphrase)", () => {
  for (const t of TRANSCRIPTS) {
    const nonce = fromHex(t.derived.server_nonce_hex);
    assertEquals(
      passphraseProof(t.client_passphrase ?? t.passphrase, nonce),
      t.derived.client_proof,
    );
    assertEquals(serverPassphraseProof(t.passphrase, nonce), t.derived.server_proof, t.name);
  }
});

Deno.test("proofMatches: exact lowercase string only", () => {
  const p = passphraseProof("correct-horse-battery-staple", NONCE);
  assert(proofMatches(p, p));
  assert(!proofMatches(p.toUpperCase(), p));
  assert(!proofMatches(p.slice(1), p));
  assert(!proofMatches("", p));
  assert(!proofMatches(undefined, p));
  assert(!proofMatches(42, p));
});

Deno.test("stage-1 texts have the reference's field order and separators", () => {
  assertEquals(
    challengeText("n1", "ab", "ironmesh/0.9"),
    '{"type": "PASSPHRASE_CHALLENGE", "from": "n1", "nonce": "ab", "protocol_version": "ironmesh/0.9"}',
  );
  assertEquals(
    proofText("n2", "cd"),
    '{"type": "PASSPHRASE_CHALLENGE", "from": "n2", "proof": "cd"}',
  );
  assertEquals(
    verifiedText("n1", "ef"),
    '{"type": "PASSPHRASE_VERIFIED", "from": "n1", "status": "verified", "server_proof": "ef"}',
  );
  assertEquals(
    rejectedText("n1", "Wrong passphrase"),
    '{"type": "PASSPHRASE_REJECTED", "from": "n1", "error": "Wrong passphrase"}',
  );
  assertEquals(
    errorText("Invalid HELLO: missing ephemeral_public", "INVALID_FRAME"),
    '{"type": "ERROR", "error": "Invalid HELLO: missing ephemeral_public", "code": "INVALID_FRAME"}',
  );
});

Deno.test("unexpectedTypeError renders the type as Python's str() would", () => {
  assertEquals(unexpectedTypeError("HELLO"), "Expected PASSPHRASE_CHALLENGE, got HELLO");
  assertEquals(unexpectedTypeError(undefined), "Expected PASSPHRASE_CHALLENGE, got None");
  assertEquals(pyStr(null), "None");
  assertEquals(pyStr(false), "False");
  assertEquals(pyStr(12), "12");
  assertEquals(pyStr(new PyFloat(1)), "1.0");
  assertEquals(pyStr(18446744073709551616n), "18446744073709551616");
  assertEquals(pyStr({ a: [1, "it's"] }), `{'a': [1, "it's"]}`);
  assertEquals(pyStr(["x\ny"]), "['x\\ny']");
  assertEquals(pyStr(new PyFloat(Infinity)), "inf");
  assertEquals(quoteForLog("a\u0000b"), '"a\\u0000b"');
  assertEquals(quoteForLog("x".repeat(500)).length, 203);
});

Deno.test("parseHandshakeMessage keeps objects and refuses everything else", () => {
  assertEquals(parseHandshakeMessage('{"type": "HELLO", "n": 1.0}'), {
    type: "HELLO",
    n: new PyFloat(1),
  });
  for (
    const bad of [
      "x",
      "[]",
      "null",
      "1",
      new Uint8Array([123, 125]),
      "[".repeat(65) + "]".repeat(65),
      '{"a": 1}' + " ".repeat(1_048_576),
      undefined,
    ]
  ) {
    assertEquals(parseHandshakeMessage(bad), null);
  }
  assert(parseHandshakeMessage(`{"a": ${"[".repeat(63)}${"]".repeat(63)}}`) !== null);
  // Python keeps the last duplicate key; so do we.
  assertEquals(parseHandshakeMessage('{"type": "A", "type": "HELLO"}')?.type, "HELLO");
});
