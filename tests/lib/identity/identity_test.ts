import { assertEquals } from "../../support/assert.ts";
import { loadVector } from "../../support/vectors.ts";
import { Identity, verifyX25519Binding } from "../../../lib/identity/identity.ts";
import { idHashOf, nodeIdOf } from "../../../lib/identity/node_id.ts";
import { fromHex, toHex } from "../../../lib/crypto/sodium.ts";

interface IdCase {
  label: string;
  ed25519_seed_hex: string;
  ed25519_secret_key_64_hex: string;
  ed25519_public_hex: string;
  node_id: string;
  mdns: { idhash: string };
  ed25519_pk_to_curve25519_hex: string;
  ed25519_sk_to_curve25519_hex: string;
  master_seed_v1: {
    hkdf_salt_hex: string;
    x25519_seed_hex: string;
    x25519_public_hex: string;
    x25519_binding_signature_hex: string;
    [k: string]: unknown;
  };
}

const V = loadVector<{ cases: IdCase[] }>("identity.json");

Deno.test("every recorded identity: public key, node_id, idhash, conversions, master-seed subkey, binding", () => {
  assertEquals(V.cases.length >= 10, true);
  for (const c of V.cases) {
    const ms = c.master_seed_v1;
    const id = new Identity(fromHex(c.ed25519_seed_hex), c.label, fromHex(ms.hkdf_salt_hex));
    assertEquals(toHex(id.publicKey), c.ed25519_public_hex, c.label);
    assertEquals(toHex(id.secretKey), c.ed25519_secret_key_64_hex, c.label);
    assertEquals(id.nodeId, c.node_id, c.label);
    assertEquals(nodeIdOf(id.publicKey), c.node_id);
    assertEquals(idHashOf(id.publicKey), c.mdns.idhash, c.label);
    assertEquals(toHex(id.e2e.secretKey), ms.x25519_seed_hex, c.label);
    assertEquals(toHex(id.e2e.publicKey), ms.x25519_public_hex, c.label);
    assertEquals(toHex(id.e2e.bindingSignature!), ms.x25519_binding_signature_hex, c.label);
    assertEquals(
      verifyX25519Binding(id.e2e.publicKey, id.e2e.bindingSignature!, id.publicKey),
      true,
    );
    const legacy = new Identity(fromHex(c.ed25519_seed_hex), c.label, null);
    assertEquals(toHex(legacy.e2e.publicKey), c.ed25519_pk_to_curve25519_hex, c.label);
    assertEquals(toHex(legacy.e2e.secretKey), c.ed25519_sk_to_curve25519_hex, c.label);
  }
});

Deno.test("C-EN-05: node_id of the all-zero seed", () => {
  const id = new Identity(new Uint8Array(32), "z", null);
  assertEquals(id.nodeId, "139e3940e64b5491722088d9a0d74162");
});

Deno.test("a binding signature over another key, or by another identity, does not verify", () => {
  const a = new Identity(fromHex(V.cases[2].ed25519_seed_hex), "a", new Uint8Array(16));
  const b = new Identity(fromHex(V.cases[3].ed25519_seed_hex), "b", new Uint8Array(16));
  assertEquals(verifyX25519Binding(b.e2e.publicKey, a.e2e.bindingSignature!, a.publicKey), false);
  assertEquals(verifyX25519Binding(a.e2e.publicKey, a.e2e.bindingSignature!, b.publicKey), false);
});
