import { assert, assertEquals, assertThrows } from "../../support/assert.ts";
import { loadVector } from "../../support/vectors.ts";
import {
  argon2id,
  boxBeforeNm,
  boxKeyPairFromSecret,
  constantTimeEqual,
  constantTimeEqualString,
  fromB64,
  fromHex,
  hkdfSha256,
  hmacSha256,
  hmacSha256Node,
  openAttached,
  randomBytes,
  scalarMult,
  sealedBoxOpen,
  sealedBoxSeal,
  secretBoxOpen,
  secretBoxSeal,
  sha256,
  signAttached,
  signDetached,
  signKeyPairFromSeed,
  toHex,
  utf8,
  verifyDetached,
  wipe,
} from "../../../lib/crypto/sodium.ts";
import { SIG_CTX_HELLO } from "../../../lib/crypto/contexts.ts";
import {
  auditKey,
  capabilitiesKey,
  routesKey,
  trustBoxKey,
  trustMacKey,
} from "../../../lib/crypto/kdf.ts";
import { InvalidKeyError } from "../../../lib/errors.ts";

const ZERO = new Uint8Array(32);

Deno.test("§3.4 vectors: session key, passphrase proofs, derived state-file keys (zero seed)", () => {
  const a = boxKeyPairFromSecret(new Uint8Array(32).fill(1));
  const b = boxKeyPairFromSecret(new Uint8Array(32).fill(2));
  const key = "18a99320f3488fa18a04239715d8ee738065e65c3d4b2898522d6c3d4ead588c";
  assertEquals(toHex(boxBeforeNm(b.publicKey, a.secretKey)), key);
  assertEquals(toHex(boxBeforeNm(a.publicKey, b.secretKey)), key);
  assert(toHex(scalarMult(a.secretKey, b.publicKey)) !== key, "raw X25519 is not the session key");
  const nonce = Uint8Array.from({ length: 32 }, (_, i) => i);
  const pass = utf8("correct-horse-battery-staple");
  assertEquals(
    toHex(hmacSha256(pass, nonce)),
    "4ba6b8d8089b07bb53f6bc9038825ddeab3a445e9ecbba53cea824829f826254",
  );
  assertEquals(
    toHex(hmacSha256(pass, nonce.slice().reverse())),
    "4bb00e3b3626640f224ef4e44a6f9ff30855582f0836fb086cf90b30f0a8672e",
  );
  assertEquals(
    toHex(auditKey(ZERO)),
    "6f745187a1eee402a6369e0eec37e2f8d9d5c6033568ad2e1d786f3cd09cda72",
  );
  assertEquals(
    toHex(trustMacKey(ZERO)),
    "994f6b47fc4cb8ffbbb015889176f9b33cc2cac1b4a382fedc27d1feae087420",
  );
  assertEquals(
    toHex(trustBoxKey(ZERO)),
    "fe4d5565f9bd8cb26538c24e86540c383e90bb2386b574234b7344a186d4222c",
  );
  assertEquals(
    toHex(routesKey(ZERO)),
    "6773cf7630c62da5c8ada9747aeb5aba6bc4f2aa558c250098de1fa0c0cd666f",
  );
  assertEquals(
    toHex(capabilitiesKey(ZERO)),
    "4ecf3ef4619f691382e501a8a0964b4687eb0682843eff9bb3c4806a8804b277",
  );
  assertEquals(
    toHex(sha256(utf8("ironmesh-handshake-skip-channel-binding-v1"))),
    "d56294e40f47c8c7a524ec8c0fd83711968de30b951414088b82014b131d79ef",
  );
});

