import { assert, assertEquals, assertThrows } from "../../support/assert.ts";
import { ScriptedRng } from "../../../lib/clock.ts";
import { HKDF_INFO_STORAGE_V2 } from "../../../lib/crypto/contexts.ts";
import {
  concatBytes,
  fromHex,
  randomBytes,
  secretBoxSeal,
  toHex,
  utf8,
} from "../../../lib/crypto/sodium.ts";
import { IronMeshError } from "../../../lib/errors.ts";
import {
  deriveLegacyStorageKey,
  deriveStorageKeys,
  hasV2Magic,
  PayloadCipher,
  STORAGE_V2_MAGIC,
  storageKeyFromIkm,
} from "../../../lib/store/storage_key.ts";
import { SV, vectorKeys } from "./store_helpers.ts";

const SALT = fromHex(SV.storage_salt_hex);

Deno.test("storage key v2 and legacy key match store.expected.json (one Argon2id run)", () => {
  assertEquals(SV.argon2id.opslimit, 3);
  assertEquals(SV.argon2id.memlimit_bytes, 268_435_456);
  const keys = deriveStorageKeys(SV.passphrase, SALT);
  assertEquals(toHex(keys.storageKey), SV.storage_key_hex);
  assertEquals(toHex(keys.legacyKey!), SV.legacy_storage_key_hex);
});

Deno.test("HKDF step: recorded Argon2id IKM → recorded storage key; info label bytes", () => {
  assertEquals(toHex(HKDF_INFO_STORAGE_V2), SV.hkdf_info_hex);
  assertEquals(toHex(storageKeyFromIkm(fromHex(SV.argon2id.ikm_hex), SALT)), SV.storage_key_hex);
  // A different salt gives a different key.
  const other = storageKeyFromIkm(fromHex(SV.argon2id.ikm_hex), new Uint8Array(16));
  assert(toHex(other) !== SV.storage_key_hex);
});

Deno.test("legacy key is SHA-256(passphrase ‖ 'ironmesh-storage-v1')", () => {
  assertEquals(toHex(deriveLegacyStorageKey(SV.passphrase)), SV.legacy_storage_key_hex);
  assert(toHex(deriveLegacyStorageKey(SV.passphrase + "x")) !== SV.legacy_storage_key_hex);
});

Deno.test("salt must be 16 bytes", () => {
  const e = assertThrows(() => storageKeyFromIkm(new Uint8Array(32), new Uint8Array(15)));
  assertEquals((e as IronMeshError).code, "STORE_BAD_SALT");
});

Deno.test("seal with the recorded nonces reproduces every vector blob byte for byte", () => {
  const keys = vectorKeys();
  let checked = 0;
  for (const table of ["messages", "pending_messages", "pending_trust_messages"]) {
    for (const row of SV.raw_rows[table]) {
      const layout = row.payload_layout as { magic_hex: string; nonce_hex: string } | undefined;
      if (!layout) continue;
      const blob = fromHex(row.payload_hex!);
      const opened = new PayloadCipher(keys, new ScriptedRng([])).open(blob);
      assertEquals(opened.status, "v2");
      const cipher = new PayloadCipher(keys, new ScriptedRng([fromHex(layout.nonce_hex)]));
      assertEquals(toHex(cipher.seal(opened.payload)), row.payload_hex);
      assertEquals(layout.magic_hex, toHex(STORAGE_V2_MAGIC));
      checked++;
    }
  }
  assertEquals(checked, 8);
});

Deno.test("empty payloads are stored unencrypted and read back as empty", () => {
  const c = new PayloadCipher(vectorKeys(), new ScriptedRng([]));
  assertEquals(c.seal(new Uint8Array(0)).length, 0);
  assertEquals(c.open(new Uint8Array(0)), { payload: new Uint8Array(0), status: "empty" });
  assertEquals(c.open(null), { payload: new Uint8Array(0), status: "empty" });
});

Deno.test("open dispatches: v2 prefix, legacy key, plaintext-era, tampered", () => {
  const keys = vectorKeys();
  const c = new PayloadCipher(keys, { bytes: randomBytes });
  const pt = utf8("hello store");
  const sealed = c.seal(pt);
  assert(hasV2Magic(sealed));
  assertEquals(c.open(sealed), { payload: pt, status: "v2" });
  const legacyBlob = secretBoxSeal(pt, keys.legacyKey!);
  assert(!hasV2Magic(legacyBlob));
  assertEquals(c.open(legacyBlob), { payload: pt, status: "legacy" });
  assertEquals(c.openLegacy(legacyBlob), pt);
  // A TEXT column written by another tool is read as its UTF-8 bytes.
  assertEquals(c.open("plain text row"), { payload: utf8("plain text row"), status: "plain" });
  const tampered = sealed.slice();
  tampered[tampered.length - 1] ^= 1;
  assertEquals(c.open(tampered), { payload: tampered, status: "undecryptable" });
  // Without a legacy key, legacy ciphertext stays opaque.
  const noLegacy = new PayloadCipher({ storageKey: keys.storageKey, legacyKey: null }, {
    bytes: randomBytes,
  });
  assertEquals(noLegacy.open(legacyBlob).status, "plain");
  // A v2 blob under another key does not open.
  const other = new PayloadCipher({ storageKey: randomBytes(32), legacyKey: null }, {
    bytes: randomBytes,
  });
  assertEquals(other.open(sealed).status, "undecryptable");
  // The magic is exactly "IMSTOREv2\0".
  assertEquals(STORAGE_V2_MAGIC, concatBytes(utf8("IMSTOREv2"), new Uint8Array([0])));
});

Deno.test("cipher refuses malformed keys and stops working after wipe", () => {
  assertThrows(
    () =>
      new PayloadCipher({ storageKey: new Uint8Array(31), legacyKey: null }, {
        bytes: randomBytes,
      }),
    IronMeshError,
    "32 bytes",
  );
  const keys = { storageKey: randomBytes(32), legacyKey: null };
  const c = new PayloadCipher(keys, { bytes: randomBytes });
  const sealed = c.seal(utf8("x"));
  keys.storageKey.fill(0); // the cipher holds its own copy
  assertEquals(c.open(sealed).status, "v2");
  c.wipe();
  assertEquals(c.open(sealed).status, "undecryptable");
});
