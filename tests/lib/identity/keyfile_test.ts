import { assertEquals, assertThrows } from "../../support/assert.ts";
import { loadVector, vectorPath } from "../../support/vectors.ts";
import {
  encodeKeyFile,
  migrateToMasterSeed,
  openKeyFile,
  parseKeyFile,
} from "../../../lib/identity/keyfile.ts";
import { ScriptedRng } from "../../../lib/clock.ts";
import { fromHex, toHex } from "../../../lib/crypto/sodium.ts";
import { IronMeshError } from "../../../lib/errors.ts";

interface KeysCase {
  passphrase: string | null;
  version: number;
  encrypted: boolean;
  identity: {
    agent_name: string;
    ed25519_seed_hex: string;
    node_id: string;
    x25519_public_hex: string;
    e2e_x25519_secret_hex: string;
  };
  random_draws: { purpose: string; hex: string }[];
}
const V = loadVector<
  {
    files: Record<string, KeysCase>;
    load_with_wrong_passphrase: { file: string; passphrase: string; error: string };
  }
>(
  "keys",
  "keys.expected.json",
);
const readKeys = (name: string) => Deno.readTextFileSync(vectorPath("keys", name));

Deno.test("every Python-written keys.json opens and yields the recorded identity", () => {
  assertEquals(Object.keys(V.files).length, 5);
  for (const [file, c] of Object.entries(V.files)) {
    const kf = parseKeyFile(readKeys(file), file);
    assertEquals(kf.summary.version, c.version, file);
    assertEquals(kf.summary.encrypted, c.encrypted, file);
    assertEquals(kf.summary.nodeId, c.identity.node_id, file);
    const id = openKeyFile(kf, c.passphrase, file);
    assertEquals(toHex(id.seed), c.identity.ed25519_seed_hex, file);
    assertEquals(id.nodeId, c.identity.node_id, file);
    assertEquals(id.name, c.identity.agent_name, file);
    // v3 files carry the master-seed subkey; v2 files use the legacy conversion.
    if (c.version === 3) {
      assertEquals(toHex(id.e2e.publicKey), c.identity.x25519_public_hex, file);
      assertEquals(id.e2e.kind, "master-seed-v1");
    } else assertEquals(id.e2e.kind, "legacy");
  }
});

Deno.test("encoding with the recorded draws is byte-identical to the reference's keys.json (encrypted and plaintext)", () => {
  for (const file of ["keys.json", "keys.plaintext.json"]) {
    const c = V.files[file];
    const id = openKeyFile(parseKeyFile(readKeys(file)), c.passphrase);
    const rng = new ScriptedRng(c.random_draws.map((d) => fromHex(d.hex)));
    assertEquals(encodeKeyFile(id, { passphrase: c.passphrase, rng }), readKeys(file), file);
    assertEquals(rng.remaining, 0);
  }
});

Deno.test("v2 → master-seed migration with the recorded draws matches keys.migrated-from-v2.json and keeps the node_id", () => {
  const c = V.files["keys.migrated-from-v2.json"];
  const v2 = openKeyFile(parseKeyFile(readKeys("keys.v2.json")), c.passphrase);
  const rng = new ScriptedRng(c.random_draws.map((d) => fromHex(d.hex)));
  const migrated = migrateToMasterSeed(v2, rng);
  assertEquals(migrated.nodeId, v2.nodeId);
  assertEquals(
    encodeKeyFile(migrated, { passphrase: c.passphrase, rng }),
    readKeys("keys.migrated-from-v2.json"),
  );
});

Deno.test("the recorded wrong passphrase is refused with the reference's message", () => {
  const w = V.load_with_wrong_passphrase;
  const e = assertThrows(
    () => openKeyFile(parseKeyFile(readKeys(w.file)), w.passphrase),
    IronMeshError,
  );
  assertEquals((e as IronMeshError).code, "KEYS_WRONG_PASSPHRASE");
  assertEquals(e.message.startsWith(w.error), true);
});

Deno.test("damaged key files are refused with a code: garbage, truncated, unknown version, bad field, swapped public key", () => {
  const good = readKeys("keys.plaintext.json");
  const code = (text: string) => {
    const e = assertThrows(
      () => openKeyFile(parseKeyFile(text), null),
      IronMeshError,
    ) as IronMeshError;
    return e.code;
  };
  assertEquals(code("not json at all"), "KEYS_MALFORMED");
  assertEquals(code(""), "KEYS_MALFORMED");
  assertEquals(code(good.slice(0, 200)), "KEYS_MALFORMED");
  assertEquals(code(good.replace('"version": 3', '"version": 9')), "KEYS_UNSUPPORTED_VERSION");
  assertEquals(
    code(good.replace('"master-seed-v1"', '"master-seed-v9"')),
    "KEYS_UNSUPPORTED_VERSION",
  );
  assertEquals(code(good.replace(/"hkdf_salt": "[^"]+"/, '"hkdf_salt": "!!!"')), "KEYS_MALFORMED");
  const other = readKeys("keys.v2.plaintext.json");
  const otherPub = JSON.parse(other).ed25519_public;
  assertEquals(
    code(good.replace(/"ed25519_public": "[^"]+"/, `"ed25519_public": "${otherPub}"`)),
    "KEYS_WRONG_PASSPHRASE",
  );
  // A tampered x25519 seed no longer matches its HKDF derivation.
  const obj = JSON.parse(good);
  obj.x25519_seed = JSON.parse(other).ed25519_secret;
  assertEquals(code(JSON.stringify(obj)), "KEYS_MALFORMED");
  assertEquals(code("[1,2]"), "KEYS_MALFORMED");
});