Deno.test("HELLO context signature vector (§3.4) and domain separation", () => {
  const kp = signKeyPairFromSeed(ZERO);
  const nonceHex = toHex(Uint8Array.from({ length: 32 }, (_, i) => i));
  const canon =
    `{"channel_binding":"${nonceHex}","ephemeral_public":"pOCSkrZRwni5dyxWn1+puxPZBrRqtoyd+dwrRAn4ogk=","identity_public":"O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=","name":"alice","protocol_version":"ironmesh/0.9"}`;
  const sig = signDetached(utf8(canon), kp.secretKey, SIG_CTX_HELLO);
  assertEquals(
    sig,
    fromB64(
      "eNHAlo/+lsTfUYGhIYOgjbB+jeMUJiXB8yeX8rp+aoMU+kBndJ2v2PrTXTnT6eQ7I2UQwKUDW9rd5sQ38lA7Cg==",
    ),
  );
  assert(verifyDetached(sig, utf8(canon), kp.publicKey, SIG_CTX_HELLO));
  assert(
    !verifyDetached(sig, utf8(canon), kp.publicKey),
    "a context signature must not verify without its context",
  );
  const attached = signAttached(utf8(canon), kp.secretKey);
  assertEquals(openAttached(attached, kp.publicKey), utf8(canon));
  attached[70] ^= 1;
  assertEquals(openAttached(attached, kp.publicKey), null);
  assertEquals(verifyDetached(new Uint8Array(10), utf8(canon), kp.publicKey), false);
});

Deno.test("small-order and malformed X25519 keys raise InvalidKeyError", () => {
  const me = boxKeyPairFromSecret(randomBytes(32));
  const smallOrder = [
    new Uint8Array(32),
    Uint8Array.from([1, ...new Array(31).fill(0)]),
    fromHex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    fromHex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    fromHex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
  ];
  for (const pk of smallOrder) {
    assertThrows(() => boxBeforeNm(pk, me.secretKey), InvalidKeyError);
    assertThrows(() => scalarMult(me.secretKey, pk), InvalidKeyError);
  }
  assertThrows(() => boxBeforeNm(new Uint8Array(31), me.secretKey), InvalidKeyError);
  assertThrows(() => signKeyPairFromSeed(new Uint8Array(16)), InvalidKeyError);
});

Deno.test("SecretBox and SealedBox: round trip, layout, any flipped byte refused", () => {
  const key = randomBytes(32);
  const nonce = randomBytes(24);
  const boxed = secretBoxSeal(utf8("hello"), key, nonce);
  assertEquals(boxed.length, 24 + 16 + 5);
  assertEquals(boxed.subarray(0, 24), nonce);
  assertEquals(secretBoxOpen(boxed, key), utf8("hello"));
  for (let i = 0; i < boxed.length; i++) {
    const t = boxed.slice();
    t[i] ^= 0x40;
    assertEquals(secretBoxOpen(t, key), null, `byte ${i}`);
  }
  assertEquals(secretBoxOpen(boxed, randomBytes(32)), null);
  const r = boxKeyPairFromSecret(randomBytes(32));
  const sealed = sealedBoxSeal(utf8("secret"), r.publicKey);
  assertEquals(sealed.length, 48 + 6);
  assertEquals(sealedBoxOpen(sealed, r.publicKey, r.secretKey), utf8("secret"));
  sealed[50] ^= 1;
  assertEquals(sealedBoxOpen(sealed, r.publicKey, r.secretKey), null);
});

Deno.test("HMAC (libsodium any-length key = node:crypto), HKDF RFC 5869 case 1, Argon2id keys.json vector", () => {
  for (const len of [0, 16, 32, 64, 100]) {
    const k = randomBytes(len), m = randomBytes(77);
    assertEquals(hmacSha256(k, m), hmacSha256Node(k, m));
  }
  const okm = hkdfSha256(
    fromHex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
    fromHex("000102030405060708090a0b0c"),
    fromHex("f0f1f2f3f4f5f6f7f8f9"),
    42,
  );
  assertEquals(
    toHex(okm),
    "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
  );
  const k = loadVector<
    {
      passphrase: string;
      files: Record<string, { argon2id: { salt_hex: string; derived_key_hex: string } }>;
    }
  >("keys", "keys.expected.json");
  const a = k.files["keys.json"].argon2id;
  assertEquals(toHex(argon2id(utf8(k.passphrase), fromHex(a.salt_hex))), a.derived_key_hex);
});

Deno.test("constant-time compare and wipe", () => {
  assert(constantTimeEqual(utf8("abc"), utf8("abc")));
  assert(!constantTimeEqual(utf8("abc"), utf8("abd")));
  assert(!constantTimeEqual(utf8("abc"), utf8("abcd")));
  assert(constantTimeEqualString("é", "é"));
  assert(!constantTimeEqualString("a", "b"));
  const s = randomBytes(32);
  wipe(s, undefined);
  assertEquals(s, new Uint8Array(32));
});
